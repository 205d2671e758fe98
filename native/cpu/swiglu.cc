// SwiGLU MLP activation: out = silu(g) * u, vectorised in float (vec_f32.h), W elements per step.
#include <algorithm>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec_f32.h"

namespace tf::cpu {

using vecf::VF;
using vecf::W;

// Threads get whole vectors of W elements. An element costs about as much as kCost plain element-wise ones (an
// exp and a division): work below kParallelMin / kCost runs on one thread. The split cannot change a result.
constexpr int64_t kCost = 4;

void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) {
  parallel_for((n + W - 1) / W, n * kCost, [&](int64_t v0, int64_t v1) {
    for (int64_t j = v0 * W; j < std::min(n, v1 * W); j += W) {
      const int m = (int)std::min<int64_t>(W, n - j);
      const VF gv = vecf::load_n(g + j, m), uv = vecf::load_n(u + j, m);
      vecf::store_n(out + j, gv * vecf::sigmoid(gv) * uv, m);
    }
  });
}

// d silu(g)/dg = sig * (1 + g * (1 - sig)).
void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) {
  parallel_for((n + W - 1) / W, n * kCost, [&](int64_t v0, int64_t v1) {
    for (int64_t j = v0 * W; j < std::min(n, v1 * W); j += W) {
      const int m = (int)std::min<int64_t>(W, n - j);
      const VF gv = vecf::load_n(g + j, m), uv = vecf::load_n(u + j, m), dv = vecf::load_n(dout + j, m);
      const VF s = vecf::sigmoid(gv);
      vecf::store_n(du + j, dv * gv * s, m);
      vecf::store_n(dg + j, dv * uv * s * (1.0f + gv * (1.0f - s)), m);
    }
  });
}

}  // namespace tf::cpu
