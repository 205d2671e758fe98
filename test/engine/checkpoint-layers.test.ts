// Selective activation checkpointing (issue 4's memory goals): only the bottom k layers are checkpointed. Gradients,
// losses and dropout counters bitwise those of the plain backward for every k; the engine's peak memory falls by
// exactly one layer's activation set per layer recomputed, as the training memory estimate says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { resetMemoryPeak, setProfiling, takeProfile } from "../../src/engine/bench-support.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { TuneforgeError } from "../../src/errors.js";
import { writeRandomModel } from "./random-model.js";
import {
  PEAK_LORA,
  PEAK_MODEL,
  assertBitwiseEqual,
  layerSetFloats,
  loraModelWithRandomB,
  makeBatch,
  peakModelEstimate,
} from "./checkpointing-shared.js";

const THREADS = 2;
const LAYERS = 4;

// Odd shapes (MQA, head_dim 10, every bias, qk-norm, tied head), 4 layers: k = 2 and 3 are strictly partial.
const LORA_DIR = writeRandomModel(21, { num_hidden_layers: LAYERS });

function loraModel(k: boolean | number): EngineModel {
  return loraModelWithRandomB(LORA_DIR, THREADS, k);
}

test("LoRA with dropout: gradients, losses and dropout counters are bitwise the same for every k", () => {
  const ks = [0, 1, 2, 3, LAYERS];
  const models = ks.map((k) => loraModel(k));
  assert.deepEqual(
    models.map((m) => m.checkpointedLayers),
    ks,
  );
  assert.deepEqual(
    models.map((m) => m.gradientCheckpointing),
    [false, true, true, true, true],
  );
  const batches: Batch[] = [
    makeBatch(1, 3, 13, 53, true, [0, 4, 9]), // packed and padded
    makeBatch(2, 2, 17, 53, false, [3, 0]), // padded only, another length (activations reallocated)
  ];
  for (let step = 0; step < 2; step++) {
    for (const m of models) m.zeroGrads();
    for (const b of batches) {
      const outs = models.map((m) => m.forwardBackward(b, { gradScale: 1 / 64 }));
      for (let i = 1; i < ks.length; i++) {
        assert.equal(outs[i].lossSum, outs[0].lossSum, `k = ${ks[i]} loss`);
        assert.equal(models[i].dropoutCounter, models[0].dropoutCounter, `k = ${ks[i]} dropout counter`);
      }
    }
    const plain = models[0].trainable("grads");
    assert.ok([...plain.values()].some((x) => x.some((v) => v !== 0)));
    for (let i = 1; i < ks.length; i++) {
      assertBitwiseEqual(models[i].trainable("grads"), plain, `step ${step}, k = ${ks[i]}`);
    }
    for (const m of models) m.adamwStep({ lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 });
  }
  // Evaluation after partially checkpointed training reuses its buffers and agrees with the plain model.
  const b = batches[0];
  assert.equal(models[2].evalLoss(b).lossSum, models[0].evalLoss(b).lossSum);
  assert.deepEqual(models[2].forward(b), models[0].forward(b));
  for (const m of models) m.dispose();
});

test("full fine-tuning: changing k on one model keeps the gradients bitwise the plain ones", () => {
  const dir = writeRandomModel(22, { num_hidden_layers: 3, tie_word_embeddings: false, hidden_size: 20 });
  const load = () => {
    const m = EngineModel.load(dir, { threads: THREADS });
    m.setFullFinetune(true);
    return m;
  };
  const plain = load();
  const moving = load();
  const b = makeBatch(6, 2, 15, 53, true, [0, 6]);
  plain.forwardBackward(b);
  const g = plain.trainable("grads");
  assert.ok(g.has("lm_head.weight") && g.has("model.layers.0.self_attn.q_norm.weight"));
  for (const k of [2, true, 1, 0, 3, false, 2] as const) {
    moving.setGradientCheckpointing(k);
    moving.zeroGrads();
    assert.equal(moving.forwardBackward(b).lossSum, plain.forwardBackward(b).lossSum);
    plain.zeroGrads();
    plain.forwardBackward(b);
    assertBitwiseEqual(moving.trainable("grads"), plain.trainable("grads"), `k = ${String(k)}`);
  }
  plain.dispose();
  moving.dispose();
});

test("setGradientCheckpointing takes true, false or a layer count; more than the layers means all", () => {
  const m = EngineModel.load(LORA_DIR, { threads: 1 });
  assert.equal(m.checkpointedLayers, 0);
  m.setGradientCheckpointing(true);
  assert.equal(m.checkpointedLayers, LAYERS);
  m.setGradientCheckpointing(2);
  assert.equal(m.checkpointedLayers, 2);
  m.setGradientCheckpointing(99);
  assert.equal(m.checkpointedLayers, LAYERS);
  m.setGradientCheckpointing(false);
  assert.equal(m.checkpointedLayers, 0);
  for (const bad of [-1, 1.5, Number.NaN]) {
    assert.throws(
      () => m.setGradientCheckpointing(bad),
      (e: unknown) =>
        e instanceof TuneforgeError &&
        e.location.key === "training.gradient_checkpointing" &&
        e.message.includes(String(bad)),
    );
  }
  assert.equal(m.checkpointedLayers, 0, "a rejected value changes nothing");
  m.dispose();
});

test("LoRA dropout keeps no mask per layer: its buffers are the same for any number of layers", () => {
  const raw = PEAK_MODEL;
  const dir = writeRandomModel(23, raw);
  const batch = makeBatch(9, 3, 40, raw.vocab_size, true, [0, 5, 11]);
  const firstStep = (dropout: number) => {
    const m = EngineModel.load(dir, { threads: 1 });
    m.setLora({ ...PEAK_LORA, dropout, targets: [...ALL_PROJECTIONS] });
    const before = resetMemoryPeak("cpu").inUse;
    m.forwardBackward(batch);
    const step = m.memory().peak - before;
    m.dispose();
    return step;
  };
  firstStep(0.1); // buffers the process keeps across models (CPU attention's per-thread ones) now exist
  // The mask and dropped input of each of the 7 projections (inputs: 5 hidden wide, o's q wide, down's F wide),
  // and one [N, widest input] for the dropout term of the input gradient.
  const q = raw.num_attention_heads * raw.head_dim;
  const widths = 5 * raw.hidden_size + q + raw.intermediate_size;
  const N = batch.inputIds.length;
  assert.equal(firstStep(0.1) - firstStep(0), (2 * N * widths + N * raw.intermediate_size) * 4);
});

test("each recomputed layer lowers the engine's peak by exactly one layer's activation set", () => {
  // Bigger than the model above, so a set is far more than any rounding; 5 layers for 4 partial steps.
  const raw = PEAK_MODEL;
  const lora = PEAK_LORA;
  const dir = writeRandomModel(23, raw);
  const m = EngineModel.load(dir, { threads: 1 });
  m.setLora({ ...lora, targets: [...ALL_PROJECTIONS] });
  const batch = makeBatch(9, 3, 40, raw.vocab_size, true, [0, 5, 11]);
  const L = raw.num_hidden_layers;
  // The grow-only backward scratch buffers now exist, the same for every k; every k below is a change, which frees
  // the previous layout's activations at once.
  m.setGradientCheckpointing(L);
  m.forwardBackward(batch);
  const step: number[] = [];
  let lossSum: number | undefined;
  for (let k = 0; k <= L; k++) {
    m.setGradientCheckpointing(k);
    const before = resetMemoryPeak("cpu").inUse;
    const out = m.forwardBackward(batch);
    if (lossSum === undefined) lossSum = out.lossSum;
    assert.equal(out.lossSum, lossSum);
    step.push(m.memory().peak - before);
  }
  const setFloats = layerSetFloats(raw, lora.r);
  const N = batch.inputIds.length;
  const setBytes = N * setFloats * 4;
  // k = 1: its one checkpointed layer is never recomputed, so the layout is the plain one.
  assert.equal(step[1], step[0], "k = 1 holds as much as k = 0");
  for (let k = 1; k < L; k++) {
    assert.equal(step[k] - step[k + 1], setBytes, `k = ${k} -> ${k + 1}: one set less`);
  }

  // The estimate falls by the same step per recomputed layer.
  const est = (k: number) => peakModelEstimate(N, k);
  assert.equal(est(1).total, est(0).total);
  const perLayer = est(1).activations - est(2).activations;
  for (let k = 1; k < L; k++) assert.equal(est(k).activations - est(k + 1).activations, perLayer);
  assert.equal(perLayer, setBytes, "the estimate's step per layer is the engine's");
  assert.equal(est(L).activations, est(L).checkpointedActivations);
  m.dispose();
});

test("a recomputed layer runs every base product but down_proj's, whose output nothing reads", () => {
  // writeRandomModel's shapes: hidden 24, 3 heads x 10 (q 30), 1 KV head (k, v 10), intermediate 40.
  const [D, q, kv, F] = [24, 30, 10, 40];
  const batch = makeBatch(4, 2, 11, 53, false, [0, 3]);
  const N = batch.inputIds.length;
  setProfiling(true); // only models built while it is on are profiled
  try {
    for (const k of [LAYERS, 2]) {
      const m = loraModel(k);
      takeProfile();
      m.forwardBackward(batch);
      const report = takeProfile().find((r) => r.call === "forward_backward")!;
      const row = report.rows.find((r) => r.region === "layers.recompute" && r.kernel === "matmul")!;
      // q, k, v, o, gate and up (N x out x in each), for the k - 1 recomputed layers
      const perLayer = q * D + 2 * kv * D + D * q + 2 * F * D;
      assert.equal(row.calls, 6 * (k - 1), `k ${k}`);
      assert.ok(
        Math.abs(row.gflop - (2 * N * perLayer * (k - 1)) / 1e9) < 1e-12,
        `k ${k}: ${row.gflop} GFLOP`,
      );
      // down_proj's LoRA x A^T still needs its input, swiglu(g, u)
      const recomputed = (kernel: string) =>
        report.rows.find((r) => r.region === "layers.recompute" && r.kernel === kernel)?.calls ?? 0;
      assert.equal(recomputed("swiglu_fwd"), k - 1);
      m.dispose();
    }
    // Without LoRA on down_proj (PEFT's default q and v) a recomputation does not make swiglu(g, u) either.
    const m = EngineModel.load(LORA_DIR, { threads: THREADS, gradientCheckpointing: LAYERS });
    m.setLora({ r: 2, alpha: 4, targets: ["q_proj", "v_proj"], seed: 3 });
    takeProfile();
    m.forwardBackward(batch);
    const report = takeProfile().find((r) => r.call === "forward_backward")!;
    const kernels = report.rows.filter((r) => r.region === "layers.recompute").map((r) => r.kernel);
    assert.ok(kernels.includes("matmul") && !kernels.includes("swiglu_fwd"), kernels.join(", "));
    m.dispose();
  } finally {
    setProfiling(false);
  }
});
