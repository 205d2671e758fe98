// AdamW, PyTorch semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt).
#include <cmath>

#include "cpu/kernels.h"

namespace tf::cpu {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const double bc1 = 1.0 - std::pow((double)h.beta1, (double)h.step);
  const double bc2 = 1.0 - std::pow((double)h.beta2, (double)h.step);
  const float step_size = (float)(h.lr / bc1);
  const float bc2_sqrt = (float)std::sqrt(bc2);
  const float decay = 1.0f - h.lr * h.weight_decay;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    m[i] = h.beta1 * m[i] + (1.0f - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1.0f - h.beta2) * g[i] * g[i];
    const float denom = std::sqrt(v[i]) / bc2_sqrt + h.eps;
    p[i] = p[i] * decay - step_size * m[i] / denom;
  }
}

}  // namespace tf::cpu
