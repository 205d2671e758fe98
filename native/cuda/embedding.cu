// Embedding lookup (row gather) and its gradient (row scatter-add), on device ids.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

// V: float, or float4 where the rows allow 16-byte loads (C a multiple of 4, table and output 16-byte aligned): the
// table may be pinned host memory read over the bus (Model::embedding_table), where a warp's 512-byte request moves a
// row in far fewer transactions than 128-byte ones. C counts V values.
template <class V>
__global__ void embedding_fwd_kernel(const V* table, const int32_t* ids, int N, int C, V* out) {
  const int64_t n = (int64_t)N * C;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C, c = i % C;
    out[i] = table[(int64_t)ids[row] * C + c];
  }
}

// Half values (bf16 or fp16 bits, F16 picks which) widened exactly into out: one, or the eight of a 16-byte load.
template <bool F16>
__device__ inline float widen(uint16_t h) {
  return F16 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
}
template <bool F16>
__device__ inline void store_widened(float* out, uint16_t h) {
  *out = widen<F16>(h);
}
template <bool F16>
__device__ inline void store_widened(float* out, uint4 v) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
  float f[8];
  for (int k = 0; k < 4; k++) {
    f[2 * k] = widen<F16>((uint16_t)(w[k] & 0xffffu));
    f[2 * k + 1] = widen<F16>((uint16_t)(w[k] >> 16));
  }
  reinterpret_cast<float4*>(out)[0] = float4{f[0], f[1], f[2], f[3]};
  reinterpret_cast<float4*>(out)[1] = float4{f[4], f[5], f[6], f[7]};
}

// A half table gathered as H: uint16_t, or uint4 (8 values) as embedding_fwd_kernel<float4>; C counts H values.
template <bool F16, class H>
__global__ void embedding_fwd_half_kernel(const H* table, const int32_t* ids, int N, int C, float* out) {
  constexpr int kPer = sizeof(H) / sizeof(uint16_t);
  const int64_t n = (int64_t)N * C;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / C, c = i % C;
    store_widened<F16>(out + i * kPer, table[(int64_t)ids[row] * C + c]);
  }
}

// Deterministic without atomics: each thread owns one column of the whole table and adds the rows in input
// order, exactly like the CPU loop, so repeated ids accumulate in the same order (bitwise equal results).
__global__ void embedding_bwd_kernel(float* table_grad, const int32_t* ids, int N, int C, const float* d) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int i = 0; i < N; i++) table_grad[(int64_t)ids[i] * C + c] += d[(int64_t)i * C + c];
}

__device__ inline float add_vec(float a, float b) { return a + b; }
__device__ inline float4 add_vec(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

// Distinct rows: a thread per V-wide vector of the whole [N, C] source, each element added once.
template <typename V>
__global__ void scatter_add_rows_kernel(V* dst, const int32_t* rows, int N, int C, const V* src) {
  const int64_t n = (int64_t)N * C;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    V& y = dst[(int64_t)rows[e / C] * C + e % C];
    y = add_vec(y, src[e]);
  }
}

}  // namespace

void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  if (C % 4 == 0 && aligned(table, 16) && aligned(out, 16)) {
    embedding_fwd_kernel<float4><<<grid_for(n / 4), kThreads, 0, s>>>(reinterpret_cast<const float4*>(table), ids, N,
                                                                       C / 4, reinterpret_cast<float4*>(out));
    CUDA_LAUNCH_CHECK("embedding_fwd_kernel<float4>");
    return;
  }
  embedding_fwd_kernel<float><<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK("embedding_fwd_kernel");
}

namespace {
template <bool F16>
void embedding_fwd_half(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  if (C % 8 == 0 && aligned(table, 16) && aligned(out, 16)) {
    embedding_fwd_half_kernel<F16, uint4><<<grid_for(n / 8), kThreads, 0, s>>>(
        reinterpret_cast<const uint4*>(table), ids, N, C / 8, out);
    CUDA_LAUNCH_CHECK(F16 ? "embedding_fwd_f16_vec_kernel" : "embedding_fwd_bf16_vec_kernel");
    return;
  }
  embedding_fwd_half_kernel<F16, uint16_t><<<grid_for(n), kThreads, 0, s>>>(table, ids, N, C, out);
  CUDA_LAUNCH_CHECK(F16 ? "embedding_fwd_f16_kernel" : "embedding_fwd_bf16_kernel");
}
}  // namespace

void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  embedding_fwd_half<false>(table, ids, N, C, out, s);
}

void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out, cudaStream_t s) {
  embedding_fwd_half<true>(table, ids, N, C, out, s);
}

void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  if (C % 4 == 0 && aligned(dst, 16) && aligned(src, 16)) {
    scatter_add_rows_kernel<float4><<<grid_for(n / 4), kThreads, 0, s>>>(
        reinterpret_cast<float4*>(dst), rows, N, C / 4, reinterpret_cast<const float4*>(src));
  } else {
    scatter_add_rows_kernel<float><<<grid_for(n), kThreads, 0, s>>>(dst, rows, N, C, src);
  }
  CUDA_LAUNCH_CHECK("scatter_add_rows_kernel");
}

void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  embedding_bwd_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, s>>>(table_grad, ids, N, C, d);
  CUDA_LAUNCH_CHECK("embedding_bwd_kernel");
}

}  // namespace tf::cuda
