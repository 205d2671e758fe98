// Small elementwise kernels: residual adds, scaling, biases, norms of gradients, LoRA dropout, KV writes.
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "engine/dropout_rng.h"

namespace tf::cpu {

void zero(float* x, int64_t n) { std::memset(x, 0, sizeof(float) * n); }

void copy(float* dst, const float* src, int64_t n) { std::memcpy(dst, src, sizeof(float) * n); }

void add(float* y, const float* x, int64_t n) {
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) y[i] += x[i];
  });
}

void scale(float* x, float s, int64_t n) {
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) x[i] *= s;
  });
}

void mul(float* y, const float* x, int64_t n) {
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) y[i] *= x[i];
  });
}

void add_bias(float* y, const float* bias, int N, int C) {
  parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++)
#pragma omp simd
      for (int c = 0; c < C; c++) y[i * C + c] += bias[c];
  });
}

void bias_grad(float* gb, const float* dy, int N, int C) {
  // Columns are independent: split over columns, sum over rows in double.
  parallel_for(C, (int64_t)N * C, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      double s = 0;
      for (int i = 0; i < N; i++) s += dy[(int64_t)i * C + c];
      gb[c] += (float)s;
    }
  });
}

double sum_squares(const float* x, int64_t n) {
  return parallel_sum(n, n, [&](int64_t i0, int64_t i1) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
    return s;
  });
}

void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) {
  const float keep = 1.0f / (1.0f - p);
  const uint64_t base = splitmix64(seed);
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      mask[i] = dropout_mask(base, i, p, keep);
      x_out[i] = x[i] * mask[i];
    }
  });
}

void cache_write(float* dst, const float* src, int B, int Tq, int Tk, int off, int C) {
  for (int b = 0; b < B; b++)
    std::memcpy(dst + ((int64_t)b * Tk + off) * C, src + (int64_t)b * Tq * C, sizeof(float) * Tq * C);
}

}  // namespace tf::cpu
