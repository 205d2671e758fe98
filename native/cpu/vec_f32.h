// Single-precision companions of vec.h: 16 float lanes (one zmm with AVX-512, two ymm with AVX2) and an exp
// accurate to ~1e-7. For float kernels (attention's softmax rows, SwiGLU), where vec.h's double exp cost most of
// the time; vec.h keeps the loss head's softmax, whose sums need double.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace tf::cpu::vecf {

constexpr int W = 16;
typedef float VF __attribute__((vector_size(W * sizeof(float))));
typedef int32_t VI __attribute__((vector_size(W * sizeof(int32_t))));

inline VF splat(float x) { return VF{} + x; }

inline VF load(const float* p) {
  VF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, VF v) { std::memcpy(p, &v, sizeof v); }
// The first n (<= W) floats only, the other lanes 0; and the matching store. Masked where AVX-512 has it: a
// variable-length memcpy into a vector goes through libc and stalls its reload (store forwarding fails).
inline VF load_n(const float* p, int n) {
  if (n >= W) return load(p);
#if defined(__AVX512F__)
  return (VF)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
  VF v = {};
  std::memcpy(&v, p, sizeof(float) * n);
  return v;
#endif
}
inline void store_n(float* p, VF v, int n) {
  if (n >= W) return store(p, v);
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
  std::memcpy(p, &v, sizeof(float) * n);
#endif
}

// Sum and maximum of the lanes as a tree (halves, then quarters, then pairs): a lane-by-lane chain of 16
// dependent adds per row cost as much as a short row's exps. The same order as _mm512_reduce_add_ps, written with
// vector shuffles because GCC 12's intrinsic warns about its own uninitialised temporary.
typedef float VF8 __attribute__((vector_size(8 * sizeof(float))));
typedef float VF4 __attribute__((vector_size(4 * sizeof(float))));
template <typename Op>
inline float reduce(VF v, Op op) {
  const VF8 a = op(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15),
                   __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
  const VF4 b = op(__builtin_shufflevector(a, a, 4, 5, 6, 7), __builtin_shufflevector(a, a, 0, 1, 2, 3));
  return op(op(b[0], b[2]), op(b[1], b[3]));
}
inline float hsum(VF v) {
  return reduce(v, [](auto x, auto y) { return x + y; });
}
inline float hmax(VF v) {
  return reduce(v, [](auto x, auto y) { return x > y ? x : y; });
}

// exp(x) for x <= 0 (softmax arguments, sigmoid's exp(-|x|)), relative error ~1e-7: x = n ln2 + r with
// |r| <= ln2/2 (Cody-Waite, two-part ln2), degree-7 Taylor polynomial in r, times 2^n built in the exponent bits.
// (Degree 6 jumped by 2 ulp where n steps: noise in the loss that failed the finite-difference gradient tests.)
// Below -87 (about the smallest normal float) the result is exactly 0, so -inf masks give 0.
inline VF exp(VF x) {
  const VF lo = splat(-87.0f);
  const VF xc = x > lo ? x : lo;
  const VF magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const VF t = xc * 1.44269504f + magic;
  const VF n = t - magic;
  const VF r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  VF p = splat(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  const VI bits = (VI)p + (((VI)t - (VI)magic) << 23);
  return x < lo ? VF{} : (VF)bits;
}

// 1 / (1 + exp(-x)), from exp(-|x|) so the exp never overflows.
inline VF sigmoid(VF x) {
  const VF e = exp(x < 0 ? x : -x);
  const VF r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}

}  // namespace tf::cpu::vecf
