// A small random checkpoint of odd sizes (head_dim independent of hidden/heads, multi-query attention,
// every bias, qk-norm, tied head) written as an HF folder, for tests that must not depend on fixtures.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRng } from "../../src/data/random.js";
import { parseModelConfig } from "../../src/model/config.js";
import { expectedTensors } from "../../src/model/layout.js";
import { writeSafetensors } from "../../src/model/safetensors.js";

export function writeRandomModel(seed = 1, overrides: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "tf-engine-"));
  const raw = {
    model_type: "qwen3",
    vocab_size: 53,
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 3,
    num_key_value_heads: 1,
    head_dim: 10,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    attention_bias: true,
    mlp_bias: true,
    tie_word_embeddings: true,
    ...overrides,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  const rng = createRng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const tensors = expectedTensors(parseModelConfig(raw)).map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = spec.name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) data[i] = isNorm ? 0.6 + 0.8 * rng.next() : 0.25 * normal();
    return { name: spec.name, dtype: "F32" as const, shape: spec.shape, data };
  });
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}
