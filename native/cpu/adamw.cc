// AdamW, PyTorch semantics (decoupled weight decay, bias-corrected moments, eps outside the sqrt).
// With AVX-512 the update is written in vectors: as a plain loop it stayed scalar (std::sqrt may set errno, a
// branch the vectoriser gives up on). Every element, the last partial vector's included (masked), goes through the
// same instructions, so how the elements are split into calls or threads never changes a result.
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace tf::cpu {

namespace {

// The per-step constants, formed once in double like PyTorch's.
struct Consts {
  float step_size, bc2_sqrt, decay, b1, b2, eps;
  explicit Consts(const AdamWHyper& h) {
    const double bc1 = 1.0 - std::pow((double)h.beta1, (double)h.step);
    const double bc2 = 1.0 - std::pow((double)h.beta2, (double)h.step);
    step_size = (float)(h.lr / bc1);
    bc2_sqrt = (float)std::sqrt(bc2);
    decay = 1.0f - h.lr * h.weight_decay;
    b1 = h.beta1;
    b2 = h.beta2;
    eps = h.eps;
  }
};

// Vectorised, an element costs about kCost elementwise adds (a square root and two divisions): that decides
// when the update is split across threads.
constexpr int64_t kCost = 8;

// Elements [i0, i1) of one tensor.
void update(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, const Consts& c) {
  // The constants as locals: through `c`, the compiler must assume the stores to p, m, v may change them.
  const float b1 = c.b1, b2 = c.b2, eps = c.eps, step_size = c.step_size, bc2_sqrt = c.bc2_sqrt, decay = c.decay;
#if defined(__AVX512F__)
  typedef float V __attribute__((vector_size(64)));
  for (int64_t i = i0; i < i1; i += 16) {
    const __mmask16 k = i1 - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (i1 - i)) - 1);
    const V gi = (V)_mm512_maskz_loadu_ps(k, g + i);
    const V mi = b1 * (V)_mm512_maskz_loadu_ps(k, m + i) + (1.0f - b1) * gi;
    const V vi = b2 * (V)_mm512_maskz_loadu_ps(k, v + i) + (1.0f - b2) * gi * gi;
    const V denom = (V)_mm512_maskz_sqrt_ps(k, (__m512)vi) / bc2_sqrt + eps;
    const V pi = (V)_mm512_maskz_loadu_ps(k, p + i) * decay - step_size * mi / denom;
    _mm512_mask_storeu_ps(m + i, k, (__m512)mi);
    _mm512_mask_storeu_ps(v + i, k, (__m512)vi);
    _mm512_mask_storeu_ps(p + i, k, (__m512)pi);
  }
#else
#pragma omp simd
  for (int64_t i = i0; i < i1; i++) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * m[i] / denom;
  }
#endif
}

}  // namespace

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) {
  const Consts c(h);
  parallel_for(n, n * kCost, [&](int64_t i0, int64_t i1) { update(p, g, m, v, i0, i1, c); });
}

// The tensors as one concatenated range split across threads (a thread's part may span several tensors): one
// fork for the whole optimizer step instead of one per tensor. Elementwise, so the split changes nothing.
void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs, const int64_t* ns,
                int count, const AdamWHyper& h) {
  const Consts c(h);
  std::vector<int64_t> start(count + 1, 0);  // start[i]: tensor i's first index in the concatenation
  for (int i = 0; i < count; i++) start[i + 1] = start[i] + ns[i];
  const int64_t total = start[count];
  parallel_for(total, total * kCost, [&](int64_t i0, int64_t i1) {
    int t = (int)(std::upper_bound(start.begin(), start.end(), i0) - start.begin()) - 1;
    for (; t < count && start[t] < i1; t++) {
      const int64_t lo = std::max(i0, start[t]) - start[t], hi = std::min(i1, start[t + 1]) - start[t];
      if (lo < hi) update(ps[t], gs[t], ms[t], vs[t], lo, hi, c);
    }
  });
}

}  // namespace tf::cpu
