// The vectorised attention kernels on rows longer than their vector blocks (90 positions: blocks of 64 and
// 16 plus padding), a head dim that takes both register paths (40 = 32 + 8), grouped KV heads, padded and
// packed rows: gradients through q/k/v against central finite differences, packing against separate rows,
// and the multi-threaded path (above the size where attention forks) against one thread.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { createRng } from "../../src/data/random.js";
import { writeRandomModel } from "./random-model.js";

const V = 61;
const DIR = writeRandomModel(7, {
  vocab_size: V,
  hidden_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 40,
});
const TARGETS = ["q_proj", "k_proj", "v_proj"] as const;

function load(threads: number): EngineModel {
  const m = EngineModel.load(DIR, { threads });
  m.setLora({ r: 2, alpha: 4, useRslora: false, targets: [...TARGETS], seed: 3 });
  const rng = createRng(4);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

const tokens = (n: number, seed: number) => {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.int(V));
};
const A = tokens(90, 1);
const B = tokens(70, 2);
const C = tokens(20, 3);
const labelsOf = (ex: number[]) => ex.map((t, i) => (i % 5 === 0 ? -100 : t));

// Rows of 90 positions: A alone, and B followed by 20 padding positions.
function paddedBatch(): Batch {
  const T = 90;
  const ids = new Int32Array(2 * T);
  const mask = new Int32Array(2 * T);
  const labels = new Int32Array(2 * T).fill(-100);
  [A, B].forEach((ex, r) =>
    ex.forEach((t, i) => {
      ids[r * T + i] = t;
      mask[r * T + i] = 1;
      labels[r * T + i] = labelsOf(ex)[i];
    }),
  );
  return { rows: 2, inputIds: ids, attentionMask: mask, labels };
}

const sumOfSquares = (g: Float32Array) => g.reduce((s, x) => s + x * x, 0);

function gradsOf(m: EngineModel, batch: Batch) {
  m.zeroGrads();
  const out = m.forwardBackward(batch, { gradScale: 1 });
  return { loss: out.lossSum, grads: m.trainable("grads") };
}

test("gradients through attention on long padded rows match central finite differences", () => {
  const m = load(1);
  const batch = paddedBatch();
  const { grads } = gradsOf(m, batch);
  const weights = m.trainable("weights");
  const rng = createRng(11);
  assert.equal(grads.size, 2 * TARGETS.length);
  for (const [name, g] of grads) {
    assert.ok(sumOfSquares(g) > 0, `${name} has no gradient`);
    // A unit direction along the gradient's signs, a random quarter flipped.
    const dir = Float32Array.from(g, (x) => (x >= 0 !== rng.next() < 0.25 ? 1 : -1) / Math.sqrt(g.length));
    const analytic = g.reduce((s, x, i) => s + x * dir[i], 0);
    const w = weights.get(name)!;
    const lossAt = (t: number) => {
      m.setTrainable("weights", new Map([[name, Float32Array.from(w, (x, i) => x + t * dir[i])]]));
      return m.evalLoss(batch).lossSum;
    };
    const central = (h: number) => (lossAt(h) - lossAt(-h)) / (2 * h);
    const numeric = (4 * central(1e-2) - central(2e-2)) / 3; // Richardson: error O(h^4)
    m.setTrainable("weights", new Map([[name, w]]));
    const rel = Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), 1e-3);
    assert.ok(rel < 5e-4, `${name}: finite difference ${numeric} vs analytic ${analytic} (rel ${rel})`);
  }
  m.dispose();
});

test("a packed row gives the loss and gradients of its sequences run separately", () => {
  const m = load(1);
  const rowOf = (ex: number[]): Batch => ({
    rows: 1,
    inputIds: Int32Array.from(ex),
    labels: Int32Array.from(labelsOf(ex)),
  });
  const parts = [A, C].map((ex) => gradsOf(m, rowOf(ex)));
  const packed = gradsOf(m, {
    rows: 1,
    inputIds: Int32Array.from([...A, ...C]),
    labels: Int32Array.from([...labelsOf(A), ...labelsOf(C)]),
    segmentIds: Int32Array.from([...A.map(() => 0), ...C.map(() => 1)]),
  });
  const loss = parts[0].loss + parts[1].loss;
  assert.ok(Math.abs(packed.loss - loss) < 1e-5 * loss, `packed ${packed.loss} vs separate ${loss}`);
  for (const [name, g] of packed.grads) {
    const a = parts[0].grads.get(name)!;
    const c = parts[1].grads.get(name)!;
    let err = 0;
    for (let i = 0; i < g.length; i++) err = Math.max(err, Math.abs(g[i] - a[i] - c[i]));
    assert.ok(err < 1e-4 * Math.sqrt(sumOfSquares(g) / g.length) + 1e-7, `${name}: max diff ${err}`);
  }
  m.dispose();
});

test("multi-threaded attention is bit-identical run to run and agrees with one thread", () => {
  const batch = paddedBatch();
  const run = (threads: number) => {
    const m = load(threads);
    const r = gradsOf(m, batch);
    const logits = m.forward(batch);
    m.dispose();
    return { ...r, logits };
  };
  const one = run(1);
  const twoA = run(2);
  const twoB = run(2);
  assert.deepEqual(twoB.logits, twoA.logits);
  assert.equal(twoB.loss, twoA.loss);
  assert.ok(Math.abs(twoA.loss - one.loss) < 1e-5 * one.loss);
  for (const [name, g] of one.grads) {
    assert.deepEqual(twoB.grads.get(name), twoA.grads.get(name), `${name} differs between identical runs`);
    const other = twoA.grads.get(name)!;
    let diff = 0;
    for (let i = 0; i < g.length; i++) diff += (g[i] - other[i]) ** 2;
    const rel = Math.sqrt(diff / sumOfSquares(g));
    assert.ok(rel < 1e-5, `${name}: 1 vs 2 threads rel ${rel}`);
  }
});
