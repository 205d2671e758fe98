// Early stopping: when validation stops improving for `early_stopping_patience` evaluations the run ends and
// the best weights (not the last) are saved, with the best validation loss reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { readAdapter } from "../../src/model/peft.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import type { PreparedRow } from "../../src/data/types.js";
import { train, validationLoss } from "../../src/train/index.js";
import { readPreparedRows } from "../../src/train/data.js";
import { tinyTask } from "./helpers.js";

test("stops after `patience` evaluations without improvement and keeps the best adapter", async () => {
  const task = await tinyTask();
  // Validation asks for the lower-case answer of each training prompt: training on upper case first helps
  // (the answer format) and then hurts it, so validation loss turns around.
  const train0 = readFileSync(join(task.preparedDir, "upper_train.jsonl"), "utf8").trim().split("\n");
  const val = train0.slice(0, 24).map((line) => {
    const r = JSON.parse(line) as PreparedRow;
    const start = r.labels.findIndex((y) => y !== -100);
    const answer = task.tokenizer.encode(r.completion.toLowerCase());
    return JSON.stringify({
      ...r,
      input_ids: [...r.input_ids.slice(0, start), ...answer],
      labels: [...r.labels.slice(0, start), ...answer],
    });
  });
  writeFileSync(join(task.preparedDir, "upper_val.jsonl"), val.join("\n") + "\n");

  const outputDir = join(task.dir, "early");
  const config = task.config({
    max_steps: 200,
    eval_steps: 5,
    early_stopping_patience: 2,
    lr_scheduler_type: "constant",
  });
  const result = await train({ ...task.trainOptions(config), outputDir });
  assert.equal(result.earlyStopped, true);
  assert.ok(result.steps < 200);
  const vals = readFileSync(join(outputDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((l) => "val_loss" in l);
  const best = vals.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
  assert.equal(result.bestStep, best.step);
  assert.equal(result.finalValLoss, best.val_loss);
  // The run stopped exactly `patience` evaluations after the best one.
  assert.equal(vals[vals.length - 1].step, best.step + 2 * 5);
  assert.ok(vals[vals.length - 1].val_loss > best.val_loss);

  const model = EngineModel.load(task.modelDir, { threads: 2 });
  const adapter = readAdapter(outputDir);
  model.setLora({
    r: 8,
    alpha: 16,
    targets: ALL_PROJECTIONS,
    weights: new Map([...adapter.weights].map(([k, w]) => [k, { A: w.A, B: w.B }])),
  });
  const rows = await readPreparedRows(task.preparedDir, "upper", "val", 10_000);
  assert.equal(validationLoss(model, rows, 8, 0), best.val_loss, "the saved adapter is the best one");
  model.dispose();
});
