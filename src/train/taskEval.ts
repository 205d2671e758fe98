// The task metric measured during training (`training.eval_task_metric`): greedy generation by the model being
// trained on a fixed, seeded sample of the validation rows, scored by the same code as `tuneforge eval`
// (evaluateLoadedModel), so the number logged at step N is what `eval` gives the adapter saved at step N.
import { existsSync } from "node:fs";
import type { TuneforgeConfig } from "../config/schema.js";
import { createRng, deriveSeed } from "../data/random.js";
import { Tokenizer } from "../data/tokenizer.js";
import type { PreparedRow } from "../data/types.js";
import type { EngineModel } from "../engine/model.js";
import { TuneforgeError } from "../errors.js";
import { detectRowsTask, evaluateLoadedModel, hasPrompt, SCORE_KEYS } from "../eval/evaluate.js";
import { isGenerationMetric, resolveMetrics, type EvalTask } from "../eval/task.js";
import type { MetricName } from "../eval/score.js";
import { readJsonl } from "../store/jsonl.js";
import { preparedFile } from "./data.js";

/** The metric "auto" measures per task: the one number that best says whether the answers got better. */
const MAIN_TASK_METRIC: Record<EvalTask, MetricName | null> = {
  translation: "chrf",
  "json-extraction": "json-f1",
  chat: null, // open-ended answers: validation loss is the measure
};

/** The metric `setting` ("off", "auto" or a metric name / alias) means for `task`; null when none. */
export function resolveTaskMetric(setting: string, task: EvalTask): MetricName | null {
  if (setting === "off") return null;
  if (setting === "auto") return MAIN_TASK_METRIC[task];
  const [metric] = resolveMetrics([setting], task);
  if (!isGenerationMetric(metric)) {
    throw new TuneforgeError(`"${setting}" is not a metric on generated text`, {
      key: "training.eval_task_metric",
      hint: "validation loss is logged already; choose bleu, chrf, chrf++, json-f1 or exact (or auto)",
    });
  }
  return metric;
}

/** `n` rows drawn with a seeded shuffle, kept in file order; all rows when there are no more than `n`. */
export function sampleRows<T>(rows: readonly T[], n: number, seed: number): T[] {
  if (rows.length <= n) return [...rows];
  const picked = createRng(deriveSeed(seed, "task-eval"))
    .shuffle(rows.map((_, i) => i))
    .slice(0, n)
    .sort((a, b) => a - b);
  return picked.map((i) => rows[i]);
}

export interface TaskEvaluator {
  /** The logged name: the results file's score key (`chrf`, `json_f1`, ...). */
  metric: string;
  task: EvalTask;
  rows: number;
  /** The metric for the model's current weights (null when it could not be computed). */
  run(): Promise<number | null>;
}

export interface TaskEvaluatorInput {
  config: TuneforgeConfig;
  modelDir: string;
  preparedDir: string;
  domain: string;
  /** The model being trained; it is evaluated as it stands, LoRA weights included. */
  model: EngineModel;
}

/**
 * The task evaluator of a run, or null when the task metric is off, the validation split is empty (only with
 * "auto": an explicit metric without rows is an error), or "auto" finds a chat task (loss only).
 */
export async function createTaskEvaluator(o: TaskEvaluatorInput): Promise<TaskEvaluator | null> {
  const t = o.config.training;
  const setting = t.eval_task_metric;
  if (setting === "off") return null;
  const file = preparedFile(o.preparedDir, o.domain, "val");
  const all: PreparedRow[] = [];
  if (existsSync(file)) for await (const { row } of readJsonl<PreparedRow>(file)) all.push(row);
  if (all.length === 0) {
    if (setting === "auto") return null;
    throw new TuneforgeError(`training.eval_task_metric is "${setting}" but there are no validation rows`, {
      file,
      key: "training.eval_task_metric",
      hint: 'give the validation split a share (data.split.val > 0), or set eval_task_metric: "off"',
    });
  }
  const rows = sampleRows(all, t.eval_task_samples, t.seed);
  const tokenizer = await Tokenizer.fromModelDir(o.config.model.tokenizer ?? o.modelDir);
  const task = detectRowsTask(rows, tokenizer, o.model.config.eosTokenIds);
  const metric = resolveTaskMetric(setting, task);
  if (metric === null) return null;
  // Checked now rather than after the first epoch: every sampled row needs a prompt to answer.
  const bare = rows.find((r) => !hasPrompt(r, tokenizer));
  if (bare) {
    throw new TuneforgeError(
      `validation row has no prompt to generate from (plain-text or packed), so ${metric} cannot be measured`,
      {
        file,
        line: all.indexOf(bare) + 1,
        key: "training.eval_task_metric",
        hint: 'use prompt/answer data prepared with packing: false, or set eval_task_metric: "off"',
      },
    );
  }
  const loaded = { dir: o.modelDir, model: o.model, tokenizer };
  const key = SCORE_KEYS[metric];
  return {
    metric: key,
    task,
    rows: rows.length,
    async run() {
      const result = await evaluateLoadedModel(loaded, rows, {
        metrics: [metric],
        task,
        // Greedy whatever eval.temperature says: a sampled score would move with the seed, not the model.
        temperature: 0,
        maxNewTokens: o.config.eval.max_new_tokens,
        batchSize: o.config.eval.batch_size,
        numExamples: 0,
        domain: o.domain,
        name: o.domain,
      });
      const value = result.scores[key];
      return typeof value === "number" && Number.isFinite(value) ? value : null;
    },
  };
}
