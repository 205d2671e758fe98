// Shared by the CUDA kernels: error checks that throw a C++ error naming the file, line and call, launch
// helpers, and deterministic block reductions (fixed-shape trees, never float atomics, so a result does not
// depend on scheduling and a run can be repeated bit for bit).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace tf::cuda {

[[noreturn]] inline void fail(const std::string& what, const char* call, const char* file, int line) {
  throw std::runtime_error("CUDA: " + what + " in `" + call + "` at " + file + ":" + std::to_string(line));
}

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) fail(std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")", call, file, line);
}

inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(std::string("cuBLAS ") + cublasGetStatusString(s), call, file, line);
}

// TUNEFORGE_CUDA_SYNC=1 synchronises after every launch, so an asynchronous fault (an out-of-bounds access)
// is reported at the kernel that caused it instead of at some later call.
bool sync_after_launch();

}  // namespace tf::cuda

#define CUDA_CHECK(call) ::tf::cuda::check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::tf::cuda::check((call), #call, __FILE__, __LINE__)
// After a <<<...>>> launch: configuration errors now, execution errors too when TUNEFORGE_CUDA_SYNC=1.
#define CUDA_LAUNCH_CHECK(name)                                                                \
  do {                                                                                         \
    ::tf::cuda::check(cudaGetLastError(), name, __FILE__, __LINE__);                           \
    if (::tf::cuda::sync_after_launch()) ::tf::cuda::check(cudaDeviceSynchronize(), name, __FILE__, __LINE__); \
  } while (0)

// Unrolls the loop that follows, fully or n times (nvcc); the emulator's g++ builds do without.
#ifdef __CUDACC__
#define TF_UNROLL _Pragma("unroll")
#define TF_PRAGMA(x) _Pragma(#x)
#define TF_UNROLL_BY(n) TF_PRAGMA(unroll n)
#else
#define TF_UNROLL
#define TF_UNROLL_BY(n)
#endif

namespace tf::cuda {

constexpr int kThreads = 256;  // block size of the elementwise and per-row kernels (a power of two)

// bf16 as raw bits, exactly as the host's engine/bf16.h (widening is a shift; narrowing rounds to nearest even).
__device__ inline float bf16_bits_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ inline uint16_t f32_to_bf16_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Two values rounded to bf16 (nearest even) in one register, `lo` in the low half.
__device__ inline uint32_t pack_bf16(float lo, float hi) {
  return (uint32_t)f32_to_bf16_bits(lo) | ((uint32_t)f32_to_bf16_bits(hi) << 16);
}
// Eight bf16 values of a 16-byte word (the lower index in each register's low half) widened, and back.
__device__ inline void widen8_bf16(uint4 h, float (&v)[8]) {
  const uint32_t w[4] = {h.x, h.y, h.z, h.w};
  for (int q = 0; q < 4; q++) {
    v[2 * q] = bf16_bits_to_f32((uint16_t)w[q]);
    v[2 * q + 1] = bf16_bits_to_f32((uint16_t)(w[q] >> 16));
  }
}
__device__ inline uint4 narrow8_bf16(const float (&v)[8]) {
  return {pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7])};
}

// An fp32 value to an fp32 or bf16 (raw bits, nearest even) element, and back: kernels templated on the type of
// activations they read or write (bf16 mode keeps some in bf16).
__device__ inline float as_float(float x) { return x; }
__device__ inline float as_float(uint16_t h) { return bf16_bits_to_f32(h); }
template <typename T>
__device__ inline T from_float(float x);
template <>
__device__ inline float from_float<float>(float x) { return x; }
template <>
__device__ inline uint16_t from_float<uint16_t>(float x) { return f32_to_bf16_bits(x); }

// IEEE half (fp16) as raw bits, exactly as the host's engine/bf16.h: exact widening (subnormals included), narrowing
// to nearest even with overflow to inf.
__device__ inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    if (mant == 0) return __uint_as_float(sign);
    exp = 127 - 15 + 1;  // subnormal: normalise
    while (!(mant & 0x400)) {
      mant <<= 1;
      exp--;
    }
    return __uint_as_float(sign | (exp << 23) | ((mant & 0x3ff) << 13));
  }
  if (exp == 31) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
  return __uint_as_float(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}
__device__ inline uint16_t f32_to_f16_bits(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;  // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00;  // past 65504 after rounding: inf
  if (a < 0x38800000u) {                       // a subnormal half (or zero): units of 2^-24, nearest even
    if (a < 0x33000000u) return sign;
    const uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000, shift = 126 - e;
    const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | (uint16_t)(q + (rest > half || (rest == half && (q & 1))));
  }
  const uint32_t r = a - 0x38000000u;
  return sign | (uint16_t)((r + 0xfffu + ((r >> 13) & 1u)) >> 13);
}

// The CUDA programming guide's last-block pattern, called by every thread of a block once its results are written:
// true (in every thread) in the last of `blocks` blocks to get here, which may then read the others' results (with
// __ldcg: past the L1 cache) and must set *count back to 0 for the next launch.
__device__ inline bool last_block_done(unsigned* count, unsigned blocks) {
  __shared__ bool last;
  __threadfence();  // this block's results are visible device-wide before the count says so
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(count, 1u) == blocks - 1;
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// Programmatic dependent launch (compute capability 9.0 and up) for a decoding step's chain of short kernels, each
// waiting for the one before it: a kernel launched by launch_chained may be scheduled as the kernel before it on its
// stream finishes, instead of after the GPU has seen it finish. A layer's step pays that gap 9 times; its size is for
// a GPU to measure (TUNEFORGE_CUDA_PDL=0 in bench:gpu's generate case). Such a kernel calls wait_for_previous_grid()
// before it touches device memory, which returns once the kernel before it has finished and its writes are visible;
// launched without the attribute, the wait returns at once.
__device__ inline void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
// Whether launch_chained asks for it: compute capability 9.0 and up, unless TUNEFORGE_CUDA_PDL=0 (read at each call:
// a recording keeps what was set when it was made).
bool chained_launches();
template <typename... P, typename... A>
void launch_chained(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                    A&&... args) {
#ifdef TUNEFORGE_CUDA_EMU
  // the emulator runs each launch after the one before it on its stream: there is nothing to overlap
  ::emu::launch({grid, block, smem, s}, kernel, name)(std::forward<A>(args)...);
#else
  cudaLaunchAttribute attr[1] = {};
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attr;
  cfg.numAttrs = chained_launches() ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...), name, __FILE__, __LINE__);
#endif
  CUDA_LAUNCH_CHECK(name);
}

// Whether p may be read with loads of `bytes` bytes (vector loads, cp.async).
inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Blocks for a grid-stride loop over n items: enough to fill the GPU, capped so huge n loops instead.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return (unsigned)(blocks < 1 ? 1 : blocks > 65535 ? 65535 : blocks);
}

// Sum of one value per thread over the block, in a fixed pairwise order. blockDim.x must be a power of two
// and `sh` must hold blockDim.x elements. Every thread gets the total. Ends with a barrier, so `sh` may be
// reused right after.
template <typename T>
__device__ inline T block_sum(T v, T* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if ((int)threadIdx.x < stride) sh[threadIdx.x] += sh[threadIdx.x + stride];
    __syncthreads();
  }
  const T total = sh[0];
  __syncthreads();
  return total;
}

template <typename T>
__device__ inline T block_max(T v, T* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if ((int)threadIdx.x < stride) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + stride]);
    __syncthreads();
  }
  const T m = sh[0];
  __syncthreads();
  return m;
}

// Warp-wide reductions (butterfly: every lane ends with the same value, same order on every run).
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Dynamic shared memory above 48 KiB must be opted into per kernel; fails clearly past the device limit.
void allow_shared_memory(const void* kernel, size_t bytes, const char* name);

}  // namespace tf::cuda
