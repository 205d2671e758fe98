// Stream capture and CUDA graphs in the CUDA emulator (native/cuda/emu): native/cuda/emu/test/graph_check.cu is
// built as build-standalone.sh builds the .cu files for TUNEFORGE_CUDA=emu (translate.mjs, then g++ against the
// emulator's headers with runtime.cc and cublas.cc) and run; it prints what the runtime reported and computed, and
// these tests hold that against what a GPU does: a capture records without running, a replay runs every node in
// order on the device memory of the moment with the arguments the capture saw, and a global-mode capture refuses
// (and is invalidated by) what a GPU refuses, so the CUDA backend's capture safety is tested without a GPU.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const skip = spawnSync("g++", ["--version"]).status === 0 ? false : "no g++ to build the CUDA emulator";

// cudaError_t, cudaStreamCaptureStatus, cudaGraphNodeType and cublasStatus_t values of CUDA 12.
const cudaSuccess = 0;
const cudaErrorInvalidConfiguration = 9;
const cudaErrorIllegalState = 401;
const cudaErrorStreamCaptureUnsupported = 900;
const cudaErrorStreamCaptureInvalidated = 901;
const cudaErrorStreamCaptureUnjoined = 904;
const cudaErrorStreamCaptureImplicit = 906;
const cudaErrorStreamCaptureWrongThread = 908;
const [statusNone, statusActive, statusInvalidated] = [0, 1, 2];
const [kernelNode, memcpyNode, memsetNode] = [0, 1, 2];
const [blasSuccess, blasNotInitialized, blasInvalidValue, blasExecutionFailed] = [0, 1, 7, 13];

interface Report {
  stdout: string;
  stderr: string;
  json: Record<string, number | number[] | string[]>;
}

const dir = skip ? "" : mkdtempSync(join(tmpdir(), "tuneforge-emu-graphs-"));
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let report: Report | undefined;
/** Builds and runs graph_check once (a few seconds of g++), returning its parsed output. */
function run(): Report {
  if (report) return report;
  const cc = join(dir, "graph_check.cc");
  const exe = join(dir, "graph_check");
  const tr = spawnSync(
    process.execPath,
    ["native/cuda/emu/translate.mjs", "native/cuda/emu/test/graph_check.cu", cc],
    {
      cwd: root,
      encoding: "utf8",
    },
  );
  assert.equal(tr.status, 0, `translate.mjs failed:\n${tr.stderr}`);
  // build-standalone.sh's flags for the emulator (-O1), less the addon's (-fPIC, Node-API): this is a program.
  const flags = ["-std=c++17", "-O1", "-march=native", "-fopenmp", "-ffp-contract=fast", "-Wall"];
  const defs = ["-Wno-unused-parameter", "-Inative", "-Inative/cuda/emu/include"];
  const cxx = spawnSync(
    "g++",
    [
      ...flags,
      ...defs,
      "-DTUNEFORGE_CUDA=1",
      "-DTUNEFORGE_CUDA_EMU=1",
      cc,
      "native/cuda/emu/runtime.cc",
    ].concat(["native/cuda/emu/cublas.cc", "-o", exe]),
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(cxx.status, 0, `g++ failed:\n${cxx.stderr}`);
  const out = spawnSync(exe, [], { cwd: root, encoding: "utf8", timeout: 60_000 });
  assert.equal(out.status, 0, `graph_check failed:\n${out.stdout}\n${out.stderr}`);
  report = { stdout: out.stdout, stderr: out.stderr, json: JSON.parse(out.stdout) as Report["json"] };
  return report;
}

/** `graph_check branches` with TUNEFORGE_CUDA_EMU_BRANCHES set to `order` ("" for issue order). */
function branchesRun(order: "" | "late" | "early"): { branches: number[]; edges: number[] } {
  run(); // builds it
  const out = spawnSync(join(dir, "graph_check"), ["branches"], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, TUNEFORGE_CUDA_EMU_BRANCHES: order },
  });
  assert.equal(out.status, 0, `graph_check branches failed:\n${out.stdout}\n${out.stderr}`);
  return JSON.parse(out.stdout) as { branches: number[]; edges: number[] };
}
const branchesSeen = (order: "" | "late" | "early") => branchesRun(order).branches;

function nums(key: string): number[] {
  const v = run().json[key];
  assert.ok(Array.isArray(v), `${key} is not an array in the output`);
  return v as number[];
}
function num(key: string): number {
  const v = run().json[key];
  assert.equal(typeof v, "number", `${key} is not a number in the output`);
  return v as number;
}

/** What the captured work computes from an input: x = (in * 2 + 1) * 3, a 2-D pick of x, and sum(x). */
function expected(input: number[]): { out: number[]; out2: number[]; sum: number } {
  const out = input.map((v) => (v * 2 + 1) * 3);
  return { out, out2: [0, 1, 4, 5, 8, 9].map((i) => out[i]!), sum: out.reduce((a, b) => a + b, 0) };
}

test("a capture records its work without running it", { skip, timeout: 120_000 }, () => {
  assert.equal(num("status_before"), statusNone);
  assert.equal(num("begin"), cudaSuccess);
  assert.equal(num("status_during"), statusActive);
  assert.equal(num("legacy_status_during"), statusNone); // a non-blocking stream captures, not the legacy one
  assert.deepEqual(nums("issued"), Array(10).fill(cudaSuccess));
  // Every output still holds the -1 it had before the capture, during it and after EndCapture.
  for (const key of ["x_during", "out_during", "out_after_end"])
    assert.deepEqual(nums(key), Array(40).fill(-1), key);
  assert.deepEqual(nums("sum_during"), [-1]);
  assert.equal(num("end"), cudaSuccess);
  assert.equal(num("graph"), 1);
  assert.equal(num("status_after"), statusNone);
});

test("the graph holds one node per operation issued, in issue order", { skip, timeout: 120_000 }, () => {
  assert.equal(num("node_count"), 8);
  assert.equal(num("nodes_written"), 8); // asked for 11: as CUDA, the count written and null past the end
  assert.equal(num("slots_past_end_null"), 1);
  // memset, copy, two launches, the cuBLAS product, copy, 2-D copy, copy to the host; the event record is no node (as
  // CUDA's without cudaEventRecordExternal: it marks a point other streams may wait for).
  const k = kernelNode;
  const c = memcpyNode;
  assert.deepEqual(nums("node_types"), [memsetNode, c, k, k, k, c, c, c]);
});

test(
  "replays run every node in order on the current device memory with the captured arguments",
  { skip },
  () => {
    // Replayed on the legacy stream, then on the stream that captured, each after a new input was copied in.
    for (const [n, launch] of [
      ["1", "launch1"],
      ["2", "launch2"],
    ] as const) {
      assert.equal(num(launch), cudaSuccess);
      const want = expected(nums(`in${n}`));
      // Kernel order shows: (in * 3) * 2 + 1 would be off by 2; the launch's a = 2 and alpha = 1, not the 100 and 7
      // the host variables held after the capture; the sum went through cuBLAS and a device-to-host copy node.
      assert.deepEqual(nums(`out${n}`), want.out, `out${n}`);
      assert.deepEqual(nums(`sum${n}`), [want.sum], `sum${n}`);
    }
    assert.deepEqual(nums("out2_1"), expected(nums("in1")).out2); // the 2-D copy node's pitches
    assert.notDeepEqual(nums("out1"), nums("out2")); // the second input was seen
    // The launch's pointer was captured: the buffer the host variable named afterwards was never written.
    assert.deepEqual(nums("y_after_replays"), Array(40).fill(-1));
  },
);

test("a global-mode capture refuses what a GPU refuses and ends without a graph", { skip }, () => {
  const [unsupported, invalidated, implicit] = [
    cudaErrorStreamCaptureUnsupported,
    cudaErrorStreamCaptureInvalidated,
    cudaErrorStreamCaptureImplicit,
  ];
  // Begin, a recorded launch, cudaMalloc refused (no pointer), status invalidated, the next launch refused,
  // EndCapture invalidated with no graph, then the stream no longer capturing; the recorded launch never ran.
  assert.deepEqual(nums("malloc"), [
    0,
    0,
    unsupported,
    1,
    statusInvalidated,
    invalidated,
    invalidated,
    0,
    statusNone,
  ]);
  assert.deepEqual(nums("y_after_broken_capture"), Array(40).fill(5));
  assert.deepEqual(nums("memcpy"), [0, unsupported, invalidated, 0]);
  // cudaMemset, cudaFree, cudaDeviceSynchronize, cudaStreamSynchronize of another stream: each refused, each
  // capture then invalidated.
  assert.deepEqual(nums("other_unsafe"), Array(4).fill([unsupported, invalidated]).flat());
  // A launch on the legacy stream: its error is the launch's (sticky last error), and it does not run.
  assert.deepEqual(nums("legacy_launch"), [0, implicit, statusInvalidated, invalidated, 0]);
  assert.deepEqual(nums("y_after_legacy_launch"), Array(40).fill(5));
  // cudaMemcpyAsync and cudaMemsetAsync on the legacy stream; a cuBLAS product on a handle set to it.
  assert.deepEqual(nums("legacy_async"), [
    implicit,
    invalidated,
    implicit,
    invalidated,
    blasExecutionFailed,
    implicit,
    invalidated,
  ]);
  // A block of 2048 threads is refused at capture time, which breaks the capture.
  assert.deepEqual(nums("bad_launch"), [cudaErrorInvalidConfiguration, invalidated, 0]);
  // BeginCapture on the legacy stream; EndCapture on a stream not capturing; BeginCapture twice; EndCapture
  // from another thread (the capture goes on, and ends from its own thread with a graph).
  assert.deepEqual(nums("misuse"), [
    unsupported,
    cudaErrorIllegalState,
    cudaErrorIllegalState,
    cudaErrorStreamCaptureWrongThread,
    statusActive,
    cudaSuccess,
    1,
  ]);
  // The first reason a capture broke is said once, for whoever has to find it.
  assert.match(run().stderr, /stream capture invalidated by cudaMalloc during a stream capture/);
  assert.equal(run().stderr.match(/stream capture invalidated/g)?.length, 1);
});

test(
  "relaxed mode allows allocation and synchronous copies; thread-local mode refuses the capturing thread",
  { skip },
  () => {
    // Begin, cudaMalloc, cudaFree, cudaMemcpy (ran at once: 4 copied), a recorded launch, still active, EndCapture
    // with one node; the launch ran only when the graph did (5 -> 10).
    assert.deepEqual(nums("relaxed"), [0, 0, 0, 0, 4, 0, statusActive, 0, 1, 5, 10]);
    // The legacy stream and waiting for the device stay refused.
    assert.deepEqual(nums("relaxed_refused"), [
      cudaErrorStreamCaptureImplicit,
      cudaErrorStreamCaptureUnsupported,
      cudaErrorStreamCaptureInvalidated,
    ]);
    // cudaMalloc from another thread is allowed; from the capturing thread refused.
    assert.deepEqual(nums("thread_local"), [
      cudaSuccess,
      statusActive,
      cudaErrorStreamCaptureUnsupported,
      cudaErrorStreamCaptureInvalidated,
    ]);
  },
);

test("a second stream joins the capture by waiting for its event, and must be joined back", { skip }, () => {
  // record, the side stream waits (joins: capturing), its launch, the join record and wait, EndCapture; the side stream
  // no longer capturing; 2 nodes (the records are none); nothing ran until the replay, which runs both branches.
  assert.deepEqual(nums("fork_join"), [
    cudaSuccess,
    cudaSuccess,
    statusActive,
    cudaSuccess,
    cudaSuccess,
    cudaSuccess,
    cudaSuccess,
    statusNone,
    2,
    1,
    3,
    2,
  ]);
  // Left unjoined, as CUDA: cudaErrorStreamCaptureUnjoined and no graph; the side stream is free again.
  assert.deepEqual(nums("unjoined"), [cudaErrorStreamCaptureUnjoined, 0, statusNone]);
});

// What a reader saw of a side stream's a = 6 (1 before it): outside a capture joined [reader, a after a device
// synchronisation] and not joined [the same]; then replayed graphs: joined, read before the join, forked too early.
test(
  "TUNEFORGE_CUDA_EMU_BRANCHES=late|early runs streams' work in orders a GPU may pick, showing a missing wait",
  {
    skip,
    timeout: 120_000,
  },
  () => {
    // Issue order hides every missing wait.
    assert.deepEqual(branchesSeen(""), [6, 6, 6, 6, 6, 6, 6]);
    // The joined graph's edges, as cudaGraphGetEdges gives them: the branch (node 0) and the main stream's own work
    // (node 1) each before the reader (node 2), in whatever order.
    const e = branchesRun("").edges;
    const pairs = e.flatMap((v, i) => (i % 2 === 0 ? [`${v}->${e[i + 1]}`] : [])).sort();
    assert.deepEqual(pairs, ["0->2", "1->2"]);
    // late: a side stream's work waits until something waits for it, so a reader that does not wait sees a = 1.
    assert.deepEqual(branchesSeen("late"), [6, 6, 1, 6, 6, 1, 6]);
    // early: a graph's side branch runs as soon as its dependencies allow, before work its fork was recorded ahead of.
    assert.deepEqual(branchesSeen("early"), [6, 6, 6, 6, 6, 6, 1]);
  },
);

test("cublasSetWorkspace checks its handle and alignment; the new errors have CUDA's names", { skip }, () => {
  assert.deepEqual(nums("workspace"), [blasNotInitialized, blasInvalidValue, blasSuccess]);
  assert.deepEqual(run().json.error_names, [
    "cudaErrorStreamCaptureUnsupported",
    "cudaErrorStreamCaptureInvalidated",
    "cudaErrorStreamCaptureImplicit",
    "cudaErrorIllegalState",
  ]);
});
