// `train()`: the LoRA / full fine-tuning loop behind `tuneforge train`. Reads one domain's prepared rows,
// runs micro-batches with gradient accumulation (loss token-weighted over the whole optimizer step, as HF
// Trainer does), AdamW with the configured schedule and clipping, validation (loss, and optionally a task metric
// on generated answers) with early stopping on either, a wall-clock limit, atomic checkpoints that resume
// bit-exactly, and writes the adapter (or model), metrics.jsonl and run.json.
import { availableParallelism, freemem } from "node:os";
import { basename, join, resolve } from "node:path";
import type { TuneforgeConfig } from "../config/schema.js";
import { TuneforgeError } from "../errors.js";
import { EngineModel } from "../engine/model.js";
import { describeDevice, resolveDevice } from "../engine/device.js";
import { resolveWeightsDtype, trainingLayout } from "../engine/precision.js";
import { cudaInfo } from "../engine/native.js";
import { loraModules } from "../engine/lora.js";
import type { LoraPair } from "../engine/types.js";
import { createRng, deriveSeed } from "../data/random.js";
import { ALL_PROJECTIONS, type Projection } from "../model/layout.js";
import { TOKENIZER_FILES } from "../model/folder.js";
import { checkAdapterMatchesModel, parseProjectionModule, readAdapter } from "../model/peft.js";
import { writeFileAtomic, writeJsonAtomic } from "../store/atomic.js";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { chunk, collate, epochOrder, targetTokens } from "./batches.js";
import {
  CHECKPOINTS_DIR,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import { checkPrepared, preparedDomains, readPreparedRows, type TrainRow } from "./data.js";
import {
  autoCheckpointing,
  checkTrainingMemory,
  estimateTrainingMemory,
  type MemoryInput,
} from "./memory.js";
import { finiteOrNull, MetricsLog, METRICS_FILE, type LogEntry } from "./metrics.js";
import { learningRateAt, warmupStepsFor, type Schedule } from "./schedule.js";
import { createTaskEvaluator } from "./taskEval.js";
import { saveAdapter, saveFullModel, type LoraSpec } from "./weights.js";

export interface TrainOptions {
  config: TuneforgeConfig;
  /** The base model folder (resolved: see model/resolve.ts). */
  modelDir: string;
  /** `data.output_dir`: manifest.json and `<domain>_<split>.jsonl`. */
  preparedDir: string;
  domain: string;
  /** The run folder (`models/<name>`); the adapter, logs and checkpoints go here. */
  outputDir: string;
  /** A PEFT adapter folder to start from instead of a fresh adapter (its r, alpha, targets are used). */
  initAdapter?: string;
  /** Continue from the newest checkpoint in outputDir (a fresh start when there is none). */
  resume?: boolean;
  /** CPU threads (default: all available). Resumed runs are bit-identical with the same thread count. */
  threads?: number;
  /** Abort: the current step finishes, a checkpoint is saved and train() returns {interrupted: true}. */
  signal?: AbortSignal;
  onLog?: (entry: LogEntry) => void;
  /** Lines for the run log that are not metrics (the device the engine runs on, with the GPU's free memory). */
  onInfo?: (line: string) => void;
  onProgress?: (step: number, total: number, fields: Record<string, number>) => void;
}

/**
 * Why a run ended: all its steps done, early stopping, `training.max_train_minutes`, or an abort (Ctrl-C;
 * only an interrupted run can be resumed, the others are finished).
 */
export type StopReason = "completed" | "early_stopping" | "time_limit" | "interrupted";

export interface TrainResult {
  outputDir: string;
  domain: string;
  /** Optimizer steps done in all (including those before a resume). */
  steps: number;
  totalSteps: number;
  /** Mean loss of each optimizer step run by this call, in order. */
  losses: { step: number; loss: number }[];
  finalValLoss: number | null;
  /** Step whose weights were saved when early stopping kept the best ones. */
  bestStep: number | null;
  earlyStopped: boolean;
  interrupted: boolean;
  stopReason: StopReason;
  /** The last task metric logged (training.eval_task_metric), or null when it is off. */
  taskMetric: { metric: string; value: number | null } | null;
  /** The checkpoint folder saved on interruption. */
  checkpoint?: string;
}

const DROPOUT_CALLS_PER_MICRO_STEP = 1 << 16; // > layers x 7 projections of any model we train
const RUN_FILE = "run.json";
const SETTINGS_FILE = "tuneforge.json";

/** HF's step count: ceil(micro-batches / accumulation) per epoch, times epochs; max_steps > 0 wins. */
export function totalStepsFor(rows: number, t: TuneforgeConfig["training"]): number {
  const microBatches = Math.ceil(rows / t.per_device_train_batch_size);
  const perEpoch = Math.max(1, Math.ceil(microBatches / t.gradient_accumulation_steps));
  return t.max_steps > 0 ? t.max_steps : Math.max(1, Math.ceil(t.num_train_epochs * perEpoch));
}

/** LoRA settings from the config, or from the init adapter (whose weights fix r and the targets). */
function loraSpecFor(config: TuneforgeConfig, init: ReturnType<typeof readAdapter> | null): LoraSpec {
  if (!init) {
    return {
      r: config.lora.r,
      alpha: config.lora.alpha,
      dropout: config.lora.dropout,
      targets: ALL_PROJECTIONS.filter((p) => (config.lora.target_modules as string[]).includes(p)),
      useRslora: config.lora.use_rslora,
    };
  }
  const targets = new Set<Projection>();
  for (const module of init.weights.keys()) targets.add(parseProjectionModule(module)!.proj);
  return {
    r: init.config.r,
    alpha: init.config.alpha,
    dropout: config.lora.dropout,
    targets: ALL_PROJECTIONS.filter((p) => targets.has(p)),
    useRslora: init.config.useRslora,
  };
}

function setUpModel(o: TrainOptions, model: EngineModel): LoraSpec | null {
  const { config } = o;
  if (config.training.finetuning_type === "full") {
    model.setFullFinetune(true);
    return null;
  }
  const init = o.initAdapter ? readAdapter(o.initAdapter) : null;
  if (init) {
    try {
      checkAdapterMatchesModel(init, model.config);
    } catch (e) {
      throw new TuneforgeError((e as Error).message.split("\n")[0], {
        file: o.initAdapter,
        hint: "start from an adapter trained for this base model, or leave the initial adapter out",
        cause: e,
      });
    }
  }
  const lora = loraSpecFor(config, init);
  const weights = init ? new Map<string, LoraPair>() : undefined;
  if (init && weights) {
    for (const m of loraModules(model.config, lora.targets)) {
      const w = init.weights.get(m.module);
      if (!w) {
        throw new TuneforgeError(`the initial adapter has no weights for ${m.module}`, {
          file: o.initAdapter,
          hint: "an adapter must cover every layer of the projections it targets",
        });
      }
      weights.set(m.module, { A: w.A, B: w.B });
    }
  }
  model.setLora({
    r: lora.r,
    alpha: lora.alpha,
    useRslora: lora.useRslora,
    dropout: lora.dropout,
    targets: lora.targets,
    weights,
    seed: deriveSeed(config.training.seed, "lora-init"),
  });
  return lora;
}

/** Token-weighted mean loss over `rows` (forward only), in micro-batches of similar lengths. */
export function validationLoss(
  model: EngineModel,
  rows: readonly TrainRow[],
  batchSize: number,
  padId: number,
): number {
  const sorted = [...rows].sort((a, b) => a.ids.length - b.ids.length);
  let sum = 0;
  let tokens = 0;
  for (const part of chunk(sorted, batchSize)) {
    const r = model.evalLoss(collate(part, padId));
    sum += r.lossSum;
    tokens += r.tokens;
  }
  return tokens > 0 ? sum / tokens : NaN;
}

function padIdOf(modelDir: string, fallback: number): number {
  const cfgPath = join(modelDir, "tokenizer_config.json");
  // Padding is masked out of attention and loss, so any in-vocabulary id works; the model's own keeps
  // batches identical to what HF would build.
  if (existsSync(cfgPath)) {
    try {
      const tc = JSON.parse(readFileSync(cfgPath, "utf8")) as { pad_token?: unknown };
      const tok = JSON.parse(readFileSync(join(modelDir, "tokenizer.json"), "utf8")) as {
        added_tokens?: { id: number; content: string }[];
      };
      const pad = typeof tc.pad_token === "string" ? tc.pad_token : null;
      const hit = tok.added_tokens?.find((t) => t.content === pad);
      if (hit) return hit.id;
    } catch {
      // fall back below
    }
  }
  return fallback;
}

function copyTokenizerFiles(modelDir: string, outputDir: string): void {
  for (const name of TOKENIZER_FILES) {
    const src = join(modelDir, name);
    if (existsSync(src)) writeFileAtomic(join(outputDir, name), readFileSync(src));
  }
}

/** On a GPU the memory check is against the device (its free memory plus what the loaded weights hold). */
function gpuMemory(model: EngineModel): { total: number; free: number } | undefined {
  if (model.device !== "cuda") return undefined;
  const info = cudaInfo();
  return { total: info.totalBytes, free: info.freeBytes + model.memory().inUse };
}

/**
 * The memory a run may fill, for training.gradient_checkpointing: "auto": the GPU's free memory (cudaInfo) or the
 * free RAM, plus what the model already holds there (the estimate counts the weights and adapters too).
 */
function trainingMemoryBudget(model: EngineModel): { bytes: number; where: string } {
  const held = model.memory().inUse;
  if (model.device === "cuda") return { bytes: cudaInfo().freeBytes + held, where: "free on the GPU" };
  return { bytes: freemem() + held, where: "of free RAM" };
}

/**
 * Applies training.gradient_checkpointing to the model ("auto": the fewest layers that fit, see
 * autoCheckpointing) and returns the run-log line saying what was chosen and why.
 */
function setUpCheckpointing(
  model: EngineModel,
  setting: TuneforgeConfig["training"]["gradient_checkpointing"],
  memory: MemoryInput,
): string {
  const L = model.config.numLayers;
  let why: string;
  if (setting === "auto") {
    const choice = autoCheckpointing(memory, trainingMemoryBudget(model));
    model.setGradientCheckpointing(choice.layers);
    why = choice.reason;
  } else {
    model.setGradientCheckpointing(setting);
    why = `training.gradient_checkpointing: ${String(setting)}`;
  }
  const k = model.checkpointedLayers;
  return k === 0
    ? `gradient checkpointing: off (${why})`
    : `gradient checkpointing: ${k} of ${L} layers (${why})`;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Trains one domain's adapter (or full model) into `outputDir`. */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const { config } = o;
  const t = config.training;
  if (t.finetuning_type === "qlora") {
    throw new TuneforgeError("QLoRA (a 4-bit base) is not supported by tuneforge's engine yet", {
      key: "training.finetuning_type",
      hint: 'use finetuning_type: "lora" (the same adapters on a float32 or bfloat16 base)',
    });
  }
  if (t.early_stopping_metric === "task" && t.eval_task_metric === "off") {
    throw new TuneforgeError('early_stopping_metric is "task" but no task metric is measured', {
      key: "training.early_stopping_metric",
      hint: 'set training.eval_task_metric (e.g. "auto" or "chrf"), or use early_stopping_metric: "loss"',
    });
  }
  // The wall-clock budget counts from here: loading the model and data is part of what it limits.
  const startedMs = performance.now();
  const outputDir = resolve(o.outputDir);
  checkPrepared(o.preparedDir, o.modelDir);
  const threads = o.threads ?? availableParallelism();
  const device = resolveDevice(t.device, { key: "training.device" });
  const precision = resolveWeightsDtype(t.bf16, device, { fullFinetune: t.finetuning_type === "full" });
  const model = EngineModel.load(o.modelDir, {
    threads,
    device,
    // "auto" is decided once the batch shapes are known (runTraining).
    gradientCheckpointing: t.gradient_checkpointing === "auto" ? false : t.gradient_checkpointing,
    weights: precision.weights,
  });
  o.onInfo?.(`device: ${describeDevice(device)}`);
  o.onInfo?.(`base weights: ${precision.weights} (${precision.reason})`);
  try {
    return await runTraining(o, model, outputDir, startedMs);
  } finally {
    model.dispose();
  }
}

async function runTraining(
  o: TrainOptions,
  model: EngineModel,
  outputDir: string,
  startedMs: number,
): Promise<TrainResult> {
  const { config } = o;
  const t = config.training;
  const mc = model.config;
  const rows = await readPreparedRows(o.preparedDir, o.domain, "train", mc.vocabSize);
  const valRows = await readPreparedRows(o.preparedDir, o.domain, "val", mc.vocabSize, true);
  if (rows.length === 0) {
    throw new TuneforgeError(`domain "${o.domain}" has no training rows`, {
      file: join(o.preparedDir, `${o.domain}_train.jsonl`),
      hint: "add data for this domain, or check data.split (the train ratio must be > 0)",
    });
  }
  const bs = t.per_device_train_batch_size;
  const accum = t.gradient_accumulation_steps;
  const padId = padIdOf(o.modelDir, mc.padTokenId ?? mc.eosTokenIds[0] ?? 0);
  const lengths = rows.map((r) => r.ids.length);
  const longest = Math.max(...lengths, ...valRows.map((r) => r.ids.length));

  const lora = setUpModel(o, model);
  const taskEval = await createTaskEvaluator({
    config,
    modelDir: o.modelDir,
    preparedDir: o.preparedDir,
    domain: o.domain,
    model,
  });
  const watch = t.early_stopping_metric;
  if (watch === "task" && !taskEval) {
    throw new TuneforgeError(
      `early_stopping_metric is "task" but domain "${o.domain}" has no task metric to watch ` +
        `(eval_task_metric "${t.eval_task_metric}": no validation rows, or a chat task, which has none)`,
      {
        key: "training.early_stopping_metric",
        hint: 'name a metric in training.eval_task_metric (e.g. "chrf"), or use early_stopping_metric: "loss"',
      },
    );
  }
  const hostTable = model.memory().hostBytes ?? 0;
  if (hostTable > 0)
    o.onInfo?.(
      `embedding table: ${(hostTable / 2 ** 30).toFixed(2)} GiB in pinned host memory (the GPU reads each step's ` +
        "rows over the bus; TUNEFORGE_CUDA_HOST_EMBEDDING=0 keeps it on the GPU)",
    );
  const memory: MemoryInput = {
    config: mc,
    tokensPerMicroBatch: bs * longest,
    finetuning: lora ? "lora" : "full",
    lora: lora ?? undefined,
    weightsDtype: model.weights,
    ...trainingLayout(model.device, model.weights, mc, lora ? "lora" : "full"),
    // where the loaded model's table is (the rule's answer, unless pinned memory could not be had)
    embeddingOnHost: hostTable > 0,
  };
  if (t.gradient_checkpointing !== false) {
    const line = setUpCheckpointing(model, t.gradient_checkpointing, memory); // applied with or without a log
    o.onInfo?.(line);
  }
  checkTrainingMemory(
    estimateTrainingMemory({ ...memory, gradientCheckpointing: model.checkpointedLayers }),
    gpuMemory(model),
  );

  const totalSteps = totalStepsFor(rows.length, t);
  const schedule: Schedule = {
    type: t.lr_scheduler_type,
    baseLr: t.learning_rate,
    warmupSteps: warmupStepsFor(totalSteps, t.warmup_ratio),
    totalSteps,
  };
  const baseModel = config.model.name_or_path;
  const metrics = new MetricsLog(join(outputDir, METRICS_FILE));
  const log = (e: LogEntry) => {
    metrics.append(e);
    o.onLog?.(e);
  };

  let state: TrainerState = {
    version: 1,
    step: 0,
    epoch: 0,
    batchIndex: 0,
    orderRngState: createRng(deriveSeed(t.seed, "data-order")).state(),
    microStep: 0,
    bestValLoss: null,
    bestTaskValue: null,
    bestStep: null,
    evalsWithoutImprovement: 0,
    tokensSeen: 0,
    logLossSum: 0,
    logSteps: 0,
    startedAt: new Date().toISOString(),
  };
  let best: Map<string, Float32Array> | null = null;
  const resumeFrom = o.resume ? latestCheckpoint(outputDir) : null;
  if (resumeFrom) {
    ({ state, best } = loadCheckpoint(resumeFrom, model, lora !== null));
    metrics.reset(state.step);
  } else {
    rmSync(join(outputDir, CHECKPOINTS_DIR), { recursive: true, force: true });
    metrics.reset(null);
  }

  const group = t.group_by_length ? bs * accum : null;
  let orderRng = createRng(state.orderRngState);
  let microBatches = chunk(epochOrder(lengths, orderRng, group), bs);
  const losses: TrainResult["losses"] = [];
  const checkpointNow = () => saveCheckpoint(outputDir, { model, lora, baseModel, state, best });
  const evaluate = (): number => {
    const v = validationLoss(model, valRows, bs, padId);
    lastVal = v;
    log({ step: state.step, val_loss: finiteOrNull(v) });
    return v;
  };

  const patience = t.early_stopping_patience;
  // Early stopping: called once per evaluation of the watched metric; true when patience has run out.
  const watched = (improved: boolean): boolean => {
    if (improved) {
      state.bestStep = state.step;
      state.evalsWithoutImprovement = 0;
      if (patience > 0) best = model.trainable("weights");
      return false;
    }
    state.evalsWithoutImprovement++;
    return patience > 0 && state.evalsWithoutImprovement >= patience;
  };
  let taskMetric: TrainResult["taskMetric"] = null;
  let lastTaskEvalStep = -1;
  const evaluateTask = async (epoch: number): Promise<number | null> => {
    const value = await taskEval!.run();
    taskMetric = { metric: taskEval!.metric, value };
    lastTaskEvalStep = state.step;
    log({ step: state.step, epoch, eval: taskMetric });
    return value;
  };
  const timeUp = () =>
    t.max_train_minutes !== undefined && (performance.now() - startedMs) / 60_000 >= t.max_train_minutes;

  let window = { tokens: 0, started: performance.now() };
  let stopReason: StopReason = "completed";
  let lastEvalStep = -1;
  let lastVal = NaN;
  let epoch = state.epoch + state.batchIndex / microBatches.length;
  while (state.step < totalSteps) {
    if (state.batchIndex >= microBatches.length) {
      state.epoch++;
      state.batchIndex = 0;
      state.orderRngState = orderRng.state();
      orderRng = createRng(state.orderRngState);
      microBatches = chunk(epochOrder(lengths, orderRng, group), bs);
    }
    const stepBatches = microBatches.slice(state.batchIndex, state.batchIndex + accum);
    const stepRows = stepBatches.map((idx) => idx.map((i) => rows[i]));
    // HF's num_items_in_batch: every micro-batch's gradient is scaled by 1 / (targets of the whole step).
    const targets = stepRows.flat().reduce((n, r) => n + targetTokens(r), 0);
    model.zeroGrads();
    let lossSum = 0;
    let stepTokens = 0;
    for (const part of stepRows) {
      model.dropoutCounter = state.microStep * DROPOUT_CALLS_PER_MICRO_STEP;
      const batch = collate(part, padId);
      if (targets > 0) lossSum += model.forwardBackward(batch, { gradScale: 1 / targets }).lossSum;
      state.microStep++;
      for (const r of part) stepTokens += r.ids.length;
    }
    const lr = learningRateAt(schedule, state.step);
    // A step without any target token has no gradient; updating would only apply weight decay.
    const gradNorm =
      targets > 0
        ? model.adamwStep({ lr, weightDecay: t.weight_decay, maxGradNorm: t.max_grad_norm }).gradNorm
        : NaN;
    state.step++;
    state.batchIndex += stepBatches.length;
    state.tokensSeen += stepTokens;
    window.tokens += stepTokens;
    const loss = targets > 0 ? lossSum / targets : NaN;
    losses.push({ step: state.step, loss });
    state.logLossSum += loss;
    state.logSteps++;
    epoch = state.epoch + state.batchIndex / microBatches.length;
    const progress: Record<string, number> = { loss, lr, epoch };
    const shown = taskMetric as TrainResult["taskMetric"]; // set by evaluateTask (a closure TS cannot follow)
    if (shown && shown.value !== null) progress[shown.metric] = shown.value;
    o.onProgress?.(state.step, totalSteps, progress);

    // The step that runs out of time is logged too: its loss is part of the run.
    const outOfTime = timeUp();
    if (state.step % t.logging_steps === 0 || state.step === totalSteps || outOfTime) {
      const seconds = (performance.now() - window.started) / 1000;
      log({
        step: state.step,
        epoch,
        loss: finiteOrNull(state.logLossSum / state.logSteps),
        lr,
        grad_norm: finiteOrNull(gradNorm),
        tokens_per_s: seconds > 0 ? window.tokens / seconds : 0,
        memory_mb: model.memory().peak / 2 ** 20,
      });
      window = { tokens: 0, started: performance.now() };
      state.logLossSum = 0;
      state.logSteps = 0;
    }
    if (valRows.length > 0 && state.step % t.eval_steps === 0) {
      const v = evaluate();
      lastEvalStep = state.step;
      const better = state.bestValLoss === null || v < state.bestValLoss;
      if (better) state.bestValLoss = v;
      if (watch === "loss" && watched(better)) {
        stopReason = "early_stopping";
        break;
      }
    }
    const epochEnd = state.batchIndex >= microBatches.length;
    if (taskEval && (t.eval_task_strategy === "steps" ? state.step % t.eval_steps === 0 : epochEnd)) {
      const v = await evaluateTask(epoch);
      // Higher is better for every text metric; a value that could not be computed never improves.
      const prev = state.bestTaskValue ?? null;
      const better = v !== null && (prev === null || v > prev);
      if (better) state.bestTaskValue = v;
      if (watch === "task" && watched(better)) {
        stopReason = "early_stopping";
        break;
      }
    }
    const aborted = o.signal?.aborted === true;
    if ((state.step % t.save_steps === 0 && state.step < totalSteps) || aborted) {
      const dir = checkpointNow();
      if (aborted) {
        return {
          outputDir,
          domain: o.domain,
          steps: state.step,
          totalSteps,
          losses,
          finalValLoss: null,
          bestStep: state.bestStep,
          earlyStopped: false,
          interrupted: true,
          stopReason: "interrupted",
          taskMetric,
          checkpoint: dir,
        };
      }
    }
    if (outOfTime) {
      stopReason = "time_limit";
      break;
    }
    await tick(); // let a Ctrl-C handler (or any other event) run between steps
  }

  // Early stopping keeps the best weights (HF load_best_model_at_end); otherwise the last ones.
  let finalValLoss: number | null = null;
  const keepBest = best !== null && state.bestStep !== null && patience > 0;
  if (keepBest) {
    model.setTrainable("weights", best!);
    if (watch === "loss") finalValLoss = state.bestValLoss;
    // The best task step's weights were not necessarily validated: measure them (not logged: the step differs).
    else if (valRows.length > 0) finalValLoss = finiteOrNull(validationLoss(model, valRows, bs, padId));
  } else if (valRows.length > 0) {
    finalValLoss = finiteOrNull(lastEvalStep === state.step ? lastVal : evaluate());
  }
  // The saved weights get a task metric too (a run that stops mid-epoch has one for what it saves); the kept
  // best weights of another step are measured without a log line, which would put them at the wrong step.
  if (taskEval && !keepBest && lastTaskEvalStep !== state.step) await evaluateTask(epoch);
  else if (taskEval && keepBest) {
    const value = watch === "task" ? (state.bestTaskValue ?? null) : await taskEval.run();
    taskMetric = { metric: taskEval.metric, value };
  }

  if (lora) {
    saveAdapter(outputDir, model, lora, baseModel);
    copyTokenizerFiles(o.modelDir, outputDir);
  } else {
    saveFullModel(outputDir, o.modelDir, model.trainable("weights"));
  }
  writeJsonAtomic(join(outputDir, SETTINGS_FILE), {
    version: 1,
    domain: o.domain,
    base_model: baseModel,
    finetuning_type: t.finetuning_type,
    config,
  });
  writeJsonAtomic(join(outputDir, RUN_FILE), {
    name: t.run_name ?? basename(outputDir),
    domain: o.domain,
    base_model: baseModel,
    config,
    started_at: state.startedAt,
    finished_at: new Date().toISOString(),
    final_val_loss: finalValLoss,
    steps: state.step,
    stop_reason: stopReason,
    best_step: patience > 0 ? state.bestStep : null,
    ...(taskMetric ? { task_metric: taskMetric } : {}),
  });
  return {
    outputDir,
    domain: o.domain,
    steps: state.step,
    totalSteps,
    losses,
    finalValLoss,
    bestStep: patience > 0 ? state.bestStep : null,
    earlyStopped: stopReason === "early_stopping",
    interrupted: false,
    stopReason,
    taskMetric,
  };
}

export type TrainAllOptions = Omit<TrainOptions, "domain">;

/** One adapter per domain of the prepared data, each into `<outputDir>/<domain>`; stops at an interruption. */
export async function trainAllDomains(o: TrainAllOptions): Promise<TrainResult[]> {
  const manifest = checkPrepared(o.preparedDir, o.modelDir);
  const domains = preparedDomains(manifest);
  if (domains.length === 0) {
    throw new TuneforgeError("the prepared data has no train files", {
      file: join(o.preparedDir, "manifest.json"),
      hint: "run `tuneforge prepare` (check data.split.train > 0)",
    });
  }
  const results: TrainResult[] = [];
  for (const domain of domains) {
    const r = await train({ ...o, domain, outputDir: join(o.outputDir, domain) });
    results.push(r);
    if (r.interrupted) break;
  }
  return results;
}
