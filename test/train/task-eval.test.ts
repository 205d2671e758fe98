// The task metric inside training (training.eval_task_metric): logged at epoch ends (or every eval_steps) with
// the value `tuneforge eval` gives the adapter of that step, drawn by the report, usable by early stopping
// (kept through --resume), plus the wall-clock limit (training.max_train_minutes).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TuneforgeConfig } from "../../src/config/schema.js";
import type { PreparedRow } from "../../src/data/types.js";
import { TuneforgeError } from "../../src/errors.js";
import { evaluate } from "../../src/eval/evaluate.js";
import { buildReportModel } from "../../src/eval/report/index.js";
import { sampleRows, train } from "../../src/train/index.js";
import { tinyTask, type TinyTask } from "./helpers.js";

const MAX_NEW_TOKENS = 12;

/** The tiny task's config with short generations (the answers are two words). */
function configFor(task: TinyTask, training: Record<string, unknown>): TuneforgeConfig {
  const c = task.config(training);
  return { ...c, eval: { ...c.eval, max_new_tokens: MAX_NEW_TOKENS } };
}

interface Line {
  step: number;
  epoch?: number;
  loss?: number;
  val_loss?: number | null;
  eval?: { metric: string; value: number | null };
  tokens_per_s?: number;
  memory_mb?: number;
}

function logLines(dir: string): Line[] {
  return readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
}

/** What `tuneforge eval` scores for an adapter folder on the validation file. */
async function evalScore(task: TinyTask, config: TuneforgeConfig, adapterDir: string, metric: string) {
  const r = await evaluate({
    modelDir: task.modelDir,
    adapterDir,
    data: join(task.preparedDir, "upper_val.jsonl"),
    metrics: [metric],
    maxNewTokens: MAX_NEW_TOKENS,
    batchSize: config.eval.batch_size,
    threads: 2,
  });
  return r.scores[metric === "json-f1" ? "json_f1" : metric];
}

test("the task metric is logged at each epoch end, equals `eval` on that step's adapter, and is reported", async () => {
  const task = await tinyTask();
  // 107 train rows in batches of 8: 14 steps per epoch; checkpoints at the first two epoch ends.
  const config = configFor(task, { num_train_epochs: 3, eval_task_metric: "auto", save_steps: 14 });
  const outputDir = join(task.dir, "run");
  const fields: Record<string, number>[] = [];
  const result = await train({
    ...task.trainOptions(config),
    outputDir,
    onProgress: (_s, _t, f) => fields.push(f),
  });
  assert.equal(result.steps, 42);
  assert.equal(result.stopReason, "completed");

  const evals = logLines(outputDir).filter((l) => l.eval);
  // Short upper-case answers: a translation-like task, whose main metric is chrF.
  assert.deepEqual(
    evals.map((l) => [l.step, l.epoch, l.eval!.metric]),
    [
      [14, 1, "chrf"],
      [28, 2, "chrf"],
      [42, 3, "chrf"],
    ],
  );
  const last = evals[2].eval!.value!;
  assert.ok(last > 0, `the trained adapter gets some characters right (chrF ${last})`);
  assert.deepEqual(result.taskMetric, { metric: "chrf", value: last });
  // The progress line carries the newest value once there is one.
  assert.equal(fields[14].chrf, evals[0].eval!.value);
  assert.equal(fields[13].chrf, undefined);

  // The same numbers as `tuneforge eval` on the same rows (all 13 validation rows: fewer than the sample size).
  assert.equal(await evalScore(task, config, outputDir, "chrf"), last);
  const atStep28 = join(outputDir, "checkpoints", "step-28");
  assert.equal(await evalScore(task, config, atStep28, "chrf"), evals[1].eval!.value);
  const run = JSON.parse(readFileSync(join(outputDir, "run.json"), "utf8")) as Record<string, unknown>;
  assert.equal(run.stop_reason, "completed");

  // The report's "task metric over time": a summary per metric and a chart series with the three points.
  const report = buildReportModel({ runDirs: [outputDir] });
  const values = evals.map((l) => l.eval!.value!);
  const bestValue = Math.max(...values);
  assert.deepEqual(report.runs[0].taskMetrics, [
    { metric: "chrf", last, best: bestValue, bestStep: evals[values.indexOf(bestValue)].step },
  ]);
  const chart = report.trainingCharts.find((c) => c.id === "chart-task");
  assert.deepEqual(
    chart?.datasets[0].points,
    evals.map((l) => ({ x: l.step, y: l.eval!.value })),
  );
});

test("early stopping on the task metric keeps the best step's adapter; --resume keeps its state exactly", async () => {
  const task = await tinyTask();
  const config = configFor(task, {
    max_steps: 300,
    lr_scheduler_type: "constant",
    eval_steps: 7,
    eval_task_metric: "chrF",
    eval_task_strategy: "steps",
    early_stopping_metric: "task",
    early_stopping_patience: 3,
  });
  const base = task.trainOptions(config);
  const wholeDir = join(task.dir, "whole");
  const whole = await train({ ...base, outputDir: wholeDir });
  assert.equal(whole.earlyStopped, true);
  assert.equal(whole.stopReason, "early_stopping");
  assert.ok(whole.steps < 300);

  const lines = logLines(wholeDir);
  const evals = lines.filter((l) => l.eval);
  assert.deepEqual(
    evals.map((l) => l.step),
    Array.from({ length: evals.length }, (_, i) => 7 * (i + 1)),
    "every eval_steps",
  );
  const values = evals.map((l) => l.eval!.value!);
  const bestAt = values.indexOf(Math.max(...values)); // the first best: equal is no improvement
  const best = evals[bestAt];
  assert.equal(whole.bestStep, best.step);
  // Higher is better: it stopped exactly `patience` evaluations after the best, none of which beat it.
  assert.equal(evals.length, bestAt + 1 + 3);
  assert.equal(whole.steps, best.step + 3 * 7);
  assert.ok(values.slice(bestAt + 1).every((v) => v <= best.eval!.value!));
  assert.deepEqual(whole.taskMetric, { metric: "chrf", value: best.eval!.value });
  // The saved adapter is the best step's: `eval` scores it at the best value; its validation loss is the one
  // logged at that step.
  assert.equal(await evalScore(task, config, wholeDir, "chrf"), best.eval!.value);
  const valAtBest = lines.find((l) => l.step === best.step && "val_loss" in l)!.val_loss;
  assert.equal(whole.finalValLoss, valAtBest);
  const run = JSON.parse(readFileSync(join(wholeDir, "run.json"), "utf8")) as Record<string, unknown>;
  assert.equal(run.stop_reason, "early_stopping");
  assert.equal(run.best_step, best.step);

  // Interrupted just after the best step, then resumed: the best value, the count of evaluations without
  // improvement and the best weights come back from the checkpoint, so the run ends the same way.
  const partsDir = join(task.dir, "parts");
  const ac = new AbortController();
  const first = await train({
    ...base,
    outputDir: partsDir,
    signal: ac.signal,
    onProgress: (s) => {
      if (s === best.step + 2) ac.abort();
    },
  });
  assert.equal(first.interrupted, true);
  assert.equal(first.stopReason, "interrupted");
  const second = await train({ ...base, outputDir: partsDir, resume: true });
  assert.equal(second.steps, whole.steps);
  assert.equal(second.bestStep, whole.bestStep);
  assert.equal(second.finalValLoss, whole.finalValLoss);
  assert.ok(
    readFileSync(join(partsDir, "adapter_model.safetensors")).equals(
      readFileSync(join(wholeDir, "adapter_model.safetensors")),
    ),
    "final adapters are byte-identical",
  );
  const strip = (ls: Line[]) => ls.map(({ tokens_per_s: _t, memory_mb: _m, ...rest }) => rest);
  assert.deepEqual(strip(logLines(partsDir)), strip(lines));
});

test("max_train_minutes stops after the step that reaches it and finishes the run normally", async () => {
  const task = await tinyTask();
  // 1e-6 minutes (60 microseconds) pass during the first step whatever the machine.
  const config = configFor(task, { num_train_epochs: 2, max_train_minutes: 1e-6, eval_task_metric: "chrf" });
  const outputDir = join(task.dir, "timed");
  const result = await train({ ...task.trainOptions(config), outputDir });
  assert.equal(result.steps, 1);
  assert.equal(result.totalSteps, 28);
  assert.equal(result.stopReason, "time_limit");
  assert.equal(result.interrupted, false);
  assert.equal(result.earlyStopped, false);
  for (const f of ["adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tuneforge.json"])
    assert.ok(existsSync(join(outputDir, f)), f);
  const run = JSON.parse(readFileSync(join(outputDir, "run.json"), "utf8")) as Record<string, unknown>;
  assert.equal(run.stop_reason, "time_limit");
  assert.equal(run.steps, 1);
  // Step 1 is logged (logging_steps is 10), validated, and the saved weights get their task metric.
  const lines = logLines(outputDir);
  assert.deepEqual(
    lines.map((l) => [l.step, "loss" in l, "val_loss" in l, l.eval?.metric ?? null]),
    [
      [1, true, false, null],
      [1, false, true, null],
      [1, false, false, "chrf"],
    ],
  );
  assert.equal(result.finalValLoss, lines[1].val_loss);
  assert.ok(result.finalValLoss !== null && result.finalValLoss > 0);
});

test("task metric settings that cannot work are refused before training", async () => {
  const task = await tinyTask();
  const run = (training: Record<string, unknown>, name: string) =>
    train({
      ...task.trainOptions(configFor(task, { max_steps: 2, ...training })),
      outputDir: join(task.dir, name),
    });
  const refused = async (p: Promise<unknown>, key: string, pattern: RegExp) => {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof TuneforgeError);
      assert.equal(e.location.key, key);
      assert.match(e.message, pattern);
      return true;
    });
  };
  await refused(
    run({ early_stopping_metric: "task", early_stopping_patience: 2 }, "a"),
    "training.early_stopping_metric",
    /no task metric is measured/,
  );

  // Plain-text validation rows (no prompt): "auto" detects chat, which has no task metric to watch, and an
  // explicit metric has nothing to generate from.
  const valFile = join(task.preparedDir, "upper_val.jsonl");
  const rows = readFileSync(valFile, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as PreparedRow);
  writeFileSync(valFile, rows.map((r) => JSON.stringify({ ...r, prompt: "" })).join("\n") + "\n");
  await refused(
    run({ eval_task_metric: "auto", early_stopping_metric: "task", early_stopping_patience: 2 }, "b"),
    "training.early_stopping_metric",
    /chat task/,
  );
  const auto = await run({ eval_task_metric: "auto" }, "c");
  assert.equal(auto.taskMetric, null, "auto on a chat task measures loss only");
  assert.ok(!logLines(join(task.dir, "c")).some((l) => l.eval));
  await refused(run({ eval_task_metric: "chrf" }, "d"), "training.eval_task_metric", /no prompt/);

  rmSync(valFile);
  await refused(run({ eval_task_metric: "bleu" }, "e"), "training.eval_task_metric", /no validation rows/);
  assert.equal((await run({ eval_task_metric: "auto" }, "f")).taskMetric, null);
});

test("the task-metric sample is seeded, fixed and in file order", () => {
  const rows = Array.from({ length: 100 }, (_, i) => i);
  const a = sampleRows(rows, 10, 42);
  assert.deepEqual(sampleRows(rows, 10, 42), a);
  assert.equal(new Set(a).size, 10);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    a,
  );
  assert.notDeepEqual(sampleRows(rows, 10, 7), a);
  assert.notDeepEqual(a, rows.slice(0, 10));
  assert.deepEqual(sampleRows(rows.slice(0, 5), 10, 42), [0, 1, 2, 3, 4]);
});
