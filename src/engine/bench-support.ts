// What the benchmarks need from the addon beyond the model: per-kernel profile tables switched on at run time,
// the memory bandwidth a roofline divides by, a device sync for honest host timers and a per-case memory peak.
import { TuneforgeError } from "../errors.js";
import { loadNative } from "./native.js";
import type { EngineDevice } from "./device.js";

/** One row of a profile table: one Backend method's calls in one model phase ("layers.bwd", "head", ...). */
export interface ProfileRow {
  region: string;
  kernel: string;
  calls: number;
  /** Time inside the calls; on CUDA each profiled call is synchronised, so this is the kernels' own time. */
  ms: number;
  /** Counted matmul work (0 for other kernels). */
  gflop: number;
  /** The calls' inputs and outputs, each counted once as read or written: what no implementation can avoid moving. */
  gbytes: number;
}

/** What one top-level engine call (forward_backward, adamw_step, decode, ...) spent, slowest rows first. */
export interface ProfileReport {
  call: string;
  ms: number;
  rows: ProfileRow[];
}

export interface CopyBandwidth {
  bytes: number;
  iters: number;
  /** Per copy. */
  seconds: number;
  /** 2 * bytes / seconds / 1e9: every byte is read once and written once. */
  gbPerS: number;
}

interface BenchExports {
  setProfiling(on: boolean): void;
  takeProfile(): ProfileReport[];
  copyBandwidth(device: EngineDevice, bytes: number, iters: number): CopyBandwidth;
  deviceSynchronize(device: EngineDevice): void;
  resetMemoryPeak(device: EngineDevice, releaseCached: boolean): { inUse: number; peak: number };
}

function addon(): BenchExports {
  const a = loadNative() as unknown as Partial<BenchExports>;
  if (!a.setProfiling || !a.takeProfile || !a.copyBandwidth || !a.deviceSynchronize || !a.resetMemoryPeak) {
    throw new TuneforgeError("the engine addon predates the benchmark support (profile, bandwidth)", {
      hint: "rebuild it: npm run build:native (native/build-standalone.sh on the GPU machine)",
    });
  }
  return a as BenchExports;
}

/**
 * Per-kernel profiling on or off. Only models built while it is on get per-kernel rows (their backend is wrapped
 * at construction); on CUDA those synchronise around every kernel, so keep such a model out of timed runs.
 */
export function setProfiling(on: boolean): void {
  addon().setProfiling(on);
}

/** The profile reports of the top-level calls since the last take, oldest first. */
export function takeProfile(): ProfileReport[] {
  return addon().takeProfile();
}

/** Times `iters` copies of `bytes` on the device (cudaMemcpyDeviceToDevice; memcpy on the CPU). */
export function copyBandwidth(device: EngineDevice, bytes: number, iters: number): CopyBandwidth {
  return addon().copyBandwidth(device, bytes, iters);
}

/** Waits until the device has finished all queued work (a no-op on the CPU). */
export function deviceSynchronize(device: EngineDevice): void {
  addon().deviceSynchronize(device);
}

/**
 * Restarts the allocator's high-water mark at the bytes in use now, so the next memory().peak is the next piece
 * of work's own; returns the bytes in use and the mark it ended (e.g. what a failed allocation had reached). `releaseCached` first hands the CUDA pool's cached blocks back to the driver (between
 * benchmark cases; not inside one, where the next step would have to cudaMalloc them again).
 */
export function resetMemoryPeak(
  device: EngineDevice,
  options: { releaseCached?: boolean } = {},
): { inUse: number; peak: number } {
  return addon().resetMemoryPeak(device, options.releaseCached ?? false);
}
