// The training keys for the task metric, early stopping on it and the wall-clock limit: defaults that keep
// training as cheap as before, the metric spellings `tuneforge eval --metrics` takes, and clear errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/errors.js";
import { configFromObject } from "../../src/config/load.js";
import { defaultConfig } from "../../src/config/schema.js";
import { resolveTaskMetric } from "../../src/train/taskEval.js";

const training = (keys: Record<string, unknown>) => configFromObject({ training: keys }).training;

function issueOf(keys: Record<string, unknown>) {
  try {
    training(keys);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.issues.length, 1);
    return e.issues[0];
  }
  assert.fail(`${JSON.stringify(keys)} was accepted`);
}

test("defaults: no task metric, loss-based early stopping, epoch strategy, 32 rows, no time limit", () => {
  const t = defaultConfig().training;
  assert.equal(t.eval_task_metric, "off");
  assert.equal(t.early_stopping_metric, "loss");
  assert.equal(t.eval_task_strategy, "epoch");
  assert.equal(t.eval_task_samples, 32);
  assert.equal(t.max_train_minutes, undefined);
});

test("eval_task_metric takes the names `eval --metrics` takes, in any case, and resolves them per task", () => {
  assert.equal(training({ eval_task_metric: "ChrF++" }).eval_task_metric, "chrf++");
  assert.equal(
    resolveTaskMetric(training({ eval_task_metric: "json_f1" }).eval_task_metric, "chat"),
    "json-f1",
  );
  assert.equal(resolveTaskMetric("em", "translation"), "exact");
  assert.equal(resolveTaskMetric("auto", "translation"), "chrf");
  assert.equal(resolveTaskMetric("auto", "json-extraction"), "json-f1");
  assert.equal(resolveTaskMetric("auto", "chat"), null);
  assert.equal(resolveTaskMetric("off", "translation"), null);
  assert.equal(training({ max_train_minutes: 0.5 }).max_train_minutes, 0.5);
});

test("bad names and values are errors naming the key, with a suggestion where one is close", () => {
  const typo = issueOf({ eval_task_metric: "chrff" });
  assert.equal(typo.key, "training.eval_task_metric");
  assert.equal(typo.suggestion, "chrf");
  assert.match(typo.message, /json-f1/);
  // Loss is validation loss already: not a task metric.
  assert.equal(issueOf({ eval_task_metric: "loss" }).key, "training.eval_task_metric");
  assert.equal(issueOf({ eval_task_strategy: "epochs" }).suggestion, "epoch");
  assert.equal(issueOf({ early_stopping_metric: "bleu" }).key, "training.early_stopping_metric");
  assert.equal(issueOf({ eval_task_samples: 0 }).key, "training.eval_task_samples");
  assert.match(issueOf({ max_train_minutes: 0 }).message, /> 0/);
  assert.equal(issueOf({ max_train_minutes: -1 }).key, "training.max_train_minutes");
});
