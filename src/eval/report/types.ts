// The files a report is built from (written by the trainer and the evaluator) and the options of a report.

/**
 * One line of `<runDir>/metrics.jsonl`. Training lines carry `loss`/`lr`/..., validation lines `val_loss`,
 * task-metric lines `eval`. Every field but `step` is optional and unknown keys are allowed (kept, not shown).
 * A number may be `null` where the trainer could not compute it (NaN/Infinity have no JSON form).
 */
export interface MetricsLine {
  step: number;
  epoch?: number | null;
  loss?: number | null;
  lr?: number | null;
  grad_norm?: number | null;
  tokens_per_s?: number | null;
  memory_mb?: number | null;
  val_loss?: number | null;
  eval?: TaskMetricValue;
  [key: string]: unknown;
}

/** A task metric measured during training, e.g. `{metric: "chrf", value: 41.2}`. */
export interface TaskMetricValue {
  metric: string;
  value: number | null;
}

/** `<runDir>/run.json` (optional): what the run was and how it was configured. */
export interface RunInfo {
  name: string;
  domain?: string;
  base_model: string;
  /** The resolved config (or a summary of it); shown flattened as `a.b.c = value` rows. */
  config: Record<string, unknown>;
  /** ISO 8601 timestamps. */
  started_at: string;
  finished_at?: string;
  [key: string]: unknown;
}

export type ResultsTask = "translation" | "json-extraction" | "chat";

/** Corpus-level scores; higher is better except `loss` and `perplexity`. Other numeric keys are allowed. */
export interface ResultsScores {
  bleu?: number;
  chrf?: number;
  chrfpp?: number;
  json_f1?: number;
  exact?: number;
  loss?: number;
  perplexity?: number;
  [metric: string]: number | undefined;
}

export interface ResultsExample {
  source: string;
  reference: string;
  output: string;
  /** Sentence-level score of this example (same metric as the task's main score). */
  score?: number;
}

/** `results/<name>_results.json`: one evaluation of one model (base or base + adapter) on one test set. */
export interface ResultsFile {
  name: string;
  domain?: string;
  /** The run this evaluation belongs to, when the evaluator knows it (the run folder's name). */
  run?: string;
  /** Path of the adapter evaluated; absent for the base model alone (a baseline). */
  adapter?: string;
  base_model: string;
  task: ResultsTask;
  scores: ResultsScores;
  /** Metric signatures (sacreBLEU style), as one string or one per metric. */
  signature?: string | Record<string, string>;
  settings: Record<string, unknown>;
  examples: ResultsExample[];
}

/** A parsed metrics.jsonl. */
export interface MetricsLog {
  file: string;
  lines: MetricsLine[];
  /**
   * The raw text of a last line that was not valid JSON: the run was killed mid-write. It is skipped, and
   * the report says so (never silently).
   */
  truncatedLastLine?: string;
}

/** One run folder, loaded. */
export interface LoadedRun {
  dir: string;
  /** `run.json`'s name, else the folder's name. */
  name: string;
  info?: RunInfo;
  metrics: MetricsLog;
}

/** One results file, loaded. */
export interface LoadedResults {
  file: string;
  results: ResultsFile;
}

export interface ReportOptions {
  /** Run folders to report on (one for `tuneforge report runs/<name>`, every one for `--all`). */
  runDirs: string[];
  /**
   * Folder of `<name>_results.json` files. Default: `results/` next to the runs' parent folder
   * (`runs/<name>` -> `results/`). A missing default folder means "no evaluation yet"; a missing given one
   * is an error.
   */
  resultsDir?: string;
  /** Include every results file in `resultsDir`, not only those of the given runs and their baselines. */
  allResults?: boolean;
  /** At most this many examples per results file in the examples table (default 50); the rest are counted. */
  maxExamplesPerResults?: number;
  /** Page title (default: "tuneforge report: <run names>"). */
  title?: string;
}

export interface WriteReportOptions extends ReportOptions {
  /** The HTML file to write. */
  out: string;
}
