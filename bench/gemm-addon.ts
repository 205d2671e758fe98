// The SGEMM entry points of the native addon (exported by native/cpu/gemm_binding.cc), for the
// GEMM tests and the CPU benchmark.
import { TuneforgeError } from "../src/errors.js";
import { loadNative } from "../src/engine/native.js";

export interface GemmInfo {
  /** Vector instruction set the kernel was compiled for. */
  isa: "avx512" | "avx2" | "scalar";
  /** OpenMP threads a large GEMM uses. */
  threads: number;
}

export interface GemmAddon {
  /** Row-major C = alpha op(A) op(B) + beta C, in place on C (same contract as tf::cpu::sgemm). */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    lda: number,
    B: Float32Array,
    ldb: number,
    beta: number,
    C: Float32Array,
    ldc: number,
  ): void;
  gemmInfo(): GemmInfo;
}

/** The addon's GEMM functions; throws a TuneforgeError when the built addon lacks them. */
export function loadGemm(): GemmAddon {
  const addon = loadNative() as unknown as Partial<GemmAddon>;
  if (typeof addon.sgemm !== "function" || typeof addon.gemmInfo !== "function") {
    throw new TuneforgeError("the native addon has no sgemm export", {
      file: "native/addon.cc",
      hint: "call tf::cpu::RegisterGemm(env, exports) in Init, then rebuild with `npm run build:native`",
    });
  }
  return addon as GemmAddon;
}
