// Single-precision matrix multiply for the CPU backend (row-major, BLAS-like semantics):
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// op(X) is X or X^T. lda/ldb/ldc are row strides (in elements) of the matrices as stored.
// Multithreaded over the CPU kernels' spinning thread pool (parallel.h); uses the machine's vector units.
#pragma once
#include <cstdint>

namespace tf::cpu {

// A product runs on one thread per this many multiply-adds (~5 us of work): below it, handing part of the
// product to a spinning worker (~1-2 us, parallel.h) costs more than it saves.
constexpr double kGemmMinMacsPerThread = 1 << 18;

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

// The same product with B a bf16 matrix (raw bits, engine/bf16.h) and A not transposed: C = alpha A op(B) + beta C.
// B is widened to fp32 while it is packed, so the result is bitwise sgemm's on the widened B.
void gemm_bf16b(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B,
                int ldb, float beta, float* C, int ldc);

}  // namespace tf::cpu
