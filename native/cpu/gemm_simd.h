// Vector abstraction and register-blocked micro-kernel for the CPU SGEMM (internal to gemm*.cc).
// One `Simd` struct per instruction set, chosen at compile time (the addon is built with
// -march=native): AVX-512 (16 lanes), AVX2+FMA (8 lanes) or plain scalar code (1 lane).
#pragma once

#include <cstddef>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace tf::cpu::gemm_detail {

using std::size_t;

#if defined(__AVX512F__)

struct Simd {
  static constexpr int W = 16;  // floats per vector
  // Micro-tile: kMR rows x (kNV * W) columns of C live in registers during the k loop.
  // 14 x 32 uses 28 accumulators + 2 B vectors + 1 broadcast = 31 of the 32 zmm registers.
  static constexpr int kMR = 14;
  static constexpr int kNV = 2;
  using V = __m512;
  static __mmask16 mask(int n) { return (__mmask16)((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};

#if defined(__AVX512VL__)
// 8-lane (ymm) variant for slivers of at most 8 columns (LoRA ranks, odd edges): a 16-lane kernel
// would waste half of every FMA there, and 256-bit FMAs issue twice per cycle on many cores.
struct SimdHalf {
  static constexpr int W = 8;
  using V = __m256;
  static __mmask8 mask(int n) { return (__mmask8)((1u << n) - 1u); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_n(const float* p, int n) { return _mm256_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, V v, int n) { _mm256_mask_storeu_ps(p, mask(n), v); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
constexpr int kHalfW = SimdHalf::W;
#endif

#elif defined(__AVX2__) && defined(__FMA__)

struct Simd {
  static constexpr int W = 8;
  // 6 x 16 tile: 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
  static constexpr int kMR = 6;
  static constexpr int kNV = 2;
  using V = __m256;
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};

#else

struct Simd {
  static constexpr int W = 1;
  // 4 x 4 tile of scalars: small enough for any register file, big enough to reuse loads.
  static constexpr int kMR = 4;
  static constexpr int kNV = 4;
  using V = float;
  static V zero() { return 0.0f; }
  static V set1(float x) { return x; }
  static V load(const float* p) { return *p; }
  static V load_n(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static void store(float* p, V v) { *p = v; }
  static void store_n(float* p, V v, int n) {
    if (n > 0) *p = v;
  }
  static V mul(V a, V b) { return a * b; }
  static V fma(V a, V b, V c) { return a * b + c; }
};

#endif

#if !defined(__AVX512VL__)
constexpr int kHalfW = 0;  // no narrow-sliver variant
#endif
constexpr int kW = Simd::W;
constexpr int kMR = Simd::kMR;
constexpr int kNR = Simd::kNV * Simd::W;  // widest packed B sliver

// How the micro-kernel finds element (i, k) of its MR-row A sliver.
enum class ALayout {
  kKMajor,    // Ap[k*a_stride + i]: packed slivers (a_stride = MR) and transposed A read in place
  kRowMajor,  // Ap[i*a_stride + k]: untransposed A read in place
};

// C[MR x n] = alpha * A_sliver * Bp + beta * C. Bp is a sliver of NV*W columns (W = S::W lanes)
// packed k-major (Bp[k*NV*W + j], zero-padded); n (1..NV*W) is how many columns of C are real.
// beta == 0 never reads C (so NaNs there vanish).
template <class S, int MR, int NV, ALayout L>
void micro_kernel(int kc, const float* __restrict Ap, size_t a_stride, const float* __restrict Bp,
                  float* C, size_t ldc, int n, float alpha, float beta) {
  using V = typename S::V;
  constexpr int W = S::W;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = S::zero();

#pragma GCC unroll 2
  for (int k = 0; k < kc; k++) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) b[v] = S::load(Bp + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const V a = S::set1(L == ALayout::kKMajor ? Ap[i] : Ap[i * a_stride]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = S::fma(a, b[v], acc[i][v]);
    }
    Ap += L == ALayout::kKMajor ? a_stride : 1;
    Bp += NV * W;
  }

  // Write-back. Loops are fully unrolled with constant indices so acc stays in registers.
  const V va = S::set1(alpha);
  const V vb = S::set1(beta);
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    float* c = C + (size_t)i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      const int cols = n - v * W;  // real columns in this vector (only the last one can be short)
      V r = S::mul(acc[i][v], va);
      if (cols >= W) {
        if (beta != 0.0f) r = S::fma(S::load(c + v * W), vb, r);
        S::store(c + v * W, r);
      } else if (cols > 0) {
        if (beta != 0.0f) r = S::fma(S::load_n(c + v * W, cols), vb, r);
        S::store_n(c + v * W, r, cols);
      }
    }
  }
}

}  // namespace tf::cpu::gemm_detail
