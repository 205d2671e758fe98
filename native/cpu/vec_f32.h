// Single-precision companions of vec.h: 16 float lanes (one zmm with AVX-512, two ymm with AVX2) and an exp
// accurate to a few ulp. For activations (SwiGLU), where the result is a float anyway and vec.h's double exp
// (kept for the softmaxes, whose sums need it) cost most of a small model's MLP time.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace tf::cpu::vecf {

constexpr int W = 16;
typedef float VF __attribute__((vector_size(W * sizeof(float))));
typedef int32_t VI __attribute__((vector_size(W * sizeof(int32_t))));

inline VF splat(float x) { return VF{} + x; }

// n (<= W) floats from p, the other lanes 0; and the matching store. Masked where AVX-512 has it (see vec.h).
inline VF load_n(const float* p, int n) {
  VF v = {};
#if defined(__AVX512F__)
  if (n < W) return (VF)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#endif
  std::memcpy(&v, p, sizeof(float) * (n < W ? n : W));
  return v;
}
inline void store_n(float* p, VF v, int n) {
#if defined(__AVX512F__)
  if (n < W) return _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#endif
  std::memcpy(p, &v, sizeof(float) * (n < W ? n : W));
}

inline float hsum(VF v) {
  float s = 0;
  for (int i = 0; i < W; i++) s += v[i];
  return s;
}

// exp(x) for x <= 0, relative error ~2e-7: x = n ln2 + r, |r| <= ln2/2 (two-part ln2), degree-7 Taylor polynomial
// (truncation error r^8/8! < 4e-9), times 2^n built in the exponent bits. Arguments below -87 (where exp leaves the
// normal floats) give exp(-87), not 0: callers use it where that difference vanishes (sigmoid).
inline VF exp_neg(VF x) {
  const VF lo = splat(-87.0f);
  x = x > lo ? x : lo;
  const VF magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const VF t = x * 1.44269504088896341f + magic;
  const VF n = t - magic;
  const VF r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  VF p = splat(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  const VI bits = (VI)p + (((VI)t - (VI)magic) << 23);
  return (VF)bits;
}

// 1 / (1 + exp(-x)), from exp(-|x|) so the exp never overflows.
inline VF sigmoid(VF x) {
  const VF e = exp_neg(x < 0 ? x : -x);
  const VF r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}

}  // namespace tf::cpu::vecf
