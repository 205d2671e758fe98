// The CUDA backend against the CPU backend, op by op (the addon's kernelCheck: same random inputs on both,
// odd sizes, attention with padding, segments, GQA, hd 64/80/128 and a KV-cache offset). The CUDA part runs
// only where the addon was built with CUDA and a GPU answers; elsewhere it skips and says why. The harness
// itself is checked everywhere by comparing the CPU backend with a second CPU backend.
//
// Tolerances are normwise: max |cuda - cpu| / max |cpu| over each output.
// - 0 (bitwise) for ops that are one IEEE operation per element or a copy, and for the embedding gradient
//   and dropout, which use the CPU's order of additions and its counter-based RNG; argmax_rows (token ids: the
//   first maximum, ties included, or greedy decoding diverges).
// - 1e-10 for sum_squares(_many) and the cross-entropy loss: both sum in double on both backends (the batched
//   sum_squares_many is also compared with the same backend's per-buffer loop, "vs_loop": bitwise).
// - 1e-6 where both sides compute in double or with one rounding difference at most (rope, bias
//   sums, adamw, the softmax gradient); 2e-6 for swiglu, float on both sides with their own exp.
// - 1e-5 for fp32 sums whose order differs (cuBLAS sgemm without TF32, rmsnorm, flash attention forward and
//   backward): fp32 eps is 1.2e-7 and these sums are at most ~1000 terms, so correct kernels land around
//   1e-7..1e-6; a wrong index, mask or scale gives errors of order 1e-2 or more.
// - 1e-2 for matmul_bf16w (bf16 mode): the GPU rounds the activation to bf16 for the tensor cores (2^-9
//   relative per element), the CPU keeps it fp32; a wrong operand or transpose gives errors of order 1.
// - 2e-2 for attention in bf16 mode (shapes ending " bf16"): the GEMM path rounds Q, K, V, dO and then P and dS
//   to bf16 (2^-9 relative each, through two chained products), the CPU reference stays fp32; the expected error
//   is a few 1e-3 relative to the output's maximum, while a wrong mask, head or scale gives 1e-1 or more.
// Attention is checked on every path the backend has (CUDA: shapes ending " gemm" / " flash", fp32 and bf16, and
// " mma" in bf16 only: its fp32 mode is the GEMM path's). A call a path hands to other kernels says so (" ran:flash"
// for a decoding step on the GEMM or mma path); the mma kernels' precision is the GEMM path's bf16 mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cudaInfo, kernelCheck, type KernelCheckEntry } from "../../src/engine/native.js";

const TOLERANCE: Record<string, number> = {
  zero: 0,
  zero_many: 0,
  copy: 0,
  add: 0,
  add_out: 0,
  scale: 0,
  mul: 0,
  add_bias: 0,
  embedding_fwd: 0,
  embedding_bwd: 0,
  scatter_add_rows: 0,
  dropout: 0,
  cache_write: 0,
  cache_write_bf16: 0,
  sum_squares: 1e-10,
  sum_squares_many: 1e-10,
  argmax_rows: 0,
  bias_grad: 1e-6,
  rope_table: 1e-6,
  rope: 1e-6,
  // float on both sides, each with its own exp (a few ulp apart); dg's 1 - sigmoid(g) cancels where g is large
  swiglu_fwd: 2e-6,
  swiglu_bwd: 2e-6,
  adamw: 1e-6,
  cross_entropy: 1e-6,
  matmul: 1e-5,
  // bf16 mode: the GPU rounds the activation to bf16 (2^-9 relative) for the tensor cores, the CPU does not
  matmul_bf16w: 1e-2,
  // bf16 activation and weight on both sides: exact products, fp32 sums in another order
  matmul_bf16: 1e-5,
  embedding_fwd_bf16: 0,
  widen_bf16: 0,
  // fp16 mode: the GPU rounds the activation to fp16 (2^-11 relative)
  matmul_f16w: 2.5e-3,
  embedding_fwd_f16: 0,
  widen_f16: 0,
  narrow_bf16: 0,
  narrow_bf16_many: 0,
  rmsnorm_fwd: 1e-5,
  rmsnorm_bwd: 1e-5,
  attention_fwd: 1e-5,
  // fp32 mode on K and V read from a bf16 cache, against the fp32 reference on the same bf16-exact values
  attention_fwd_kv16: 1e-5,
  attention_bwd: 1e-5,
  // from bf16 q, k, v, out, against the fp32 reference on the same bf16-exact values
  attention_bwd_h: 1e-5,
  // LoRA with dropout fused, against dropout + matmul: the same masks (a different one is off by a whole value), fp32
  // sums in another order
  lora_down: 1e-5,
  lora_down_grad: 1e-5,
  lora_dx: 1e-5,
  lora_apply_down: 1e-5,
  lora_up: 1e-5,
  // bf16 outputs (bf16 mode's projection inputs): the fp32 values agree to ~1e-7, but one rounding may still land on
  // the other side of a bf16 midpoint (2^-8 relative); a wrong value is off by far more
  rmsnorm_fwd_bf16: 1e-2,
  // the residual add and rmsnorm_fwd in one pass (its bf16 output as rmsnorm_fwd_bf16's)
  add_rmsnorm: 1e-5,
  // rmsnorm_fwd then rope, in one pass: the norm's double sum in another order
  qk_norm_rope: 1e-5,
  // the inverse rotation, then rmsnorm_bwd's sums (row dot in double, weight sums by column in double)
  qk_norm_rope_bwd: 1e-5,
  swiglu_fwd_bf16: 1e-2,
  swiglu_fwd_h: 1e-2,
  // from bf16 g and u: the same sums as swiglu_bwd
  swiglu_bwd_h: 2e-6,
  // a decoding step's gate/up product read side by side: swiglu_fwd's arithmetic, or with biases and LoRA added as it
  // reads them (one rounding where the reference takes two)
  swiglu_fwd_stacked: 1e-5,
  // LoRA's up-projection and the biases, qk_norm_rope and the cache write in one pass (k, v; bf16 caches: k16, v16)
  qkv_to_cache: 1e-5,
};

/** Every method of tf::Backend that computes (device() and set_threads() aside). */
const BACKEND_OPS = Object.keys(TOLERANCE);

function tolerance(e: KernelCheckEntry): number {
  if (e.op === "cross_entropy" && e.output === "result") return 1e-10;
  if (e.op === "sum_squares_many" && e.shape.endsWith("vs_loop")) return 0; // the same kernels, the same order
  // the share of dropped elements against p: 5 standard deviations of a share of n draws, relative to p
  if (e.op === "dropout" && e.shape.startsWith("share ")) {
    const p = Number(/ p([\d.]+)/.exec(e.shape)![1]);
    const n = Number(/ n(\d+)/.exec(e.shape)![1]);
    return (5 * Math.sqrt((p * (1 - p)) / n)) / p;
  }
  if (e.op.startsWith("attention_") && e.shape.endsWith(" bf16")) return 2e-2;
  // a decoding step's products (skinny_gemm.cu) on bf16-exact x: exact products in both forms, fp32 sums in another order
  if (e.shape.endsWith(" skinny")) return TOLERANCE.matmul_bf16!;
  // bf16 roundings of an fp32 result: a one-ulp difference may round to the other side of a bf16 midpoint
  if ((e.shape.endsWith(" bf16out") && e.output === "out") || e.output.endsWith("16"))
    return TOLERANCE.rmsnorm_fwd_bf16!;
  const tol = TOLERANCE[e.op];
  assert.ok(tol !== undefined, `kernelCheck reported an op the test does not know: ${e.op}`);
  return tol;
}

/** Outputs that are legitimately all zero: zero() itself and the gradient of a loss-only evaluation. */
function expectedZero(e: KernelCheckEntry): boolean {
  return e.op === "zero" || (e.op === "cross_entropy" && e.output === "dlogits" && e.shape.endsWith("=0.00"));
}

function assertReport(entries: KernelCheckEntry[]): void {
  const ops = new Set(entries.map((e) => e.op));
  for (const op of BACKEND_OPS) assert.ok(ops.has(op), `no check of ${op}`);
  const shapes = new Set(entries.filter((e) => e.op === "attention_bwd").map((e) => e.shape));
  assert.ok(shapes.size >= 4, "attention backward checked on at least 4 shapes");
  assert.ok(
    entries.some((e) => e.op === "attention_fwd" && /qoff[1-9]/.test(e.shape)),
    "attention forward checked with a KV-cache offset",
  );
  // decoding steps as a recorded step runs them: the slot read on the device, on an fp32 and a bf16 cache
  for (const op of ["attention_fwd", "attention_fwd_kv16"])
    assert.ok(
      entries.some((e) => e.op === op && e.shape.includes(" slot-on-device")),
      `${op} checked with the slot in device memory`,
    );
  assert.ok(entries.some((e) => e.op === "cache_write" && e.shape.includes("slot-on-device")));
  assert.ok(entries.some((e) => e.op === "qkv_to_cache" && e.shape.includes("slot-on-device")));
  // a decoding step's LoRA: the down-projections run twice (counters reset), the readers add the rest
  assert.ok(entries.some((e) => e.op === "lora_apply_down" && e.shape.endsWith(" again")));
  for (const op of ["qkv_to_cache", "swiglu_fwd_stacked", "add_rmsnorm"])
    assert.ok(
      entries.some((e) => e.op === op && e.shape.includes("lora")),
      `${op} checked with LoRA`,
    );
  const failures: string[] = [];
  for (const e of entries) {
    assert.ok(e.count > 0, `${e.op}.${e.output} [${e.shape}] compared nothing`);
    if (!expectedZero(e)) assert.ok(e.refMax > 0, `${e.op}.${e.output} [${e.shape}]: reference is all zeros`);
    const tol = tolerance(e);
    if (!(e.maxRel <= tol)) {
      failures.push(`${e.op}.${e.output} [${e.shape}]: max rel ${e.maxRel} (abs ${e.maxAbs}) > ${tol}`);
    }
  }
  assert.deepEqual(failures, [], failures.join("\n"));
}

/** The CUDA backend's attention paths were all checked, in fp32 and bf16 (the mma path: bf16, on its own kernels), and
 * on cases long enough to split into several query chunks on the GEMM path (T300: chunks of 128 rows; a 150-row
 * prefill after 37 cached slots) and into several 64-row blocks of the mma kernels. */
function assertAttentionPaths(entries: KernelCheckEntry[]): void {
  for (const op of ["attention_fwd", "attention_fwd_kv16", "attention_bwd", "attention_bwd_h"]) {
    const mma = entries.filter((e) => e.op === op && e.shape.endsWith(" mma bf16")).map((e) => e.shape);
    for (const long of [" Tq300 ", " Tq130 "])
      assert.ok(
        mma.some((s) => s.includes(long) && !s.includes(" ran:")),
        `${op} ran the mma kernels on a case of several blocks (${long.trim()})`,
      );
    for (const hd of [16, 32, 64, 80, 96, 128])
      assert.ok(
        mma.some((s) => s.includes(` hd${hd} `) && !s.includes(" ran:")),
        `${op} ran the mma kernels with head dim ${hd}`,
      );
  }
  assert.ok(
    entries.some(
      (e) => e.op === "attention_fwd" && /Tq150 .*qoff37 /.test(e.shape) && e.shape.endsWith(" mma bf16"),
    ),
    "attention_fwd checked on the mma kernels at a cache offset",
  );
  // decoding steps on the chunked decode kernels (the gemm and mma paths), over several chunks with the slot on the
  // device, with fp32 and bf16 caches
  for (const op of ["attention_fwd", "attention_fwd_kv16"])
    assert.ok(
      entries.some(
        (e) => e.op === op && / Tk200 .*slot-on-device ran:decode /.test(e.shape) && e.output === "out",
      ),
      `${op} ran the decode kernels on a multi-chunk step with the slot on the device`,
    );
  for (const path of ["gemm", "flash"]) {
    for (const op of ["attention_fwd", "attention_bwd"]) {
      const shapes = entries.filter((e) => e.op === op).map((e) => e.shape);
      assert.ok(
        shapes.some((s) => s.endsWith(` ${path}`)),
        `${op} checked on the ${path} path`,
      );
      assert.ok(
        shapes.some((s) => s.endsWith(` ${path} bf16`)),
        `${op} checked on the ${path} path in bf16 mode`,
      );
      assert.ok(
        shapes.some((s) => s.includes(" Tq300 ") && s.endsWith(` ${path}`)),
        `${op} checked on a long (chunked) case on the ${path} path`,
      );
    }
    // a prefill of several query chunks at a KV-cache offset (each chunk's keys end at q_off + its last row)
    assert.ok(
      entries.some(
        (e) => e.op === "attention_fwd" && /Tq150 .*qoff37 /.test(e.shape) && e.shape.endsWith(` ${path}`),
      ),
      `attention_fwd checked on a chunked prefill at a cache offset on the ${path} path`,
    );
  }
}

function table(entries: KernelCheckEntry[]): string {
  return entries
    .map((e) => `${`${e.op}.${e.output}`.padEnd(28)} ${e.shape.padEnd(44)} rel ${e.maxRel.toExponential(2)}`)
    .join("\n");
}

test("cudaInfo describes the build and the device", () => {
  const info = cudaInfo();
  assert.equal(typeof info.built, "boolean");
  if (!info.available) {
    assert.ok(info.reason.length > 0, "an unavailable GPU comes with a reason");
    return;
  }
  assert.ok(info.built);
  assert.ok(info.name.length > 0);
  assert.match(info.computeCapability, /^\d+\.\d+$/);
  assert.ok(info.totalBytes > 0 && info.freeBytes > 0 && info.freeBytes <= info.totalBytes);
});

test("the kernel check harness covers every backend op (CPU against CPU)", () => {
  const entries = kernelCheck("cpu", 7);
  assertReport(entries);
});

test("kernelCheck('cuda') says clearly when the addon has no CUDA backend", (t) => {
  if (cudaInfo().built) {
    t.skip("this addon has the CUDA backend");
    return;
  }
  assert.throws(() => kernelCheck("cuda", 1), /no CUDA backend/);
});

test("every CUDA kernel matches the CPU backend", (t) => {
  const info = cudaInfo();
  if (!info.available) {
    t.skip(`no CUDA GPU: ${info.reason}`);
    return;
  }
  t.diagnostic(
    `${info.name} (sm ${info.computeCapability}), ${(info.freeBytes / 2 ** 30).toFixed(1)} GiB free`,
  );
  for (const seed of [1, 2]) {
    const entries = kernelCheck("cuda", seed);
    t.diagnostic(`seed ${seed}\n${table(entries)}`);
    assertReport(entries);
    assertAttentionPaths(entries);
  }
  // The engine allocator: the checks' tensors and the backends' scratch were all released (no leak), and
  // their high-water mark was recorded.
  const after = cudaInfo();
  assert.equal(after.inUseBytes, 0);
  assert.ok(after.peakBytes > 0);
});
