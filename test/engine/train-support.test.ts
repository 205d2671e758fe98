// Engine features the trainer relies on: a forward-only loss for validation, AdamW state that can be saved
// and restored (the next update is then identical), and a settable LoRA dropout counter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { createRng } from "../../src/data/random.js";
import { writeRandomModel } from "./random-model.js";

const DIR = writeRandomModel(3);

function model(dropout = 0): EngineModel {
  const m = EngineModel.load(DIR, { threads: 1 });
  m.setLora({ r: 2, alpha: 4, targets: [...ALL_PROJECTIONS], dropout, seed: 1 });
  const rng = createRng(2);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

function batch(seed: number): Batch {
  const rng = createRng(seed);
  const ids = Int32Array.from({ length: 2 * 9 }, () => rng.int(53));
  const labels = Int32Array.from(ids, (t, i) => (i % 9 < 3 ? -100 : t));
  const mask = Int32Array.from(ids, (_, i) => (i >= 9 + 7 ? 0 : 1));
  return { rows: 2, inputIds: ids, labels, attentionMask: mask };
}

test("evalLoss equals forwardBackward's loss and leaves gradients and dropout alone", () => {
  const m = model(0.4);
  m.zeroGrads();
  const before = m.dropoutCounter;
  const ev = m.evalLoss(batch(1));
  assert.equal(m.dropoutCounter, before, "no dropout in evaluation");
  for (const g of m.trainable("grads").values()) assert.ok(g.every((x) => x === 0));
  const plain = model(0);
  const fb = plain.forwardBackward(batch(1));
  assert.equal(ev.tokens, fb.tokens);
  assert.ok(Math.abs(ev.lossSum - fb.lossSum) < 1e-4 * fb.lossSum, `${ev.lossSum} vs ${fb.lossSum}`);
  m.dispose();
  plain.dispose();
});

test("optimizer state round-trips: a restored model takes the same next step", () => {
  const a = model();
  for (let s = 0; s < 3; s++) {
    a.zeroGrads();
    a.forwardBackward(batch(10 + s));
    a.adamwStep({ lr: 1e-2, weightDecay: 0.1 });
  }
  const state = a.optimizerState();
  assert.equal(state.step, 3);
  assert.equal(state.m.size, 2 * 2 * 7);
  const b = model();
  assert.equal(b.optimizerState().m.size, 0, "no moments before the first step");
  b.setTrainable("weights", a.trainable("weights"));
  b.setOptimizerState(state);
  for (const m of [a, b]) {
    m.zeroGrads();
    m.forwardBackward(batch(20));
    m.adamwStep({ lr: 1e-2, weightDecay: 0.1 });
  }
  const wa = a.trainable("weights");
  for (const [name, w] of b.trainable("weights")) assert.deepEqual(w, wa.get(name), name);
  // A state that lacks a tensor's moments is refused rather than silently zero-filled.
  const c = model();
  assert.throws(() => c.setOptimizerState({ step: 1, m: new Map(), v: new Map() }), /lacks/);
  a.dispose();
  b.dispose();
  c.dispose();
});

test("the dropout counter decides the masks", () => {
  const m = model(0.3);
  const at = (n: number) => {
    m.dropoutCounter = n;
    m.zeroGrads();
    return m.forwardBackward(batch(5)).loss;
  };
  assert.equal(at(7), at(7));
  assert.notEqual(at(7), at(8));
  assert.ok(m.dropoutCounter > 8, "it advances with each adapted projection");
  m.dispose();
});
