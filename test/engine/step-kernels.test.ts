// The fast training-step kernels: the vectorised loss head against a float64 softmax cross-entropy over the
// engine's own logits (a vocabulary that is not a multiple of the vector width, uneven loss chunks), results
// that do not depend on how attention work is scheduled across threads, and the per-kernel profile mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { createRng } from "../../src/data/random.js";
import { writeRandomModel } from "./random-model.js";

const V = 1003; // 125 vectors of 8 plus a tail of 3
const DIR = writeRandomModel(3, { vocab_size: V, num_hidden_layers: 1 });

function load(threads: number, lossChunkTokens?: number): EngineModel {
  const m = EngineModel.load(DIR, { threads, lossChunkTokens });
  m.setLora({ r: 2, alpha: 4, useRslora: false, targets: [...ALL_PROJECTIONS], seed: 4 });
  const rng = createRng(5);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

// Two rows of 40 tokens; some labels ignored, so the loss rows are not one contiguous block.
function batch(): Batch {
  const rng = createRng(8);
  const T = 40;
  const inputIds = Int32Array.from({ length: 2 * T }, () => rng.int(V));
  const labels = Int32Array.from(inputIds, (t, i) => (i % 7 === 3 ? -100 : t));
  return { rows: 2, inputIds, labels };
}

// Sum over targets of logsumexp(z) - z[target], in float64, from the engine's [rows, T, V] logits.
function referenceLossSum(logits: Float32Array, b: Batch): { sum: number; tokens: number } {
  const T = b.inputIds.length / b.rows;
  let sum = 0;
  let tokens = 0;
  for (let r = 0; r < b.rows; r++)
    for (let t = 0; t + 1 < T; t++) {
      const y = b.labels![r * T + t + 1];
      if (y === -100) continue;
      const z = logits.subarray((r * T + t) * V, (r * T + t + 1) * V);
      let mx = -Infinity;
      for (const x of z) mx = Math.max(mx, x);
      let s = 0;
      for (const x of z) s += Math.exp(x - mx);
      sum += mx + Math.log(s) - z[y];
      tokens++;
    }
  return { sum, tokens };
}

test("the vectorised loss head matches a float64 cross-entropy, whatever the chunking", () => {
  const b = batch();
  const m = load(1);
  const ref = referenceLossSum(m.forward(b), b);
  assert.equal(ref.tokens, 2 * 39 - 11);
  for (const chunk of [undefined, 1, 5, 29]) {
    const mc = chunk === undefined ? m : load(1, chunk);
    const e = mc.evalLoss(b);
    mc.zeroGrads();
    const f = mc.forwardBackward(b);
    assert.equal(e.tokens, ref.tokens);
    assert.ok(
      Math.abs(e.lossSum - ref.sum) < 1e-6 * ref.sum,
      `chunk ${chunk}: eval ${e.lossSum} vs ${ref.sum}`,
    );
    assert.ok(
      Math.abs(f.lossSum - ref.sum) < 1e-6 * ref.sum,
      `chunk ${chunk}: train ${f.lossSum} vs ${ref.sum}`,
    );
    if (mc !== m) mc.dispose();
  }
  m.dispose();
});

function gradsAfterStep(threads: number): Map<string, Float32Array> {
  const m = load(threads);
  m.zeroGrads();
  m.forwardBackward(batch());
  const g = m.trainable("grads");
  m.dispose();
  return g;
}

test("gradients are bit-identical run to run, and agree across thread counts", () => {
  const one = gradsAfterStep(1);
  const twoA = gradsAfterStep(2);
  const twoB = gradsAfterStep(2);
  for (const [name, g] of one) {
    assert.deepEqual(twoB.get(name), twoA.get(name), `${name} differs between identical runs`);
    const other = twoA.get(name)!;
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < g.length; i++) {
      diff += (g[i] - other[i]) ** 2;
      norm += g[i] ** 2;
    }
    assert.ok(
      norm > 0 && Math.sqrt(diff / norm) < 1e-5,
      `${name}: 1 vs 2 threads rel ${Math.sqrt(diff / norm)}`,
    );
  }
});

test("TUNEFORGE_PROFILE=1 prints per-kernel totals for each engine call", () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-profile-"));
  try {
    const script = join(dir, "step.ts");
    const engine = resolve("src/engine/index.ts");
    writeFileSync(
      script,
      `import { EngineModel } from ${JSON.stringify(engine)};
const m = EngineModel.load(${JSON.stringify(DIR)}, { threads: 1 });
m.setLora({ r: 2, alpha: 4, useRslora: false, targets: ["q_proj"], seed: 1 });
const inputIds = Int32Array.from({ length: 12 }, (_, i) => i * 5);
m.zeroGrads();
m.forwardBackward({ rows: 1, inputIds, labels: inputIds });
m.adamwStep({ lr: 1e-3 });
`,
    );
    const run = (profile: string) =>
      spawnSync(process.execPath, ["--import", "tsx", script], {
        env: { ...process.env, TUNEFORGE_PROFILE: profile },
        encoding: "utf8",
      });
    const on = run("1");
    assert.equal(on.status, 0, on.stderr);
    const report = on.stderr.slice(on.stderr.indexOf("forward_backward:"));
    assert.match(report, /^forward_backward: [\d.]+ ms, kernels [\d.]+ ms/);
    // one layer: one attention call each way; 11 targets fit one loss chunk; 7 base projections forward
    assert.match(report, /layers\.fwd\/attention_fwd\s+1 calls/);
    assert.match(report, /layers\.bwd\/attention_bwd\s+1 calls/);
    assert.match(report, /head\/cross_entropy\s+1 calls/);
    assert.match(report, /layers\.fwd\/matmul\s+7 calls .* GFLOP\/s/);
    assert.match(report, /lora\.fwd\/matmul\s+2 calls/);
    // one batched update over the two LoRA tensors
    assert.match(on.stderr.slice(on.stderr.indexOf("adamw_step:")), /optimizer\/adamw_many\s+1 calls/);
    const off = run("0");
    assert.equal(off.status, 0, off.stderr);
    assert.doesNotMatch(off.stderr, /tuneforge profile/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
