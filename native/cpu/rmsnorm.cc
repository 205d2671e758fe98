// RMSNorm (HF LlamaRMSNorm semantics): y = x / sqrt(mean(x^2) + eps) * w. The forward's sum of squares runs in
// double (vectorised: reordering a double sum of fp32 squares changes nothing at fp32 precision).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec_f32.h"

namespace tf::cpu {

void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd) {
  parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * C;
      double ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int c = 0; c < C; c++) ss += (double)xi[c] * xi[c];
      const float r = (float)(1.0 / std::sqrt(ss / C + eps));
      if (rstd) rstd[i] = r;
      float* oi = out + i * C;
#pragma omp simd
      for (int c = 0; c < C; c++) oi[c] = (xi[c] * r) * w[c];
    }
  });
}

// With xhat = x*rstd and g = dy*w: dx = rstd * (g - xhat * mean(g * xhat)); dw += sum_rows dy * xhat.
// The row dot product runs in float lanes (vec_f32.h) as autograd's fp32 backward does: widening every element
// to double made this kernel cost several times the norm's forward.
void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C,
                 float* dx, bool accumulate_dx, float* dw) {
  using vecf::VF;
  using vecf::W;
  parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * C;
      const float* di = dy + i * C;
      const float r = rstd[i];
      VF acc = {};
      for (int c = 0; c < C; c += W) {
        const int m = std::min(W, C - c);
        acc += vecf::load_n(di + c, m) * vecf::load_n(w + c, m) * vecf::load_n(xi + c, m);
      }
      const float mean = vecf::hsum(acc) * r / C;
      float* o = dx + i * C;
      for (int c = 0; c < C; c += W) {
        const int m = std::min(W, C - c);
        const VF xv = vecf::load_n(xi + c, m);
        VF v = r * (vecf::load_n(di + c, m) * vecf::load_n(w + c, m) - xv * (r * mean));
        if (accumulate_dx) v += vecf::load_n(o + c, m);
        vecf::store_n(o + c, v, m);
      }
    }
  });
  if (dw) {
    // Each thread owns a range of columns and sweeps the rows in order, a vector of columns at a time: every
    // column's sum is still added row by row in double, as a plain loop down the column would.
    parallel_for(C, (int64_t)N * C, [&](int64_t c0, int64_t c1) {
      std::vector<double> s(c1 - c0, 0.0);
      for (int i = 0; i < N; i++) {
        const float* xi = x + (int64_t)i * C;
        const float* di = dy + (int64_t)i * C;
        const double r = rstd[i];
#pragma omp simd
        for (int64_t c = c0; c < c1; c++) s[c - c0] += (double)di[c] * xi[c] * r;
      }
      for (int64_t c = c0; c < c1; c++) dw[c] += (float)s[c - c0];
    });
  }
}

}  // namespace tf::cpu
