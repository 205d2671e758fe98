// The CUDA backend's code on the CPU emulator (native/cuda/emu): the addon is built with every .cu file against
// the emulated runtime and cuBLAS, then the GPU test files run on it as they would on a GPU: the kernel check
// (every op against the CPU backend, both attention paths, bf16) and the model tests (HF/PEFT fixture parity in
// fp32, the bf16 bounds, CUDA against the CPU on a random model, out-of-memory handling); then the kernel check
// again with guard pages after every allocation and threads in reverse order, and the decoding tests with a second
// stream's work run late and early (a missing event wait changes their answers). This runs the CUDA code's logic in
// every CI run; speed, and the 200-step training test (minutes on the emulator), stay with the GPU machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const addon = join(root, "build/emu/tuneforge_native.node");

/** The Node-API headers build-standalone.sh needs: beside this node, in node-gyp's cache, or the system's. */
function napiInclude(): string | undefined {
  const candidates = [
    process.env.NAPI_INCLUDE,
    join(dirname(process.execPath), "../include/node"),
    join(homedir(), ".cache/node-gyp", process.versions.node, "include/node"),
    "/usr/include/node",
  ];
  return candidates.find((d) => d && existsSync(join(d, "node_api.h")));
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestSource(path) : st.mtimeMs);
  }
  return newest;
}

/** This process's environment without the test runner's marker (a child `node --test` would skip its files). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

const include = napiInclude();
const gxx = spawnSync("g++", ["--version"]).status === 0;
const skip = !gxx
  ? "no g++ to build the emulated CUDA backend"
  : !include
    ? "no Node-API headers (node_api.h) found: set NAPI_INCLUDE"
    : false;

/** Builds build/emu/tuneforge_native.node when it is missing or older than native/ (once per run). */
function ensureEmulatorBuild(): void {
  if (existsSync(addon) && statSync(addon).mtimeMs >= newestSource(join(root, "native"))) return;
  const build = spawnSync("bash", ["native/build-standalone.sh"], {
    cwd: root,
    env: { ...process.env, TUNEFORGE_CUDA: "emu", NAPI_INCLUDE: include, JOBS: "2" },
    encoding: "utf8",
  });
  assert.equal(build.status, 0, `the emulator build failed:\n${build.stdout}\n${build.stderr}`);
}

/** Runs GPU test files (tests matching `only`) on the emulated device; returns their TAP output after checking they passed. */
function runOnEmulator(files: string[], env: Record<string, string>, only?: string): string {
  ensureEmulatorBuild();
  const filter = only ? [`--test-name-pattern=${only}`] : [];
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-reporter=tap", ...filter, ...files],
    {
      cwd: root,
      env: { ...childEnv(), TUNEFORGE_NATIVE: addon, ...env },
      encoding: "utf8",
      maxBuffer: 64 << 20,
    },
  );
  const out = `${run.stdout}\n${run.stderr}`;
  assert.equal(run.status, 0, `the GPU tests failed on the emulator:\n${out.slice(-8000)}`);
  // They ran on the emulated device rather than skipping for want of one.
  // (a filtered run shows it by its test names, which say cuda)
  if (!only) {
    assert.match(out, /CUDA emulator \(CPU\)/);
    assert.match(out, /^ok \d+ - every CUDA kernel matches the CPU backend$/m);
  }
  return out;
}

test("the CUDA backend passes the GPU tests on the CPU emulator", { skip, timeout: 20 * 60_000 }, () => {
  // A 1 GiB device, so the out-of-memory test allocates (host memory here) no more than that.
  const out = runOnEmulator(["test/gpu/kernels.test.ts", "test/gpu/model.test.ts"], {
    TUNEFORGE_CUDA_EMU_MEMORY: String(2 ** 30),
  });
  for (const fixture of ["base/qwen2", "odd/llama"]) {
    assert.match(out, new RegExp(`^ok \\d+ - cuda parity ${fixture}$`, "m"));
    assert.match(out, new RegExp(`^ok \\d+ - cuda bf16 faithful to fp32 on ${fixture}$`, "m"));
  }
  assert.match(out, /^ok \d+ - cuda agrees with cpu: full fine-tuning of an untied model$/m);
  assert.match(out, /^ok \d+ - running out of GPU memory is reported with the numbers/m);
  const skipped = out.match(/^# skipped (\d+)$/m);
  assert.equal(skipped?.[1], "1", "only the no-CUDA-build check may skip"); // it needs an addon without CUDA
});

test(
  "every kernel stays inside its allocations and needs no luck in thread order (guard pages, reverse order)",
  { skip, timeout: 10 * 60_000 },
  () => {
    // Each tensor its own allocation ending at an inaccessible page: one element past the end faults, and the
    // emulator names the kernel. Threads and blocks in reverse order: a missing barrier changes the answers.
    runOnEmulator(["test/gpu/kernels.test.ts"], {
      TUNEFORGE_CUDA_EMU_GUARD: "1",
      TUNEFORGE_CUDA_CACHE: "0",
      TUNEFORGE_CUDA_EMU_ORDER: "reverse",
    });
  },
);

test(
  "decoding forks and joins its second stream where it must: its tests pass with streams in late and early order",
  { skip, timeout: 10 * 60_000 },
  () => {
    // Decoding steps run LoRA's x A^T on a second stream (Backend::run_beside). late: that stream's work waits until
    // something waits for it, so a reader without a join reads stale values; early: a recorded step's branch runs as
    // soon as its fork allows. Without run_beside's join, the three decoding tests fail in late order.
    for (const order of ["late", "early"]) {
      const out = runOnEmulator(
        ["test/gpu/model.test.ts"],
        { TUNEFORGE_CUDA_EMU_MEMORY: String(2 ** 30), TUNEFORGE_CUDA_EMU_BRANCHES: order },
        "decoding|generation, merge",
      );
      assert.match(out, /^ok \d+ - cuda: decoding steps replay one recorded step/m);
      assert.match(out, /^ok \d+ - cuda agrees with cpu: decoding with LoRA on q and v only/m);
      assert.match(
        out,
        /^ok \d+ - cuda agrees with cpu: LoRA with dropout on packed rows, AdamW, generation/m,
      );
    }
  },
);

test(
  "bench:gpu --smoke runs on the CUDA backend: training, profiles, generation and its A/B runs of the step's kernels",
  { skip, timeout: 10 * 60_000 },
  () => {
    // The benchmark's CUDA-only paths (device queries, recorded steps, the switched-off runs) otherwise first run on
    // the GPU machine, where a call costs minutes of a 30-minute budget.
    ensureEmulatorBuild();
    const out = join(mkdtempSync(join(tmpdir(), "tf-bench-emu-")), "bench.json");
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", "bench/gpu.ts", "--smoke", "--device", "cuda", "--no-peers", "--out", out],
      { cwd: root, env: { ...childEnv(), TUNEFORGE_NATIVE: addon }, encoding: "utf8", maxBuffer: 64 << 20 },
    );
    assert.equal(run.status, 0, `bench:gpu failed on the emulator:\n${run.stderr.slice(-4000)}`);
    const r = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(r.complete, true);
    assert.equal(r.device.name, "CUDA emulator (CPU)");
    const g = r.generation;
    assert.equal(g.status, "ok", g.note);
    assert.ok(g.recorded.replayedSteps > 0, "decoding steps replay a recorded step");
    assert.deepEqual(
      g.switchedOff.map((s: { variable: string; tokensPerS: number }) => [s.variable, s.tokensPerS > 0]),
      [
        ["TUNEFORGE_CUDA_SKINNY", true],
        ["TUNEFORGE_CUDA_PDL", true],
      ],
    );
    assert.deepEqual(
      g.profile.stepShares.map((s: { kind: string }) => s.kind),
      ["LoRA", "attention", "products", "other"],
    );
    assert.ok(r.summary.some((l: string) => l.includes("TUNEFORGE_CUDA_PDL=0")));
  },
);
