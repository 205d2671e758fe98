// The trainer reproduces HF transformers + PEFT exactly on the parity fixture: one optimizer step from the
// fixture's adapter gives its `after1` weights, ten steps give its loss trajectory. The rows go through the
// whole trainer path (prepared file -> batches -> accumulation -> AdamW -> saved PEFT adapter).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { train } from "../../src/train/index.js";
import { readAdapter } from "../../src/model/peft.js";
import { SafetensorsFile } from "../../src/model/safetensors.js";
import { fixtureDir, HAVE_FIXTURES } from "../helpers/fixtures.js";
import { maxAbsDiff } from "../engine/fixture.js";
import { readFileSync } from "node:fs";
import { makeConfig, tempDir, writePrepared, type TokenRow } from "./helpers.js";

const FX = fixtureDir("base", "qwen2");
const skip = !HAVE_FIXTURES && "fixtures not found";

/** The fixture's right-padded rows without their padding. */
function fixtureRows(expected: SafetensorsFile): TokenRow[] {
  const [rows, T] = expected.info("input_ids").shape;
  const ids = expected.readI32("input_ids");
  const mask = expected.readI32("attention_mask");
  const labels = expected.readI32("labels");
  const out: TokenRow[] = [];
  for (let r = 0; r < rows; r++) {
    const row: TokenRow = { input_ids: [], labels: [] };
    for (let t = 0; t < T; t++) {
      if (!mask[r * T + t]) continue;
      row.input_ids.push(ids[r * T + t]);
      row.labels.push(labels[r * T + t]);
    }
    out.push(row);
  }
  return out;
}

function referenceRun(maxSteps: number) {
  const expected = SafetensorsFile.open(join(FX, "expected.safetensors"));
  const rows = fixtureRows(expected);
  const dir = tempDir("train-ref");
  const prepared = writePrepared(join(dir, "prepared"), { train: rows });
  const config = makeConfig({
    training: {
      learning_rate: 1e-3,
      lr_scheduler_type: "constant",
      warmup_ratio: 0,
      weight_decay: 0.01,
      max_grad_norm: 0,
      max_steps: maxSteps,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 1,
    },
    lora: { dropout: 0 },
  });
  return { expected, dir, prepared, config };
}

test("one step from the fixture's adapter gives HF's after1 weights", { skip }, async () => {
  const { expected, dir, prepared, config } = referenceRun(1);
  const outputDir = join(dir, "run");
  const result = await train({
    config,
    modelDir: join(FX, "model"),
    preparedDir: prepared,
    domain: "ref",
    outputDir,
    initAdapter: join(FX, "adapter"),
    threads: 1,
  });
  assert.equal(result.steps, 1);
  const meta = JSON.parse(readFileSync(join(FX, "expected.json"), "utf8"));
  assert.ok(
    Math.abs(result.losses[0].loss - meta.loss) < 1e-5,
    `loss ${result.losses[0].loss} vs ${meta.loss}`,
  );
  const saved = readAdapter(outputDir);
  assert.equal(saved.weights.size, 14);
  let worst = 0;
  let moved = 0;
  const start = readAdapter(join(FX, "adapter"));
  for (const [module, w] of saved.weights) {
    worst = Math.max(worst, maxAbsDiff(w.A, expected.readF32(`after1.${module}.lora_A.weight`)));
    worst = Math.max(worst, maxAbsDiff(w.B, expected.readF32(`after1.${module}.lora_B.weight`)));
    moved = Math.max(moved, maxAbsDiff(w.B, start.weights.get(module)!.B));
  }
  assert.ok(worst <= 1e-6, `max abs error vs after1: ${worst}`);
  assert.ok(moved > 5e-4, "the step changed the weights by about lr");
  expected.close();
});

test("ten steps on the same batch follow HF's loss trajectory", { skip }, async () => {
  const { expected, dir, prepared, config } = referenceRun(10);
  const result = await train({
    config,
    modelDir: join(FX, "model"),
    preparedDir: prepared,
    domain: "ref",
    outputDir: join(dir, "run"),
    initAdapter: join(FX, "adapter"),
    threads: 1,
  });
  const want = JSON.parse(
    readFileSync(join(FX, "expected.json"), "utf8"),
  ).loss_trajectory_10_steps_same_batch;
  const got = result.losses.map((l) => l.loss);
  assert.equal(got.length, 10);
  assert.ok(maxAbsDiff(got, want) <= 1e-4, `trajectory ${got} vs ${want}`);
  expected.close();
});

test(
  "accumulation: 2 micro-batches of 2 rows update exactly as 1 batch of 4 (token-weighted)",
  { skip },
  async () => {
    const expected = SafetensorsFile.open(join(FX, "expected.safetensors"));
    const [r0, r1] = fixtureRows(expected);
    expected.close();
    const cut = (r: TokenRow, n: number): TokenRow => ({
      input_ids: r.input_ids.slice(0, n),
      labels: r.labels.slice(0, n),
    });
    // Four rows with different target counts, so the two micro-batches weigh differently.
    const rows = [r0, r1, cut(r0, 12), cut(r1, 15)];
    const dir = tempDir("train-accum");
    const prepared = writePrepared(join(dir, "prepared"), { train: rows });
    const run = async (bs: number, accum: number, name: string) => {
      const config = makeConfig({
        training: {
          learning_rate: 1e-3,
          lr_scheduler_type: "constant",
          warmup_ratio: 0,
          max_grad_norm: 0,
          max_steps: 3,
          per_device_train_batch_size: bs,
          gradient_accumulation_steps: accum,
          group_by_length: false,
        },
        lora: { dropout: 0 },
      });
      const outputDir = join(dir, name);
      const result = await train({
        config,
        modelDir: join(FX, "model"),
        preparedDir: prepared,
        domain: "ref",
        outputDir,
        initAdapter: join(FX, "adapter"),
        threads: 1,
      });
      const metrics = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      return { result, metrics, adapter: readAdapter(outputDir) };
    };
    const split = await run(2, 2, "split");
    const whole = await run(4, 1, "whole");
    for (let s = 0; s < 3; s++) {
      assert.ok(Math.abs(split.result.losses[s].loss - whole.result.losses[s].loss) < 1e-6);
      // The gradient norm sees the weighting directly (Adam's first steps barely do).
      const [a, b] = [split.metrics[s].grad_norm, whole.metrics[s].grad_norm];
      assert.ok(Math.abs(a - b) / b < 1e-5, `grad norm ${a} vs ${b}`);
    }
    for (const [module, w] of whole.adapter.weights) {
      const v = split.adapter.weights.get(module)!;
      assert.ok(maxAbsDiff(w.A, v.A) < 1e-6 && maxAbsDiff(w.B, v.B) < 1e-6, module);
    }
  },
);
