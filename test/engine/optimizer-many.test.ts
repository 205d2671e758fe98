// The batched optimizer step (Backend::adamw_many, one call over every trainable tensor): bitwise the per-tensor
// adamw on the CPU, and a training run through it moves every tensor and repeats exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { kernelCheck } from "../../src/engine/native.js";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { writeRandomModel } from "./random-model.js";

test("adamw_many equals adamw per tensor bit for bit (odd sizes, an empty tensor, masked vector tails)", () => {
  for (const seed of [3, 11]) {
    const many = kernelCheck("cpu", seed).filter((e) => e.op === "adamw" && e.shape.startsWith("many"));
    assert.deepEqual(
      many.map((e) => e.output),
      ["p", "m", "v"],
    );
    for (const e of many) {
      assert.ok(e.count > 4000 && e.refMax > 0, `${e.output} compared real values`);
      assert.equal(e.maxAbs, 0, `${e.output}: adamw_many differs from per-tensor adamw`);
    }
  }
});

const DIR = writeRandomModel(7, { num_hidden_layers: 1 });

function train(threads: number): Map<string, { A: Float32Array; B: Float32Array }> {
  const m = EngineModel.load(DIR, { threads });
  try {
    m.setLora({ r: 3, alpha: 6, targets: [...ALL_PROJECTIONS], seed: 2 });
    const V = m.config.vocabSize;
    const inputIds = Int32Array.from({ length: 2 * 19 }, (_, i) => (i * 31 + 5) % V);
    const batch: Batch = { rows: 2, inputIds, labels: Int32Array.from(inputIds) };
    for (let step = 0; step < 3; step++) {
      m.zeroGrads();
      m.forwardBackward(batch);
      m.adamwStep({ lr: 1e-2, maxGradNorm: 1, weightDecay: 0.1 });
    }
    return m.loraWeights();
  } finally {
    m.dispose();
  }
}

test("a LoRA run through the batched step moves every adapter and repeats bit for bit", () => {
  const one = train(2);
  const two = train(2);
  const fresh = EngineModel.load(DIR);
  fresh.setLora({ r: 3, alpha: 6, targets: [...ALL_PROJECTIONS], seed: 2 });
  const init = fresh.loraWeights();
  fresh.dispose();
  assert.equal(one.size, init.size);
  for (const [name, w] of one) {
    const w0 = init.get(name)!;
    // A starts random and B at zero: after three steps both moved (B's gradient is nonzero once A is).
    assert.ok(
      w.A.some((x, i) => x !== w0.A[i]),
      `${name}.A moved`,
    );
    assert.ok(
      w.B.some((x) => x !== 0),
      `${name}.B moved`,
    );
    assert.deepEqual(two.get(name), w, `${name}: a second run differs`);
  }
});
