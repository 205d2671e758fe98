// What the readers of a decoding step's projection outputs add to each value (Backend's LoraUps): the projection's
// bias and LoRA's up-projection, so that neither takes a launch of its own.
#pragma once
#include "cuda/common.cuh"
#include "engine/backend.h"

namespace tf::cuda {

// Projection k of `ups`, by value and picked with constant indices: indexing a kernel parameter array at run time (or
// taking a reference into it) would copy it to local memory.
__device__ inline LoraUp up_of(const LoraUps& ups, int k) {
  static_assert(kMaxLoraTerms == 3, "one choice per projection");
  return k == 0 ? ups.p[0] : k == 1 ? ups.p[1] : ups.p[2];
}

// A reader's LoraUps as its kernel takes them: vec4 when every x A^T and B may be read 4 floats at a time (r a multiple
// of 4, 16-byte aligned; the host checks).
struct ReaderUps {
  LoraUps ups;
  bool vec4;
};
inline ReaderUps reader_ups(const LoraUps& ups) {
  bool vec4 = ups.r % 4 == 0;
  for (const LoraUp& u : ups.p) vec4 = vec4 && aligned(u.xa, 16) && aligned(u.B, 16);
  return {ups, vec4};
}

// Output column c of row n: y + bias[c] + scale sum_j xa[n, j] B[c, j], the ranks in order, rounded once (as the
// rank-by-rank sums of lora_up).
__device__ inline float with_up(float y, const LoraUp& u, const ReaderUps& ru, int64_t n, int64_t c) {
  const int r = ru.ups.r;
  const float bias = u.bias ? u.bias[c] : 0.0f;
  if (!u.xa) return u.bias ? y + bias : y;
  const float* xa = u.xa + n * r;
  const float* b = u.B + c * r;
  float acc = 0.0f;
  if (ru.vec4) {
    for (int j = 0; j < r; j += 4) {
      const float4 x4 = *reinterpret_cast<const float4*>(xa + j), b4 = *reinterpret_cast<const float4*>(b + j);
      acc = fmaf(x4.x, b4.x, acc);
      acc = fmaf(x4.y, b4.y, acc);
      acc = fmaf(x4.z, b4.z, acc);
      acc = fmaf(x4.w, b4.w, acc);
    }
  } else {
    for (int j = 0; j < r; j++) acc = fmaf(xa[j], b[j], acc);
  }
  return y + bias + ru.ups.scale * acc;
}

}  // namespace tf::cuda
