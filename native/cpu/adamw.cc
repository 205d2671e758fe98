// AdamW, PyTorch semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt).
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace tf::cpu {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const double bc1 = 1.0 - std::pow((double)h.beta1, (double)h.step);
  const double bc2 = 1.0 - std::pow((double)h.beta2, (double)h.step);
  const float step_size = (float)(h.lr / bc1);
  const float bc2_sqrt = (float)std::sqrt(bc2);
  const float decay = 1.0f - h.lr * h.weight_decay;
  // Hyperparameters as locals: read through `h`, the compiler must assume the stores to p, m, v may change them.
  const float b1 = h.beta1, b2 = h.beta2, eps = h.eps;
  parallel_for(n, 4 * n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      p[i] = p[i] * decay - step_size * m[i] / denom;
    }
  });
}

}  // namespace tf::cpu
