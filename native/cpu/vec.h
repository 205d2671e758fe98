// Portable SIMD vectors (GCC/Clang vector extensions) for the softmax kernels: 8 lanes, one zmm register of
// doubles with AVX-512 (two ymm with AVX2); the compiler picks the instructions from -march=native.
// Provides a vectorised exp: scalar libm exp over a 152K vocabulary per token was most of the loss head.
// exp is evaluated in double so losses keep the precision the finite-difference gradient tests rely on.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace tf::cpu::vec {

constexpr int W = 8;
typedef float VF __attribute__((vector_size(W * sizeof(float))));
typedef double VD __attribute__((vector_size(W * sizeof(double))));
typedef int64_t VL __attribute__((vector_size(W * sizeof(int64_t))));

inline VD splat(double x) { return VD{} + x; }

// W floats from p, widened; load_n reads only n (<= W) of them and sets the other lanes to `fill`.
inline VD load(const float* p) {
  VF v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, VD);
}
// The partial forms use masked loads and stores where AVX-512 has them: a memcpy of a variable length into a
// vector went through libc and then stalled the vector's reload (store forwarding fails), which on short rows
// (attention, small MLPs) cost more than the arithmetic.
inline VD load_n(const float* p, int n, float fill) {
  if (n == W) return load(p);
#if defined(__AVX512VL__)
  const __m256 v = _mm256_mask_loadu_ps(_mm256_set1_ps(fill), (__mmask8)((1u << n) - 1), p);
  return __builtin_convertvector((VF)v, VD);
#else
  VF v = VF{} + fill;
  std::memcpy(&v, p, sizeof(float) * n);
  return __builtin_convertvector(v, VD);
#endif
}
// Rounds to float and stores W (or the first n) lanes.
inline void store(float* p, VD v) {
  const VF f = __builtin_convertvector(v, VF);
  std::memcpy(p, &f, sizeof f);
}
inline void store_n(float* p, VD v, int n) {
  if (n == W) return store(p, v);
  const VF f = __builtin_convertvector(v, VF);
#if defined(__AVX512VL__)
  _mm256_mask_storeu_ps(p, (__mmask8)((1u << n) - 1), (__m256)f);
#else
  std::memcpy(p, &f, sizeof(float) * n);
#endif
}

inline double hsum(VD v) {
  double s = 0;
  for (int i = 0; i < W; i++) s += v[i];
  return s;
}

// exp(x), relative error ~1e-14: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, two-part ln2), degree-11
// Taylor polynomial in r, times 2^n built in the exponent bits. Below -708 (double underflow) the result is
// exactly 0, so -inf masks give 0. Meant for x <= 0 (softmax arguments); no overflow handling.
inline VD exp(VD x) {
  const VD lo = splat(-708.0);
  const VD xc = x > lo ? x : lo;
  const VD magic = splat(6755399441055744.0);  // 1.5 * 2^52: adding it rounds to an integer in the low bits
  const VD t = xc * 1.4426950408889634 + magic;
  const VD n = t - magic;
  const VD r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  VD p = splat(1.0 / 39916800);  // 1/11!
  const double inv_fact[] = {1.0 / 3628800, 1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720,
                             1.0 / 120,     1.0 / 24,     1.0 / 6,     0.5,          1.0,         1.0};
  for (double c : inv_fact) p = p * r + c;
  const VL bits = (VL)p + (((VL)t - (VL)magic) << 52);
  return x < lo ? VD{} : (VD)bits;
}

// sum_j exp(z[j] - mx) in double; each term is also stored (as float) to out[j] when out != nullptr
// (out may be z). The softmax of the loss head and of attention rows.
inline double exp_sum(const float* z, int n, float mx, float* out) {
  const VD m = splat(mx);
  VD acc = {};
  int j = 0;
  for (; j + W <= n; j += W) {
    const VD e = exp(load(z + j) - m);
    if (out) store(out + j, e);
    acc += e;
  }
  if (j < n) {
    const VD e = exp(load_n(z + j, n - j, -__builtin_inff()) - m);
    if (out) store_n(out + j, e, n - j);
    acc += e;
  }
  return hsum(acc);
}

// 1 / (1 + exp(-x)), from exp(-|x|) so the exp never overflows.
inline VD sigmoid(VD x) {
  const VD e = exp(x < 0 ? x : -x);
  const VD r = 1.0 / (1.0 + e);
  return x >= 0 ? r : e * r;
}

}  // namespace tf::cpu::vec
