// `tuneforge demo`: the whole pipeline on generated Spanish purchase orders, offline. Generate orders (training
// phrasings) and 200 held-out orders (phrasings never trained on) -> prepare both with the model's tokenizer ->
// evaluate the base model -> train (full fine-tuning of the built-in tiny model, LoRA for a real model) within a
// time budget -> evaluate again -> results files, an HTML report and a before/after comparison.
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { configFromObject } from "../config/load.js";
import type { TuneforgeConfig } from "../config/schema.js";
import { prepare, type PrepareResult } from "../data/prepare.js";
import { Tokenizer } from "../data/tokenizer.js";
import type { PreparedRow } from "../data/types.js";
import { TuneforgeError } from "../errors.js";
import { evaluate, type EvalProgress } from "../eval/evaluate.js";
import { corpusJsonF1 } from "../eval/metrics/jsonF1.js";
import { writeReport } from "../eval/report/index.js";
import { writeResults, type EvalExample, type EvalResult } from "../eval/results.js";
import { bundledCorpus, isTinyModel, resolveModelDir, tuneforgeHome } from "../model/resolve.js";
import { ensureTinyModel, type TinyModelOptions } from "../model/tiny.js";
import { readJsonl } from "../store/jsonl.js";
import {
  generatePurchaseOrders,
  writePurchaseOrdersJsonl,
  type PhrasingVariety,
} from "../synth/purchaseOrders.js";
import { train } from "../train/index.js";
import { readPreparedRows } from "../train/data.js";
import { measureStepSeconds } from "./calibrate.js";
import {
  CORPUS_ORDERS,
  CORPUS_SEED,
  DEFAULT_MINUTES,
  DEFAULT_TRAIN_ORDERS,
  DEMO_SEED,
  DEMO_TINY_SIZES,
  DEMO_VARIETY,
  DOMAIN,
  HELDOUT_ORDERS,
  LORA_TRAINING,
  STEP_TIME_MARGIN,
  SYSTEM_PROMPT,
  TINY_TRAINING,
  type DemoTraining,
} from "./settings.js";

export type DemoStage =
  "generate" | "model" | "prepare" | "eval-before" | "calibrate" | "train" | "eval-after";

export interface DemoProgress {
  stage: DemoStage;
  done: number;
  total: number;
  fields?: Record<string, number>;
}

export interface DemoOptions {
  /** `tuneforge/tiny` (default: the built-in tiny model, built on first use), a hub id pulled before, or a folder. */
  model?: string;
  /** The work folder (data, prepared data, run, results, report). */
  dir: string;
  trainOrders?: number;
  heldoutOrders?: number;
  /** Training time budget in minutes; the step count is derived from a measured step time. */
  minutes?: number;
  /** Overrides of the training settings (tests use few steps). */
  training?: Partial<DemoTraining>;
  /** Sizes of the tiny model (tests use smaller ones). */
  tinySizes?: Partial<TinyModelOptions>;
  /** Generated orders added to the tiny model's tokenizer corpus. */
  corpusOrders?: number;
  /** How varied the training orders' wording is (default DEMO_VARIETY); held-out orders never change. */
  variety?: PhrasingVariety;
  /** Where the tiny model is cached (default: tuneforge's home). */
  cacheDir?: string;
  seed?: number;
  threads?: number;
  /** Stops training after the current step (a checkpoint is kept; the demo then ends with an error). */
  signal?: AbortSignal;
  onStage?: (stage: DemoStage, message: string) => void;
  onProgress?: (progress: DemoProgress) => void;
}

/** The comparison figures of one evaluation. */
export interface DemoScores {
  /** JSON field F1, micro-averaged over (key path, value) pairs. */
  jsonF1: number;
  /** Outputs equal to the reference JSON. */
  exact: number;
  /** Outputs holding no parseable JSON object. */
  unparseable: number;
  resultsFile: string;
}

export interface DemoResult {
  dir: string;
  modelDir: string;
  runDir: string;
  resultsDir: string;
  reportPath: string;
  before: DemoScores;
  after: DemoScores;
  /** A few held-out examples after training. */
  examples: EvalExample[];
  trainRows: number;
  heldoutRows: number;
  steps: number;
  /** Training ended at the wall-clock budget before its planned steps (the machine was slower than measured). */
  stoppedAtTimeLimit: boolean;
  finalLoss: number | null;
  finetuning: "full" | "lora";
  /** Seconds per stage and in all. */
  seconds: Record<DemoStage | "total", number>;
}

const MIN_STEPS = 1;

function positiveInt(value: number, key: string): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TuneforgeError(`${key} is ${value}; expected a positive whole number`, {
      key,
      hint: `e.g. --${key} ${key === "train-orders" ? DEFAULT_TRAIN_ORDERS : 10}`,
    });
  }
  return value;
}

/** The texts the demo's tiny tokenizer is trained on: the bundled examples plus generated training-phrasing orders. */
export async function demoTokenizerCorpus(
  corpusOrders = CORPUS_ORDERS,
  variety: PhrasingVariety = DEMO_VARIETY,
): Promise<string[]> {
  // The same variety as the training orders, so the tokenizer's merges cover the words training uses.
  const orders = generatePurchaseOrders({ count: corpusOrders, seed: CORPUS_SEED, variety });
  return [
    ...(await bundledCorpus()),
    ...orders.flatMap((g) => [g.natural_language, JSON.stringify(g.json_data)]),
  ];
}

/** The demo's tiny model: the built-in architecture with a tokenizer that also knows the generator's words. */
async function demoTinyModel(o: DemoOptions): Promise<string> {
  return ensureTinyModel({
    corpus: await demoTokenizerCorpus(o.corpusOrders, o.variety),
    seed: 0,
    cacheDir: o.cacheDir ?? tuneforgeHome(),
    ...DEMO_TINY_SIZES,
    ...o.tinySizes,
  }).dir;
}

function demoConfig(
  dir: string,
  modelName: string,
  input: string,
  outputDir: string,
  t: DemoTraining,
  full: boolean,
  split: { train: number; val: number; test: number },
  seed: number,
): TuneforgeConfig {
  return configFromObject({
    model: { name_or_path: modelName },
    data: {
      inputs: [{ path: input, domain: DOMAIN }],
      output_dir: outputDir,
      template: "chat",
      system_prompt: SYSTEM_PROMPT,
      split,
      // Generated orders are distinct by construction; exact dedup still guards against a repeat.
      dedup: "exact",
    },
    training: {
      finetuning_type: full ? "full" : "lora",
      learning_rate: t.learningRate,
      lr_scheduler_type: t.scheduler,
      warmup_ratio: t.warmupRatio,
      weight_decay: full ? 0.0 : 0.01,
      per_device_train_batch_size: t.batchSize,
      gradient_accumulation_steps: 1,
      max_seq_length: t.maxSeqLength,
      max_steps: t.maxSteps,
      seed,
      logging_steps: 10,
      eval_steps: 1_000_000,
      save_steps: 1_000_000,
      output_dir: join(dir, "runs"),
      run_name: "demo",
    },
    eval: { metrics: ["json-f1", "exact"] },
  });
}

async function readRows(file: string): Promise<PreparedRow[]> {
  const rows: PreparedRow[] = [];
  for await (const { row } of readJsonl<PreparedRow>(file)) rows.push(row);
  return rows;
}

/** Completion tokens of the longest answer: generation never needs many more. */
function longestAnswer(rows: readonly PreparedRow[]): number {
  return Math.max(...rows.map((r) => r.labels.filter((l) => l !== -100).length));
}

function scoresOf(result: EvalResult, resultsFile: string): DemoScores {
  // The metric's own parse of every output (the examples hold them all), so the rate agrees with the F1.
  const json = corpusJsonF1(
    result.examples.map((e) => e.output),
    result.examples.map((e) => e.reference),
  );
  return {
    jsonF1: result.scores.json_f1 ?? 0,
    exact: result.scores.exact ?? 0,
    unparseable: json.score.unparseable_rate,
    resultsFile,
  };
}

function checkPrepared(p: PrepareResult, what: string, expected: number): void {
  // Never drop data silently: every order must reach the prepared files, or the user is told why not.
  if (p.stats.kept < expected) {
    throw new TuneforgeError(
      `only ${p.stats.kept} of ${expected} ${what} orders survived preparation (see stats.json)`,
      {
        file: join(p.outputDir, "stats.json"),
        hint: "raise max_seq_length, or use fewer products per order",
      },
    );
  }
}

/** Runs the demo end to end; see the file comment. */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const seconds = {} as DemoResult["seconds"];
  let mark = performance.now();
  const stage = (s: DemoStage, message: string) => o.onStage?.(s, message);
  const done = (s: DemoStage) => {
    seconds[s] = (performance.now() - mark) / 1000;
    mark = performance.now();
  };
  const dir = resolve(o.dir);
  const seed = o.seed ?? DEMO_SEED;
  const trainOrders = positiveInt(o.trainOrders ?? DEFAULT_TRAIN_ORDERS, "train-orders");
  const heldoutOrders = positiveInt(o.heldoutOrders ?? HELDOUT_ORDERS, "heldout-orders");
  const minutes = o.minutes ?? DEFAULT_MINUTES;
  if (!(minutes > 0)) {
    throw new TuneforgeError(`minutes is ${minutes}; expected a positive number`, {
      key: "minutes",
      hint: `e.g. --minutes ${DEFAULT_MINUTES}`,
    });
  }
  const threads = o.threads ?? availableParallelism();
  const modelName = o.model ?? "tuneforge/tiny";
  const full = isTinyModel(modelName);
  const t: DemoTraining = { ...(full ? TINY_TRAINING : LORA_TRAINING), ...o.training };

  stage("generate", `generating ${trainOrders} training and ${heldoutOrders} held-out orders`);
  const dataDir = join(dir, "data");
  const trainFile = join(dataDir, "orders_train.jsonl");
  const heldoutFile = join(dataDir, "orders_heldout.jsonl");
  const variety = o.variety ?? DEMO_VARIETY;
  writePurchaseOrdersJsonl(trainFile, generatePurchaseOrders({ count: trainOrders, seed, variety }));
  writePurchaseOrdersJsonl(
    heldoutFile,
    generatePurchaseOrders({ count: heldoutOrders, seed: seed + 1, phrasings: "heldout" }),
  );
  done("generate");

  stage("model", full ? "building the built-in tiny model (first use only)" : `using ${modelName}`);
  const modelDir = full ? await demoTinyModel(o) : await resolveModelDir(modelName);
  const tokenizer = await Tokenizer.fromModelDir(modelDir);
  done("model");

  stage("prepare", "preparing the orders with the model's tokenizer");
  // The tiny model's folder stands for the model in the configs (its name alone would resolve to the plain
  // built-in one, whose tokenizer is not the demo's).
  const baseName = full ? modelDir : modelName;
  const configFor = (file: string, prepared: string, split: { train: number; val: number; test: number }) =>
    demoConfig(dir, baseName, file, join(dir, "prepared", prepared), t, full, split, seed);
  const trainConfig = configFor(trainFile, "train", { train: 0.95, val: 0.05, test: 0 });
  // Held-out orders are all evaluation data; the pipeline needs a train share, so they go to its train file.
  const heldoutConfig = configFor(heldoutFile, "heldout", { train: 1, val: 0, test: 0 });
  const total = trainOrders + heldoutOrders;
  let rowsDone = 0;
  const onRow = () => o.onProgress?.({ stage: "prepare", done: ++rowsDone, total });
  const preparedTrain = await prepare({ config: trainConfig, tokenizer, force: true, onRow });
  checkPrepared(preparedTrain, "training", trainOrders);
  const preparedHeldout = await prepare({ config: heldoutConfig, tokenizer, force: true, onRow });
  checkPrepared(preparedHeldout, "held-out", heldoutOrders);
  const heldoutPath = join(preparedHeldout.outputDir, `${DOMAIN}_train.jsonl`);
  const heldoutRows = await readRows(heldoutPath);
  done("prepare");

  const resultsDir = join(dir, "results");
  const evalSettings = {
    metrics: ["json-f1", "exact"],
    maxNewTokens: longestAnswer(heldoutRows) + 16,
    batchSize: 8,
    numExamples: heldoutRows.length, // every output is kept: the unparseable rate is computed from them
    threads,
    baseModel: baseName,
    data: heldoutPath,
  };
  const evalProgress = (s: DemoStage) => (p: EvalProgress) =>
    o.onProgress?.({ stage: s, done: p.done, total: p.total });

  stage("eval-before", `evaluating the base model on ${heldoutRows.length} held-out orders`);
  const beforeResult = await evaluate({
    ...evalSettings,
    modelDir,
    name: "demo_before",
    onProgress: evalProgress("eval-before"),
  });
  const before = scoresOf(beforeResult, writeResults(beforeResult, resultsDir));
  done("eval-before");

  stage("calibrate", "measuring the time of one training step");
  const trainRows = await readPreparedRows(preparedTrain.outputDir, DOMAIN, "train", tokenizer.vocabSize);
  const stepSeconds = measureStepSeconds({
    modelDir,
    rows: trainRows,
    batchSize: t.batchSize,
    finetuning: full ? "full" : "lora",
    padId: tokenizer.padTokenId,
    threads,
  });
  const steps = Math.max(
    MIN_STEPS,
    Math.min(t.maxSteps, Math.floor((minutes * 60) / (stepSeconds * STEP_TIME_MARGIN))),
  );
  done("calibrate");

  stage(
    "train",
    `training ${steps} steps (${stepSeconds.toFixed(2)} s each, ${full ? "full fine-tuning" : "LoRA"})`,
  );
  // The planned steps fit the budget when the calibration was right; the wall-clock limit keeps a machine that
  // got busier during training from pushing the demo past it (the run then ends normally, a little short).
  const config = {
    ...trainConfig,
    training: { ...trainConfig.training, max_steps: steps, max_train_minutes: minutes },
  };
  const runDir = join(dir, "runs", "demo");
  const trained = await train({
    config,
    modelDir,
    preparedDir: preparedTrain.outputDir,
    domain: DOMAIN,
    outputDir: runDir,
    threads,
    signal: o.signal,
    onProgress: (step, totalSteps, fields) =>
      o.onProgress?.({ stage: "train", done: step, total: totalSteps, fields }),
  });
  if (trained.interrupted) {
    throw new TuneforgeError(`the demo was stopped during training (step ${trained.steps})`, {
      file: trained.checkpoint,
      hint: "run `tuneforge demo` again to start over",
    });
  }
  done("train");

  stage("eval-after", `evaluating the trained model on ${heldoutRows.length} held-out orders`);
  const afterResult = await evaluate({
    ...evalSettings,
    // Full fine-tuning writes a whole model folder; LoRA an adapter on the base model.
    modelDir: full ? runDir : modelDir,
    adapterDir: full ? undefined : runDir,
    name: "demo",
    onProgress: evalProgress("eval-after"),
  });
  const after = scoresOf(afterResult, writeResults(afterResult, resultsDir));
  done("eval-after");

  const reportPath = writeReport({
    runDirs: [runDir],
    resultsDir,
    out: join(dir, "report.html"),
    title: "tuneforge demo: Spanish purchase orders -> JSON",
  });
  seconds.total = (performance.now() - t0) / 1000;
  return {
    dir,
    modelDir,
    runDir,
    resultsDir,
    reportPath,
    before,
    after,
    examples: afterResult.examples,
    trainRows: trainRows.length,
    heldoutRows: heldoutRows.length,
    steps: trained.steps,
    stoppedAtTimeLimit: trained.stopReason === "time_limit",
    finalLoss: trained.losses.at(-1)?.loss ?? null,
    finetuning: full ? "full" : "lora",
    seconds,
  };
}
