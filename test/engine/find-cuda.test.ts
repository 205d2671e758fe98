// native/find-cuda.mjs's choice of SM targets (what the CUDA kernels are compiled for at `npm install`): 80 and 90
// by default, plus a GPU of this machine those do not cover when nvcc can build for it, or exactly
// TUNEFORGE_CUDA_ARCH. Run in a child process: the script is plain ESM that binding.gyp runs with node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const script = pathToFileURL(join(resolve(import.meta.dirname, "../.."), "native/find-cuda.mjs")).href;

function chooseArchs(envValue: string | undefined, gpuCaps: string[], nvccArchs: string[]): string[] {
  const args = [envValue ?? null, gpuCaps, nvccArchs].map((a) => JSON.stringify(a)).join(", ");
  const code =
    `import(${JSON.stringify(script)}).then(({ chooseArchs }) => ` +
    `process.stdout.write(JSON.stringify(chooseArchs(${args}))))`;
  return JSON.parse(execFileSync(process.execPath, ["-e", code], { encoding: "utf8" })) as string[];
}

const NVCC13 = ["75", "80", "86", "87", "89", "90", "100", "103", "110", "120", "121"];

test("SM targets: 80 and 90, plus this machine's GPUs they do not cover", () => {
  assert.deepEqual(chooseArchs(undefined, [], NVCC13), ["80", "90"]);
  // a T4 (Colab's free GPU) has no code in 80 or 90, and cannot JIT the newer PTX: it gets its own
  assert.deepEqual(chooseArchs(undefined, ["7.5"], NVCC13), ["75", "80", "90"]);
  // sm_80 code runs on 8.6 and 8.9 cards, sm_90 on an H100/H200
  assert.deepEqual(chooseArchs(undefined, ["8.6", "8.9", "9.0"], NVCC13), ["80", "90"]);
  assert.deepEqual(chooseArchs(undefined, ["12.0", "7.5"], NVCC13), ["75", "80", "90", "120"]);
});

test("SM targets: nothing nvcc cannot build for, and TUNEFORGE_CUDA_ARCH exactly", () => {
  // nvcc 13 dropped Volta (7.0): asking for it would fail the whole build, so it is left out
  assert.deepEqual(chooseArchs(undefined, ["7.0"], NVCC13), ["80", "90"]);
  assert.deepEqual(chooseArchs(undefined, ["7.5"], []), ["80", "90"], "nvcc's list unknown: nothing added");
  assert.deepEqual(chooseArchs(undefined, ["garbage", ""], NVCC13), ["80", "90"]);
  assert.deepEqual(chooseArchs("86, 90;75", ["7.5"], NVCC13), ["86", "90", "75"]);
});
