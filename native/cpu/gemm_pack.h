// Packing of A and B blocks into the k-major slivers the micro-kernel streams (internal to gemm.cc).
// Packing turns any layout (transposed or not, any leading dimension) into contiguous, aligned
// reads for the kernel, and keeps a sliver's cache lines from colliding when lda is a power of two.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/bf16.h"
#include "gemm_simd.h"

namespace tf::cpu::gemm_detail {

// B may be fp32 or a frozen bf16 weight (raw uint16 bits): packing widens bf16 to fp32 as it copies, so the
// kernel always streams fp32 and no fp32 copy of a bf16 weight ever exists beyond the packed block.
inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) { return bf16_to_f32(h); }

#if defined(__AVX512F__)
// GCC 12's AVX-512 conversion/shift intrinsics trip a false -Wmaybe-uninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The first n (<= 16) elements at p as 16 floats, zeros beyond n.
inline __m512 load16_n(const float* p, int n) { return _mm512_maskz_loadu_ps(Simd::mask(n), p); }
inline __m512 load16_n(const uint16_t* p, int n) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  const __m256i h = _mm256_maskz_loadu_epi16(Simd::mask(n), p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
#else
  alignas(64) float f[16] = {};
  for (int i = 0; i < n; i++) f[i] = bf16_to_f32(p[i]);
  return _mm512_load_ps(f);
#endif
}
#pragma GCC diagnostic pop
#endif

#if defined(__AVX512F__)
// GCC 12's AVX-512 shuffle intrinsics trip a false -Wuninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Writes the transpose of a rows x cols tile (rows, cols <= 16; src row stride lds) to
// dst[c*ldd + r], for c < cols and r < width. Rows past `rows` read as zero, which is how packed
// slivers get their zero padding.
template <typename T>
inline void transpose_tile16(const T* src, size_t lds, int rows, int cols, float* dst, size_t ldd, int width) {
  __m512 r[16];
  for (int i = 0; i < 16; i++) r[i] = i < rows ? load16_n(src + (size_t)i * lds, cols) : _mm512_setzero_ps();
  // Stage 1: interleave row pairs (per 128-bit lane: a0 b0 a1 b1 / a2 b2 a3 b3).
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Stage 2: interleave pairs of pairs, so u[4q+j] lane L holds rows 4q..4q+3 of column 4L+j.
  __m512 u[16];
  for (int q = 0; q < 4; q++) {
    const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
    u[4 * q + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Stage 3: gather lane L of u[j], u[4+j], u[8+j], u[12+j] into output column 4L+j.
  __m512 out[16];
  for (int j = 0; j < 4; j++) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
    out[j] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    out[4 + j] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    out[8 + j] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    out[12 + j] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
  const __mmask16 wmask = Simd::mask(width);
  for (int c = 0; c < cols; c++) _mm512_mask_storeu_ps(dst + (size_t)c * ldd, wmask, out[c]);
}
#pragma GCC diagnostic pop
#endif

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into slivers of kMR rows (the last one has mc % kMR rows):
// sliver s starts at dst + s*kMR*kc and holds dst[k*mr + i] = op(A)(row i of the sliver, p0 + k).
inline void pack_a(bool trans, const float* A, size_t lda, int i0, int p0, int mc, int kc,
                   float* dst) {
  for (int is = 0; is < mc; is += kMR) {
    const int mr = std::min(kMR, mc - is);
    const int row = i0 + is;
    if (trans) {
      // op(A)(i, k) = A[k*lda + i]: each k is already a contiguous run of mr values.
      for (int k = 0; k < kc; k++) {
        const float* s = A + (size_t)(p0 + k) * lda + row;
        float* d = dst + (size_t)k * mr;
#if defined(__AVX512F__)
        _mm512_mask_storeu_ps(d, Simd::mask(mr), _mm512_maskz_loadu_ps(Simd::mask(mr), s));
#else
        for (int i = 0; i < mr; i++) d[i] = s[i];
#endif
      }
    } else {
      const float* s = A + (size_t)row * lda + p0;
#if defined(__AVX512F__)
      for (int k = 0; k < kc; k += 16)
        transpose_tile16(s + k, lda, mr, std::min(16, kc - k), dst + (size_t)k * mr, mr, mr);
#else
      for (int k = 0; k < kc; k++)
        for (int i = 0; i < mr; i++) dst[(size_t)k * mr + i] = s[(size_t)i * lda + k];
#endif
    }
    dst += (size_t)mr * kc;
  }
}

// Width of the packed B sliver that starts `left` columns before the block's end: kNR, or for the
// last sliver the remaining columns rounded up to whole vectors (8-lane ones when that is enough).
inline int sliver_width(int left) {
  if (left <= kHalfW) return kHalfW;
  return std::min(kNR, (left + kW - 1) / kW * kW);
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into slivers of sliver_width() columns, zero-padded:
// sliver s starts at dst + s*kNR*kc and holds dst[k*nr + j] = op(B)(p0 + k, column j of the sliver).
template <typename TB>
inline void pack_b(bool trans, const TB* B, size_t ldb, int p0, int j0, int kc, int nc, float* dst) {
  for (int js = 0; js < nc; js += kNR) {
    const int left = nc - js;
    const int nr = sliver_width(left);
    const int n = std::min(nr, left);
    const int col = j0 + js;
    if (!trans) {
      // op(B)(k, j) = B[k*ldb + j]: copy n contiguous values per k, then the zero padding.
      for (int k = 0; k < kc; k++) {
        const TB* s = B + (size_t)(p0 + k) * ldb + col;
        float* d = dst + (size_t)k * nr;
        int j = 0;
#if defined(__AVX512F__)
        for (; j + 16 <= n; j += 16) _mm512_storeu_ps(d + j, load16_n(s + j, 16));
        if (j < nr)  // the short tail plus zero padding up to nr (a multiple of 8)
          _mm512_mask_storeu_ps(d + j, Simd::mask(nr - j), load16_n(s + j, n - j));
#else
        for (; j < n; j++) d[j] = to_f32(s[j]);
        for (; j < nr; j++) d[j] = 0.0f;
#endif
      }
    } else {
      // op(B)(k, j) = B[j*ldb + k]: rows of B become columns of the sliver.
#if defined(__AVX512F__)
      for (int g = 0; g < nr; g += 16) {
        const TB* s = B + (size_t)(col + g) * ldb + p0;
        const int rows = std::max(0, std::min(16, n - g));
        for (int k = 0; k < kc; k += 16)
          transpose_tile16(s + k, ldb, rows, std::min(16, kc - k), dst + (size_t)k * nr + g, nr,
                           std::min(16, nr - g));
      }
#else
      for (int k = 0; k < kc; k++) {
        float* d = dst + (size_t)k * nr;
        for (int j = 0; j < n; j++) d[j] = to_f32(B[(size_t)(col + j) * ldb + p0 + k]);
        for (int j = n; j < nr; j++) d[j] = 0.0f;
      }
#endif
    }
    dst += (size_t)nr * kc;
  }
}

}  // namespace tf::cpu::gemm_detail
