// Types of the engine API and of the raw addon underneath it.
import type { Projection } from "../model/layout.js";

/** A batch of `rows` sequences of equal length (row-major [rows, T] arrays). */
export interface Batch {
  rows: number;
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding (never attended to). Defaults to all ones. */
  attentionMask?: Int32Array;
  /** Training targets, -100 where no loss is taken. Position t's logits predict labels[t + 1]. */
  labels?: Int32Array;
  /** Packed sequences: attention stays within equal ids and positions restart at each new id. */
  segmentIds?: Int32Array;
  /** Explicit positions (otherwise 0..T-1 per row, or per segment when packed). */
  positionIds?: Int32Array;
}

export interface LoraSettings {
  r: number;
  alpha: number;
  useRslora?: boolean;
  dropout?: number;
  targets: Projection[];
  /** Initial weights per module name (e.g. `model.layers.0.self_attn.q_proj`); else PEFT's init. */
  weights?: Map<string, LoraPair>;
  seed?: number;
}

export interface LoraPair {
  /** [r, in] */
  A: Float32Array;
  /** [out, r] */
  B: Float32Array;
}

export interface LossOutput {
  /** Mean cross-entropy over the batch's target tokens (0 when there are none). */
  loss: number;
  /** Summed cross-entropy, for token-weighted accumulation across micro-batches. */
  lossSum: number;
  tokens: number;
}

export interface AdamWSettings {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Global gradient-norm clipping; 0 or absent: none. */
  maxGradNorm?: number;
}

export interface GenerateSettings {
  maxNewTokens: number;
  /** Sampling instead of greedy decoding. */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Token ids that end a row (the eos token is kept at the end of the row's output). */
  eosTokenIds?: number[];
}

export interface GenerateOutput {
  /** New tokens per prompt. */
  tokens: number[][];
  /** [prompts, steps, vocab] raw logits that chose each token (only with `withLogits`). */
  stepLogits?: Float32Array;
  steps: number;
  /**
   * Decoding steps replayed from a recorded step (a CUDA graph: one launch for the whole step), the kernels and
   * copies that recording holds, and the most of them on one chain of dependencies (the rest run beside them on a
   * second stream). 0, 0 and 0 on the CPU, where nothing is recorded.
   */
  replayedSteps: number;
  stepLaunches: number;
  stepDepth: number;
}

/** AdamW's state: steps taken and the moments of each trainable tensor (empty maps before the first step). */
export interface OptimizerState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export interface NativeOptimizerState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export interface MemoryStats {
  inUse: number;
  peak: number;
  /** Whose allocator: the device the model lives on (absent from addons older than the CUDA backend). */
  device?: "cpu" | "cuda";
  /** Bytes this model's base weights take as stored (bf16 matrices: 2 per value; absent from older addons). */
  weightBytes?: number;
  /**
   * Of weightBytes, the bytes in pinned host memory instead of on the GPU: an untied model's embedding table, which
   * only the gather of a step's rows reads (embeddingOnHost). 0 on the CPU; absent from older addons.
   */
  hostBytes?: number;
  /** The dtype of the frozen base matrices (projections, embedding, LM head); norms and biases stay f32. */
  weights?: "f32" | "bf16" | "f16";
}

export interface NativeModelConfig {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  tied: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  qkNorm: boolean;
  invFreq: Float64Array;
}

export interface NativeTensorRef {
  name: string;
  file: string;
  offset: number;
  dtype: string;
  shape: number[];
}

type I32 = Int32Array | null;

export interface NativeModelHandle {
  setLora(r: number, scale: number, dropout: number, seed: number, targets: string[]): void;
  setFullFinetune(on: boolean): void;
  setLossChunk(tokens: number): void;
  setGradientCheckpointing(on: boolean): void;
  setCheckpointedLayers(k: number): void;
  checkpointedLayers(): number;
  getTrainable(kind: "weights" | "grads"): Record<string, Float32Array>;
  setTrainable(kind: "weights" | "grads", values: Record<string, Float32Array>): void;
  forward(ids: Int32Array, mask: I32, seg: I32, pos: I32, rows: number, T: number): Float32Array;
  forwardBackward(
    ids: Int32Array,
    mask: I32,
    labels: Int32Array,
    seg: I32,
    pos: I32,
    rows: number,
    T: number,
    gradScale: number,
  ): { lossSum: number; tokens: number };
  evalLoss(
    ids: Int32Array,
    mask: I32,
    labels: Int32Array,
    seg: I32,
    pos: I32,
    rows: number,
    T: number,
  ): { lossSum: number; tokens: number };
  getOptimizerState(): NativeOptimizerState;
  setOptimizerState(step: number, m: Record<string, Float32Array>, v: Record<string, Float32Array>): void;
  getDropoutCounter(): number;
  setDropoutCounter(n: number): void;
  zeroGrads(): void;
  adamwStep(lr: number, b1: number, b2: number, eps: number, wd: number, maxGradNorm: number): number;
  resetOptimizer(): void;
  generate(
    prompts: Int32Array,
    lengths: Int32Array,
    opts: {
      maxNewTokens: number;
      doSample: boolean;
      temperature: number;
      topK: number;
      topP: number;
      repetitionPenalty: number;
      seed: number;
      keepLogits: boolean;
      eos: Int32Array;
    },
  ): {
    tokens: Int32Array;
    lengths: Int32Array;
    steps: number;
    replayedSteps: number;
    stepLaunches: number;
    /** Absent from addons built before it. */
    stepDepth?: number;
    stepLogits?: Float32Array;
  };
  mergedWeight(module: string): Float32Array;
  memory(): MemoryStats;
  dispose(): void;
}

/** In place of the tensor list: random weights made on the device (EngineModel.random). */
export interface NativeRandomInit {
  seed: number;
  std: number;
}

export interface NativeAddon {
  version(): string;
  NativeModel: new (
    config: NativeModelConfig,
    tensors: NativeTensorRef[] | NativeRandomInit,
    threads: number,
    device: "cpu" | "cuda",
    weights: "f32" | "bf16" | "f16",
  ) => NativeModelHandle;
}
