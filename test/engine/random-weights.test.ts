// EngineModel.random: weights made by the engine from (seed, tensor, element), no checkpoint files.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EngineModel } from "../../src/engine/index.js";
import { TuneforgeError } from "../../src/errors.js";
import { parseModelConfig } from "../../src/model/config.js";

const config = parseModelConfig({
  model_type: "qwen3",
  vocab_size: 997,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  attention_bias: true,
  tie_word_embeddings: false,
});

/** Every base weight by name (full fine-tuning lists them all as trainable). */
function baseWeights(seed: number, std: number): Map<string, Float32Array> {
  const m = EngineModel.random(config, { seed, std, threads: 2 });
  try {
    m.setFullFinetune(true);
    return m.trainable("weights");
  } finally {
    m.dispose();
  }
}

const isRandom = (name: string) => !name.endsWith("norm.weight") && !name.endsWith(".bias");

describe("EngineModel.random", () => {
  it("is deterministic per seed, differs across seeds and across tensors", () => {
    const a = baseWeights(7, 0.05);
    const b = baseWeights(7, 0.05);
    const c = baseWeights(8, 0.05);
    assert.equal(a.size, b.size);
    for (const [name, w] of a)
      assert.deepEqual(Buffer.from(w.buffer), Buffer.from(b.get(name)!.buffer), name);
    const q0 = a.get("model.layers.0.self_attn.q_proj.weight")!;
    const q1 = a.get("model.layers.1.self_attn.q_proj.weight")!;
    const q0c = c.get("model.layers.0.self_attn.q_proj.weight")!;
    const same = (x: Float32Array, y: Float32Array) => x.every((v, i) => v === y[i]);
    assert.ok(!same(q0, q1), "two tensors must not share a stream");
    assert.ok(!same(q0, q0c), "another seed must give other weights");
  });

  it("draws N(0, std^2) for projections and embeddings, 1 for norms, 0 for biases", () => {
    const std = 0.05;
    const w = baseWeights(3, std);
    let n = 0,
      sum = 0,
      sq = 0,
      within1 = 0,
      maxAbs = 0;
    for (const [name, t] of w) {
      if (name.endsWith("norm.weight"))
        assert.ok(
          t.every((v) => v === 1),
          `${name} must be ones`,
        );
      else if (name.endsWith(".bias"))
        assert.ok(
          t.every((v) => v === 0),
          `${name} must be zeros`,
        );
      assert.ok(isRandom(name) || t.length > 0);
      if (!isRandom(name)) continue;
      for (const v of t) {
        n++;
        sum += v;
        sq += v * v;
        if (Math.abs(v) < std) within1++;
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
    }
    assert.ok(w.has("lm_head.weight") && w.has("model.layers.0.self_attn.q_proj.bias"));
    const mean = sum / n;
    const sd = Math.sqrt(sq / n - mean * mean);
    assert.ok(n > 100_000, `only ${n} random values`);
    assert.ok(Math.abs(mean) < 0.01 * std, `mean ${mean}`);
    assert.ok(Math.abs(sd / std - 1) < 0.01, `std ${sd}, asked ${std}`);
    // A normal, not a uniform of the same variance: 68.3% within one sd (a uniform has 57.7%), tails past 3 sd.
    assert.ok(Math.abs(within1 / n - 0.6827) < 0.005, `within 1 sd: ${within1 / n}`);
    assert.ok(maxAbs > 3.5 * std && maxAbs < 6 * std, `max |w| ${maxAbs}`);
  });

  it("runs forward and a LoRA step with finite numbers and the loss of near-uniform logits", () => {
    const m = EngineModel.random(config, { seed: 1, std: 0.02, threads: 2 });
    try {
      const rows = 2,
        T = 12;
      const inputIds = Int32Array.from({ length: rows * T }, (_, i) => (i * 31 + 5) % config.vocabSize);
      const logits = m.forward({ rows, inputIds });
      assert.equal(logits.length, rows * T * config.vocabSize);
      assert.ok(logits.every(Number.isFinite));
      assert.ok(
        logits.some((v) => v !== logits[0]),
        "logits must depend on the weights",
      );
      m.setLora({ r: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"], dropout: 0.1 });
      const out = m.forwardBackward({ rows, inputIds, labels: inputIds });
      // std 0.02 weights give logits near 0, so the loss is close to ln(vocab).
      assert.ok(Math.abs(out.loss - Math.log(config.vocabSize)) < 0.05, `loss ${out.loss}`);
      const norm = m.adamwStep({ lr: 1e-3 }).gradNorm;
      assert.ok(Number.isFinite(norm) && norm > 0, `grad norm ${norm}`);
    } finally {
      m.dispose();
    }
  });

  it("rounds the same draws to bf16 for bf16 weights", () => {
    const rows = 2,
      T = 8;
    const inputIds = Int32Array.from({ length: rows * T }, (_, i) => (i * 17 + 3) % config.vocabSize);
    const logits = (seed: number, weights: "f32" | "bf16") => {
      const m = EngineModel.random(config, { seed, std: 0.5, weights, threads: 2 });
      try {
        assert.equal(m.memory().weights, weights);
        return m.forward({ rows, inputIds });
      } finally {
        m.dispose();
      }
    };
    const f32 = logits(5, "f32");
    const bf16 = logits(5, "bf16");
    const other = logits(6, "f32");
    const maxDiff = (a: Float32Array, b: Float32Array) =>
      a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
    const scale = f32.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // bf16 keeps 8 bits of mantissa: the same weights give logits within a few % of the fp32 ones...
    assert.ok(maxDiff(f32, bf16) < 0.05 * scale, `bf16 vs f32: ${maxDiff(f32, bf16)} of ${scale}`);
    assert.ok(maxDiff(f32, bf16) > 0, "bf16 weights must be rounded");
    // ...while other weights give other logits altogether.
    assert.ok(maxDiff(f32, other) > 0.3 * scale, `other seed: ${maxDiff(f32, other)} of ${scale}`);
  });

  it("rejects a bad seed or std with a TuneforgeError", () => {
    assert.throws(() => EngineModel.random(config, { std: -1 }), TuneforgeError);
    assert.throws(() => EngineModel.random(config, { std: Number.NaN }), TuneforgeError);
    assert.throws(() => EngineModel.random(config, { seed: 1.5 }), TuneforgeError);
  });
});
