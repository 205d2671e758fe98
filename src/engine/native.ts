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
