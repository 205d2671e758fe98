// Shapes and inputs shared by checkpointing.test.ts and its peak-memory child process.
import type { Batch } from "../../src/engine/index.js";
import { createRng } from "../../src/data/random.js";

/** Several layers, so (layers - 1) layers' activations are a clear margin over everything else. */
export const PEAK_MODEL = {
  vocab_size: 61,
  hidden_size: 48,
  intermediate_size: 96,
  num_hidden_layers: 5,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
};

export const PEAK_LORA = { r: 4, alpha: 8, dropout: 0.1, seed: 5 };

/**
 * rows x T tokens with labels, padding and packing as asked: row r ends in `pad[r]` padding tokens, and with
 * `packed` every row holds two sequences (segment ids 1 and 2, the second starting at a third of the row).
 */
export function makeBatch(
  seed: number,
  rows: number,
  T: number,
  vocab: number,
  packed: boolean,
  pad: number[],
): Batch {
  const rng = createRng(seed);
  const n = rows * T;
  const inputIds = Int32Array.from({ length: n }, () => rng.int(vocab));
  const attentionMask = Int32Array.from({ length: n }, (_, i) =>
    i % T >= T - (pad[Math.floor(i / T)] ?? 0) ? 0 : 1,
  );
  const labels = Int32Array.from(inputIds, (t, i) => (attentionMask[i] === 0 || i % T < 2 ? -100 : t));
  const batch: Batch = { rows, inputIds, attentionMask, labels };
  if (packed)
    batch.segmentIds = Int32Array.from({ length: n }, (_, i) => (i % T < Math.floor(T / 3) ? 1 : 2));
  return batch;
}

export const PEAK_BATCH = makeBatch(9, 3, 40, PEAK_MODEL.vocab_size, true, [0, 5, 11]);
