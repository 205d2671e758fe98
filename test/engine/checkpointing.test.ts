// Activation checkpointing (issue 4): gradients bitwise equal to the plain backward (LoRA with dropout, full
// fine-tuning, packing, padding), the dropout counter left where the plain run leaves it, a real cut in the
// engine's peak memory, and a training memory estimate that does not promise more than the engine saves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { parseModelConfig } from "../../src/model/config.js";
import { checkTrainingMemory, estimateTrainingMemory } from "../../src/train/memory.js";
import { TuneforgeError } from "../../src/errors.js";
import { writeRandomModel } from "./random-model.js";
import {
  PEAK_BATCH,
  PEAK_LORA,
  PEAK_MODEL,
  assertBitwiseEqual,
  layerSetFloats,
  loraModelWithRandomB,
  makeBatch,
} from "./checkpointing-shared.js";

const THREADS = 2;

/** Every trainable gradient, by name, as plain arrays (deepEqual on them is a bitwise comparison, -0 aside). */
function grads(m: EngineModel): Map<string, Float32Array> {
  return m.trainable("grads");
}

function anyNonZero(g: Map<string, Float32Array>): boolean {
  return [...g.values()].some((x) => x.some((v) => v !== 0));
}

// Odd shapes: 3 layers, MQA, head_dim 10, every bias, qk-norm, tied head (random-model.ts defaults).
const LORA_DIR = writeRandomModel(11, { num_hidden_layers: 3 });

function loraModel(checkpointing: boolean): EngineModel {
  return loraModelWithRandomB(LORA_DIR, THREADS, checkpointing);
}

test("LoRA with dropout: checkpointed gradients, losses and updates are bitwise the plain ones", () => {
  const plain = loraModel(false);
  const ckpt = loraModel(true);
  assert.equal(ckpt.gradientCheckpointing, true);
  assert.equal(plain.gradientCheckpointing, false);
  const batches: Batch[] = [
    makeBatch(1, 3, 13, 53, true, [0, 4, 9]), // packed and padded
    makeBatch(2, 2, 17, 53, false, [3, 0]), // padded only, another length (activations reallocated)
    makeBatch(3, 3, 13, 53, true, [1, 0, 0]),
  ];
  for (let step = 0; step < 2; step++) {
    for (const m of [plain, ckpt]) m.zeroGrads();
    for (const b of batches) {
      const a = plain.forwardBackward(b, { gradScale: 1 / 64 });
      const c = ckpt.forwardBackward(b, { gradScale: 1 / 64 });
      assert.equal(c.lossSum, a.lossSum);
      assert.equal(c.tokens, a.tokens);
      assert.equal(
        ckpt.dropoutCounter,
        plain.dropoutCounter,
        "the recomputation leaves the counter as it was",
      );
    }
    const g = grads(plain);
    assert.ok(anyNonZero(g));
    assertBitwiseEqual(grads(ckpt), g, `step ${step} grads`);
    const na = plain.adamwStep({ lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 });
    const nc = ckpt.adamwStep({ lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 });
    assert.equal(nc.gradNorm, na.gradNorm);
    assertBitwiseEqual(ckpt.trainable("weights"), plain.trainable("weights"), `step ${step} weights`);
  }
  // Evaluation and inference after checkpointed training reuse its buffers and agree with the plain model.
  const b = batches[0];
  assert.equal(ckpt.evalLoss(b).lossSum, plain.evalLoss(b).lossSum);
  assert.deepEqual(ckpt.forward(b), plain.forward(b));
  plain.dispose();
  ckpt.dispose();
});

test("the recomputed forward needs the same dropout masks: a shifted counter changes the gradients", () => {
  // Guards the test above: with dropout, the gradients do depend on which masks backward sees.
  const b = makeBatch(5, 2, 11, 53, false, [0, 2]);
  const run = (counter: number) => {
    const m = loraModel(true);
    m.dropoutCounter = counter;
    m.forwardBackward(b);
    const g = grads(m);
    m.dispose();
    return g;
  };
  const g0 = run(0);
  assertBitwiseEqual(run(0), g0, "same counter");
  assert.throws(() => assertBitwiseEqual(run(1), g0, "shifted counter"), assert.AssertionError);
});

test("full fine-tuning of an untied model: checkpointed gradients are bitwise the plain ones", () => {
  const dir = writeRandomModel(12, { num_hidden_layers: 4, tie_word_embeddings: false, hidden_size: 20 });
  const load = (on: boolean) => {
    const m = EngineModel.load(dir, { threads: THREADS });
    m.setFullFinetune(true);
    m.setGradientCheckpointing(on);
    return m;
  };
  const plain = load(false);
  const ckpt = load(true);
  for (const b of [makeBatch(6, 2, 15, 53, true, [0, 6]), makeBatch(7, 1, 9, 53, false, [0])]) {
    for (const m of [plain, ckpt]) m.zeroGrads();
    assert.equal(ckpt.forwardBackward(b).lossSum, plain.forwardBackward(b).lossSum);
    const g = grads(plain);
    assert.ok(g.has("lm_head.weight") && g.has("model.layers.0.self_attn.q_norm.weight"));
    assert.ok(anyNonZero(g));
    assertBitwiseEqual(grads(ckpt), g, "full fine-tuning grads");
  }
  // Switching the same model off again gives the plain gradients too (the activation layout follows the mode).
  const b = makeBatch(8, 2, 15, 53, true, [2, 0]);
  for (const m of [plain, ckpt]) m.zeroGrads();
  plain.forwardBackward(b);
  ckpt.setGradientCheckpointing(false);
  ckpt.forwardBackward(b);
  assertBitwiseEqual(grads(ckpt), grads(plain), "after switching off");
  plain.dispose();
  ckpt.dispose();
});

test("checkpointing cuts the engine's peak memory by about (layers - 1) layers' activations", () => {
  const dir = writeRandomModel(13, PEAK_MODEL);
  const measure = (mode: "on" | "off") => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", resolve(import.meta.dirname, "checkpointing-peak.ts"), dir, mode],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      baseInUse: number;
      basePeak: number;
      peak: number;
      lossSum: number;
    };
    assert.ok(out.peak > out.basePeak, "the step set the high-water mark");
    return { ...out, step: out.peak - out.baseInUse };
  };
  const off = measure("off");
  const on = measure("on");
  assert.equal(on.lossSum, off.lossSum);
  assert.equal(on.baseInUse, off.baseInUse);

  const c = PEAK_MODEL;
  const layerFloats = layerSetFloats(c, PEAK_LORA.r);
  const N = PEAK_BATCH.inputIds.length;
  const layerBytes = N * layerFloats * 4;
  const saved = off.step - on.step;
  const L = c.num_hidden_layers;
  assert.ok(
    saved >= (L - 1) * layerBytes * 0.8,
    `saved ${saved} bytes of ${off.step}; expected about ${(L - 1) * layerBytes}`,
  );
  assert.ok(saved <= (L - 1) * layerBytes * 1.2, `saved ${saved}, more than the layers hold`);

  // The trainer's estimate (and the memory check's suggestion) claims a saving the engine really makes.
  const config = parseModelConfig({ model_type: "qwen3", ...PEAK_MODEL, rms_norm_eps: 1e-5 });
  const est = (on: boolean) =>
    estimateTrainingMemory({
      config,
      tokensPerMicroBatch: N,
      finetuning: "lora",
      lora: { r: PEAK_LORA.r, targets: ALL_PROJECTIONS, dropout: PEAK_LORA.dropout },
      gradientCheckpointing: on,
    });
  const promised = est(false).activations - est(true).activations;
  assert.equal(est(false).checkpointedActivations, est(true).activations);
  assert.ok(promised > 0.9 * saved && promised <= saved, `estimate saves ${promised}, engine ${saved}`);
});

test("the memory check suggests checkpointing, with the activations it would leave, only when it is off", () => {
  const config = parseModelConfig({ model_type: "qwen3", ...PEAK_MODEL, rms_norm_eps: 1e-5 });
  const hint = (on: boolean) => {
    const est = estimateTrainingMemory({
      config,
      tokensPerMicroBatch: 400_000,
      finetuning: "full",
      gradientCheckpointing: on,
    });
    try {
      checkTrainingMemory(est, { total: 2 ** 30, free: 2 ** 29 });
    } catch (e) {
      assert.ok(e instanceof TuneforgeError);
      return { hint: e.hint ?? "", est };
    }
    assert.fail("the estimate should not fit in 1 GB");
  };
  const off = hint(false);
  const mb = (b: number) => `${Math.round(b / 2 ** 20)} MB`;
  assert.match(off.hint, /training\.gradient_checkpointing: true/);
  assert.ok(off.hint.includes(`${mb(off.est.activations)} -> ${mb(off.est.checkpointedActivations)}`));
  assert.ok(off.est.checkpointedActivations < off.est.activations / 2);
  assert.doesNotMatch(hint(true).hint, /gradient_checkpointing/);
});
