// What a run leaves in its folder (adapter, tokenizer, tuneforge.json, metrics.jsonl, run.json) and the
// errors a user can cause: another tokenizer's data, untokenized data, QLoRA on the CPU, a mismatched adapter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { train, trainAllDomains } from "../../src/train/index.js";
import { TuneforgeError } from "../../src/errors.js";
import { readSavedPromptSettings } from "../../src/eval/translate.js";
import { ensureTinyModel } from "../../src/model/tiny.js";
import { readAdapter } from "../../src/model/peft.js";
import { fixtureDir, HAVE_FIXTURES } from "../helpers/fixtures.js";
import { tinyTask } from "./helpers.js";

const TASK = tinyTask();

test("a run writes the adapter, tokenizer, tuneforge.json, metrics.jsonl and run.json in their shapes", async () => {
  const task = await TASK;
  const config = task.config({ max_steps: 12, logging_steps: 5, eval_steps: 6, run_name: "upper-run" });
  const logged: unknown[] = [];
  const [result] = await trainAllDomains({
    config,
    modelDir: task.modelDir,
    preparedDir: task.preparedDir,
    outputDir: join(task.dir, "models"),
    threads: 2,
    onLog: (e) => logged.push(e),
  });
  assert.equal(result.domain, "upper");
  assert.equal(result.outputDir, join(task.dir, "models", "upper"));
  const dir = result.outputDir;
  for (const f of [
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
  ])
    assert.ok(existsSync(join(dir, f)), f);
  assert.ok(!existsSync(join(dir, "config.json")), "an adapter folder must not look like a model folder");
  assert.equal(readAdapter(dir).weights.size, 2 * 7);

  const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);
  assert.deepEqual(lines, logged);
  const trainLines = lines.filter((l) => "loss" in l);
  const valLines = lines.filter((l) => "val_loss" in l);
  // logging_steps 5 and the last step; eval_steps 6 (steps 6 and 12), the end already evaluated.
  assert.deepEqual(
    trainLines.map((l) => l.step),
    [5, 10, 12],
  );
  assert.deepEqual(
    valLines.map((l) => l.step),
    [6, 12],
  );
  for (const l of trainLines) {
    assert.deepEqual(Object.keys(l).sort(), [
      "epoch",
      "grad_norm",
      "loss",
      "lr",
      "memory_mb",
      "step",
      "tokens_per_s",
    ]);
    for (const k of Object.keys(l)) assert.equal(typeof l[k], "number", k);
    assert.ok(l.tokens_per_s > 0 && l.memory_mb > 0 && l.grad_norm > 0 && l.epoch > 0);
  }
  for (const l of valLines) assert.deepEqual(Object.keys(l).sort(), ["step", "val_loss"]);

  const run = JSON.parse(readFileSync(join(dir, "run.json"), "utf8"));
  assert.deepEqual(Object.keys(run).sort(), [
    "base_model",
    "best_step",
    "config",
    "domain",
    "final_val_loss",
    "finished_at",
    "name",
    "started_at",
    "steps",
    "stop_reason",
  ]);
  assert.equal(run.name, "upper-run");
  assert.equal(run.steps, 12);
  assert.equal(run.stop_reason, "completed");
  assert.equal(run.best_step, null, "no early stopping, no best step");
  assert.equal(run.final_val_loss, valLines[1].val_loss);
  assert.equal(run.final_val_loss, result.finalValLoss);
  assert.ok(Date.parse(run.started_at) <= Date.parse(run.finished_at));
  assert.equal(run.config.training.max_steps, 12);

  // translate/eval rebuild the training prompt from tuneforge.json.
  const saved = readSavedPromptSettings(dir);
  assert.equal(saved?.template, "chat");
  assert.equal(saved?.systemPrompt, "Up.");
});

test("data tokenized with another tokenizer is refused, naming the manifest", async () => {
  const task = await TASK;
  const other = ensureTinyModel({
    corpus: ["a completely different corpus", "with other words"],
    seed: 1,
    cacheDir: join(task.dir, "other-cache"),
    hiddenSize: 64,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 32,
    intermediateSize: 64,
    tokenizerVocabSize: 260,
  });
  const opts = {
    config: task.config({ max_steps: 1 }),
    modelDir: other.dir,
    preparedDir: task.preparedDir,
    domain: "upper",
    outputDir: join(task.dir, "bad"),
  };
  await assert.rejects(
    train(opts),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      /another tokenizer/.test(e.message) &&
      e.location.file === join(task.preparedDir, "manifest.json") &&
      /prepare/.test(e.hint ?? ""),
  );
});

test("untokenized data, QLoRA and an adapter for another model are TuneforgeErrors with hints", async () => {
  const task = await TASK;
  const base = {
    modelDir: task.modelDir,
    domain: "upper",
    outputDir: join(task.dir, "bad2"),
  };
  await assert.rejects(
    train({ ...base, preparedDir: task.preparedDir, config: task.config({ finetuning_type: "qlora" }) }),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      /QLoRA .* not supported/.test(e.message) &&
      /finetuning_type: "lora"/.test(e.hint ?? ""),
  );

  const copy = join(task.dir, "untokenized");
  const manifest = JSON.parse(readFileSync(join(task.preparedDir, "manifest.json"), "utf8"));
  mkdirSync(copy, { recursive: true });
  writeFileSync(join(copy, "manifest.json"), JSON.stringify({ ...manifest, tokenized: false }));
  await assert.rejects(
    train({ ...base, preparedDir: copy, config: task.config({ max_steps: 1 }) }),
    (e: unknown) => e instanceof TuneforgeError && /not tokenized/.test(e.message) && !!e.hint,
  );

  // The fixture's adapter has the tiny model's attention shapes but another MLP width.
  const fixtureAdapter = join(fixtureDir("base", "qwen2"), "adapter");
  if (HAVE_FIXTURES) {
    await assert.rejects(
      train({
        ...base,
        preparedDir: task.preparedDir,
        config: task.config({ max_steps: 1 }),
        initAdapter: fixtureAdapter,
      }),
      (e: unknown) =>
        e instanceof TuneforgeError &&
        e.location.file === fixtureAdapter &&
        /another base model/.test(e.message),
    );
  }
});
