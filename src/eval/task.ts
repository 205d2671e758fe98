// What a test set asks of the model, and the metrics that measure it. The task decides the default metrics;
// `--metrics` (or eval.metrics in tuneforge.yaml) overrides them, with "auto" meaning "the task's defaults".
import { TuneforgeError } from "../errors.js";
import { METRIC_NAMES, type MetricName } from "./score.js";

export const EVAL_TASKS = ["translation", "json-extraction", "chat"] as const;
export type EvalTask = (typeof EVAL_TASKS)[number];

/** Metrics on generated text (scoreSegments) plus the two computed from the model's logits. */
export const EVAL_METRICS = [...METRIC_NAMES, "loss", "perplexity"] as const;
export type EvalMetric = (typeof EVAL_METRICS)[number];

const DEFAULT_METRICS: Record<EvalTask, EvalMetric[]> = {
  translation: ["bleu", "chrf"],
  "json-extraction": ["json-f1", "exact"],
  chat: ["loss", "perplexity"],
};

// Spellings people type for the same metric (the results file's score keys among them).
export const METRIC_ALIASES: Readonly<Record<string, EvalMetric>> = {
  chrfpp: "chrf++",
  "chrf+": "chrf++",
  json_f1: "json-f1",
  jsonf1: "json-f1",
  exact_match: "exact",
  "exact-match": "exact",
  em: "exact",
  ppl: "perplexity",
};

export function defaultMetrics(task: EvalTask): EvalMetric[] {
  return [...DEFAULT_METRICS[task]];
}

/** True for metrics that need generated outputs (everything but loss and perplexity). */
export function isGenerationMetric(metric: EvalMetric): metric is MetricName {
  return metric !== "loss" && metric !== "perplexity";
}

/**
 * The metrics to compute: `requested` (names, or a comma-separated string) resolved against the task;
 * absent, empty or "auto" gives the task's defaults. Unknown names are an error naming the choices.
 */
export function resolveMetrics(
  requested: string | readonly string[] | undefined,
  task: EvalTask,
): EvalMetric[] {
  const names = (typeof requested === "string" ? requested.split(",") : (requested ?? []))
    .map((m) => m.trim().toLowerCase())
    .filter((m) => m !== "");
  if (names.length === 0 || (names.length === 1 && names[0] === "auto")) return defaultMetrics(task);
  const out: EvalMetric[] = [];
  for (const name of names) {
    if (name === "auto") {
      for (const m of defaultMetrics(task)) if (!out.includes(m)) out.push(m);
      continue;
    }
    const metric = METRIC_ALIASES[name] ?? (EVAL_METRICS as readonly string[]).find((m) => m === name);
    if (metric === undefined) {
      throw new TuneforgeError(`unknown metric "${name}"`, {
        key: "eval.metrics",
        hint: `choose from ${EVAL_METRICS.join(", ")} (or "auto" for the task's defaults)`,
      });
    }
    if (!out.includes(metric)) out.push(metric as EvalMetric);
  }
  return out;
}

/** A JSON object (not an array or a scalar) once surrounding whitespace is dropped. */
export function isJsonObjectText(text: string): boolean {
  const t = text.trim();
  if (!t.startsWith("{")) return false;
  try {
    const v: unknown = JSON.parse(t);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

// Long or multi-paragraph answers are conversation, not translation: a translated segment is one short text.
const CHAT_MEAN_CHARS = 400;

export interface TaskEvidence {
  /** The rows' rendered prompts ("" for plain-text, pre-tokenized and packed rows). */
  prompts: readonly string[];
  /** The expected answers (references). */
  references: readonly string[];
}

/**
 * Detects the task of a test set:
 * - json-extraction: every reference is a JSON object;
 * - chat: rows without a prompt (language-model text, packed rows), or long / multi-paragraph answers;
 * - translation: otherwise (short plain-text targets, one per prompt).
 */
export function detectTask({ prompts, references }: TaskEvidence): EvalTask {
  if (references.length === 0 || prompts.some((p) => p === "")) return "chat";
  if (references.every(isJsonObjectText)) return "json-extraction";
  const meanChars = references.reduce((n, r) => n + r.length, 0) / references.length;
  const paragraphs = references.filter((r) => r.includes("\n\n")).length;
  if (meanChars > CHAT_MEAN_CHARS || paragraphs * 2 > references.length) return "chat";
  return "translation";
}

export function parseTask(value: string): EvalTask {
  const task = (EVAL_TASKS as readonly string[]).find((t) => t === value);
  if (task === undefined) {
    throw new TuneforgeError(`unknown task "${value}"`, {
      key: "task",
      hint: `choose from ${EVAL_TASKS.join(", ")}, or leave it out to detect it from the test set`,
    });
  }
  return task as EvalTask;
}
