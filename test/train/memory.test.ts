// The pre-training memory estimate: its arithmetic on a known shape, and the error when it cannot fit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseModelConfig } from "../../src/model/config.js";
import { TuneforgeError } from "../../src/errors.js";
import {
  activationFloatsPerToken,
  checkTrainingMemory,
  estimateTrainingMemory,
} from "../../src/train/index.js";
import { parameterCount } from "../../src/train/memory.js";

// Qwen2-like: vocab 1000, hidden 64, 2 layers, 4 heads x 16, 2 KV heads, intermediate 128, tied.
const config = parseModelConfig({
  model_type: "qwen2",
  vocab_size: 1000,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
});

test("parameter count and activations per token follow the layer shapes", () => {
  // embed 64000 + final norm 64 + per layer: q 64x64+64, k 32x64+32, v 32x64+32, o 64x64,
  // gate/up 128x64 each, down 64x128, two norms 2x64.
  const perLayer = 4096 + 64 + 2048 + 32 + 2048 + 32 + 4096 + 3 * 8192 + 128;
  assert.equal(parameterCount(config), 64000 + 64 + 2 * perLayer);
  // Per layer its input and res2 (2 x 64), q and att (2 x 64), k and v (2 x 32), g and u (2 x 128) = 576, the rows'
  // statistics (two norms' rstd, a log-sum-exp per head: 6), plus r x 7 for the LoRA x A^T of 7 projections; for all
  // layers one h1 and one h2 (2 x 64) and one swiglu(g, u) (128).
  assert.equal(activationFloatsPerToken(config), 2 * 582 + 256);
  assert.equal(activationFloatsPerToken(config, 8, 7), 2 * (582 + 56) + 256);
  // bf16 mode on a GPU: the large tensors (448 of a set's 518) in bf16, plus h1, h2 and swiglu's output in bf16 (128)
  // and the set the layers run in (q in fp32: 64, res2: 64, statistics: 6).
  assert.equal(
    activationFloatsPerToken(config, 0, 0, { bf16Activations: true }),
    2 * (64 + 224 + 64 + 6) + 128 + 64 + 64 + 6,
  );
});

test("LoRA and full fine-tuning estimates add weights, trainable state, activations and the loss chunk", () => {
  const params = parameterCount(config);
  const lora = estimateTrainingMemory({
    config,
    tokensPerMicroBatch: 4 * 100,
    finetuning: "lora",
    lora: { r: 8, targets: ["q_proj", "v_proj"] },
    lossChunkTokens: 50,
  });
  assert.equal(lora.weights, params * 4);
  // q: 8 x (64 + 64), v: 8 x (32 + 64), per layer; x4 copies (w, g, m, v) x 4 bytes
  assert.equal(lora.trainable, 2 * (8 * 128 + 8 * 96) * 4 * 4);
  assert.equal(lora.activations, 400 * (2 * (582 + 16) + 256) * 4);
  // One allocation for the largest of three phases: the loss head (a chunk's logits, its rows' h and dh, every row's
  // dhF: 82000), the MLP's dact (400 x 128 = 51200), attention's gradients (400 x (2 x 64 + 2 x 32 + 4) = 78400);
  // beside it 4 x hidden per token.
  assert.equal(lora.workBuffers, (50 * (1000 + 2 * 64) + 400 * 64 + 400 * 4 * 64) * 4);
  assert.equal(lora.total, lora.weights + lora.trainable + lora.activations + lora.workBuffers);

  // With dropout the CPU keeps a mask and a dropped input per adapted projection (q and v read 64 wide inputs); a GPU
  // draws the masks inside its LoRA kernels and keeps neither.
  const withDropout = (fusedLora: boolean) =>
    estimateTrainingMemory({
      config,
      tokensPerMicroBatch: 400,
      finetuning: "lora",
      lora: { r: 8, targets: ["q_proj", "v_proj"], dropout: 0.05 },
      lossChunkTokens: 50,
      fusedLora,
    }).workBuffers;
  assert.equal(withDropout(false), lora.workBuffers + 2 * 400 * (64 + 64) * 4);
  assert.equal(withDropout(true), lora.workBuffers);

  const full = estimateTrainingMemory({
    config,
    tokensPerMicroBatch: 400,
    finetuning: "full",
    lossChunkTokens: 50,
  });
  assert.equal(full.trainable, params * 3 * 4); // grads, m, v on top of the weights
  assert.equal(full.activations, 400 * (2 * 582 + 256) * 4);
});

test("an estimate over the machine's memory is an error with the numbers and what to change", () => {
  const est = estimateTrainingMemory({ config, tokensPerMicroBatch: 1_000_000, finetuning: "full" });
  assert.throws(
    () => checkTrainingMemory(est, { total: 2 ** 30, free: 2 ** 29 }),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      e.message.includes(`${Math.round(est.total / 2 ** 20)} MB`) &&
      e.message.includes("1024 MB") &&
      /per_device_train_batch_size/.test(e.hint ?? "") &&
      /max_seq_length/.test(e.hint ?? ""),
  );
  assert.doesNotThrow(() => checkTrainingMemory(est, { total: est.total * 2, free: est.total * 2 }));
});

test("bf16 weights count 2 bytes per matrix value (norms and biases stay f32); full fine-tuning stays f32", () => {
  // Matrices: embed 64000, per layer q 4096, k 2048, v 2048, o 4096, gate/up/down 3 x 8192; vectors: the rest.
  const matrices = 64000 + 2 * (4096 + 2048 + 2048 + 4096 + 3 * 8192);
  const vectors = parameterCount(config) - matrices;
  const input = { config, tokensPerMicroBatch: 400, lora: { r: 8, targets: ["q_proj"] as const } };
  const f32 = estimateTrainingMemory({ ...input, finetuning: "lora" });
  const bf16 = estimateTrainingMemory({ ...input, finetuning: "lora", weightsDtype: "bf16" });
  assert.equal(f32.weights, 4 * (matrices + vectors));
  assert.equal(bf16.weights, 2 * matrices + 4 * vectors);
  assert.equal(bf16.total, f32.total - 2 * matrices);
  const full = estimateTrainingMemory({
    config,
    tokensPerMicroBatch: 400,
    finetuning: "full",
    weightsDtype: "bf16",
  });
  assert.equal(full.weights, 4 * parameterCount(config));
});
