// AdamW, PyTorch semantics exactly as native/cpu/adamw.cc: decoupled weight decay, bias-corrected moments,
// eps outside the sqrt. The bias corrections are formed on the host in double, like the CPU backend.
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, float beta1, float beta2,
                             float eps, float step_size, float bc2_sqrt, float decay) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * mi / denom;
  }
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h, cudaStream_t s) {
  if (n <= 0) return;
  const double bc1 = 1.0 - std::pow((double)h.beta1, (double)h.step);
  const double bc2 = 1.0 - std::pow((double)h.beta2, (double)h.step);
  const float step_size = (float)(h.lr / bc1);
  const float bc2_sqrt = (float)std::sqrt(bc2);
  const float decay = 1.0f - h.lr * h.weight_decay;
  adamw_kernel<<<grid_for(n), kThreads, 0, s>>>(p, g, m, v, n, h.beta1, h.beta2, h.eps, step_size, bc2_sqrt, decay);
  CUDA_LAUNCH_CHECK("adamw_kernel");
}

}  // namespace tf::cuda
