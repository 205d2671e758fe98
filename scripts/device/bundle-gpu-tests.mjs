#!/usr/bin/env node
// Bundles each test/gpu/*.test.ts into one self-contained .mjs under .devkit/gpu/, and the GPU benchmark
// (bench/gpu.ts) into .devkit/bench/gpu.mjs (the GPU machine has Node.js but no node_modules). The bundles find
// the addon through TUNEFORGE_NATIVE, which run-gpu.sh and bench-gpu.sh set.
// Usage (repo root, after `bash ../shared/device/pack.sh`): node scripts/device/bundle-gpu-tests.mjs
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Bundled CommonJS dependencies may call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __tfCreateRequire } from 'node:module'; const require = __tfCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
};

const srcDir = "test/gpu";
const outDir = ".devkit/gpu";
mkdirSync(outDir, { recursive: true });
const entries = readdirSync(srcDir).filter((f) => f.endsWith(".test.ts"));
if (entries.length === 0) throw new Error(`no test files in ${srcDir}`);
for (const file of entries) {
  const outfile = join(outDir, file.replace(/\.ts$/, ".mjs"));
  await build({ ...common, entryPoints: [join(srcDir, file)], outfile });
  console.log(`bundled ${join(srcDir, file)} -> ${outfile}`);
}

// The benchmark: run as a program (bench/gpu.ts runs main() when it is the entry point, as in the bundle).
mkdirSync(".devkit/bench", { recursive: true });
await build({ ...common, entryPoints: ["bench/gpu.ts"], outfile: ".devkit/bench/gpu.mjs" });
console.log("bundled bench/gpu.ts -> .devkit/bench/gpu.mjs");
