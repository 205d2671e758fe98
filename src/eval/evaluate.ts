// `tuneforge eval`: a model (optionally with a LoRA adapter) on a prepared test set -> scores, a few examples
// and `results/<name>_results.json`. Prompts are the rows' own `prompt` fields, rendered at prepare time by the
// same template function training used, so the model is asked exactly what it was trained to answer.
import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { DeviceChoice, EngineModel } from "../engine/index.js";
import { TuneforgeError } from "../errors.js";
import { readManifest, MANIFEST_FILE } from "../data/prepare.js";
import { IGNORE_INDEX } from "../data/render.js";
import type { Tokenizer } from "../data/tokenizer.js";
import type { PreparedRow } from "../data/types.js";
import type { LoraAdapter } from "../model/peft.js";
import { readJsonl } from "../store/jsonl.js";
import { perplexity } from "./metrics/perplexity.js";
import { scoreSegments, type ScoreReport, type SegmentScore } from "./score.js";
import {
  applyAdapter,
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_NEW_TOKENS,
  endOfTurnIds,
  generateText,
  loadModel,
  readAdapterFor,
  type GenerationOptions,
  type LoadedModel,
} from "./generate.js";
import { writeResults, type EvalExample, type EvalResult, type EvalScores } from "./results.js";
import { detectTask, isGenerationMetric, resolveMetrics, type EvalMetric, type EvalTask } from "./task.js";

export type EvalPhase = "generate" | "loss";

export interface EvalProgress {
  phase: EvalPhase;
  done: number;
  total: number;
  /** Set by evaluateAllDomains. */
  domain?: string;
}

export interface EvaluateSettings extends Omit<GenerationOptions, "onProgress"> {
  /** Metric names, "auto" or absent for the task's defaults (see task.ts). */
  metrics?: string | readonly string[];
  /** Override task detection. */
  task?: EvalTask;
  /** Examples kept in the result (default 5). */
  numExamples?: number;
  /** Evaluate the first `limit` rows only. */
  limit?: number;
  /** CPU threads for the engine. */
  threads?: number;
  /** Where the engine runs: "cpu" (default), "cuda" or "auto" (the GPU when there is one). */
  device?: DeviceChoice;
  /** The base model's name for the results file (default: modelDir as given). */
  baseModel?: string;
  onProgress?: (progress: EvalProgress) => void;
}

export interface EvaluateOptions extends EvaluateSettings {
  modelDir: string;
  adapterDir?: string;
  /** A prepared test file (`data/prepared/<domain>_test.jsonl`) or prepared rows in memory. */
  data: string | readonly PreparedRow[];
  /** Results name (default: the adapter folder's name, or `base_<domain>`). */
  name?: string;
}

/** A prepared row with where it came from, for error messages. */
interface TestRow {
  row: PreparedRow;
  /** 1-based line in the test file (index + 1 for rows given in memory). */
  line: number;
}

interface TestSet {
  /** The test file, or "(rows)" for rows given in memory. */
  file: string;
  rows: TestRow[];
}

const IN_MEMORY = "(rows)";

function notPrepared(file: string, line: number, what: string): TuneforgeError {
  return new TuneforgeError(`${what}; this is not a prepared test file`, {
    file,
    line,
    hint:
      "run `tuneforge prepare` first and evaluate its output, e.g. data/prepared/<domain>_test.jsonl " +
      "(rows with prompt, completion, input_ids and labels)",
  });
}

const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));

/** Checks one row has the prepared shape (types.ts PreparedRow). */
function checkPreparedRow(value: unknown, file: string, line: number): PreparedRow {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw notPrepared(file, line, "the row is not a JSON object");
  }
  const row = value as Record<string, unknown>;
  for (const key of ["prompt", "completion"]) {
    if (typeof row[key] !== "string") throw notPrepared(file, line, `the row has no "${key}" text`);
  }
  for (const key of ["input_ids", "labels"]) {
    if (!isIntArray(row[key])) throw notPrepared(file, line, `the row has no "${key}" list of token ids`);
  }
  if ((row.input_ids as number[]).length !== (row.labels as number[]).length) {
    throw notPrepared(file, line, "input_ids and labels differ in length");
  }
  if (row.boundaries !== undefined && !isIntArray(row.boundaries)) {
    throw notPrepared(file, line, '"boundaries" is not a list of offsets');
  }
  return row as unknown as PreparedRow;
}

async function readTestSet(data: string | readonly PreparedRow[], limit?: number): Promise<TestSet> {
  if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0)) {
    throw new TuneforgeError(`limit is ${limit}; expected a positive integer`, {
      key: "limit",
      hint: "leave it out to evaluate every row",
    });
  }
  const max = limit ?? Infinity;
  const rows: TestRow[] = [];
  let file = IN_MEMORY;
  if (typeof data === "string") {
    file = data;
    if (!existsSync(data)) {
      throw new TuneforgeError("test file not found", {
        file: data,
        hint: "run `tuneforge prepare` first; it writes data/prepared/<domain>_test.jsonl",
      });
    }
    try {
      for await (const { line, row } of readJsonl(data)) {
        if (rows.length >= max) break;
        rows.push({ row: checkPreparedRow(row, data, line), line });
      }
    } catch (e) {
      if (e instanceof TuneforgeError && e.message.includes("invalid JSON")) {
        throw notPrepared(data, e.location.line ?? 0, "the line is not valid JSON");
      }
      throw e;
    }
  } else {
    data
      .slice(0, max)
      .forEach((row, i) => rows.push({ row: checkPreparedRow(row, file, i + 1), line: i + 1 }));
  }
  if (rows.length === 0) {
    throw new TuneforgeError("the test set has no rows", {
      file,
      hint: "check data.split.test in tuneforge.yaml (a test share above 0) and re-run `tuneforge prepare`",
    });
  }
  return { file, rows };
}

/** Refuses data prepared with another tokenizer (manifest.json beside the test file records its hash). */
function checkTokenizer(set: TestSet, tokenizer: Tokenizer, vocabSize: number): void {
  if (set.file !== IN_MEMORY) {
    const manifest = readManifest(dirname(set.file));
    const hash = manifest?.tokenizer?.hash;
    if (hash !== undefined && hash !== tokenizer.hash) {
      throw new TuneforgeError(
        `the test data was prepared with another tokenizer (${manifest?.tokenizer.dir ?? "unknown"}) than the ` +
          `model's (${tokenizer.dir})`,
        {
          file: join(dirname(set.file), MANIFEST_FILE),
          hint: "re-run `tuneforge prepare` with this model, or evaluate the model the data was prepared for",
        },
      );
    }
  }
  for (const { row, line } of set.rows) {
    const bad = row.input_ids.find((id) => id < 0 || id >= vocabSize);
    if (bad !== undefined) {
      throw new TuneforgeError(`token id ${bad} is outside the model's vocabulary (size ${vocabSize})`, {
        file: set.file,
        line,
        hint: "the data was prepared with another tokenizer: re-run `tuneforge prepare` with this model",
      });
    }
  }
}

/**
 * The answer a prepared row expects: its completion without the end-of-turn / eos marker(s) the template put
 * at its end (and the whitespace around them), i.e. what decoding the ideal output without special tokens gives.
 */
export function referenceText(completion: string, endMarkers: readonly string[]): string {
  let text = completion.trimEnd();
  for (let changed = true; changed;) {
    changed = false;
    for (const m of endMarkers) {
      if (m !== "" && text.endsWith(m)) {
        text = text.slice(0, -m.length).trimEnd();
        changed = true;
      }
    }
  }
  return text.trim();
}

function endMarkers(tokenizer: Tokenizer, modelEosIds: readonly number[]): string[] {
  const markers = new Set<string>([tokenizer.eosToken]);
  for (const id of endOfTurnIds(tokenizer, modelEosIds)) {
    const token = tokenizer.idToToken(id);
    if (token !== undefined && tokenizer.specialTokenIds.has(id)) markers.add(token);
  }
  return [...markers];
}

// The user's text inside a rendered prompt, for the examples table: last user turn of ChatML, Llama 3,
// Llama 2 / Mistral prompts, or Alpaca's input / instruction.
const SOURCE_PATTERNS = [
  /<\|im_start\|>user\n([\s\S]*?)<\|im_end\|>(?![\s\S]*<\|im_start\|>user\n)/,
  /<\|start_header_id\|>user<\|end_header_id\|>\n\n([\s\S]*?)<\|eot_id\|>(?![\s\S]*<\|start_header_id\|>user)/,
  /\[INST\]([\s\S]*?)\[\/INST\](?![\s\S]*\[INST\])/,
  /### Input:\n([\s\S]*?)\n\n### Response:/,
  /### Instruction:\n([\s\S]*?)\n\n### Response:/,
];

export function promptSource(prompt: string): string {
  for (const re of SOURCE_PATTERNS) {
    const m = re.exec(prompt);
    if (m) return m[1].trim();
  }
  return prompt.trim();
}

/** The task of prepared rows as `evaluate` detects it: from their prompts and expected answers. */
export function detectRowsTask(
  rows: readonly PreparedRow[],
  tokenizer: Tokenizer,
  modelEosIds: readonly number[],
): EvalTask {
  const markers = endMarkers(tokenizer, modelEosIds);
  return detectTask({
    prompts: rows.map((r) => (hasPrompt(r, tokenizer) ? r.prompt : "")),
    references: rows.filter((r) => hasPrompt(r, tokenizer)).map((r) => referenceText(r.completion, markers)),
  });
}

/** Rows that carry a prompt to generate from: not plain-text, pre-tokenized or packed rows. */
export function hasPrompt(row: PreparedRow, tokenizer: Tokenizer): boolean {
  const p = row.prompt;
  return p !== "" && p !== tokenizer.bosToken && row.completion !== "" && row.boundaries === undefined;
}

export interface RowLoss {
  /** Summed cross-entropy (nats) over the row's scored tokens. */
  lossSum: number;
  tokens: number;
}

export interface DatasetLoss {
  /** Token-weighted mean cross-entropy over every scored label of every row. */
  loss: number;
  tokens: number;
  perRow: RowLoss[];
}

// Logits are [rows, T, vocab] float32: cap one forward at ~256 MB of them (one row always goes, whatever its size).
const LOGITS_BUDGET_FLOATS = 64 * 1024 * 1024;

/**
 * Mean next-token cross-entropy over every label != -100 (position t's logits predict labels[t + 1], as in
 * training), token-weighted across rows. The engine has no forward-only loss (forwardBackward would also run the
 * backward pass and touch gradients), so this takes `model.forward` logits and does the log-softmax here in
 * float64, a batch at a time: rows sorted by length (little padding), right-padded and masked, at most
 * `batchSize` rows and LOGITS_BUDGET_FLOATS logits per forward, so memory stays bounded.
 */
export function datasetLoss(
  model: EngineModel,
  rows: readonly Pick<PreparedRow, "input_ids" | "labels" | "boundaries">[],
  options: { batchSize?: number; onProgress?: (p: { done: number; total: number }) => void } = {},
): DatasetLoss {
  const V = model.config.vocabSize;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const order = rows
    .map((_, i) => i)
    .filter((i) => rows[i].input_ids.length > 0)
    .sort((a, b) => rows[b].input_ids.length - rows[a].input_ids.length || a - b);
  const perRow: RowLoss[] = rows.map(() => ({ lossSum: 0, tokens: 0 }));
  let done = rows.length - order.length;
  for (let start = 0; start < order.length;) {
    const T = rows[order[start]].input_ids.length; // the longest of this batch: rows are sorted
    const fit = Math.max(1, Math.floor(LOGITS_BUDGET_FLOATS / (T * V)));
    const members = order.slice(start, start + Math.min(batchSize, fit));
    start += members.length;
    const n = members.length;
    const inputIds = new Int32Array(n * T);
    const attentionMask = new Int32Array(n * T);
    const packed = members.some((i) => rows[i].boundaries !== undefined);
    const segmentIds = packed ? new Int32Array(n * T) : undefined;
    members.forEach((i, r) => {
      const ids = rows[i].input_ids;
      inputIds.set(ids, r * T);
      attentionMask.fill(1, r * T, r * T + ids.length);
      if (segmentIds) segmentIds.set(segmentsOf(ids.length, rows[i].boundaries), r * T);
    });
    const logits = model.forward({ rows: n, inputIds, attentionMask, segmentIds });
    members.forEach((i, r) => {
      const { labels } = rows[i];
      const seg = segmentIds?.subarray(r * T, r * T + labels.length);
      const acc = perRow[i];
      for (let t = 0; t + 1 < labels.length; t++) {
        const y = labels[t + 1];
        if (y === IGNORE_INDEX || (seg && seg[t] !== seg[t + 1])) continue;
        acc.lossSum += crossEntropy(logits, (r * T + t) * V, V, y);
        acc.tokens++;
      }
    });
    done += n;
    options.onProgress?.({ done, total: rows.length });
  }
  let lossSum = 0;
  let tokens = 0;
  for (const r of perRow) {
    lossSum += r.lossSum;
    tokens += r.tokens;
  }
  if (tokens === 0) {
    throw new TuneforgeError("the test set has no token to compute the loss on (every label is -100)", {
      hint: "check that the test rows have answers (prepare with loss_on: completion keeps the answers' labels)",
    });
  }
  return { loss: lossSum / tokens, tokens, perRow };
}

/** Segment id (1, 2, ...) of each position of a packed row; all 1 for an unpacked one. */
function segmentsOf(length: number, boundaries: readonly number[] | undefined): Int32Array {
  const seg = new Int32Array(length).fill(1);
  (boundaries ?? []).forEach((b, k) => seg.fill(k + 1, b));
  return seg;
}

/** -log softmax(logits[at .. at + V])[y], in float64. */
function crossEntropy(logits: Float32Array, at: number, V: number, y: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[at + v] > max) max = logits[at + v];
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[at + v] - max);
  return Math.log(sum) + max - logits[at + y];
}

/** The results file's score key of each text metric (`json-f1` -> `json_f1`). */
export const SCORE_KEYS = {
  bleu: "bleu",
  chrf: "chrf",
  "chrf++": "chrfpp",
  "json-f1": "json_f1",
  exact: "exact",
} as const;

function corpusScore(report: ScoreReport, metric: keyof typeof SCORE_KEYS): number {
  switch (metric) {
    case "bleu":
      return report.bleu!.score;
    case "chrf":
      return report.chrf!.score;
    case "chrf++":
      return report.chrfpp!.score;
    case "json-f1":
      return report.json_f1!.f1;
    case "exact":
      return report.exact!.accuracy;
  }
}

function segmentScore(s: SegmentScore, metric: keyof typeof SCORE_KEYS): number | undefined {
  const v = s[SCORE_KEYS[metric]];
  return typeof v === "boolean" ? (v ? 1 : 0) : v;
}

/** The adapter applied to a loaded model for one evaluation. */
interface AppliedAdapter {
  dir: string;
  adapter: LoraAdapter;
}

interface RunOptions extends EvaluateSettings {
  name?: string;
  domain?: string;
}

/** Evaluates a loaded model (adapter already applied, if any) on a test set. */
async function runEvaluation(
  loaded: LoadedModel,
  applied: AppliedAdapter | undefined,
  set: TestSet,
  options: RunOptions,
): Promise<EvalResult> {
  const { model, tokenizer } = loaded;
  checkTokenizer(set, tokenizer, model.config.vocabSize);
  const markers = endMarkers(tokenizer, model.config.eosTokenIds);
  const rows = set.rows.map((r) => r.row);
  const prompted = set.rows.filter((r) => hasPrompt(r.row, tokenizer));
  const task = options.task ?? detectRowsTask(rows, tokenizer, model.config.eosTokenIds);
  const metrics = resolveMetrics(options.metrics, task);
  const textMetrics = metrics.filter(isGenerationMetric);
  const numExamples = options.numExamples ?? 5;
  if (!Number.isInteger(numExamples) || numExamples < 0) {
    throw new TuneforgeError(`numExamples is ${numExamples}; expected 0 or more`, {
      key: "eval.num_examples",
      hint: "use a whole number, e.g. 5",
    });
  }
  const generation: GenerationOptions = {
    maxNewTokens: options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
    temperature: options.temperature ?? 0,
    topK: options.topK,
    topP: options.topP,
    repetitionPenalty: options.repetitionPenalty,
    stop: options.stop,
    seed: options.seed ?? 0,
  };
  const progress = (phase: EvalPhase) => (p: { done: number; total: number }) =>
    options.onProgress?.({
      phase,
      ...p,
      ...(options.domain !== undefined ? { domain: options.domain } : {}),
    });

  // Text metrics need an output for every row; otherwise only the examples are generated (to show them).
  if (textMetrics.length > 0 && prompted.length < set.rows.length) {
    const first = set.rows.find((r) => !hasPrompt(r.row, tokenizer))!;
    throw new TuneforgeError(
      `the row has no prompt to generate from (a plain-text, pre-tokenized or packed row), so ${textMetrics.join(", ")} cannot be computed`,
      {
        file: set.file,
        line: first.line,
        hint: "evaluate it with --metrics loss,perplexity, or prepare the data with packing: false and prompt/answer rows",
      },
    );
  }
  const toGenerate = textMetrics.length > 0 ? prompted : prompted.slice(0, numExamples);
  const outputs = generateText(
    model,
    tokenizer,
    toGenerate.map((r) => r.row.prompt),
    { ...generation, onProgress: progress("generate") },
  ).map((o) => o.trim());
  const references = toGenerate.map((r) => referenceText(r.row.completion, markers));

  const scores: EvalScores = {};
  const signature: Record<string, string> = {};
  let perSegment: SegmentScore[] | undefined;
  if (textMetrics.length > 0) {
    const report = scoreSegments({ hyps: outputs, refs: references, metrics: textMetrics, perSegment: true });
    for (const m of textMetrics) scores[SCORE_KEYS[m]] = corpusScore(report, m);
    Object.assign(signature, report.signature);
    perSegment = report.perSegment;
  }
  let rowLoss: RowLoss[] | undefined;
  if (metrics.includes("loss") || metrics.includes("perplexity")) {
    const loss = datasetLoss(model, rows, { batchSize: generation.batchSize, onProgress: progress("loss") });
    rowLoss = loss.perRow;
    if (metrics.includes("loss")) scores.loss = loss.loss;
    if (metrics.includes("perplexity"))
      scores.perplexity = Number.isFinite(loss.loss) ? perplexity(loss.loss) : NaN;
  }

  const main: EvalMetric = metrics[0];
  const examples: EvalExample[] = toGenerate.slice(0, numExamples).map((r, k) => {
    const example: EvalExample = {
      source: promptSource(r.row.prompt),
      reference: references[k],
      output: outputs[k],
    };
    let score: number | undefined;
    if (isGenerationMetric(main)) score = perSegment && segmentScore(perSegment[k], main);
    else if (rowLoss) {
      const l = rowLoss[set.rows.indexOf(r)];
      score = l.tokens > 0 ? l.lossSum / l.tokens : undefined;
    }
    if (score !== undefined) example.score = score;
    return example;
  });

  const domain = options.domain ?? commonDomain(rows);
  const name = options.name ?? defaultName(applied?.dir, domain, set.file);
  return {
    name,
    ...(domain !== undefined ? { domain } : {}),
    task,
    baseModel: options.baseModel ?? loaded.dir,
    ...(applied ? { adapter: applied.dir } : {}),
    scores,
    signature,
    settings: {
      test_file: set.file,
      metrics,
      max_new_tokens: generation.maxNewTokens,
      batch_size: generation.batchSize,
      temperature: generation.temperature,
      ...(generation.topK !== undefined ? { top_k: generation.topK } : {}),
      ...(generation.topP !== undefined ? { top_p: generation.topP } : {}),
      ...(generation.repetitionPenalty !== undefined
        ? { repetition_penalty: generation.repetitionPenalty }
        : {}),
      ...(generation.stop !== undefined ? { stop: [...generation.stop] } : {}),
      seed: generation.seed,
      num_examples: numExamples,
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(applied
        ? {
            lora: {
              r: applied.adapter.config.r,
              alpha: applied.adapter.config.alpha,
              rslora: applied.adapter.config.useRslora,
            },
          }
        : {}),
    },
    examples,
    count: rows.length,
  };
}

function commonDomain(rows: readonly PreparedRow[]): string | undefined {
  const domains = new Set(rows.map((r) => r.domain).filter((d) => typeof d === "string" && d !== ""));
  return domains.size === 1 ? [...domains][0] : undefined;
}

// Folder names that say nothing about the model: use the parent's name instead (runs/<name>/adapter).
const GENERIC_FOLDERS = /^(adapter|adapters|final|best|output|lora|checkpoint[-_]?\d*)$/i;

function defaultName(adapterDir: string | undefined, domain: string | undefined, file: string): string {
  if (adapterDir !== undefined) {
    const dir = resolve(adapterDir);
    const own = basename(dir);
    return GENERIC_FOLDERS.test(own) ? `${basename(dirname(dir))}_${own}` : own;
  }
  const stem =
    file === IN_MEMORY
      ? "rows"
      : basename(file)
          .replace(/\.jsonl$/, "")
          .replace(/_test$/, "");
  return `base_${domain ?? stem}`;
}

/**
 * Evaluates a model that is already loaded, as it stands (e.g. the trainer's own model between steps, its LoRA
 * weights in place), on prepared rows in memory. The same path as `evaluate`; nothing is written.
 */
export async function evaluateLoadedModel(
  loaded: LoadedModel,
  rows: readonly PreparedRow[],
  options: EvaluateSettings & { name?: string; domain?: string },
): Promise<EvalResult> {
  return runEvaluation(loaded, undefined, await readTestSet(rows, options.limit), options);
}

/** Evaluates the base model, or the base model + an adapter, on a prepared test set. */
export async function evaluate(options: EvaluateOptions): Promise<EvalResult> {
  // Read and check the cheap things first, so a bad path fails before the model loads.
  const set = await readTestSet(options.data, options.limit);
  const loaded = await loadModel(options.modelDir, { threads: options.threads, device: options.device });
  try {
    let applied: AppliedAdapter | undefined;
    if (options.adapterDir !== undefined) {
      const adapter = readAdapterFor(options.adapterDir, loaded.model);
      applyAdapter(loaded.model, adapter);
      applied = { dir: options.adapterDir, adapter };
    }
    return await runEvaluation(loaded, applied, set, options);
  } finally {
    loaded.model.dispose();
  }
}

export interface EvaluateAllDomainsOptions extends EvaluateSettings {
  modelDir: string;
  /** Where `<domain>/` adapter folders are (default "models", training.output_dir). */
  adaptersRoot?: string;
  /** Where `<domain>_test.jsonl` files are (default "data/prepared"). */
  preparedDir?: string;
  /** Only these domains (default: every domain with a test file). */
  domains?: readonly string[];
  /** When set, each domain's results are written there as soon as they are done. */
  resultsDir?: string;
}

const TEST_SUFFIX = "_test.jsonl";

/** Domains with a prepared test file: the manifest's list where there is one, else the files present. */
export function testDomains(preparedDir: string): string[] {
  const manifest = readManifest(preparedDir);
  if (manifest?.files) {
    return manifest.files.filter((f) => f.split === "test" && f.rows > 0).map((f) => f.domain);
  }
  if (!existsSync(preparedDir)) return [];
  return readdirSync(preparedDir)
    .filter((f) => f.endsWith(TEST_SUFFIX))
    .map((f) => f.slice(0, -TEST_SUFFIX.length))
    .sort();
}

/**
 * `tuneforge eval --all-domains`: each domain's adapter (`<adaptersRoot>/<domain>`) on its own test set
 * (`<preparedDir>/<domain>_test.jsonl`), with the base model loaded once and the adapters switched.
 */
export async function evaluateAllDomains(options: EvaluateAllDomainsOptions): Promise<EvalResult[]> {
  const adaptersRoot = options.adaptersRoot ?? "models";
  const preparedDir = options.preparedDir ?? "data/prepared";
  const domains = options.domains ? [...options.domains] : testDomains(preparedDir);
  if (domains.length === 0) {
    throw new TuneforgeError(`no prepared test set (<domain>${TEST_SUFFIX})`, {
      file: preparedDir,
      hint: "run `tuneforge prepare` first, with a test share above 0 (data.split.test)",
    });
  }
  // Every problem is reported before hours of evaluation, not after the first domain.
  const missing = domains.filter((d) => !existsSync(join(adaptersRoot, d)));
  if (missing.length > 0) {
    throw new TuneforgeError(`no adapter for domain(s) ${missing.join(", ")}`, {
      file: adaptersRoot,
      hint: `train them first (\`tuneforge train --all-domains\`); each domain's adapter goes to ${join(adaptersRoot, "<domain>")}`,
    });
  }
  const sets = new Map<string, TestSet>();
  for (const d of domains)
    sets.set(d, await readTestSet(join(preparedDir, `${d}${TEST_SUFFIX}`), options.limit));
  const loaded = await loadModel(options.modelDir, { threads: options.threads, device: options.device });
  try {
    const results: EvalResult[] = [];
    for (const domain of domains) {
      const dir = join(adaptersRoot, domain);
      const adapter = readAdapterFor(dir, loaded.model);
      applyAdapter(loaded.model, adapter);
      const result = await runEvaluation(loaded, { dir, adapter }, sets.get(domain)!, {
        ...options,
        name: domain,
        domain,
      });
      if (options.resultsDir !== undefined) writeResults(result, options.resultsDir);
      results.push(result);
    }
    return results;
  } finally {
    loaded.model.dispose();
  }
}
