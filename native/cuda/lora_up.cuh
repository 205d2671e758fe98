// What the readers of a decoding step's projection outputs add to each value (Backend's LoraUps): the projection's
// bias and LoRA's up-projection, so that neither takes a launch of its own.
#pragma once
#include "engine/backend.h"

namespace tf::cuda {

// Projection k of `ups`, by value and picked with constant indices: indexing a kernel parameter array at run time (or
// taking a reference into it) would copy it to local memory.
__device__ inline LoraUp up_of(const LoraUps& ups, int k) {
  static_assert(kMaxLoraTerms == 3, "one choice per projection");
  return k == 0 ? ups.p[0] : k == 1 ? ups.p[1] : ups.p[2];
}

// Output column c of row n: y + bias[c] + scale sum_j xa[n, j] B[c, j], the ranks in order, rounded once (as the
// rank-by-rank sums of lora_up).
__device__ inline float with_up(float y, const LoraUp& u, int r, float scale, int64_t n, int64_t c) {
  const float bias = u.bias ? u.bias[c] : 0.0f;
  if (!u.xa) return u.bias ? y + bias : y;
  const float* xa = u.xa + n * r;
  const float* b = u.B + c * r;
  float acc = 0.0f;
  for (int j = 0; j < r; j++) acc = fmaf(xa[j], b[j], acc);
  return y + bias + scale * acc;
}

}  // namespace tf::cuda
