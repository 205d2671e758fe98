// A rough memory estimate made before training starts, so a run that cannot fit fails in a second with
// advice instead of swapping or being killed an hour in. Bytes as the engine holds them: float32, or bf16 matrices.
import { freemem, totalmem } from "node:os";
import { TuneforgeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { expectedTensors } from "../model/layout.js";
import { loraModules } from "../engine/lora.js";
import { embeddingTableBytes, weightBytes, type WeightsDtype } from "../engine/precision.js";
import type { Projection } from "../model/layout.js";

const F32 = 4;

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/**
 * Saved activations per token, in floats' worth of bytes. Per layer the engine keeps (native/engine/model.h
 * LayerActs) its input (the residual), the "large" tensors q, att (2 x q width), k, v (2 x kv width), g, u (2 x
 * intermediate) and with qk-norm q and k before it, plus res2 (hidden), LoRA's x A^T (r per adapted projection) and
 * the rows' statistics. bf16 mode on a GPU saves the large tensors in bf16 (half), written there by the kernels that
 * make them, and runs every layer in one set holding q (fp32), res2, LoRA's x A^T and the statistics. The norms'
 * outputs h1 and h2 and swiglu(g, u) are one buffer each for all layers (bf16 in bf16 mode), made again in backward. For the common shapes (q width =
 * hidden, intermediate ~ 3-5 x hidden) that is about 1 + 2 + 1 + 2 x 4 + 1 = 13 x hidden per layer in fp32.
 * With gradient checkpointing of the bottom k layers the engine keeps every layer's input (the residual), ONE
 * set shared by the k checkpointed layers (backward refills it by recomputing them) and a set of its own for each
 * layer above: layers x hidden + (layers - k + 1) x one layer's rest (k = layers: today's full checkpointing;
 * k = 1 is the plain layout, its one checkpointed layer never being recomputed).
 */
export function activationFloatsPerToken(
  c: ModelConfig,
  loraRank = 0,
  loraProjections = 0,
  more: {
    /** true: every layer checkpointed; a number: the bottom k layers (see checkpointedLayerCount). */
    gradientCheckpointing?: boolean | number;
    /** The large tensors saved in bf16 (keepsBf16Activations). */
    bf16Activations?: boolean;
  } = {},
): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const large = 2 * q + 2 * kv + 2 * c.intermediateSize + (c.qkNorm ? q + kv : 0);
  // res2, x A^T and the row statistics (the norms' rstd, attention's log-sum-exp per head, qk-norm's rstd per head)
  // stay fp32; with dropout LoRA keeps only the mask's seed (the mask and the dropped input are drawn again in
  // backward, in buffers counted once: see dropoutBuffers).
  const stats = 2 + c.numHeads + (c.qkNorm ? c.numHeads + c.numKvHeads : 0);
  const fp32Rest = c.hiddenSize + loraRank * loraProjections + stats;
  const saved = (more.bf16Activations ? large / 2 : large) + fp32Rest;
  // h1, h2 and swiglu(g, u) (bf16 with bf16 activations), and then the set every layer runs in: q in fp32, res2 and
  // x A^T
  const inputs = 2 * c.hiddenSize + c.intermediateSize;
  const shared = more.bf16Activations ? inputs / 2 + q + fp32Rest : inputs;
  return c.numLayers * c.hiddenSize + activationSets(c, more.gradientCheckpointing) * saved + shared;
}

/**
 * The engine's work buffers (native/engine/model.cc Scratch and Acts) in floats, for N tokens and a loss chunk of
 * `chunk` rows. Three phases never live at once share one allocation sized for the largest (Scratch::phases): the loss
 * head (a chunk's logits, its rows of the final norm's output and their gradient, and the final norm's output
 * gradient for every row), the MLP's backward (swiglu's output gradient: intermediate per token; g and u take their own
 * gradients in place) and attention's backward (the gradients of its output and q: 2 x q width, of k and v: 2 x kv
 * width, of q and k before an fp32 qk-norm, and a float per head). Beside them: the final norm's output and the
 * residual products (2 x hidden), the residual's and a layer's input's gradients (2 x hidden), and with bf16
 * activations the residual gradient rounded to bf16 (down's and o's dy) and v's dy rounded (half a float per column). A GPU adds
 * attention's score chunks (at most 64 MiB each) and cuBLAS's workspace, which the margin callers leave covers.
 */
function workBufferFloats(c: ModelConfig, N: number, chunk: number, bf16Activations: boolean): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const preNorm = c.qkNorm && !bf16Activations ? q + kv : 0;
  const head = chunk * (c.vocabSize + 2 * c.hiddenSize) + N * c.hiddenSize;
  const attention = N * (2 * q + 2 * kv + preNorm + c.numHeads);
  const phases = Math.max(head, N * c.intermediateSize, attention);
  const dy16 = bf16Activations ? (c.hiddenSize + kv) / 2 : 0;
  return phases + N * (4 * c.hiddenSize + dy16);
}

/**
 * The bottom layers the engine checkpoints for a training.gradient_checkpointing value: true = all, false or
 * undefined = none, a count (clamped to the model's layers, as EngineModel.setGradientCheckpointing does).
 */
export function checkpointedLayerCount(c: ModelConfig, setting: boolean | number | undefined): number {
  if (setting === true) return c.numLayers;
  if (!setting) return 0;
  return Math.max(0, Math.min(c.numLayers, Math.floor(setting)));
}

/** Activation sets the engine allocates: one per layer above the checkpointed ones, plus their shared one. */
function activationSets(c: ModelConfig, setting: boolean | number | undefined): number {
  const k = checkpointedLayerCount(c, setting);
  return c.numLayers - k + (k > 0 ? 1 : 0);
}

export interface MemoryEstimate {
  weights: number;
  /** Trainable parameters x 4 (weights, grads, AdamW m and v) beyond the frozen weights. */
  trainable: number;
  activations: number;
  /** Work buffers: the loss head's (one chunk's logits), backward's gradients, LoRA dropout's masks (workBufferFloats). */
  workBuffers: number;
  total: number;
  /** Any layer checkpointed. */
  gradientCheckpointing: boolean;
  /** How many (bottom) layers are checkpointed, 0..layers. */
  checkpointedLayers: number;
  /** The activations with every layer checkpointed (equal to `activations` when they are). */
  checkpointedActivations: number;
}

export interface MemoryInput {
  config: ModelConfig;
  /** Rows x longest sequence of one micro-batch. */
  tokensPerMicroBatch: number;
  finetuning: "lora" | "full";
  lora?: { r: number; targets: readonly Projection[]; dropout?: number };
  /** The engine's loss chunk, in tokens (default: 4 Mi floats of logits). */
  lossChunkTokens?: number;
  /**
   * training.gradient_checkpointing: the engine keeps each checkpointed layer's input only and recomputes the
   * rest. true = every layer, a number = the bottom k layers.
   */
  gradientCheckpointing?: boolean | number;
  /** How the engine holds the frozen weights: bf16 or f16 keeps every matrix in 2 bytes (norms, biases stay f32). */
  weightsDtype?: WeightsDtype;
  /** The engine keeps gate and up in bf16 (keepsBf16Activations: bf16 mode on a GPU). */
  bf16Activations?: boolean;
  /** The embedding table is in pinned host memory, not on the device (embeddingOnHost): its bytes are not counted. */
  embeddingOnHost?: boolean;
  /**
   * The engine draws LoRA dropout's masks inside its LoRA kernels (a GPU: Backend::fused_lora), so it keeps no mask or
   * dropped input; the CPU keeps both for each adapted projection of a layer.
   */
  fusedLora?: boolean;
}

export function parameterCount(config: ModelConfig): number {
  return expectedTensors(config).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function estimateTrainingMemory(input: MemoryInput): MemoryEstimate {
  const { config: c, tokensPerMicroBatch: N } = input;
  const params = parameterCount(c);
  const dtype = input.finetuning === "full" ? "f32" : (input.weightsDtype ?? "f32");
  const hostTable = input.embeddingOnHost ? embeddingTableBytes(c, dtype) : 0;
  const weights = weightBytes(c, dtype) - hostTable;
  let trainableParams = 0;
  let loraProjections = 0;
  let loraDropoutWidth = 0;
  if (input.finetuning === "full") {
    // weights already counted once: add grads, m and v
    trainableParams = params;
  } else if (input.lora) {
    const mods = loraModules(c, input.lora.targets);
    loraProjections = mods.length / Math.max(1, c.numLayers);
    for (const m of mods) trainableParams += input.lora.r * (m.shape[0] + m.shape[1]);
    if ((input.lora.dropout ?? 0) > 0 && !input.fusedLora)
      loraDropoutWidth = mods.reduce((w, m) => w + m.shape[1], 0) / Math.max(1, c.numLayers);
  }
  const trainable = trainableParams * F32 * (input.finetuning === "full" ? 3 : 4);
  const ckpt = checkpointedLayerCount(c, input.gradientCheckpointing);
  const activationBytes = (on: number) =>
    N *
    activationFloatsPerToken(c, input.lora?.r ?? 0, loraProjections, {
      gradientCheckpointing: on,
      bf16Activations: input.bf16Activations,
    }) *
    F32;
  const activations = activationBytes(ckpt);
  // The engine's default loss chunk (native/engine/model.cc loss_chunk_rows): max(256, 2^24 / vocab) rows.
  const chunkTokens = Math.min(
    N,
    input.lossChunkTokens ?? Math.max(256, Math.floor((1 << 24) / c.vocabSize)),
  );
  // plus (on the CPU) LoRA dropout's mask and dropped input for each adapted projection of a layer, shared by all
  // layers
  const dropoutBuffers = 2 * N * loraDropoutWidth * F32;
  const workBuffers =
    workBufferFloats(c, N, chunkTokens, input.bf16Activations ?? false) * F32 + dropoutBuffers;
  return {
    weights,
    trainable,
    activations,
    workBuffers,
    total: weights + trainable + activations + workBuffers,
    gradientCheckpointing: ckpt > 0,
    checkpointedLayers: ckpt,
    checkpointedActivations: activationBytes(c.numLayers),
  };
}

/**
 * The fewest checkpointed layers whose estimated peak (estimateTrainingMemory's total) fits in `budgetBytes`
 * (0 when the plain layout fits), or null when even checkpointing every layer does not. input's own
 * gradientCheckpointing is ignored.
 */
export function checkpointLayersToFit(input: MemoryInput, budgetBytes: number): number | null {
  // The total only falls as k grows (k = 1 equals k = 0, so it is never the answer): the first fit is the fewest.
  for (let k = 0; k <= input.config.numLayers; k++) {
    if (estimateTrainingMemory({ ...input, gradientCheckpointing: k }).total <= budgetBytes) return k;
  }
  return null;
}

/** What training.gradient_checkpointing: "auto" chose, and a line for the run log saying why. */
export interface CheckpointChoice {
  layers: number;
  reason: string;
}

/**
 * training.gradient_checkpointing: "auto": the fewest checkpointed layers whose estimated peak fits in
 * `available.bytes` less a `margin` (the estimate is rough, and the allocator and framework want headroom);
 * every layer when even that does not fit (the memory check then says what else to change).
 */
export function autoCheckpointing(
  input: MemoryInput,
  available: { bytes: number; where: string },
  margin = 0.1,
): CheckpointChoice {
  const budget = available.bytes * (1 - margin);
  const L = input.config.numLayers;
  const k = checkpointLayersToFit(input, budget);
  const peak = (layers: number) =>
    mb(estimateTrainingMemory({ ...input, gradientCheckpointing: layers }).total);
  const room = `${Math.round((1 - margin) * 100)}% of ${mb(available.bytes)} ${available.where}`;
  if (k === null) {
    return {
      layers: L,
      reason: `auto: even with every layer checkpointed the estimated peak ${peak(L)} exceeds ${room}`,
    };
  }
  if (k === 0) {
    return { layers: 0, reason: `auto: the estimated peak without it, ${peak(0)}, fits in ${room}` };
  }
  return {
    layers: k,
    reason:
      `auto: the fewest whose estimated peak, ${peak(k)} (${peak(0)} without, ${peak(L)} with all ${L}), ` +
      `fits in ${room}; ${k - 1} recomputed in backward`,
  };
}

/** Throws a TuneforgeError with the numbers and what to change when the estimate exceeds available memory. */
export function checkTrainingMemory(
  estimate: MemoryEstimate,
  available: { total: number; free: number } = { total: totalmem(), free: freemem() },
): void {
  // Free memory understates what the OS can hand out (page cache is reclaimable): allow up to 90 % of total.
  const limit = Math.max(available.free, 0.9 * available.total);
  if (estimate.total <= limit) return;
  throw new TuneforgeError(
    `training would need about ${mb(estimate.total)} (weights ${mb(estimate.weights)}, trainable state ` +
      `${mb(estimate.trainable)}, activations ${mb(estimate.activations)}, work buffers ${mb(estimate.workBuffers)}) ` +
      `but this machine has ${mb(available.total)} (${mb(available.free)} free)`,
    {
      key: "training.per_device_train_batch_size",
      hint:
        (estimate.activations <= estimate.checkpointedActivations
          ? ""
          : `set training.gradient_checkpointing: true (activations ${mb(estimate.activations)} -> ` +
            `${mb(estimate.checkpointedActivations)}, for about one more forward pass of compute) or "auto" ` +
            `(only as many layers as the memory needs), `) +
        "lower training.per_device_train_batch_size (raise gradient_accumulation_steps to keep the effective " +
        "batch), shorten training.max_seq_length, use LoRA instead of full fine-tuning, or a smaller model",
    },
  );
}
