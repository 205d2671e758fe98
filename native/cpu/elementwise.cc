// Small elementwise kernels: residual adds, scaling, biases, norms of gradients, LoRA dropout, KV writes.
#include <algorithm>
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"
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

void add_out(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] + b[i];
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

// In double, four vectors of partial sums at a time: a single accumulator chain (what `omp simd reduction` made of
// it) ran at one vector per FMA latency, and the gradient norm sums every trainable tensor each step.
double sum_squares(const float* x, int64_t n) {
  using vec::VD;
  return parallel_sum(n, n, [&](int64_t i0, int64_t i1) {
    VD acc[4] = {};
    int64_t i = i0;
    for (; i + 4 * vec::W <= i1; i += 4 * vec::W)
      for (int j = 0; j < 4; j++) {
        const VD v = vec::load(x + i + j * vec::W);
        acc[j] += v * v;
      }
    for (; i < i1; i += vec::W) {
      const VD v = vec::load_n(x + i, (int)std::min<int64_t>(vec::W, i1 - i), 0.0f);
      acc[0] += v * v;
    }
    return vec::hsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
  });
}

void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) {
  const DropoutMask drop = DropoutMask::make(p, seed);
  parallel_for(n, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float m = drop.at(i);
      if (mask) mask[i] = m;
      x_out[i] = x[i] * m;
    }
  });
}

void cache_write(float* dst, const float* src, int B, int Tq, int Tk, int off, int C) {
  for (int b = 0; b < B; b++)
    std::memcpy(dst + ((int64_t)b * Tk + off) * C, src + (int64_t)b * Tq * C, sizeof(float) * Tq * C);
}

}  // namespace tf::cpu
