// SwiGLU MLP activation, out = silu(g) * u, evaluated in double like native/cpu/swiglu.cc.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

// 1 / (1 + exp(-x)) from exp(-|x|), so the exp never overflows.
__device__ inline double sigmoid(double x) {
  const double e = exp(x < 0 ? x : -x);
  const double r = 1.0 / (1.0 + e);
  return x >= 0 ? r : e * r;
}

// out: fp32, or bf16 rounded to nearest even (bf16 mode's down_proj input).
template <typename T>
__global__ void swiglu_fwd_kernel(const float* g, const float* u, int64_t n, T* out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double gv = g[i];
    out[i] = from_float<T>((float)(gv * sigmoid(gv) * (double)u[i]));
  }
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
__global__ void swiglu_bwd_kernel(const float* g, const float* u, const float* dout, int64_t n, float* dg,
                                  float* du) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const double gv = g[i], uv = u[i], dv = dout[i];
    const double s = sigmoid(gv);
    du[i] = (float)(dv * gv * s);
    dg[i] = (float)(dv * uv * s * (1.0 + gv * (1.0 - s)));
  }
}

}  // namespace

template <typename T>
void swiglu_fwd(const float* g, const float* u, int64_t n, T* out, cudaStream_t s) {
  if (n <= 0) return;
  swiglu_fwd_kernel<T><<<grid_for(n), kThreads, 0, s>>>(g, u, n, out);
  CUDA_LAUNCH_CHECK("swiglu_fwd_kernel");
}
template void swiglu_fwd(const float*, const float*, int64_t, float*, cudaStream_t);
template void swiglu_fwd(const float*, const float*, int64_t, uint16_t*, cudaStream_t);

void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du, cudaStream_t s) {
  if (n <= 0) return;
  swiglu_bwd_kernel<<<grid_for(n), kThreads, 0, s>>>(g, u, dout, n, dg, du);
  CUDA_LAUNCH_CHECK("swiglu_bwd_kernel");
}

}  // namespace tf::cuda
