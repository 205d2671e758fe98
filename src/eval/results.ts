// What an evaluation produces and its file, `results/<name>_results.json`, which `tuneforge report` reads
// (src/eval/report/inputs.ts validates the same shape).
import { join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import type { EvalTask } from "./task.js";
import type { ResultsScores } from "./report/types.js";

export const RESULTS_FILE_SUFFIX = "_results.json";

/**
 * Corpus scores in each metric's own unit: bleu/chrf/chrfpp 0-100 (sacreBLEU), json_f1 and exact 0-1,
 * loss in nats per token. NaN/Infinity (an overflowing perplexity) are written as null.
 */
export type EvalScores = ResultsScores;

export interface EvalExample {
  /** The user's input (the last user turn of the prompt where it can be found, else the whole prompt). */
  source: string;
  reference: string;
  output: string;
  /** Sentence-level score in the task's main metric (sentence BLEU/chrF, JSON F1, exact 1/0, row loss). */
  score?: number;
}

export interface EvalResult {
  name: string;
  domain?: string;
  task: EvalTask;
  /** The base model as the user named it (hub id or folder). */
  baseModel: string;
  /** The adapter folder evaluated; absent for the base model alone (a baseline). */
  adapter?: string;
  scores: EvalScores;
  /** Metric signatures by metric name (sacreBLEU style); empty when only loss/perplexity were computed. */
  signature: Record<string, string>;
  settings: Record<string, unknown>;
  examples: EvalExample[];
  /** Rows evaluated. */
  count: number;
}

/** The JSON written for a result (snake_case keys, as the report reads them). */
export function resultsJson(result: EvalResult, createdAt = new Date()): Record<string, unknown> {
  const scores: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(result.scores) as [string, number | undefined][]) {
    if (v !== undefined) scores[k] = Number.isFinite(v) ? v : null;
  }
  return {
    name: result.name,
    ...(result.domain !== undefined ? { domain: result.domain } : {}),
    ...(result.adapter !== undefined ? { adapter: result.adapter } : {}),
    base_model: result.baseModel,
    task: result.task,
    scores,
    ...(Object.keys(result.signature).length > 0 ? { signature: result.signature } : {}),
    settings: result.settings,
    examples: result.examples.map((e) => ({
      source: e.source,
      reference: e.reference,
      output: e.output,
      ...(e.score !== undefined ? { score: Number.isFinite(e.score) ? e.score : null } : {}),
    })),
    count: result.count,
    created_at: createdAt.toISOString(),
  };
}

/** A results name usable as a file name: letters, digits, `.`, `-`, `_` (anything else becomes `_`). */
export function safeResultsName(name: string): string {
  const safe = name.replace(/[^\p{L}\p{N}._-]+/gu, "_").replace(/^[._]+/, "");
  if (safe === "") {
    throw new TuneforgeError(`"${name}" cannot be used as a results name`, {
      key: "name",
      hint: "give the evaluation a name with letters or digits, e.g. --name translation",
    });
  }
  return safe;
}

/** Writes `<resultsDir>/<name>_results.json` atomically and returns its path. */
export function writeResults(result: EvalResult, resultsDir: string): string {
  const path = join(resultsDir, `${safeResultsName(result.name)}${RESULTS_FILE_SUFFIX}`);
  writeJsonAtomic(path, resultsJson(result));
  return path;
}
