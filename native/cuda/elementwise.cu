// Elementwise kernels: residual adds, scaling, biases, LoRA dropout. One thread per element (grid-stride).
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "engine/dropout_rng.h"

namespace tf::cuda {

namespace {

__global__ void add_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] += x[i];
}

__global__ void add_out_kernel(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float a, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= a;
}

__global__ void mul_kernel(float* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] *= x[i];
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] += bias[i % C];
}

__global__ void dropout_kernel(const float* x, float* mask, float* x_out, int64_t n, DropoutMask drop) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float m = drop.at(i);  // the CPU backend's generator (engine/dropout_rng.h)
    if (mask) mask[i] = m;
    x_out[i] = x[i] * m;
  }
}

// Half bits (bf16, or fp16 when F16) to and from fp32; the narrowing reads rows of `cols` values at stride ld.
template <bool F16>
__global__ void widen_half_kernel(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = F16 ? f16_bits_to_f32(x[i]) : bf16_bits_to_f32(x[i]);
}

template <bool F16>
__global__ void narrow_half_kernel(const float* x, int cols, int ld, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[(i / cols) * ld + i % cols];
    out[i] = F16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
  }
}

// dk[b, o + t, :] = k[b*Tq + t, :] and the same for v (rounded to bf16 for a bf16 cache), where the slot o is `off`,
// or read on the device from off_dev (a recorded decoding step replays at the next slot). A slot outside the cache
// writes nothing (the host checked its own copy).
template <typename T>
__global__ void cache_write_kernel(T* dk, T* dv, const float* k, const float* v, int64_t n, int64_t row, int Tq, int Tk,
                                   int C, int off, const int32_t* off_dev) {
  const int o = off_dev ? *off_dev : off;
  if (o < 0 || o + Tq > Tk) return;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < 2 * n; e += (int64_t)gridDim.x * blockDim.x) {
    const bool is_v = e >= n;
    const int64_t i = is_v ? e - n : e;
    (is_v ? dv : dk)[((i / row) * Tk + o) * (int64_t)C + i % row] = from_float<T>((is_v ? v : k)[i]);
  }
}

// Every job's values, one grid over all of them: element e belongs to the first job whose count it does not pass.
__global__ void narrow_bf16_many_kernel(NarrowJobs j, int64_t total) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    int k = 0;
    int64_t i = e;
    while (i >= j.n[k]) i -= j.n[k++];
    j.y[k][i] = f32_to_bf16_bits(j.x[k][i]);
  }
}

}  // namespace

template <typename T>
void cache_write(T* dk, T* dv, const float* k, const float* v, int B, int Tq, int Tk, int off, const int32_t* off_dev,
                 int C, cudaStream_t s) {
  const int64_t row = (int64_t)Tq * C, n = B * row;
  if (n <= 0) return;
  cache_write_kernel<T><<<grid_for(2 * n), kThreads, 0, s>>>(dk, dv, k, v, n, row, Tq, Tk, C, off, off_dev);
  CUDA_LAUNCH_CHECK("cache_write_kernel");
}
template void cache_write<float>(float*, float*, const float*, const float*, int, int, int, int, const int32_t*, int,
                                 cudaStream_t);
template void cache_write<uint16_t>(uint16_t*, uint16_t*, const float*, const float*, int, int, int, int,
                                    const int32_t*, int, cudaStream_t);

template <bool F16>
void widen_half(const uint16_t* x, float* y, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  widen_half_kernel<F16><<<grid_for(n), kThreads, 0, s>>>(x, y, n);
  CUDA_LAUNCH_CHECK(F16 ? "widen_f16_kernel" : "widen_bf16_kernel");
}

template <bool F16>
void narrow_half(const float* x, int cols, int ld, int64_t n, uint16_t* out, cudaStream_t s) {
  if (n <= 0) return;
  narrow_half_kernel<F16><<<grid_for(n), kThreads, 0, s>>>(x, cols, ld, n, out);
  CUDA_LAUNCH_CHECK(F16 ? "narrow_f16_kernel" : "narrow_bf16_kernel");
}

void widen_bf16(const uint16_t* x, float* y, int64_t n, cudaStream_t s) { widen_half<false>(x, y, n, s); }
void widen_f16(const uint16_t* x, float* y, int64_t n, cudaStream_t s) { widen_half<true>(x, y, n, s); }

void narrow_bf16(const float* x, int rows, int cols, int ld, uint16_t* out, cudaStream_t s) {
  narrow_half<false>(x, cols, ld, (int64_t)rows * cols, out, s);
}
void narrow_f16(const float* x, int rows, int cols, int ld, uint16_t* out, cudaStream_t s) {
  narrow_half<true>(x, cols, ld, (int64_t)rows * cols, out, s);
}
void narrow_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s) {
  narrow_half<false>(x, 1, 1, n, out, s);  // rows of 1: x[i] itself
}

void narrow_bf16_many(const NarrowJobs& jobs, cudaStream_t s) {
  int64_t total = 0;
  for (int k = 0; k < jobs.count; k++) total += jobs.n[k];
  if (total <= 0) return;
  narrow_bf16_many_kernel<<<grid_for(total), kThreads, 0, s>>>(jobs, total);
  CUDA_LAUNCH_CHECK("narrow_bf16_many_kernel");
}

void add(float* y, const float* x, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n);
  CUDA_LAUNCH_CHECK("add_kernel");
}

void add_out(float* out, const float* a, const float* b, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  add_out_kernel<<<grid_for(n), kThreads, 0, s>>>(out, a, b, n);
  CUDA_LAUNCH_CHECK("add_out_kernel");
}

void scale(float* x, float a, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, s>>>(x, a, n);
  CUDA_LAUNCH_CHECK("scale_kernel");
}

void mul(float* y, const float* x, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  mul_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n);
  CUDA_LAUNCH_CHECK("mul_kernel");
}

void add_bias(float* y, const float* bias, int N, int C, cudaStream_t s) {
  const int64_t n = (int64_t)N * C;
  if (n <= 0) return;
  add_bias_kernel<<<grid_for(n), kThreads, 0, s>>>(y, bias, n, C);
  CUDA_LAUNCH_CHECK("add_bias_kernel");
}

void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed, cudaStream_t s) {
  if (n <= 0) return;
  dropout_kernel<<<grid_for(n), kThreads, 0, s>>>(x, mask, x_out, n, DropoutMask::make(p, seed));
  CUDA_LAUNCH_CHECK("dropout_kernel");
}

}  // namespace tf::cuda
