#!/usr/bin/env node
// Bundles each test/gpu/*.test.ts into one self-contained .mjs under .devkit/gpu/ (the GPU machine has
// Node.js but no node_modules). The bundles find the addon through TUNEFORGE_NATIVE, which run-gpu.sh sets.
// Usage (repo root, after `bash ../shared/device/pack.sh`): node scripts/device/bundle-gpu-tests.mjs
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const srcDir = "test/gpu";
const outDir = ".devkit/gpu";
mkdirSync(outDir, { recursive: true });
const entries = readdirSync(srcDir).filter((f) => f.endsWith(".test.ts"));
if (entries.length === 0) throw new Error(`no test files in ${srcDir}`);
for (const file of entries) {
  const outfile = join(outDir, file.replace(/\.ts$/, ".mjs"));
  await build({
    entryPoints: [join(srcDir, file)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Bundled CommonJS dependencies may call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __tfCreateRequire } from 'node:module'; const require = __tfCreateRequire(import.meta.url);",
    },
    logLevel: "warning",
  });
  console.log(`bundled ${join(srcDir, file)} -> ${outfile}`);
}
