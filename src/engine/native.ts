// Loads the compiled Node-API addon (build/Release/tuneforge_native.node) once.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { TuneforgeError } from "../errors.js";
import type { NativeAddon } from "./types.js";

let cached: NativeAddon | null = null;

/** The engine addon; throws a TuneforgeError saying how to build it when it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  // src/engine/ (tsx) and dist/engine/ (built) both sit two levels below the package root.
  // TUNEFORGE_NATIVE points at another build (a debug build, or one made elsewhere).
  const candidates = [
    ...(process.env.TUNEFORGE_NATIVE ? [resolve(process.env.TUNEFORGE_NATIVE)] : []),
    resolve(import.meta.dirname, "../../build/Release/tuneforge_native.node"),
    resolve(import.meta.dirname, "../../../build/Release/tuneforge_native.node"),
  ];
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new TuneforgeError(
      "the native engine addon is not built (build/Release/tuneforge_native.node is missing)",
      {
        file: candidates[0],
        hint: "run `npm install` (or `npm run build:native`) in the tuneforge folder; it needs a C++17 compiler",
      },
    );
  }
  // OpenMP threads busy-wait between parallel regions by default; on a loaded machine (CI, a laptop running
  // other work) that made training many times slower. libgomp reads this once, when the addon loads.
  process.env.OMP_WAIT_POLICY ??= "PASSIVE";
  cached = createRequire(import.meta.url)(path) as NativeAddon;
  return cached;
}

/** The CUDA side of the addon (`cudaInfo()`): whether it was built in, the GPU, and its memory. */
export interface CudaInfo {
  /** The addon was compiled with the CUDA backend (a CUDA toolkit with cuBLAS was found at build time). */
  built: boolean;
  /** Built and a CUDA device answered. */
  available: boolean;
  /** Why not available (empty when available). */
  reason: string;
  name: string;
  /** e.g. "9.0" for an H100. */
  computeCapability: string;
  smCount: number;
  /** cudaMemGetInfo: the whole device, every process. */
  totalBytes: number;
  freeBytes: number;
  /** The engine allocator: bytes held by tensors now, their high-water mark, and pool blocks kept for reuse. */
  inUseBytes: number;
  peakBytes: number;
  cachedBytes: number;
  /**
   * Real sizes of the pool blocks serving live tensors (best fit: up to 25% or 2 MiB above the request) and their
   * high-water mark. Absent from addons built before the best-fit pool.
   */
  heldBytes?: number;
  heldPeakBytes?: number;
  /**
   * Pinned host memory the GPU reads over the bus (an untied model's embedding table: MemoryStats.hostBytes), not in
   * the counts above. Absent from addons built before it.
   */
  hostMappedBytes?: number;
}

/** One request of a `blockCacheTrace` replay of the CUDA pool's reuse policy. */
export interface BlockCacheStep {
  /** Allocations: the block that served it (1, 2, ... in the order they were cudaMalloc'ed), its real size, and
   * whether it came from the cache (false: a fresh cudaMalloc). Absent for frees. */
  block?: number;
  blockBytes?: number;
  reused?: boolean;
  /** Bytes cached (free blocks kept by the pool) after this request. */
  cachedBytes: number;
}

/** One output of one Backend op, compared between the CPU backend and the tested one (`kernelCheck`). */
export interface KernelCheckEntry {
  /** The tf::Backend method, e.g. "attention_bwd". */
  op: string;
  /** Which output, e.g. "dq"; "result" for a returned scalar. */
  output: string;
  /** The case, e.g. "B2 Tq37 Tk37 qoff0 H4 KV2 hd64 leftpad". */
  shape: string;
  maxAbs: number;
  /** maxAbs / max |reference| (normwise). */
  maxRel: number;
  /** max |reference|: > 0 shows the output was not trivially zero. */
  refMax: number;
  count: number;
}

interface CudaExports {
  cudaInfo(): CudaInfo;
  kernelCheck(device: "cuda" | "cpu", seed: number): KernelCheckEntry[];
  blockCacheTrace(ops: number[]): BlockCacheStep[];
}

function cudaExports(): Partial<CudaExports> {
  return loadNative() as unknown as Partial<CudaExports>;
}

/** The GPU the engine would use, or why there is none. Never throws for a missing GPU. */
export function cudaInfo(): CudaInfo {
  const addon = cudaExports();
  if (!addon.cudaInfo) {
    return noCudaInfo("the engine addon predates the CUDA backend; rebuild it (npm run build:native)");
  }
  return addon.cudaInfo();
}

/** A CudaInfo for no GPU (no device, no memory), saying why. */
export function noCudaInfo(reason: string): CudaInfo {
  return {
    built: false,
    available: false,
    reason,
    name: "",
    computeCapability: "",
    smCount: 0,
    totalBytes: 0,
    freeBytes: 0,
    inUseBytes: 0,
    peakBytes: 0,
    cachedBytes: 0,
    heldBytes: 0,
    heldPeakBytes: 0,
    hostMappedBytes: 0,
  };
}

/**
 * Runs every backend op on the same random inputs on the CPU backend and on `device` ("cuda", or "cpu" for a
 * second CPU backend, which checks the harness where there is no GPU) and returns the differences.
 */
export function kernelCheck(device: "cuda" | "cpu", seed = 1): KernelCheckEntry[] {
  const addon = cudaExports();
  if (!addon.kernelCheck) {
    throw new TuneforgeError("the engine addon has no kernel self-test", {
      hint: "rebuild the addon (npm run build:native, or native/build-standalone.sh on the GPU machine)",
    });
  }
  return addon.kernelCheck(device, seed);
}

/**
 * Replays a request trace through the CUDA pool's block-reuse policy (the same C++ class memory.cu uses, with fake
 * pointers: no GPU needed). `ops[i] >= 0` allocates that many bytes; `ops[i] = -1 - j` frees what op j allocated.
 */
export function blockCacheTrace(ops: number[]): BlockCacheStep[] {
  const addon = cudaExports();
  if (!addon.blockCacheTrace) {
    throw new TuneforgeError("the engine addon has no blockCacheTrace", {
      hint: "rebuild the addon (npm run build:native, or native/build-standalone.sh on the GPU machine)",
    });
  }
  return addon.blockCacheTrace(ops);
}
