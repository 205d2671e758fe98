// A rough memory estimate made before training starts, so a run that cannot fit fails in a second with
// advice instead of swapping or being killed an hour in. Numbers are bytes of float32 (the CPU engine's dtype).
import { freemem, totalmem } from "node:os";
import { TuneforgeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { expectedTensors } from "../model/layout.js";
import { loraModules } from "../engine/lora.js";
import type { Projection } from "../model/layout.js";

const F32 = 4;

/**
 * Saved activations per token per layer, in units of `hidden`: the engine keeps (see native/engine/model.h
 * LayerActs) the residual, h1, res2, h2 (4 x hidden), q/att (2 x q width), k/v (2 x kv width) and g/u/act
 * (3 x intermediate). For the common shapes (q width = hidden, intermediate ~ 3-5 x hidden) that is about
 * 4 + 2 + 1 + 3 x 4 = 19; we use the exact sum when the config is known (activationFloatsPerToken).
 */
export function activationFloatsPerToken(c: ModelConfig, loraRank = 0, loraProjections = 0): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = 4 * c.hiddenSize + 2 * q + 2 * kv + 3 * c.intermediateSize + (c.qkNorm ? q + kv : 0);
  // LoRA keeps x A^T ([tokens, r]) per adapted projection.
  return c.numLayers * (perLayer + loraRank * loraProjections);
}

export interface MemoryEstimate {
  weights: number;
  /** Trainable parameters x 4 (weights, grads, AdamW m and v) beyond the frozen weights. */
  trainable: number;
  activations: number;
  /** Logits of one loss chunk, plus its gradient. */
  lossChunk: number;
  total: number;
}

export interface MemoryInput {
  config: ModelConfig;
  /** Rows x longest sequence of one micro-batch. */
  tokensPerMicroBatch: number;
  finetuning: "lora" | "full";
  lora?: { r: number; targets: readonly Projection[] };
  /** The engine's loss chunk, in tokens (default: 4 Mi floats of logits). */
  lossChunkTokens?: number;
}

export function parameterCount(config: ModelConfig): number {
  return expectedTensors(config).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function estimateTrainingMemory(input: MemoryInput): MemoryEstimate {
  const { config: c, tokensPerMicroBatch: N } = input;
  const params = parameterCount(c);
  const weights = params * F32;
  let trainableParams = 0;
  let loraProjections = 0;
  if (input.finetuning === "full") {
    // weights already counted once: add grads, m and v
    trainableParams = params;
  } else if (input.lora) {
    const mods = loraModules(c, input.lora.targets);
    loraProjections = mods.length / Math.max(1, c.numLayers);
    for (const m of mods) trainableParams += input.lora.r * (m.shape[0] + m.shape[1]);
  }
  const trainable = trainableParams * F32 * (input.finetuning === "full" ? 3 : 4);
  const activations = N * activationFloatsPerToken(c, input.lora?.r ?? 0, loraProjections) * F32;
  // The engine's default loss chunk (native/engine/model.cc loss_chunk_rows): max(128, 2^24 / vocab) rows.
  const chunkTokens = Math.min(
    N,
    input.lossChunkTokens ?? Math.max(128, Math.floor((1 << 24) / c.vocabSize)),
  );
  // the chunk's logits and gradient in place, plus the backward's [N, hidden] gradients (a few live at once)
  const lossChunk = chunkTokens * c.vocabSize * F32 + 4 * N * c.hiddenSize * F32;
  return { weights, trainable, activations, lossChunk, total: weights + trainable + activations + lossChunk };
}

const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

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
      `${mb(estimate.trainable)}, activations ${mb(estimate.activations)}, loss ${mb(estimate.lossChunk)}) ` +
      `but this machine has ${mb(available.total)} (${mb(available.free)} free)`,
    {
      key: "training.per_device_train_batch_size",
      hint:
        "lower training.per_device_train_batch_size (raise gradient_accumulation_steps to keep the effective " +
        "batch), shorten training.max_seq_length, use LoRA instead of full fine-tuning, or a smaller model " +
        "(training.gradient_checkpointing will cut activations once the engine supports it)",
    },
  );
}
