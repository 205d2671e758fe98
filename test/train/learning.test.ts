// Learning shown: on upper-casing word pairs (tiny model, its own tokenizer, the real prepare pipeline), the
// trainer lowers the validation loss by a wide margin and greedy answers to held-out pairs go from wrong to
// right. The saved adapter is the engine's: reloaded, it gives the very validation loss the run reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { readAdapter } from "../../src/model/peft.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import type { PreparedRow } from "../../src/data/types.js";
import { train, validationLoss } from "../../src/train/index.js";
import { readPreparedRows } from "../../src/train/data.js";
import { tinyTask } from "./helpers.js";

function heldOut(preparedDir: string): { prompt: number[]; answer: number[] }[] {
  const rows = readFileSync(join(preparedDir, "upper_test.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as PreparedRow);
  return rows.map((r) => {
    const start = r.labels.findIndex((y) => y !== -100);
    return { prompt: r.input_ids.slice(0, start), answer: r.input_ids.slice(start) };
  });
}

/** Fraction of held-out prompts whose greedy answer is exactly the target (through <|im_end|>). */
function exactMatches(model: EngineModel, cases: ReturnType<typeof heldOut>, eos: number): number {
  const outs = model.generate(
    cases.map((c) => c.prompt),
    { maxNewTokens: 12, eosTokenIds: [eos] },
  );
  let ok = 0;
  cases.forEach((c, i) => {
    const want = c.answer.slice(0, c.answer.indexOf(eos) + 1);
    if (outs[i].join(",") === want.join(",")) ok++;
  });
  return ok / cases.length;
}

test("training on a copy-and-transform task lowers val loss and fixes held-out answers", async () => {
  const task = await tinyTask();
  const config = task.config({ max_steps: 200, lr_scheduler_type: "cosine" });
  const eos = task.tokenizer.eosTokenId;
  const cases = heldOut(task.preparedDir);
  assert.ok(cases.length >= 8, "enough held-out pairs");
  const val = await readPreparedRows(task.preparedDir, "upper", "val", 10_000);

  const base = EngineModel.load(task.modelDir, { threads: 2 });
  const before = validationLoss(base, val, 8, 0);
  const matchBefore = exactMatches(base, cases, eos);
  base.dispose();

  const outputDir = join(task.dir, "run");
  const result = await train({ ...task.trainOptions(config), outputDir });
  assert.equal(result.steps, 200);
  const after = result.finalValLoss!;
  assert.ok(after < before / 5, `val loss ${before} -> ${after}`);

  const trained = EngineModel.load(task.modelDir, { threads: 2 });
  const adapter = readAdapter(outputDir);
  assert.equal(adapter.config.baseModel, config.model.name_or_path);
  trained.setLora({
    r: adapter.config.r,
    alpha: adapter.config.alpha,
    targets: ALL_PROJECTIONS,
    weights: new Map([...adapter.weights].map(([k, w]) => [k, { A: w.A, B: w.B }])),
  });
  // Same weights, same threads, same batches: the reported loss exactly.
  assert.equal(validationLoss(trained, val, 8, 0), after);
  const matchAfter = exactMatches(trained, cases, eos);
  trained.dispose();
  assert.ok(matchBefore <= 0.1 && matchAfter >= 0.75, `exact matches ${matchBefore} -> ${matchAfter}`);
});
