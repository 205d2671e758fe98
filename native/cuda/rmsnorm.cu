// RMSNorm (HF LlamaRMSNorm semantics), as native/cpu/rmsnorm.cc: y = x * rstd * w with
// rstd = 1 / sqrt(mean(x^2) + eps). One block per row; row sums in double through a fixed-order tree.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/lora_up.cuh"

namespace tf::cuda {

namespace {

// out: fp32, or bf16 rounded to nearest even (bf16 mode's projection inputs).
template <typename T>
__global__ void rmsnorm_fwd_kernel(const float* x, const float* w, int C, float eps, T* out, float* rstd) {
  __shared__ double sh[kThreads];
  const int64_t row = blockIdx.x;
  const float* xi = x + row * C;
  double ss = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)xi[c] * xi[c];
  ss = block_sum(ss, sh);
  const float r = (float)(1.0 / sqrt(ss / C + eps));
  if (rstd && threadIdx.x == 0) rstd[row] = r;
  T* oi = out + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) oi[c] = from_float<T>((xi[c] * r) * w[c]);
}

// sum = a + b, then the same norm of sum (each thread reads back only the sums it wrote). A decoding step's b gets its
// projection's bias and LoRA as it is read (up; nothing otherwise).
template <typename T>
__global__ void add_rmsnorm_kernel(const float* a, const float* b, const float* w, int C, float eps, float* sum, T* out,
                                   float* rstd, ReaderUps up) {
  wait_for_previous_grid();  // launched chained (common.cuh)
  __shared__ double sh[kThreads];
  const int64_t row = blockIdx.x;
  const float *ai = a + row * C, *bi = b + row * C;
  float* si = sum + row * C;
  double ss = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = ai[c] + with_up(bi[c], up.ups.p[0], up, row, c);
    si[c] = v;
    ss += (double)v * v;
  }
  ss = block_sum(ss, sh);
  const float r = (float)(1.0 / sqrt(ss / C + eps));
  if (threadIdx.x == 0) rstd[row] = r;
  T* oi = out + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) oi[c] = from_float<T>((si[c] * r) * w[c]);
}

// With xhat = x*rstd and g = dy*w: dx = rstd * (g - xhat * mean(g * xhat)); dx16 (optional): dx rounded to bf16.
__global__ void rmsnorm_bwd_dx_kernel(const float* x, const float* w, const float* rstd, const float* dy, int C,
                                      float* dx, bool accumulate_dx, uint16_t* dx16) {
  __shared__ double sh[kThreads];
  const int64_t row = blockIdx.x;
  const float* xi = x + row * C;
  const float* di = dy + row * C;
  const float r = rstd[row];
  double dot = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)di[c] * w[c] * xi[c] * r;
  dot = block_sum(dot, sh);
  const float mean = (float)(dot / C);
  float* o = dx + row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = r * (di[c] * w[c] - xi[c] * r * mean);
    const float out = accumulate_dx ? o[c] + v : v;
    o[c] = out;
    if (dx16) dx16[row * C + c] = f32_to_bf16_bits(out);
  }
}

// dw += sum_rows dy * xhat: one thread per column, rows in order, in double.
__global__ void rmsnorm_bwd_dw_kernel(const float* x, const float* rstd, const float* dy, int N, int C, float* dw) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s = 0;
  for (int i = 0; i < N; i++) s += (double)dy[(int64_t)i * C + c] * x[(int64_t)i * C + c] * rstd[i];
  dw[c] += (float)s;
}

}  // namespace

template <typename T>
void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, T* out, float* rstd, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  rmsnorm_fwd_kernel<T><<<N, kThreads, 0, s>>>(x, w, C, eps, out, rstd);
  CUDA_LAUNCH_CHECK("rmsnorm_fwd_kernel");
}
template void rmsnorm_fwd(const float*, const float*, int, int, float, float*, float*, cudaStream_t);
template void rmsnorm_fwd(const float*, const float*, int, int, float, uint16_t*, float*, cudaStream_t);

template <typename T>
void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum, T* out,
                 float* rstd, const LoraUps& ups, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  launch_chained("add_rmsnorm_kernel", add_rmsnorm_kernel<T>, N, kThreads, 0, s, a, b, w, C, eps, sum, out, rstd,
                 reader_ups(ups));
}
template void add_rmsnorm(const float*, const float*, const float*, int, int, float, float*, float*, float*,
                          const LoraUps&, cudaStream_t);
template void add_rmsnorm(const float*, const float*, const float*, int, int, float, float*, uint16_t*, float*,
                          const LoraUps&, cudaStream_t);

void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                 bool accumulate_dx, float* dw, uint16_t* dx16, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  rmsnorm_bwd_dx_kernel<<<N, kThreads, 0, s>>>(x, w, rstd, dy, C, dx, accumulate_dx, dx16);
  CUDA_LAUNCH_CHECK("rmsnorm_bwd_dx_kernel");
  if (dw) rmsnorm_weight_grad(x, rstd, dy, N, C, dw, s);
}

void rmsnorm_weight_grad(const float* x, const float* rstd, const float* dy, int N, int C, float* dw, cudaStream_t s) {
  if (N <= 0 || C <= 0) return;
  rmsnorm_bwd_dw_kernel<<<(C + kThreads - 1) / kThreads, kThreads, 0, s>>>(x, rstd, dy, N, C, dw);
  CUDA_LAUNCH_CHECK("rmsnorm_bwd_dw_kernel");
}

}  // namespace tf::cuda
