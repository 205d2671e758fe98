// bf16 mode on the CPU backend: the frozen base matrices (projections, embedding, LM head) held as bfloat16,
// widened to fp32 inside the GEMM's packing. Checked three ways:
//  - exactness: on weights that bf16 represents exactly, bf16 mode is bitwise the fp32 engine (logits, loss,
//    LoRA gradients, generation, merge), and loading F32 checkpoints rounds to nearest-even like torch;
//  - the bf16 GEMM against sgemm on the widened matrix, bitwise, across the kernel's blockings;
//  - faithfulness on every parity fixture (bf16-checks.ts) and the memory halving;
// plus the refusals (full fine-tuning) and the training.bf16 mapping.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GemmAddon } from "../../bench/gemm-addon.js";
import { createRng } from "../../src/data/random.js";
import { EngineModel, loadNative, resolveWeightsDtype, type Batch } from "../../src/engine/index.js";
import type { CudaInfo } from "../../src/engine/native.js";
import { TuneforgeError } from "../../src/errors.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { f32ToBf16, SafetensorsFile, writeSafetensors, type DType } from "../../src/model/safetensors.js";
import { ARCHS, FIXTURES, HAVE_FIXTURES, SHAPE_SETS } from "../helpers/fixtures.js";
import { printParityReport } from "../helpers/parity.js";
import { checkBf16Fixture, expectedWeightBytes } from "./bf16-checks.js";
import { writeRandomModel } from "./random-model.js";

const bf16ToF32 = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
const roundBf16 = (x: number) => bf16ToF32(f32ToBf16(x));

/** A copy of a model folder whose 2-D weights are stored as `dtype`, after `map` (norms and biases as they were). */
function rewriteModel(src: string, dtype: DType, map: (x: number) => number = (x) => x): string {
  const dir = mkdtempSync(join(tmpdir(), "tf-bf16-"));
  writeFileSync(join(dir, "config.json"), readFileSync(join(src, "config.json")));
  const f = SafetensorsFile.open(join(src, "model.safetensors"));
  const tensors = [...f.tensors.keys()].map((name) => {
    const info = f.info(name);
    const data = f.readF32(name);
    if (info.shape.length !== 2) return { name, dtype: "F32" as DType, shape: info.shape, data };
    return { name, dtype, shape: info.shape, data: data.map(map) };
  });
  f.close();
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

const V = 53;
// The random model: odd sizes (hidden 24, head_dim 10, vocab 53), MQA, every bias, qk-norm, tied head.
const RAW = writeRandomModel(7);
const UNTIED = writeRandomModel(8, {
  model_type: "llama",
  tie_word_embeddings: false,
  num_key_value_heads: 3,
});

function batch(): Batch {
  const rng = createRng(3);
  const rows = 2;
  const T = 9;
  const ids = new Int32Array(rows * T).map(() => rng.int(V));
  const mask = new Int32Array(rows * T).fill(1);
  mask.fill(0, rows * T - 2); // row 1 ends with 2 pads
  const labels = ids.map((id, i) => (mask[i] ? id : -100));
  return { rows, inputIds: ids, attentionMask: mask, labels };
}

function withLora(m: EngineModel): EngineModel {
  m.setLora({ r: 4, alpha: 8, dropout: 0, seed: 5, targets: [...ALL_PROJECTIONS] });
  // PEFT starts B at 0; a random B makes every gradient and the merge non-trivial
  const rng = createRng(9);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

function assertBitwise(name: string, got: Float32Array, want: Float32Array) {
  assert.equal(got.length, want.length, `${name}: length`);
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) assert.fail(`${name}[${i}]: ${got[i]} != ${want[i]}`);
}

/** bf16 mode on `bf16Dir` must be bitwise the fp32 engine on `f32Dir` (same values, exactly representable). */
function assertSameModel(bf16Dir: string, f32Dir: string) {
  const a = withLora(EngineModel.load(bf16Dir, { threads: 1, weights: "bf16" }));
  const b = withLora(EngineModel.load(f32Dir, { threads: 1, weights: "f32" }));
  try {
    const bt = batch();
    assertBitwise("logits", a.forward(bt), b.forward(bt));
    assert.equal(a.forwardBackward(bt).lossSum, b.forwardBackward(bt).lossSum);
    assert.equal(a.evalLoss(bt).lossSum, b.evalLoss(bt).lossSum);
    const ga = a.loraGrads();
    const gb = b.loraGrads();
    for (const [mod, g] of gb) {
      assertBitwise(`${mod} grad A`, ga.get(mod)!.A, g.A);
      assertBitwise(`${mod} grad B`, ga.get(mod)!.B, g.B);
    }
    const prompts = [
      [1, 2, 3, 4],
      [5, 6],
    ];
    const settings = { maxNewTokens: 5, eosTokenIds: [] };
    const sa = a.generateWithLogits(prompts, settings);
    const sb = b.generateWithLogits(prompts, settings);
    assert.deepEqual(sa.tokens, sb.tokens);
    assertBitwise("step logits", sa.stepLogits!, sb.stepLogits!);
    const ma = a.merge();
    for (const [mod, w] of b.merge()) assertBitwise(`merged ${mod}`, ma.get(mod)!, w);
  } finally {
    a.dispose();
    b.dispose();
  }
}

test("bf16 mode is the fp32 engine on bf16-exact weights (F32 and BF16 checkpoints), tied and untied", () => {
  for (const src of [RAW, UNTIED]) {
    const exact = rewriteModel(src, "F32", roundBf16);
    assertSameModel(exact, exact); // F32 checkpoint, already exact: rounding must not change a value
    assertSameModel(rewriteModel(src, "BF16"), exact); // BF16 checkpoint: read as is
    assertSameModel(src, exact); // F32 checkpoint with full mantissas: rounded to nearest-even on load
  }
});

test("bf16 weights are rounded, not truncated: the rounded model differs from the raw fp32 one", () => {
  const a = EngineModel.load(RAW, { threads: 1, weights: "bf16" });
  const b = EngineModel.load(RAW, { threads: 1 });
  const truncated = EngineModel.load(
    rewriteModel(RAW, "F32", (x) => bf16ToF32(new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16)),
    { threads: 1 },
  );
  try {
    const bt = batch();
    const la = a.forward(bt);
    const lb = b.forward(bt);
    const lt = truncated.forward(bt);
    let dRaw = 0;
    let dTrunc = 0;
    for (let i = 0; i < la.length; i++) {
      dRaw = Math.max(dRaw, Math.abs(la[i] - lb[i]));
      dTrunc = Math.max(dTrunc, Math.abs(la[i] - lt[i]));
    }
    assert.ok(dRaw > 0 && dRaw < 0.05, `bf16 vs fp32 logits differ by ${dRaw}`);
    assert.ok(dTrunc > 0, "bf16 mode matches truncation, not round-to-nearest-even");
  } finally {
    a.dispose();
    b.dispose();
    truncated.dispose();
  }
});

interface Bf16Gemm extends Pick<GemmAddon, "sgemm"> {
  gemmBf16(
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    lda: number,
    B: Uint16Array,
    ldb: number,
    beta: number,
    C: Float32Array,
    ldc: number,
  ): void;
}

test("the bf16 GEMM is sgemm on the widened matrix, bitwise, across blockings, strides and edges", () => {
  const g = loadNative() as unknown as Bf16Gemm;
  const rng = createRng(17);
  // sizes around the micro-tile (14 x 32), the K block (256), the N block (512) and a single sliver
  const cases = [
    [1, 1, 1],
    [13, 7, 5],
    [29, 33, 257],
    [37, 530, 300],
    [200, 16, 64],
    [3, 1030, 40],
  ];
  for (const [M, N, K] of cases) {
    for (const tb of [true, false]) {
      const pad = 3;
      const lda = K + pad;
      const ldb = (tb ? K : N) + pad;
      const ldc = N + pad;
      const A = Float32Array.from({ length: M * lda }, () => rng.next() * 2 - 1);
      const Bh = Uint16Array.from({ length: (tb ? N : K) * ldb }, () => f32ToBf16(rng.next() * 2 - 1));
      const Bf = Float32Array.from(Bh, bf16ToF32);
      const C0 = Float32Array.from({ length: M * ldc }, () => rng.next());
      for (const [alpha, beta] of [
        [1, 0],
        [0.5, 1],
      ]) {
        const got = C0.slice();
        const want = C0.slice();
        g.gemmBf16(tb, M, N, K, alpha, A, lda, Bh, ldb, beta, got, ldc);
        g.sgemm(false, tb, M, N, K, alpha, A, lda, Bf, ldb, beta, want, ldc);
        assertBitwise(`M${M} N${N} K${K} tb${tb} a${alpha} b${beta}`, got, want);
      }
    }
  }
  assert.throws(
    () =>
      g.gemmBf16(true, 2, 2, 2, 1, new Float32Array(4), 2, new Uint16Array(3), 2, 0, new Float32Array(4), 2),
    /B has 3 elements, needs 4/,
  );
});

test("bf16 mode halves the base matrices' bytes; norms, biases and LoRA stay fp32", () => {
  const a = withLora(EngineModel.load(UNTIED, { threads: 1, weights: "bf16" }));
  const b = withLora(EngineModel.load(UNTIED, { threads: 1 }));
  try {
    const ma = a.memory();
    const mb = b.memory();
    assert.equal(ma.weights, "bf16");
    assert.equal(mb.weights, "f32");
    assert.equal(ma.weightBytes, expectedWeightBytes(UNTIED, "bf16"));
    assert.equal(mb.weightBytes, expectedWeightBytes(UNTIED, "f32"));
    assert.ok(ma.weightBytes! < 0.55 * mb.weightBytes!, `${ma.weightBytes} vs ${mb.weightBytes}`);
    for (const p of a.loraWeights().values()) assert.ok(p.A instanceof Float32Array);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test("full fine-tuning refuses bf16 weights with a hint; weights must be f32 or bf16", () => {
  const m = EngineModel.load(RAW, { threads: 1, weights: "bf16" });
  try {
    assert.throws(
      () => m.setFullFinetune(true),
      (e: unknown) => e instanceof TuneforgeError && /f32 base weights/.test(e.message) && !!e.hint,
    );
  } finally {
    m.dispose();
  }
  assert.throws(
    () => EngineModel.load(RAW, { weights: "fp8" as "f32" }),
    (e: unknown) => e instanceof TuneforgeError && /unknown weights dtype "fp8"/.test(e.message),
  );
});

test("training.bf16 maps to the weights dtype: auto is bf16 on a bf16 GPU only, true is refused where it cannot hold", () => {
  const gpu = (cc: string): CudaInfo => ({
    built: true,
    available: true,
    reason: "",
    name: "Test GPU",
    computeCapability: cc,
    smCount: 1,
    totalBytes: 0,
    freeBytes: 0,
    inUseBytes: 0,
    peakBytes: 0,
    cachedBytes: 0,
  });
  const w = (c: "auto" | boolean, d: "cpu" | "cuda", o = {}) => resolveWeightsDtype(c, d, o).weights;
  assert.equal(w("auto", "cpu"), "f32");
  assert.equal(w("auto", "cuda", { info: gpu("9.0") }), "bf16");
  assert.equal(w("auto", "cuda", { info: gpu("8.0") }), "bf16");
  assert.equal(w("auto", "cuda", { info: gpu("7.5") }), "f16", "a T4: fp16, the same memory as bf16");
  assert.match(resolveWeightsDtype("auto", "cuda", { info: gpu("7.5") }).reason, /no bf16: fp16 instead/);
  assert.equal(w("auto", "cuda", { info: gpu("7.5"), fullFinetune: true }), "f32");
  assert.equal(w("auto", "cuda", { info: gpu("9.0"), fullFinetune: true }), "f32");
  assert.equal(w(false, "cuda", { info: gpu("9.0") }), "f32");
  assert.equal(w(true, "cpu"), "bf16");
  assert.equal(w(true, "cuda", { info: gpu("8.6") }), "bf16");
  assert.match(resolveWeightsDtype("auto", "cuda", { info: gpu("9.0") }).reason, /auto on cuda/);
  const refused = (c: boolean, d: "cpu" | "cuda", o: object) =>
    assert.throws(
      () => resolveWeightsDtype(c, d, o),
      (e: unknown) => e instanceof TuneforgeError && e.location.key === "training.bf16" && !!e.hint,
    );
  refused(true, "cpu", { fullFinetune: true });
  refused(true, "cuda", { info: gpu("7.0") });
});

test("fp16 base weights are a GPU mode: the CPU refuses them, naming what to use instead", () => {
  assert.throws(
    () => EngineModel.load(writeRandomModel(5), { weights: "f16" }),
    (e: unknown) =>
      e instanceof TuneforgeError && /not the CPU/.test(e.message) && /"bf16"/.test(e.hint ?? ""),
  );
});

const report: Record<string, Record<string, number>> = {};
for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    const skip = !HAVE_FIXTURES && `fixtures not found at ${FIXTURES}`;
    test(`bf16 faithful to fp32 on ${shape}/${arch}`, { skip }, () =>
      checkBf16Fixture(shape, arch, "cpu", report),
    );
  }
}

test("bf16 fixture summary", { skip: !HAVE_FIXTURES }, () => printParityReport(report));
