// SwiGLU MLP activation: out = silu(g) * u. Vectorised (vec.h), W elements per step.
#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace tf::cpu {

using vec::VD;
using vec::W;

// Threads get whole vectors of W elements. An element costs about as much as kCost plain element-wise ones (a
// double-precision exp): work below kParallelMin / kCost runs on one thread. The split cannot change a result.
constexpr int64_t kCost = 8;

void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) {
  parallel_for((n + W - 1) / W, n * kCost, [&](int64_t v0, int64_t v1) {
    for (int64_t j = v0 * W; j < std::min(n, v1 * W); j += W) {
      const int m = (int)std::min<int64_t>(W, n - j);
      const VD gv = vec::load_n(g + j, m, 0.0f), uv = vec::load_n(u + j, m, 0.0f);
      vec::store_n(out + j, gv * vec::sigmoid(gv) * uv, m);
    }
  });
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) {
  parallel_for((n + W - 1) / W, n * kCost, [&](int64_t v0, int64_t v1) {
    for (int64_t j = v0 * W; j < std::min(n, v1 * W); j += W) {
      const int m = (int)std::min<int64_t>(W, n - j);
      const VD gv = vec::load_n(g + j, m, 0.0f), uv = vec::load_n(u + j, m, 0.0f);
      const VD dv = vec::load_n(dout + j, m, 0.0f);
      const VD s = vec::sigmoid(gv);
      vec::store_n(du + j, dv * gv * s, m);
      vec::store_n(dg + j, dv * uv * s * (1.0 + gv * (1.0 - s)), m);
    }
  });
}

}  // namespace tf::cpu
