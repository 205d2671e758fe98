// RMSNorm (HF LlamaRMSNorm semantics): y = x / sqrt(mean(x^2) + eps) * w. Sums in double (vectorised:
// reordering a double sum of fp32 squares changes nothing at fp32 precision).
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

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
void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C,
                 float* dx, bool accumulate_dx, float* dw) {
  parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + i * C;
      const float* di = dy + i * C;
      const float r = rstd[i];
      double dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < C; c++) dot += (double)di[c] * w[c] * xi[c] * r;
      const float mean = (float)(dot / C);
      float* o = dx + i * C;
#pragma omp simd
      for (int c = 0; c < C; c++) {
        const float v = r * (di[c] * w[c] - xi[c] * r * mean);
        o[c] = accumulate_dx ? o[c] + v : v;
      }
    }
  });
  if (dw) {
    parallel_for(C, (int64_t)N * C, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; c++) {
        double s = 0;
        for (int i = 0; i < N; i++) s += (double)dy[(int64_t)i * C + c] * x[(int64_t)i * C + c] * rstd[i];
        dw[c] += (float)s;
      }
    });
  }
}

}  // namespace tf::cpu
