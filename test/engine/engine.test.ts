// Engine behaviour on a random model of odd sizes: packed sequences vs separate rows, LoRA and full
// fine-tuning gradients vs central finite differences, chunked loss, token-weighted accumulation,
// dropout, clipping, generation options and memory accounting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { TuneforgeError } from "../../src/errors.js";
import { createRng } from "../../src/data/random.js";
import { maxAbsDiff, relErr } from "./fixture.js";
import { writeRandomModel } from "./random-model.js";

const DIR = writeRandomModel(1);
const V = 53;

function load(options = {}): EngineModel {
  const m = EngineModel.load(DIR, { threads: 1, ...options });
  m.setLora({ r: 3, alpha: 5, useRslora: false, targets: [...ALL_PROJECTIONS], seed: 4 });
  // PEFT starts B at 0; random B makes every gradient non-zero
  const rng = createRng(9);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

function randomTokens(n: number, seed: number): number[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.int(V));
}

// Examples of lengths 7, 5 and 4; the first two tokens of each are a "prompt" (label -100).
const EXAMPLES = [randomTokens(7, 1), randomTokens(5, 2), randomTokens(4, 3)];
const labelsOf = (ex: number[]) => ex.map((t, i) => (i < 2 ? -100 : t));

function paddedBatch(examples: number[][]): Batch {
  const T = Math.max(...examples.map((e) => e.length));
  const ids = new Int32Array(examples.length * T);
  const mask = new Int32Array(examples.length * T);
  const labels = new Int32Array(examples.length * T).fill(-100);
  examples.forEach((ex, r) => {
    ex.forEach((t, i) => {
      ids[r * T + i] = t;
      mask[r * T + i] = 1;
      labels[r * T + i] = labelsOf(ex)[i];
    });
  });
  return { rows: examples.length, inputIds: ids, attentionMask: mask, labels };
}

function packedBatch(examples: number[][]): Batch {
  const flat = examples.flat();
  return {
    rows: 1,
    inputIds: Int32Array.from(flat),
    attentionMask: new Int32Array(flat.length).fill(1),
    labels: Int32Array.from(examples.flatMap(labelsOf)),
    segmentIds: Int32Array.from(examples.flatMap((ex, s) => ex.map(() => s))),
  };
}

function flatGrads(m: EngineModel): Map<string, Float32Array> {
  return m.trainable("grads");
}

test("packed sequences give the same logits, loss and gradients as separate rows", () => {
  const m = load();
  const sep = paddedBatch(EXAMPLES);
  const packed = packedBatch(EXAMPLES);
  const a = m.forward(sep);
  const b = m.forward(packed);
  const T = 7;
  let at = 0;
  EXAMPLES.forEach((ex, r) => {
    for (let i = 0; i < ex.length; i++, at++) {
      const e = maxAbsDiff(
        a.subarray((r * T + i) * V, (r * T + i + 1) * V),
        b.subarray(at * V, (at + 1) * V),
      );
      assert.ok(e < 1e-5, `example ${r} token ${i}: ${e}`);
    }
  });
  m.zeroGrads();
  const ls = m.forwardBackward(sep);
  const gs = flatGrads(m);
  m.zeroGrads();
  const lp = m.forwardBackward(packed);
  const gp = flatGrads(m);
  assert.equal(ls.tokens, 5 + 3 + 2);
  assert.equal(lp.tokens, ls.tokens);
  assert.ok(Math.abs(ls.lossSum - lp.lossSum) < 1e-5 * ls.lossSum);
  for (const [name, g] of gs) assert.ok(relErr(gp.get(name)!, g) < 1e-5, name);
  // and packing really isolates examples: without segment ids the logits of later examples change
  const leaky = m.forward({ ...packed, segmentIds: undefined });
  assert.ok(maxAbsDiff(leaky.subarray(7 * V), b.subarray(7 * V)) > 1e-3);
  m.dispose();
});

// d/dt loss(w + t * dir) at t = 0 by Richardson-extrapolated central differences (error O(h^4)), so the
// comparison is limited by fp32 rounding of the loss, not by the step size.
function directional(lossAt: (t: number) => number, h: number): number {
  const central = (s: number) => (lossAt(s) - lossAt(-s)) / (2 * s);
  return (4 * central(h / 2) - central(h)) / 3;
}

// A unit direction with entries +-1/sqrt(n): mostly the gradient's signs (so the derivative along it is
// large against fp32 noise in the loss), a random quarter flipped; and the analytic derivative along it.
function randomDirection(g: Float32Array, rng: ReturnType<typeof createRng>) {
  const dir = Float32Array.from(g, (x) => (x >= 0 !== rng.next() < 0.25 ? 1 : -1) / Math.sqrt(g.length));
  let analytic = 0;
  for (let i = 0; i < g.length; i++) analytic += g[i] * dir[i];
  return { dir, analytic };
}

function assertClose(name: string, numeric: number, analytic: number, scale: number) {
  const err = Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), scale);
  assert.ok(err < 5e-4, `${name}: finite difference ${numeric} vs analytic ${analytic} (rel ${err})`);
}

// Central differences of the loss along one random direction per tensor vs the analytic gradient.
function checkDirectional(m: EngineModel, batch: Batch, names: string[]) {
  m.zeroGrads();
  m.forwardBackward(batch);
  const grads = flatGrads(m);
  const weights = m.trainable("weights");
  const rng = createRng(11);
  for (const name of names) {
    const w = weights.get(name)!;
    const { dir, analytic } = randomDirection(grads.get(name)!, rng);
    const numeric = directional((t) => {
      const moved = new Map(weights);
      moved.set(
        name,
        Float32Array.from(w, (x, i) => x + t * dir[i]),
      );
      setTrainable(m, moved);
      return m.forwardBackward(batch).loss;
    }, 2e-2);
    setTrainable(m, weights);
    assertClose(name, numeric, analytic, 1e-3);
  }
}

function setTrainable(m: EngineModel, values: Map<string, Float32Array>) {
  m.setTrainable("weights", values);
}

test("LoRA gradients match central finite differences", () => {
  const m = load();
  const names = [...m.trainable("weights").keys()];
  assert.equal(names.length, 2 * 7 * 2);
  checkDirectional(m, paddedBatch(EXAMPLES), names);
  m.dispose();
});

test("chunked loss and token-weighted accumulation give the same loss and gradients", () => {
  const whole = paddedBatch(EXAMPLES);
  const m = load();
  const ref = m.forwardBackward(whole);
  const gRef = flatGrads(m);
  const chunked = load({ lossChunkTokens: 3 });
  const c = chunked.forwardBackward(whole);
  assert.ok(Math.abs(c.lossSum - ref.lossSum) < 1e-6 * ref.lossSum);
  for (const [name, g] of flatGrads(chunked)) assert.ok(relErr(g, gRef.get(name)!) < 1e-6, name);
  // two micro-batches, each scaled by 1/total tokens, accumulate to the whole batch's mean gradient
  const acc = load();
  const total = ref.tokens;
  const p1 = acc.forwardBackward(paddedBatch(EXAMPLES.slice(0, 1)), { gradScale: 1 / total });
  const p2 = acc.forwardBackward(paddedBatch(EXAMPLES.slice(1)), { gradScale: 1 / total });
  assert.equal(p1.tokens + p2.tokens, total);
  assert.ok(Math.abs((p1.lossSum + p2.lossSum) / total - ref.loss) < 1e-5);
  for (const [name, g] of flatGrads(acc)) assert.ok(relErr(g, gRef.get(name)!) < 1e-5, name);
  for (const x of [m, chunked, acc]) x.dispose();
});

test("LoRA dropout is seeded: same seed same loss, and it changes the loss", () => {
  const batch = paddedBatch(EXAMPLES);
  const run = (dropout: number, seed: number) => {
    const m = EngineModel.load(DIR, { threads: 1 });
    m.setLora({ r: 3, alpha: 5, targets: ["q_proj", "down_proj"], dropout, seed });
    const w = m.loraWeights();
    for (const p of w.values()) p.B.fill(0.3);
    m.setLoraWeights(w);
    const loss = m.forwardBackward(batch).loss;
    m.dispose();
    return loss;
  };
  assert.equal(run(0.3, 5), run(0.3, 5));
  assert.notEqual(run(0.3, 5), run(0.3, 6));
  assert.notEqual(run(0.3, 5), run(0, 5));
});

test("adamwStep reports the global gradient norm and clips to maxGradNorm", () => {
  const batch = paddedBatch(EXAMPLES);
  const m = load();
  m.forwardBackward(batch);
  let ss = 0;
  for (const g of flatGrads(m).values()) for (const x of g) ss += x * x;
  const before = m.trainable("weights");
  const { gradNorm } = m.adamwStep({ lr: 1e-2, maxGradNorm: 1e-3 });
  assert.ok(Math.abs(gradNorm - Math.sqrt(ss)) < 1e-5 * gradNorm);
  // clipped gradients were stored: their norm is now maxGradNorm
  let clipped = 0;
  for (const g of flatGrads(m).values()) for (const x of g) clipped += x * x;
  assert.ok(Math.abs(Math.sqrt(clipped) - 1e-3) < 1e-6);
  const after = m.trainable("weights");
  assert.ok(maxAbsDiff(after.get(before.keys().next().value!)!, before.values().next().value!) > 1e-4);
  m.dispose();
});

test("the trainable set follows setLora and setFullFinetune between steps", () => {
  // The engine keeps its list of trainable tensors between steps: it must be rebuilt when they are replaced.
  const batch = paddedBatch(EXAMPLES);
  const m = EngineModel.load(DIR, { threads: 1 });
  const step = () => {
    m.zeroGrads();
    m.forwardBackward(batch);
    m.adamwStep({ lr: 1e-2 });
  };
  m.setLora({ r: 2, alpha: 4, useRslora: false, targets: ["q_proj"], seed: 1 });
  step();
  assert.equal(m.trainable("weights").size, 2 * 2);
  m.setLora({ r: 3, alpha: 5, useRslora: false, targets: [...ALL_PROJECTIONS], seed: 2 });
  m.resetOptimizer();
  step();
  const lora = m.trainable("weights");
  assert.equal(lora.size, 2 * 7 * 2);
  // PEFT starts every B at 0: one step moves each of the new ones
  for (const [name, w] of lora)
    if (name.endsWith("lora_B.weight"))
      assert.ok(
        w.some((x) => x !== 0),
        `${name} was not updated`,
      );
  m.setFullFinetune(true);
  m.resetOptimizer();
  const before = m.trainable("weights").get("model.norm.weight")!.slice();
  step();
  assert.ok(maxAbsDiff(m.trainable("weights").get("model.norm.weight")!, before) > 1e-4);
  m.dispose();
});

test("full fine-tuning gradients match central finite differences", () => {
  const m = EngineModel.load(DIR, { threads: 1 });
  m.setFullFinetune(true);
  const names = [
    "model.embed_tokens.weight",
    "model.norm.weight",
    "model.layers.0.input_layernorm.weight",
    "model.layers.1.post_attention_layernorm.weight",
    "model.layers.0.self_attn.q_norm.weight",
    "model.layers.1.self_attn.k_norm.weight",
    "model.layers.0.self_attn.k_proj.weight",
    "model.layers.0.self_attn.v_proj.bias",
    "model.layers.1.self_attn.o_proj.bias",
    "model.layers.1.mlp.gate_proj.weight",
    "model.layers.0.mlp.down_proj.bias",
  ];
  const batch = paddedBatch(EXAMPLES);
  m.zeroGrads();
  m.forwardBackward(batch);
  const grads = m.trainable("grads");
  const rng = createRng(3);
  for (const name of names) {
    const w = m.trainable("weights").get(name)!;
    const { dir, analytic } = randomDirection(grads.get(name)!, rng);
    const numeric = directional((t) => {
      setFull(
        m,
        name,
        Float32Array.from(w, (x, i) => x + t * dir[i]),
      );
      return m.forwardBackward(batch).loss;
    }, 2e-2);
    setFull(m, name, w);
    assertClose(name, numeric, analytic, 1e-3);
  }
  // one AdamW step moves every weight tensor
  const before = m.trainable("weights");
  m.adamwStep({ lr: 1e-3 });
  for (const [name, w] of m.trainable("weights")) assert.ok(maxAbsDiff(w, before.get(name)!) > 0, name);
  m.dispose();
});

function setFull(m: EngineModel, name: string, value: Float32Array) {
  m.setTrainable("weights", new Map([[name, value]]));
}

test("generation: greedy equals top-k 1 sampling, eos ends a row, seeded sampling repeats", () => {
  const m = load();
  const prompts = [EXAMPLES[0], EXAMPLES[2]];
  const greedy = m.generate(prompts, { maxNewTokens: 6, eosTokenIds: [] });
  assert.deepEqual(
    greedy.map((g) => g.length),
    [6, 6],
  );
  assert.deepEqual(
    m.generate(prompts, { maxNewTokens: 6, eosTokenIds: [], doSample: true, topK: 1, seed: 3 }),
    greedy,
  );
  // each row alone gives the same tokens as in the left-padded batch
  assert.deepEqual(m.generate([prompts[1]], { maxNewTokens: 6, eosTokenIds: [] })[0], greedy[1]);
  const eos = greedy[0][2];
  const stopped = m.generate(prompts, { maxNewTokens: 6, eosTokenIds: [eos] });
  assert.deepEqual(stopped[0], greedy[0].slice(0, greedy[0].indexOf(eos) + 1));
  const s1 = m.generate(prompts, {
    maxNewTokens: 8,
    eosTokenIds: [],
    doSample: true,
    temperature: 1.5,
    topP: 0.9,
    seed: 7,
  });
  const s2 = m.generate(prompts, {
    maxNewTokens: 8,
    eosTokenIds: [],
    doSample: true,
    temperature: 1.5,
    topP: 0.9,
    seed: 7,
  });
  assert.deepEqual(s1, s2);
  // a strong repetition penalty forbids repeating any token already seen
  const rep = m.generate([EXAMPLES[0]], { maxNewTokens: 10, eosTokenIds: [], repetitionPenalty: 1e6 })[0];
  const seen = new Set(EXAMPLES[0]);
  for (const t of rep) {
    assert.ok(!seen.has(t), `token ${t} repeated`);
    seen.add(t);
  }
  m.dispose();
});

test("memory is accounted, bad input is a TuneforgeError, disposed models refuse work", () => {
  const m = load();
  const before = m.memory();
  assert.ok(before.inUse > 0 && before.peak >= before.inUse);
  m.forwardBackward(paddedBatch(EXAMPLES));
  assert.ok(m.memory().peak > before.inUse);
  assert.throws(() => m.forward({ rows: 1, inputIds: Int32Array.from([1, V]) }), TuneforgeError);
  assert.throws(() => m.forward({ rows: 2, inputIds: Int32Array.from([1, 2, 3]) }), TuneforgeError);
  const inUse = m.memory().inUse;
  m.dispose();
  assert.ok(EngineModel.load(DIR, { threads: 1 }).memory().inUse <= inUse);
  assert.throws(() => m.forward({ rows: 1, inputIds: Int32Array.from([1]) }), TuneforgeError);
});
