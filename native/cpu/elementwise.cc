// Small elementwise kernels: residual adds, scaling, biases, norms of gradients, LoRA dropout, KV writes.
#include <cstring>

#include "cpu/kernels.h"

namespace tf::cpu {

void zero(float* x, int64_t n) { std::memset(x, 0, sizeof(float) * n); }

void copy(float* dst, const float* src, int64_t n) { std::memcpy(dst, src, sizeof(float) * n); }

void add(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void scale(float* x, float s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void mul(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) y[i] *= x[i];
}

void add_bias(float* y, const float* bias, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kParallelMin)
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) y[(int64_t)i * C + c] += bias[c];
}

void bias_grad(float* gb, const float* dy, int N, int C) {
  // Columns are independent: parallel over columns, sum over rows in double.
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; c++) {
    double s = 0;
    for (int i = 0; i < N; i++) s += dy[(int64_t)i * C + c];
    gb[c] += (float)s;
  }
}

double sum_squares(const float* x, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

// splitmix64 of (seed, index): a counter-based generator, so the mask does not depend on thread count.
static inline uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) {
  const float keep = 1.0f / (1.0f - p);
  const uint64_t base = mix(seed);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    double u = (double)(mix(base ^ (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);
    mask[i] = u < p ? 0.0f : keep;
    x_out[i] = x[i] * mask[i];
  }
}

void cache_write(float* dst, const float* src, int B, int Tq, int Tk, int off, int C) {
  for (int b = 0; b < B; b++)
    std::memcpy(dst + ((int64_t)b * Tk + off) * C, src + (int64_t)b * Tq * C, sizeof(float) * Tq * C);
}

}  // namespace tf::cpu
