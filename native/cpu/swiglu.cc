// SwiGLU MLP activation: out = silu(g) * u.
#include <cmath>

#include "cpu/kernels.h"

namespace tf::cpu {

static inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = g[i] * sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float s = sigmoid(g[i]);
    du[i] = dout[i] * g[i] * s;
    dg[i] = dout[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace tf::cpu
