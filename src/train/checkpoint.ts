// Training checkpoints, `<outputDir>/checkpoints/step-<N>/`: trainable weights (a PEFT adapter, or all
// weights in full fine-tuning), AdamW's moments and step, and the trainer's position (epoch, micro-batch, the
// data-order RNG state, the scheduler step), so a resumed run continues exactly where this one stopped.
// Each is written into a temporary folder and renamed into place: a folder named step-N is always complete.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TuneforgeError } from "../errors.js";
import type { EngineModel } from "../engine/model.js";
import type { OptimizerState } from "../engine/types.js";
import { readAdapter } from "../model/peft.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../model/safetensors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { saveAdapter, type LoraSpec } from "./weights.js";

export const CHECKPOINTS_DIR = "checkpoints";
export const KEEP_CHECKPOINTS = 2;
const STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";
const FULL_WEIGHTS_FILE = "weights.safetensors";
const BEST_FILE = "best.safetensors";

/** Where the trainer stands after `step` optimizer steps. */
export interface TrainerState {
  version: 1;
  /** Optimizer (and scheduler) steps done. */
  step: number;
  /** Epoch (0-based) and micro-batch within it where the next step starts. */
  epoch: number;
  batchIndex: number;
  /** The data-order RNG's state when `epoch`'s order was drawn (the order is redrawn from it on resume). */
  orderRngState: number;
  /** Micro-batches done in all; LoRA dropout masks are drawn from (seed, micro-step). */
  microStep: number;
  bestValLoss: number | null;
  /** The best task metric so far (training.eval_task_metric; higher is better). Absent in older checkpoints. */
  bestTaskValue?: number | null;
  /** Step of the best value of the metric early stopping watches (training.early_stopping_metric). */
  bestStep: number | null;
  /** Evaluations of the watched metric since its best value. */
  evalsWithoutImprovement: number;
  tokensSeen: number;
  /** Sum and count of step losses since the last log line (the logged loss averages them). */
  logLossSum: number;
  logSteps: number;
  startedAt: string;
}

export interface Saved {
  dir: string;
  state: TrainerState;
}

export interface CheckpointContent {
  model: EngineModel;
  /** LoRA settings, or null in full fine-tuning. */
  lora: LoraSpec | null;
  baseModel: string;
  state: TrainerState;
  /** The best weights so far (early stopping), by trainable name. */
  best: Map<string, Float32Array> | null;
}

function stepDirs(outputDir: string): { step: number; dir: string }[] {
  const root = join(outputDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => ({ m: /^step-(\d+)$/.exec(name), name }))
    .filter((e) => e.m && existsSync(join(root, e.name, STATE_FILE)))
    .map((e) => ({ step: Number(e.m![1]), dir: join(root, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder, or null. */
export function latestCheckpoint(outputDir: string): string | null {
  const all = stepDirs(outputDir);
  return all.length ? all[all.length - 1].dir : null;
}

function tensorsOf(prefix: string, values: Map<string, Float32Array>): TensorToWrite[] {
  return [...values].map(([name, data]) => ({
    name: prefix + name,
    dtype: "F32",
    shape: [data.length],
    data,
  }));
}

/** Writes step-<N> atomically and deletes all but the newest KEEP_CHECKPOINTS. Returns its folder. */
export function saveCheckpoint(outputDir: string, c: CheckpointContent): string {
  const root = join(outputDir, CHECKPOINTS_DIR);
  const final = join(root, `step-${c.state.step}`);
  const tmp = join(root, `.tmp-step-${c.state.step}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  if (c.lora) saveAdapter(tmp, c.model, c.lora, c.baseModel);
  else writeSafetensors(join(tmp, FULL_WEIGHTS_FILE), tensorsOf("", c.model.trainable("weights")));
  const opt = c.model.optimizerState();
  writeSafetensors(join(tmp, OPTIMIZER_FILE), [...tensorsOf("m.", opt.m), ...tensorsOf("v.", opt.v)], {
    step: String(opt.step),
  });
  if (c.best) writeSafetensors(join(tmp, BEST_FILE), tensorsOf("", c.best));
  writeJsonAtomic(join(tmp, STATE_FILE), c.state);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  const all = stepDirs(outputDir);
  for (const old of all.slice(0, Math.max(0, all.length - KEEP_CHECKPOINTS))) {
    rmSync(old.dir, { recursive: true, force: true });
  }
  return final;
}

function readAll(file: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(file);
  try {
    return new Map([...f.tensors.keys()].map((k) => [k, f.readF32(k)]));
  } finally {
    f.close();
  }
}

/**
 * Restores weights and optimizer state into `model` (already set up with the same LoRA settings or full
 * fine-tuning) and returns the trainer state and the best weights.
 */
export function loadCheckpoint(
  dir: string,
  model: EngineModel,
  lora: boolean,
): { state: TrainerState; best: Map<string, Float32Array> | null } {
  const statePath = join(dir, STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8")) as TrainerState;
  } catch (e) {
    throw new TuneforgeError(`cannot read the checkpoint state: ${(e as Error).message}`, {
      file: statePath,
      hint: "delete this checkpoint folder to resume from the previous one, or train without --resume",
    });
  }
  try {
    if (lora) {
      const adapter = readAdapter(dir);
      model.setLoraWeights(new Map([...adapter.weights].map(([k, w]) => [k, { A: w.A, B: w.B }])));
    } else {
      model.setTrainable("weights", readAll(join(dir, FULL_WEIGHTS_FILE)));
    }
    const opt: OptimizerState = { step: 0, m: new Map(), v: new Map() };
    const f = SafetensorsFile.open(join(dir, OPTIMIZER_FILE));
    try {
      opt.step = Number(f.metadata?.step ?? 0);
      for (const k of f.tensors.keys()) (k.startsWith("m.") ? opt.m : opt.v).set(k.slice(2), f.readF32(k));
    } finally {
      f.close();
    }
    model.setOptimizerState(opt);
  } catch (e) {
    if (e instanceof TuneforgeError) throw e;
    throw new TuneforgeError(`the checkpoint does not fit this run: ${(e as Error).message}`, {
      file: dir,
      hint: "resume with the settings the run was started with (model, LoRA r/targets, finetuning_type)",
      cause: e,
    });
  }
  const best = existsSync(join(dir, BEST_FILE)) ? readAll(join(dir, BEST_FILE)) : null;
  return { state, best };
}
