// Embedding lookup (row gather) and its gradient (row scatter-add).
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace tf::cpu {

void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) {
  parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) std::memcpy(out + i * C, table + (int64_t)ids[i] * C, sizeof(float) * C);
  });
}

void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) {
  // The same id may repeat: rows in order, each split over columns (one region for all rows).
  parallel_for(C, (int64_t)N * C, [&](int64_t c0, int64_t c1) {
    for (int i = 0; i < N; i++) {
      float* g = table_grad + (int64_t)ids[i] * C;
      const float* src = d + (int64_t)i * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; c++) g[c] += src[c];
    }
  });
}

}  // namespace tf::cpu
