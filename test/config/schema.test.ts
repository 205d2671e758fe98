import { test } from "node:test";
import assert from "node:assert/strict";
import { configFromObject } from "../../src/config/load.js";
import { DEFAULT_MODEL, defaultConfig } from "../../src/config/schema.js";

test("an empty config gets every documented default", () => {
  const c = defaultConfig();
  assert.equal(c.model.name_or_path, DEFAULT_MODEL);
  assert.equal(c.model.dtype, "auto");
  assert.equal(c.model.tokenizer, undefined);
  assert.deepEqual(c.data.inputs, []);
  assert.equal(c.data.output_dir, "data/prepared");
  assert.equal(c.data.template, "chat");
  assert.equal(c.data.loss_on, "completion");
  assert.deepEqual(c.data.split, { train: 0.8, val: 0.1, test: 0.1, seed: 42 });
  assert.equal(c.data.dedup, "normalized");
  assert.equal(c.data.dedup_scope, "domain");
  assert.deepEqual(c.data.clean, {
    nfc: true,
    urls: false,
    emails: false,
    emojis: false,
    control_chars: true,
    whitespace: true,
    arabic_diacritics: false,
    min_chars: 1,
    max_chars: null,
  });
  assert.equal(c.data.augment.factor, 0);
  assert.deepEqual(c.data.augment.instruction_variants, []);
  assert.deepEqual(c.data.chunking, { method: "recursive", chunk_size: 1000, chunk_overlap: 200 });
  assert.equal(c.data.packing, false);
  assert.equal(c.data.skip_invalid, false);
  assert.deepEqual(c.lora, {
    r: 16,
    alpha: 32,
    dropout: 0.05,
    target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    use_rslora: false,
  });
  assert.equal(c.training.finetuning_type, "lora");
  assert.equal(c.training.learning_rate, 2e-4);
  assert.equal(c.training.lr_scheduler_type, "cosine");
  assert.equal(c.training.num_train_epochs, 3);
  assert.equal(c.training.per_device_train_batch_size, 4);
  assert.equal(c.training.gradient_accumulation_steps, 4);
  assert.equal(c.training.max_seq_length, 512);
  assert.equal(c.training.seed, 42);
  assert.equal(c.training.bf16, "auto");
  assert.equal(c.training.max_steps, -1);
  assert.equal(c.training.early_stopping_patience, 0);
  assert.equal(c.training.group_by_length, true);
  assert.equal(c.training.device, "auto");
  assert.equal(c.training.output_dir, "models");
  assert.deepEqual(c.eval, {
    metrics: ["auto"],
    max_new_tokens: 256,
    batch_size: 8,
    num_examples: 5,
    temperature: 0,
  });
  assert.deepEqual(c.export, { merged: false, gguf: false, gguf_quantization: "q8_0" });
});

test("the split seed follows training.seed unless set", () => {
  assert.equal(configFromObject({ training: { seed: 7 } }).data.split.seed, 7);
  assert.equal(configFromObject({ training: { seed: 7 }, data: { split: { seed: 3 } } }).data.split.seed, 3);
});

test("shorthands: a bare input path and a single metric name", () => {
  const c = configFromObject({
    data: { inputs: ["a.csv", { path: "b.jsonl", domain: "x", format: "jsonl" }] },
    eval: { metrics: "bleu" },
  });
  assert.deepEqual(c.data.inputs, [
    { path: "a.csv", format: "auto" },
    { path: "b.jsonl", domain: "x", format: "jsonl" },
  ]);
  assert.deepEqual(c.eval.metrics, ["bleu"]);
});

test("values given keep their value and partial sections keep the other defaults", () => {
  const c = configFromObject({ lora: { r: 8 }, data: { clean: { urls: true } } });
  assert.equal(c.lora.r, 8);
  assert.equal(c.lora.alpha, 32);
  assert.equal(c.data.clean.urls, true);
  assert.equal(c.data.clean.nfc, true);
});
