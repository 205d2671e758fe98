import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModelConfig, parseModelConfig, ropeInvFreq } from "../../src/model/config.js";
import { fixtureDir } from "../helpers/fixtures.js";

test("reads the fixture configs of every architecture", () => {
  const q2 = loadModelConfig(fixtureDir("base", "qwen2") + "/model");
  assert.equal(q2.arch, "qwen2");
  assert.equal(q2.qkvBias, true);
  assert.equal(q2.oBias, false);
  assert.equal(q2.tieWordEmbeddings, true);
  const q3 = loadModelConfig(fixtureDir("odd", "qwen3") + "/model");
  assert.equal(q3.qkNorm, true);
  assert.equal(q3.headDim, 24);
  assert.equal(q3.numKvHeads, 1);
  const ll = loadModelConfig(fixtureDir("odd", "llama") + "/model");
  assert.deepEqual(ll.rope, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 64,
  });
  assert.equal(ll.ropeTheta, 500000);
});

test("reads rope settings in the older top-level / rope_scaling form", () => {
  const c = parseModelConfig({
    model_type: "llama",
    hidden_size: 64,
    num_attention_heads: 4,
    intermediate_size: 128,
    num_hidden_layers: 1,
    vocab_size: 10,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  });
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.rope.type, "llama3");
  assert.equal(c.headDim, 16);
});

test("rejects unsupported architectures and rope types with the supported list", () => {
  assert.throws(
    () => parseModelConfig({ model_type: "gpt2" }),
    /not supported.*qwen2, qwen3, llama, mistral/,
  );
  assert.throws(
    () =>
      parseModelConfig({
        model_type: "llama",
        hidden_size: 8,
        num_attention_heads: 2,
        intermediate_size: 8,
        num_hidden_layers: 1,
        vocab_size: 4,
        rope_scaling: { type: "yarn", factor: 4 },
      }),
    /rope type "yarn" is not supported; supported rope types: default, llama3/,
  );
});

test("llama3 rope scaling matches the reference formula", () => {
  const c = loadModelConfig(fixtureDir("odd", "llama") + "/model");
  const inv = ropeInvFreq(c);
  assert.equal(inv.length, 8);
  // Highest frequency is untouched, lowest is divided by the factor.
  assert.equal(inv[0], 1);
  assert.ok(Math.abs(inv[7] - 1 / 500000 ** (14 / 16) / 8) < 1e-15);
});

test("expectedTensors lists exactly the tensors of each fixture checkpoint", async () => {
  const { expectedTensors } = await import("../../src/model/layout.js");
  const { Checkpoint } = await import("../../src/model/safetensors.js");
  for (const shape of ["base", "odd"]) {
    for (const arch of ["qwen2", "qwen3", "llama"]) {
      const dir = fixtureDir(shape, arch) + "/model";
      const ck = Checkpoint.open(dir);
      const specs = expectedTensors(loadModelConfig(dir));
      assert.deepEqual(specs.map((s) => s.name).sort(), ck.names().sort(), `${shape}/${arch}`);
      for (const s of specs) assert.deepEqual(ck.info(s.name).shape, s.shape, s.name);
      ck.close();
    }
  }
});
