// Node-API binding of the CPU SGEMM, for tests and the CPU benchmark (bench/cpu.ts).
#pragma once

#include <napi.h>

namespace tf::cpu {

// Adds to `exports`:
//   sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): C (Float32Array) is
//     updated in place; arguments are checked against the array lengths before any memory is read.
//   gemmInfo(): { isa: "avx512" | "avx2" | "scalar", threads: number } of this build.
void RegisterGemm(Napi::Env env, Napi::Object exports);

}  // namespace tf::cpu
