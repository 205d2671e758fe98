// Reference-quality SGEMM (correct, simply blocked); the optimised kernel replaces this body.
#include "gemm.h"

#include <cstddef>
#include <vector>

using std::size_t;

namespace tf::cpu {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < M; i++) {
    std::vector<float> acc(N, 0.0f);
    for (int k = 0; k < K; k++) {
      const float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
      if (a == 0.0f) continue;
      if (!trans_b) {
        const float* brow = B + (size_t)k * ldb;
        for (int j = 0; j < N; j++) acc[j] += a * brow[j];
      } else {
        for (int j = 0; j < N; j++) acc[j] += a * B[(size_t)j * ldb + k];
      }
    }
    float* crow = C + (size_t)i * ldc;
    for (int j = 0; j < N; j++) crow[j] = alpha * acc[j] + (beta == 0.0f ? 0.0f : beta * crow[j]);
  }
}

}  // namespace tf::cpu
