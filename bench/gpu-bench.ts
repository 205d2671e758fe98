// The core of `npm run bench:gpu` (bench/gpu.ts is the command line): our LoRA training steps and batched generation
// on random weights at the shapes of issue 4, beside the HF peers run in the same process tree, with the engine
// allocator's peak, cudaMemGetInfo, a per-kernel profile of one step and a memory-bandwidth roofline, all inside a
// wall-clock budget. Every case ends in a status: a case that runs out of memory (or fails) is reported with the
// numbers it had, and the rest go on.
import { cpus } from "node:os";
import {
  EngineModel,
  copyBandwidth,
  deviceSynchronize,
  kvCacheBytes,
  resetMemoryPeak,
  resolveWeightsDtype,
  setProfiling,
  takeProfile,
  trainingLayout,
  type EngineDevice,
  type ProfileReport,
  type ProfileRow,
  type WeightsDtype,
} from "../src/engine/index.js";
import { cudaInfo } from "../src/engine/native.js";
import type { ModelConfig } from "../src/model/config.js";
import { ALL_PROJECTIONS, expectedTensors, projectionShape } from "../src/model/layout.js";
import { checkpointLayersToFit, estimateTrainingMemory, type MemoryInput } from "../src/train/memory.js";
import {
  fullGenerateCase,
  fullTrainCases,
  smokeGenerateCase,
  smokeTrainCases,
  type GenerateCase,
  type Goal,
  type TrainCase,
} from "./gpu-cases.js";
import { peerNumber, runPeer, type PeerOptions, type PeerRun } from "./gpu-peers.js";

const LORA = { r: 16, alpha: 32, targets: ALL_PROJECTIONS, seed: 0 } as const;
/** bench_peft.py's optimizer: torch AdamW (weight decay 0.01 by default), lr 2e-4, no clipping. */
const ADAMW = { lr: 2e-4, weightDecay: 0.01 };
const GIB = 2 ** 30;

export interface GpuBenchOptions {
  device: EngineDevice;
  /** Tiny shapes, no peers: the harness end to end in seconds (the CPU test runs this). */
  smoke?: boolean;
  /** Wall-clock budget in seconds for everything (ours and peers); remaining work is skipped with a note. */
  budgetS?: number;
  /** Run the python peers (default: on, except in smoke mode). */
  peers?: boolean;
  peer?: Partial<PeerOptions>;
  /** Timed steps per training case (default 5; fewer when the budget runs short). */
  steps?: number;
  warmup?: number;
  /** LoRA dropout (default 0.05, as bench_peft.py). */
  loraDropout?: number;
  /** Base weights' dtype (default: "auto" resolved for the device: bf16 on a bf16 GPU, f32 on the CPU). */
  weights?: WeightsDtype;
  /**
   * Our activation checkpointing, one variant after the other: off, on (every layer), fit (the fewest layers whose
   * estimated peak fits the case's memory goal: selective recomputation, then a refit where the peak measured in that
   * layout says more or fewer), both (off, on) or all (off, fit, on; the default).
   */
  ckpt?: CkptOption;
  /** Bytes copied per bandwidth measurement (default 1 GiB on CUDA, 64 MiB on the CPU). */
  bandwidthBytes?: number;
  /** Per-kernel profile of one step of the first training case (default on). */
  profile?: boolean;
  /** Replace the cases (tests); `generate: null` leaves generation out. */
  cases?: TrainCase[];
  generate?: GenerateCase | null;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Called with the results so far after every case (the CLI writes them, so a killed run still leaves them). */
  onPartial?: (partial: GpuBenchResult) => void;
}

type Status = "ok" | "oom" | "error" | "skipped";
export type CkptOption = "off" | "on" | "fit" | "both" | "all";
/** refit: after fit, the fewest layers whose peak, predicted from the one measured in fit's layout, fits (refitCheckpointing). */
type CkptMode = "off" | "on" | "fit" | "refit";
const CKPT_MODES: Record<CkptOption, CkptMode[]> = {
  off: ["off"],
  on: ["on"],
  fit: ["fit"],
  both: ["off", "on"],
  all: ["off", "fit", "on"],
};
/** The estimate misses the cuBLAS and attention workspaces and the pool's slack: fit under 90% of the goal. */
const FIT_MARGIN = 0.9;
/** A refit predicts from a measured peak, which has all of those in it: a small margin is enough. */
const REFIT_MARGIN = 0.97;

export interface GoalResult {
  what: string;
  ours: number | null;
  reference: number | null;
  /** ours / reference (null when either is missing). */
  ratio: number | null;
  target: number;
  stretch?: number;
  met: boolean | null;
}

export interface OursTraining {
  tokensPerS: number;
  stepMs: number;
  timedSteps: number;
  /** Engine allocator high-water mark over the timed steps (what torch.cuda.max_memory_allocated reports for HF). */
  peakGiB: number;
  peakBytes: number;
  /** The same since the model was built (weights, LoRA, warm-up's first allocations). */
  peakInclWarmupGiB: number;
  /** cudaMemGetInfo total - free after the timed steps: the whole device, pool cache and CUDA context included. */
  deviceInUseGiB: number | null;
  /**
   * Weights in pinned host memory, which the GPU reads over the bus and neither number above counts: an untied
   * model's embedding table (embeddingOnHost). HF keeps it on the device.
   */
  hostWeightsGiB: number;
  loss: number;
  setupS: number;
}

/** Our run of a case in one mode of activation checkpointing, with the goals judged on it. */
export interface TrainVariant {
  /** off: false; on: true (every layer); fit, refit: the number of checkpointed layers chosen. */
  gradientCheckpointing: boolean | number;
  checkpointing: CkptMode;
  status: Status;
  note?: string;
  ours?: Partial<OursTraining>;
  goals: GoalResult[];
}

export interface TrainResult {
  shape: string;
  microBatch: number;
  seq: number;
  variants: TrainVariant[];
  peers: PeerRun[];
  anchors?: TrainCase["anchors"];
}

export interface GenerateResult {
  shape: string;
  batch: number;
  promptLen: number;
  newTokens: number;
  status: Status;
  note?: string;
  ours?: { tokensPerS: number; wallS: number; peakGiB: number; deviceInUseGiB: number | null };
  /**
   * Decoding steps replayed from one recorded step (a CUDA graph) in the timed run, the launches that recording holds
   * and the longest chain of them (the rest run beside it), and the same generation with recording off (TUNEFORGE_CUDA_GRAPHS=0: every kernel launched on its own).
   */
  recorded?: { replayedSteps: number; stepLaunches: number; stepDepth: number };
  direct?: { tokensPerS: number; wallS: number; recordedSpeedup: number };
  /**
   * The same generation with one of the decoding step's kernel choices undone (an engine switch set), in the same
   * process; speedup is the switched run's time over ours.
   */
  switchedOff?: {
    variable: string;
    value: string;
    what: string;
    tokensPerS: number;
    wallS: number;
    speedup: number;
  }[];
  roofline?: {
    definition: string;
    bandwidthGBs: number;
    asStored: {
      bytesPerStep: number;
      weightBytes: number;
      kvBytes: number;
      tokensPerS: number;
      fraction: number;
    };
    bf16: { bytesPerStep: number; tokensPerS: number; fraction: number };
  };
  peer?: PeerRun;
  goals: GoalResult[];
  anchorTokensPerS?: number;
  /** Per-kernel profile of one decoding step (batch x 1 token after the prompt), and of the prompt's prefill. */
  profile?: {
    note?: string;
    prefill?: BenchProfileReport;
    step?: BenchProfileReport;
    stepShares?: TimeShare[];
  };
}

/**
 * A profile report as the JSON gives it: times rounded, and each row's bandwidth (its inputs and outputs, each
 * counted once, over its time) as a fraction of the copy bandwidth measured in the same run. A kernel far below 1
 * there is either compute-bound (the products: see gflop) or moves more than its interface needs.
 */
export interface BenchProfileReport extends ProfileReport {
  gbytes: number;
  /** gbytes at the copy bandwidth: the least time the calls could take if moving their bytes were all they did. */
  copyBoundMs: number | null;
  rows: (ProfileRow & { gbPerS: number | null; ofCopyBandwidth: number | null })[];
}

export interface GpuBenchResult {
  benchmark: "tuneforge bench:gpu";
  mode: "full" | "smoke";
  /** False in what onPartial gets: cases after the last one listed had not run yet. */
  complete: boolean;
  device: Record<string, unknown>;
  settings: Record<string, unknown>;
  bandwidth: { gbPerS: number; bytes: number; iters: number } | { error: string };
  training: TrainResult[];
  generation: GenerateResult | null;
  profile: {
    shape: string;
    gradientCheckpointing?: boolean | number;
    note?: string;
    reports: BenchProfileReport[];
    /** forward_backward's kernel time by kind (timeShares). */
    shares?: TimeShare[];
  } | null;
  /** Every goal with its ratio, one line each. */
  summary: string[];
  notes: string[];
  wallS: number;
}

const r2 = (x: number) => Number(x.toFixed(2));
const gib = (bytes: number) => r2(bytes / GIB);

function deviceInUseGiB(device: EngineDevice): number | null {
  if (device !== "cuda") return null;
  const i = cudaInfo();
  return gib(i.totalBytes - i.freeBytes);
}

/** Deterministic token ids in [0, vocab) (a 32-bit LCG): the same batch every run. */
export function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % vocab;
  }
  return out;
}

/** bench_peft.py's batch: random ids, labels = ids with the first quarter of each row masked (-100). */
export function trainBatch(c: TrainCase) {
  const { microBatch: rows, seq: T } = c;
  const inputIds = randomIds(rows * T, c.config.vocabSize, 1234);
  const labels = Int32Array.from(inputIds);
  for (let r = 0; r < rows; r++) labels.fill(-100, r * T, r * T + Math.floor(T / 4));
  return { rows, inputIds, labels };
}

/** Bytes one decode step reads: every weight the step multiplies with, and the KV cache up to its position. */
export function decodeBytes(cfg: ModelConfig, g: GenerateCase, weightBytes: number, kvBytes: number) {
  let baseParams = 0;
  for (const t of expectedTensors(cfg)) {
    // An untied embedding table is gathered (a few rows), not read; a tied one is also the LM head.
    if (t.name === "model.embed_tokens.weight" && !cfg.tieWordEmbeddings) continue;
    baseParams += t.shape.reduce((a, b) => a * b, 1);
  }
  let loraParams = 0;
  for (const p of ALL_PROJECTIONS) {
    const [out, inp] = projectionShape(cfg, p);
    loraParams += cfg.numLayers * LORA.r * (out + inp);
  }
  // New token j (1..N-1) is decoded at position P + j - 1 and attends to P + j keys: P + N/2 on average.
  const avgKeys = g.promptLen + g.newTokens / 2;
  const kv = cfg.numLayers * 2 * g.batch * avgKeys * cfg.numKvHeads * cfg.headDim * kvBytes;
  const weights = baseParams * weightBytes + loraParams * 4;
  return { weightBytes: weights, kvBytes: kv, bytesPerStep: weights + kv };
}

function goalResult(goal: Goal, ours: number | null, reference: number | null): GoalResult {
  const ratio = ours !== null && reference !== null && reference > 0 ? r2(ours / reference) : null;
  const met = ratio === null ? null : goal.metric === "peakGiB" ? ratio <= goal.target : ratio >= goal.target;
  return { what: goal.what, ours, reference, ratio, target: goal.target, stretch: goal.stretch, met };
}

/** A profile report for the JSON (ms to 3 decimals per kernel), with bandwidths beside the copy bandwidth. */
export function benchReport(r: ProfileReport, copyGBs: number | null): BenchProfileReport {
  const gbytes = r.rows.reduce((sum, row) => sum + row.gbytes, 0);
  const r3 = (x: number) => Number(x.toFixed(3));
  const p4 = (x: number) => Number(x.toPrecision(4));
  return {
    ...r,
    ms: r2(r.ms),
    gbytes: p4(gbytes),
    copyBoundMs: copyGBs ? r2((gbytes / copyGBs) * 1e3) : null,
    rows: r.rows.map((row) => {
      const gbPerS = row.gbytes > 0 && row.ms > 0 ? (row.gbytes / row.ms) * 1e3 : null;
      return {
        ...row,
        ms: r3(row.ms),
        gflop: r2(row.gflop),
        gbytes: p4(row.gbytes),
        gbPerS: gbPerS === null ? null : Number(gbPerS.toFixed(1)),
        ofCopyBandwidth: gbPerS !== null && copyGBs ? r2(gbPerS / copyGBs) : null,
      };
    }),
  };
}

export interface TimeShare {
  kind: "LoRA" | "attention" | "products" | "other";
  ms: number;
  /** Of the report's kernel time. */
  share: number;
}

/**
 * Where a profiled call's kernel time went, by kind: LoRA's own work (its regions, its cuBLAS products included),
 * attention's kernels, the base and head products, and everything else.
 */
export function timeShares(r: ProfileReport): TimeShare[] {
  const kindOf = (row: ProfileRow): TimeShare["kind"] =>
    row.region.startsWith("lora.")
      ? "LoRA"
      : row.kernel.startsWith("attention")
        ? "attention"
        : row.kernel.startsWith("matmul")
          ? "products"
          : "other";
  const ms = { LoRA: 0, attention: 0, products: 0, other: 0 };
  for (const row of r.rows) ms[kindOf(row)] += row.ms;
  const total = Object.values(ms).reduce((a, b) => a + b, 0);
  return (Object.keys(ms) as TimeShare["kind"][]).map((kind) => ({
    kind,
    ms: r2(ms[kind]),
    share: total > 0 ? r2(ms[kind] / total) : 0,
  }));
}

function isOom(e: unknown): boolean {
  return /out of (GPU )?memory|cudaErrorMemoryAllocation|CUBLAS_STATUS_ALLOC_FAILED|bad_alloc/i.test(
    String(e),
  );
}

const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!;

/** The peak memory a case's goals allow: an absolute limit, or HF's with checkpointing (its anchor number). */
export function memoryGoalGiB(c: TrainCase): number | null {
  const limits: number[] = [];
  for (const g of c.goals) {
    if (g.metric !== "peakGiB") continue;
    if ("limitGiB" in g.against) limits.push(g.against.limitGiB * g.target);
    else {
      const { peerCkpt } = g.against;
      const anchor = c.anchors?.find((a) => a.ckpt === peerCkpt);
      if (anchor) limits.push(anchor.peakGiB * g.target);
    }
  }
  return limits.length > 0 ? Math.min(...limits) : null;
}

/**
 * The fewest checkpointed layers whose estimated peak (src/train/memory.ts) fits under FIT_MARGIN of the case's
 * memory goal (0: the plain layout, the off variant's; all: the on variant's), or why there is none.
 */
export function fitCheckpointing(
  c: TrainCase,
  device: EngineDevice,
  weights: WeightsDtype,
  dropout: number,
): number | string {
  const goal = memoryGoalGiB(c);
  if (goal === null) return "no memory goal with a known number to fit";
  const budget = goal * FIT_MARGIN * GIB;
  const k = checkpointLayersToFit(memoryInput(c, device, weights, dropout), budget);
  if (k === null) return `even every layer checkpointed is estimated above ${gib(budget)} GiB`;
  return k;
}

/** The number of checkpointed layers a variant ran with. */
function layersOf(v: TrainVariant, c: TrainCase): number {
  const k = v.gradientCheckpointing;
  return k === true ? c.config.numLayers : k === false ? 0 : k;
}

/** The off or on variant where `layers` is their layout (0 or every layer), else null. */
function modeOfLayers(layers: number, c: TrainCase): "off" | "on" | null {
  return layers === 0 ? "off" : layers === c.config.numLayers ? "on" : null;
}

/** The training memory estimate's input for our run of a case. */
function memoryInput(
  c: TrainCase,
  device: EngineDevice,
  weights: WeightsDtype,
  dropout: number,
): MemoryInput {
  return {
    config: c.config,
    tokensPerMicroBatch: c.microBatch * c.seq,
    finetuning: "lora",
    lora: { r: LORA.r, targets: LORA.targets, dropout },
    weightsDtype: weights,
    ...trainingLayout(device, weights, c.config, "lora"),
  };
}

/**
 * After fit's layout (k checkpointed layers) ran and measured `peakBytes`: the fewest layers whose peak,
 * predicted as the measured one plus what the estimate adds or takes for them, fits under REFIT_MARGIN of the memory
 * goal. Fewer than k where fit's margin was wider than needed, more where the measured peak is over the goal; null
 * when that is k again, or when no number of layers fits. The estimate's step per layer is exactly the engine's (the
 * checkpointing tests), so what the estimate leaves out (workspaces, the pool's slack) is in both peaks alike.
 */
export function refitCheckpointing(
  c: TrainCase,
  device: EngineDevice,
  weights: WeightsDtype,
  dropout: number,
  k: number,
  peakBytes: number,
): number | null {
  const goal = memoryGoalGiB(c);
  if (goal === null) return null;
  const input = memoryInput(c, device, weights, dropout);
  const at = (layers: number) => estimateTrainingMemory({ ...input, gradientCheckpointing: layers }).total;
  // The first fit is the fewest (the peak only falls as layers grow; 1 layer is the plain layout, as 0)
  for (let layers = 0; layers <= c.config.numLayers; layers++) {
    if (peakBytes + at(layers) - at(k) <= goal * REFIT_MARGIN * GIB) return layers === k ? null : layers;
  }
  return null;
}

function describeCkpt(v: TrainVariant, c: TrainCase): string {
  if (typeof v.gradientCheckpointing === "number")
    return `${v.checkpointing}: ${v.gradientCheckpointing} of ${c.config.numLayers} layers`;
  return v.gradientCheckpointing ? "on" : "off";
}

export function runGpuBench(o: GpuBenchOptions): GpuBenchResult {
  const t0 = performance.now();
  const smoke = o.smoke ?? false;
  const budgetS = o.budgetS ?? (smoke ? 120 : 900);
  const deadline = t0 + budgetS * 1000;
  const left = () => (deadline - performance.now()) / 1000;
  const log = o.log ?? ((line: string) => process.stderr.write(`[bench:gpu] ${line}\n`));
  const peersOn = o.peers ?? !smoke;
  const peerOpts: PeerOptions = {
    python: o.peer?.python ?? "python3",
    dir: o.peer?.dir ?? ".devkit/reference",
  };
  const steps = Math.max(1, Math.round(o.steps ?? (smoke ? 2 : 5)));
  const warmup = Math.max(0, Math.round(o.warmup ?? (smoke ? 1 : 2)));
  const dropout = o.loraDropout ?? 0.05;
  const dev = o.device;
  const weights = o.weights ?? resolveWeightsDtype("auto", dev).weights;
  const ckptModes = CKPT_MODES[o.ckpt ?? "all"];
  const cases = o.cases ?? (smoke ? smokeTrainCases() : fullTrainCases());
  const gen = o.generate === undefined ? (smoke ? smokeGenerateCase() : fullGenerateCase()) : o.generate;
  const notes: string[] = [];

  const device: Record<string, unknown> =
    dev === "cuda"
      ? (() => {
          const i = cudaInfo();
          return {
            engine: "cuda",
            name: i.name,
            computeCapability: i.computeCapability,
            totalGiB: gib(i.totalBytes),
          };
        })()
      : { engine: "cpu", name: cpus()[0]?.model ?? "unknown", logicalCpus: cpus().length };
  log(`device ${JSON.stringify(device)}, budget ${budgetS} s`);

  let bandwidth: GpuBenchResult["bandwidth"];
  try {
    const bytes = o.bandwidthBytes ?? (dev === "cuda" ? GIB : 64 * 2 ** 20);
    const b = copyBandwidth(dev, bytes, dev === "cuda" ? 20 : 3);
    bandwidth = { gbPerS: r2(b.gbPerS), bytes: b.bytes, iters: b.iters };
    log(`copy bandwidth ${bandwidth.gbPerS} GB/s`);
  } catch (e) {
    bandwidth = { error: firstLine(e) };
    notes.push(`bandwidth not measured: ${firstLine(e)}`);
  }
  const copyGBs = "gbPerS" in bandwidth ? bandwidth.gbPerS : null;

  const peer = (script: string, args: string[], estimateS: number): PeerRun => {
    if (!peersOn) return { script, args, status: "skipped", note: "peers off" };
    if (left() < estimateS) {
      return {
        script,
        args,
        status: "skipped",
        note: `budget: ${Math.round(left())} s left, needs ~${estimateS} s`,
      };
    }
    log(`peer ${script} ${args.join(" ")}`);
    const r = runPeer(peerOpts, script, args, Math.min(left(), Math.max(3 * estimateS, 120)));
    log(`peer ${r.status}${r.note ? `: ${r.note.split("\n")[0]}` : ""}`);
    return r;
  };

  const training: TrainResult[] = [];
  let profile: GpuBenchResult["profile"] = null;
  const runTrain = (c: TrainCase, first: boolean) => {
    const res: TrainResult = {
      shape: c.shape,
      microBatch: c.microBatch,
      seq: c.seq,
      variants: [],
      peers: [],
      anchors: c.anchors && c.anchors.length > 0 ? c.anchors : undefined,
    };
    training.push(res);
    // The 7B case's memory goal needs checkpointing: run that mode first there, while the budget lasts.
    const modes = c.ckptFirst ? [...ckptModes].reverse() : ckptModes;
    const skip = (v: TrainVariant, note: string) => {
      v.status = "skipped";
      v.note = note;
      log(`${c.shape} checkpointing ${v.checkpointing}: skipped (${note})`);
    };
    const variant = (mode: CkptMode, layers: boolean | number): TrainVariant => {
      const v: TrainVariant = { gradientCheckpointing: layers, checkpointing: mode, status: "ok", goals: [] };
      res.variants.push(v);
      return v;
    };
    const runVariant = (mode: CkptMode, layers: boolean | number, i: number): TrainVariant => {
      const v = variant(mode, layers);
      const needS = i === 0 ? c.estimateS : c.estimateS / 2;
      if (left() < needS) {
        skip(v, `budget: ${Math.round(left())} s left, needs ~${Math.round(needS)} s`);
        return v;
      }
      log(
        `${c.shape}: mb ${c.microBatch} seq ${c.seq}, ${weights} weights, checkpointing ${describeCkpt(v, c)}`,
      );
      trainOurs(c, v);
      if (first && i === 0 && (o.profile ?? true) && v.status === "ok") profile = profileStep(c, layers);
      return v;
    };
    // A layout that is the off or on variant's runs as that variant, where it is one of this run's.
    const runLayout = (mode: CkptMode, layers: number, i: number, why: string) => {
      const same = modeOfLayers(layers, c);
      if (same && modes.includes(same)) skip(variant(mode, layers), `${why} the ${same} variant's layout`);
      else runVariant(mode, layers, i);
    };
    let fitLayers: number | null = null;
    for (const [i, mode] of modes.entries()) {
      if (mode !== "fit") {
        runVariant(mode, mode === "on", i);
        continue;
      }
      const fit = fitCheckpointing(c, dev, weights, dropout);
      if (typeof fit === "string") {
        skip(variant(mode, false), fit);
        continue;
      }
      fitLayers = fit;
      runLayout(mode, fit, i, "it is");
    }
    // The estimate's margin was for what it leaves out; the peak measured in fit's layout has all of it: as few layers
    // as that allows (or as many as the goal needs, where the margin was too narrow).
    if (fitLayers !== null) {
      const k = fitLayers;
      const peak = res.variants.find((v) => v.status === "ok" && layersOf(v, c) === k)?.ours?.peakBytes;
      const refit = peak === undefined ? null : refitCheckpointing(c, dev, weights, dropout, k, peak);
      if (refit !== null) runLayout("refit", refit, modes.length, "the measured peak points to");
    }
    for (const ckpt of c.peerCkpts) {
      res.peers.push(
        peer(
          "bench_peft.py",
          [c.shape, String(c.seq), String(c.microBatch), ckpt ? "1" : "0"],
          c.peerEstimateS,
        ),
      );
    }
    for (const v of res.variants) {
      for (const g of c.goals) {
        const ours = g.metric === "tokensPerS" ? (v.ours?.tokensPerS ?? null) : (v.ours?.peakGiB ?? null);
        let ref: number | null;
        if ("limitGiB" in g.against) ref = g.against.limitGiB;
        else {
          const ck = g.against.peerCkpt;
          const run = res.peers.find((p) => p.args[3] === (ck ? "1" : "0"));
          ref = peerNumber(run, g.metric === "tokensPerS" ? "tokens_per_s" : "peak_mem_gib");
        }
        v.goals.push(goalResult(g, v.status === "ok" ? ours : null, ref));
      }
    }
  };

  const newModel = (cfg: ModelConfig, ckpt: boolean | number) => {
    const m = EngineModel.random(cfg, {
      device: dev,
      seed: 0,
      std: 0.02,
      weights,
      gradientCheckpointing: ckpt,
    });
    try {
      m.setLora({ ...LORA, targets: [...LORA.targets], dropout });
    } catch (e) {
      m.dispose();
      throw e;
    }
    return m;
  };

  const trainOurs = (c: TrainCase, res: TrainVariant) => {
    resetMemoryPeak(dev, { releaseCached: true });
    const tStart = performance.now();
    let model: EngineModel | null = null;
    const ours: Partial<OursTraining> = {};
    res.ours = ours;
    try {
      model = newModel(c.config, res.gradientCheckpointing);
      const batch = trainBatch(c);
      const step = () => {
        model!.zeroGrads();
        const out = model!.forwardBackward(batch);
        model!.adamwStep(ADAMW);
        return out.loss;
      };
      for (let i = 0; i < warmup; i++) step();
      deviceSynchronize(dev);
      ours.setupS = r2((performance.now() - tStart) / 1000);
      ours.peakInclWarmupGiB = gib(model.memory().peak);
      resetMemoryPeak(dev);
      let n = 0;
      let loss = 0;
      const tTimed = performance.now();
      let last = 0;
      // Stop early when one more step would overrun the budget (at least one timed step).
      while (n < steps && (n === 0 || left() > (last / 1000) * 1.5 + 5)) {
        const ts = performance.now();
        loss = step();
        deviceSynchronize(dev);
        last = performance.now() - ts;
        n++;
      }
      const seconds = (performance.now() - tTimed) / 1000;
      ours.timedSteps = n;
      ours.stepMs = r2((seconds * 1000) / n);
      ours.tokensPerS = Math.round((n * c.microBatch * c.seq) / seconds);
      ours.loss = Number(loss.toFixed(4));
      ours.peakBytes = model.memory().peak;
      ours.peakGiB = gib(ours.peakBytes);
      ours.deviceInUseGiB = deviceInUseGiB(dev);
      ours.hostWeightsGiB = gib(model.memory().hostBytes ?? 0);
      if (n < steps) res.note = `budget: ${n} of ${steps} timed steps`;
      log(`${c.shape}: ${ours.tokensPerS} tok/s, ${ours.stepMs} ms/step, peak ${ours.peakGiB} GiB`);
    } catch (e) {
      res.status = isOom(e) ? "oom" : "error";
      res.note = firstLine(e);
      // The numbers at the failure: what the allocator had reached and what the device held.
      ours.peakInclWarmupGiB ??= gib(resetMemoryPeak(dev).peak); // the mark the failed work reached
      ours.deviceInUseGiB = deviceInUseGiB(dev);
      log(`${c.shape}: ${res.status}: ${res.note}`);
    } finally {
      model?.dispose();
      resetMemoryPeak(dev, { releaseCached: true });
    }
  };

  // One step of a model built with profiling on (its kernels are timed one by one): kept out of the timed runs.
  const profileStep = (c: TrainCase, ckpt: boolean | number): GpuBenchResult["profile"] => {
    if (left() < c.estimateS / 2) return { shape: c.shape, note: "skipped: budget", reports: [] };
    let model: EngineModel | null = null;
    setProfiling(true);
    try {
      model = newModel(c.config, ckpt);
      const batch = trainBatch(c);
      const step = () => {
        model!.zeroGrads();
        model!.forwardBackward(batch);
        model!.adamwStep(ADAMW);
      };
      step(); // warm-up: first allocations
      takeProfile();
      step();
      const reports = takeProfile().map((r) => benchReport(r, copyGBs));
      log(`${c.shape}: profiled one step (${reports.map((r) => `${r.call} ${r.ms} ms`).join(", ")})`);
      const fb = reports.find((r) => r.call === "forward_backward");
      return {
        shape: c.shape,
        gradientCheckpointing: ckpt,
        shares: fb ? timeShares(fb) : undefined,
        note:
          dev === "cuda"
            ? "each kernel synchronised before and after: ms is its own time; the step is slower than when timed"
            : undefined,
        reports,
      };
    } catch (e) {
      return { shape: c.shape, note: `failed: ${firstLine(e)}`, reports: [] };
    } finally {
      setProfiling(false);
      model?.dispose();
      resetMemoryPeak(dev, { releaseCached: true });
    }
  };

  // One generation of 2 new tokens with profiling on: the prompt's prefill, then one decoding step, each kernel
  // timed on its own (so the profile shows the launches per step and where a step's time goes).
  const profileDecode = (g: GenerateCase, prompts: number[][]): GenerateResult["profile"] => {
    if (left() < g.estimateS / 2) return { note: "skipped: budget" };
    let model: EngineModel | null = null;
    setProfiling(true);
    try {
      model = newModel(g.config, false);
      model.generate(prompts, { maxNewTokens: 2, eosTokenIds: [] }); // warm-up: first allocations
      takeProfile();
      model.generate(prompts, { maxNewTokens: 2, eosTokenIds: [] });
      const decodes = takeProfile()
        .filter((r) => r.call === "decode")
        .map((r) => benchReport(r, copyGBs));
      const [prefill, step] = decodes;
      if (step) log(`generate ${g.shape}: profiled one decoding step (${step.ms} ms)`);
      return { prefill, step, stepShares: step ? timeShares(step) : undefined };
    } catch (e) {
      return { note: `failed: ${firstLine(e)}` };
    } finally {
      setProfiling(false);
      model?.dispose();
      resetMemoryPeak(dev, { releaseCached: true });
    }
  };

  const runGenerate = (g: GenerateCase): GenerateResult => {
    const res: GenerateResult = {
      shape: g.shape,
      batch: g.batch,
      promptLen: g.promptLen,
      newTokens: g.newTokens,
      status: "ok",
      goals: [],
      anchorTokensPerS: g.anchorTokensPerS,
    };
    if (left() < g.estimateS) {
      res.status = "skipped";
      res.note = `budget: ${Math.round(left())} s left, needs ~${g.estimateS} s`;
      return res;
    }
    log(`generate ${g.shape}: batch ${g.batch}, ${g.promptLen} + ${g.newTokens} tokens, adapter unmerged`);
    resetMemoryPeak(dev, { releaseCached: true });
    let model: EngineModel | null = null;
    const ids = randomIds(g.batch * g.promptLen, g.config.vocabSize, 99);
    const prompts = Array.from({ length: g.batch }, (_, b) =>
      Array.from(ids.subarray(b * g.promptLen, (b + 1) * g.promptLen)),
    );
    try {
      model = newModel(g.config, false);
      const settings = { maxNewTokens: g.newTokens, eosTokenIds: [] };
      model.generate(prompts, { maxNewTokens: 4, eosTokenIds: [] }); // warm-up, as the peer does
      const timed = (m: EngineModel) => {
        deviceSynchronize(dev);
        const ts = performance.now();
        const out = m.generateWithLogits(prompts, settings, false);
        deviceSynchronize(dev);
        return { out, wallS: (performance.now() - ts) / 1000 };
      };
      const { out: gen, wallS } = timed(model);
      const out = gen.tokens;
      res.recorded = {
        replayedSteps: gen.replayedSteps,
        stepLaunches: gen.stepLaunches,
        stepDepth: gen.stepDepth,
      };
      const produced = out.reduce((a, t) => a + t.length, 0);
      if (produced !== g.batch * g.newTokens)
        res.note = `produced ${produced} tokens, expected ${g.batch * g.newTokens}`;
      const tokensPerS = produced / wallS;
      res.ours = {
        tokensPerS: Math.round(tokensPerS),
        wallS: r2(wallS),
        peakGiB: gib(model.memory().peak),
        deviceInUseGiB: deviceInUseGiB(dev),
      };
      log(
        `generate: ${res.ours.tokensPerS} tok/s (${res.ours.wallS} s), ${gen.replayedSteps} steps replayed`,
      );
      // The same generation with one of the engine's switches set (an A/B run in the same process)
      const timedWith = (variable: string, value: string) => {
        process.env[variable] = value;
        try {
          const wall = timed(model!).wallS;
          return { tokensPerS: Math.round(produced / wall), wallS: r2(wall), speedup: r2(wall / wallS) };
        } finally {
          delete process.env[variable];
        }
      };
      if (gen.replayedSteps > 0 && left() > g.estimateS) {
        const { speedup, ...run } = timedWith("TUNEFORGE_CUDA_GRAPHS", "0");
        res.direct = { ...run, recordedSpeedup: speedup };
        log(`generate, every kernel launched on its own: ${res.direct.tokensPerS} tok/s`);
      }
      const switches = [
        {
          variable: "TUNEFORGE_CUDA_SKINNY",
          value: "0",
          what: "cuBLAS for the step's products (not skinny_gemm)",
        },
        {
          variable: "TUNEFORGE_CUDA_PDL",
          value: "0",
          what: "no programmatic dependent launch between its kernels",
        },
      ];
      for (const sw of dev === "cuda" ? switches : []) {
        if (left() < g.estimateS) break;
        const run = { ...sw, ...timedWith(sw.variable, sw.value) };
        (res.switchedOff ??= []).push(run);
        log(`generate with ${sw.what}: ${run.tokensPerS} tok/s`);
      }
      if ("gbPerS" in bandwidth) {
        const bw = bandwidth.gbPerS * 1e9;
        const stored = decodeBytes(g.config, g, weights === "f32" ? 4 : 2, kvCacheBytes(dev, weights));
        const bf16 = decodeBytes(g.config, g, 2, 2);
        const roof = (bytes: number) => (g.batch * bw) / bytes;
        res.roofline = {
          definition:
            "tokens/s if every decode step only read its bytes (weights incl. the LM head and LoRA, plus the KV cache " +
            "up to its position; P + N/2 keys on average) at the measured device-to-device copy bandwidth; ours " +
            "includes the prefill, so the fraction is conservative",
          bandwidthGBs: bandwidth.gbPerS,
          asStored: {
            ...stored,
            tokensPerS: Math.round(roof(stored.bytesPerStep)),
            fraction: r2(tokensPerS / roof(stored.bytesPerStep)),
          },
          bf16: {
            bytesPerStep: bf16.bytesPerStep,
            tokensPerS: Math.round(roof(bf16.bytesPerStep)),
            fraction: r2(tokensPerS / roof(bf16.bytesPerStep)),
          },
        };
        res.goals.push(
          goalResult(
            {
              what: `>= 50% of the memory-bandwidth roofline (${weights} weights and KV cache, as stored)`,
              metric: "tokensPerS",
              against: { peerCkpt: false },
              target: 0.5,
            },
            res.ours.tokensPerS,
            res.roofline.asStored.tokensPerS,
          ),
        );
      }
    } catch (e) {
      res.status = isOom(e) ? "oom" : "error";
      res.note = firstLine(e);
      log(`generate: ${res.status}: ${res.note}`);
    } finally {
      model?.dispose();
      resetMemoryPeak(dev, { releaseCached: true });
    }
    if (res.status === "ok" && (o.profile ?? true)) res.profile = profileDecode(g, prompts);
    const args = [g.shape, String(g.batch), String(g.promptLen), String(g.newTokens), "1"];
    res.peer = peer("bench_generate.py", args, g.peerEstimateS);
    const theirs = peerNumber(res.peer, "gen_tokens_per_s");
    res.goals.push({
      ...goalResult(
        {
          what: "tokens/s vs HF generate (report)",
          metric: "tokensPerS",
          against: { peerCkpt: false },
          target: 1,
        },
        res.ours?.tokensPerS ?? null,
        theirs,
      ),
    });
    return res;
  };

  let generation: GenerateResult | null = null;
  const result = (complete: boolean): GpuBenchResult => {
    const summary: string[] = [];
    const line = (label: string, g: GoalResult) =>
      `${label}: ${g.what}: ${g.ratio === null ? "no ratio" : `x${g.ratio}`} (ours ${g.ours ?? "-"}, ref ${g.reference ?? "-"})` +
      `${g.met === null ? "" : g.met ? " MET" : " not met"}`;
    for (const t of training) {
      for (const v of t.variants) {
        const label = `${t.shape} ${weights}${v.checkpointing === "off" ? "" : ` ckpt ${v.checkpointing}`}`;
        if (v.status !== "ok") summary.push(`${label}: ${v.status}${v.note ? ` (${v.note})` : ""}`);
        for (const g of v.goals) summary.push(line(label, g));
        const host = v.ours?.hostWeightsGiB ?? 0;
        if (host > 0) summary.push(`${label}: ${host} GiB of weights in pinned host memory, not in the peak`);
      }
    }
    const byKind = (shares: TimeShare[]) =>
      shares.map((x) => `${x.kind} ${x.ms} ms (${Math.round(x.share * 100)}%)`).join(", ");
    if (profile?.shares)
      summary.push(`${profile.shape}: a profiled step's kernels: ${byKind(profile.shares)}`);
    const genResult = generation as GenerateResult | null;
    if (genResult) {
      if (genResult.status !== "ok")
        summary.push(`generate ${genResult.shape}: ${genResult.status} (${genResult.note})`);
      for (const g of genResult.goals) summary.push(line(`generate ${genResult.shape}`, g));
      const rec = genResult.recorded;
      if (rec && rec.stepLaunches > 0)
        summary.push(
          `generate ${genResult.shape}: a recorded step holds ${rec.stepLaunches} launches, ` +
            (rec.stepDepth > 0
              ? `${rec.stepDepth} of them in a row`
              : "their dependencies unreadable (cudaGraphGetEdges failed)"),
        );
      const stepShares = genResult.profile?.stepShares;
      if (stepShares)
        summary.push(
          `generate ${genResult.shape}: a profiled decoding step's kernels: ${byKind(stepShares)}`,
        );
      for (const sw of genResult.switchedOff ?? [])
        summary.push(
          `generate ${genResult.shape}: x${sw.speedup} the tokens/s of a run with ${sw.what} ` +
            `(${sw.variable}=${sw.value}: ${sw.tokensPerS} tok/s)`,
        );
    }
    return {
      benchmark: "tuneforge bench:gpu",
      mode: smoke ? "smoke" : "full",
      complete,
      device,
      settings: {
        lora: { r: LORA.r, alpha: LORA.alpha, dropout, targets: LORA.targets },
        adamw: ADAMW,
        warmupSteps: warmup,
        timedSteps: steps,
        budgetS,
        peers: peersOn ? peerOpts : false,
        weights,
        kvCache: kvCacheBytes(dev, weights) === 2 ? "bf16" : "fp32",
        gradientCheckpointing: o.ckpt ?? "all",
        // the engine's kernel switches as this run had them (TUNEFORGE_CUDA_ATTENTION=gemm for an A/B run, ...)
        engineEnv: Object.fromEntries(
          Object.entries(process.env).filter(([k]) => k.startsWith("TUNEFORGE_CUDA_")),
        ),
      },
      bandwidth,
      training,
      generation: genResult,
      profile,
      summary,
      notes,
      wallS: r2((performance.now() - t0) / 1000),
    };
  };
  const partial = () => o.onPartial?.(result(false));

  // Order: the small cases first (the profile comes from the first), generation, then the 7B case, which is
  // the slowest and the likeliest to run out of memory or budget.
  cases.forEach((c, i) => {
    if (gen && i === cases.length - 1 && cases.length > 2) {
      generation = runGenerate(gen);
      partial();
    }
    runTrain(c, i === 0);
    partial();
  });
  if (gen && !generation) generation = runGenerate(gen);
  return result(true);
}
