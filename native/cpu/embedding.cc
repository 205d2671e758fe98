// Embedding lookup (row gather) and its gradient (row scatter-add).
#include <cstring>

#include "cpu/kernels.h"

namespace tf::cpu {

void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= kParallelMin)
  for (int i = 0; i < N; i++) std::memcpy(out + (int64_t)i * C, table + (int64_t)ids[i] * C, sizeof(float) * C);
}

void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) {
  // Serial over rows: the same id may repeat, parallel over columns instead.
  for (int i = 0; i < N; i++) {
    float* g = table_grad + (int64_t)ids[i] * C;
    const float* src = d + (int64_t)i * C;
#pragma omp parallel for simd schedule(static) if (C > 4096)
    for (int c = 0; c < C; c++) g[c] += src[c];
  }
}

}  // namespace tf::cpu
