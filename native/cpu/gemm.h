// Single-precision matrix multiply for the CPU backend (row-major, BLAS-like semantics):
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// op(X) is X or X^T. lda/ldb/ldc are row strides (in elements) of the matrices as stored.
// Multithreaded over the engine's thread pool (OpenMP); uses the machine's vector units.
#pragma once

namespace tf::cpu {

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace tf::cpu
