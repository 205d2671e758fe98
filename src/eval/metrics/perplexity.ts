// Perplexity from the mean per-token cross-entropy (natural log), the number evaluation reports next to loss.
import { TuneforgeError } from "../../errors.js";

export function perplexity(meanLoss: number): number {
  if (!Number.isFinite(meanLoss) || meanLoss < 0) {
    throw new TuneforgeError(`perplexity needs a finite, non-negative mean loss, got ${meanLoss}`, {
      hint: "a NaN or infinite loss means training diverged: lower the learning rate or check the data",
    });
  }
  return Math.exp(meanLoss);
}

/** Token-weighted mean loss over batches (each batch's mean loss times its token count), for perplexity(). */
export function meanLossOverBatches(batches: ReadonlyArray<{ loss: number; tokens: number }>): number {
  let sum = 0;
  let tokens = 0;
  for (const b of batches) {
    sum += b.loss * b.tokens;
    tokens += b.tokens;
  }
  if (tokens === 0) {
    throw new TuneforgeError("cannot average the loss over zero tokens", {
      hint: "the evaluation set produced no scored tokens: check that it is not empty and not fully masked",
    });
  }
  return sum / tokens;
}
