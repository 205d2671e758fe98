// Full fine-tuning (every weight trained) and packed rows, on the tiny task.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { train, validationLoss } from "../../src/train/index.js";
import { readPreparedRows, type TrainRow } from "../../src/train/data.js";
import { collate } from "../../src/train/batches.js";
import { tinyTask } from "./helpers.js";

test("full fine-tuning lowers the loss and saves a model folder that loads with the trained weights", async () => {
  const task = await tinyTask();
  const val = await readPreparedRows(task.preparedDir, "upper", "val", 10_000);
  const base = EngineModel.load(task.modelDir, { threads: 2 });
  const before = validationLoss(base, val, 8, 0);
  base.dispose();

  const outputDir = join(task.dir, "full");
  const result = await train({
    ...task.trainOptions(task.config({ finetuning_type: "full", learning_rate: 2e-3, max_steps: 40 })),
    outputDir,
  });
  assert.ok(result.finalValLoss! < before / 3, `val loss ${before} -> ${result.finalValLoss}`);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "run.json"])
    assert.ok(existsSync(join(outputDir, f)), f);
  assert.ok(!existsSync(join(outputDir, "adapter_config.json")));
  const loaded = EngineModel.load(outputDir, { threads: 2 });
  assert.equal(validationLoss(loaded, val, 8, 0), result.finalValLoss);
  loaded.dispose();
});

test("packed rows are scored exactly as their examples apart (segments restart attention and positions)", async () => {
  const task = await tinyTask();
  const rows = (await readPreparedRows(task.preparedDir, "upper", "train", 10_000)).slice(0, 5);
  const pack = (part: TrainRow[]): TrainRow => {
    const ids: number[] = [];
    const labels: number[] = [];
    const boundaries: number[] = [];
    for (const r of part) {
      boundaries.push(ids.length);
      ids.push(...r.ids);
      labels.push(...r.labels);
    }
    return { ids: Int32Array.from(ids), labels: Int32Array.from(labels), boundaries };
  };
  // Two packed rows of different lengths (so one is padded) against the five examples padded apart.
  const packedBatch = collate([pack(rows.slice(0, 3)), pack(rows.slice(3))], 0);
  assert.deepEqual(
    [...packedBatch.segmentIds!.slice(0, rows[0].ids.length + 1)],
    [...new Array(rows[0].ids.length).fill(0), 1],
  );
  const model = EngineModel.load(task.modelDir, { threads: 1 });
  const packed = model.evalLoss(packedBatch);
  const apart = model.evalLoss(collate(rows, 0));
  model.dispose();
  assert.equal(packed.tokens, apart.tokens);
  assert.ok(Math.abs(packed.lossSum - apart.lossSum) < 1e-3, `${packed.lossSum} vs ${apart.lossSum}`);
});
