// Shapes, inputs and checks shared by the checkpointing tests (checkpointing, checkpoint-layers) and the
// peak-memory child process.
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { createRng } from "../../src/data/random.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { parseModelConfig } from "../../src/model/config.js";
import { estimateTrainingMemory, type MemoryEstimate, type MemoryInput } from "../../src/train/memory.js";

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

/**
 * A LoRA model (r 3, dropout 0.3 on all 7 projections) with random B: B = 0 (PEFT's init) would make every LoRA A
 * gradient zero, so A's gradients would not test the dropout masks.
 */
export function loraModelWithRandomB(dir: string, threads: number, gradientCheckpointing: boolean | number) {
  const m = EngineModel.load(dir, { threads, gradientCheckpointing });
  m.setLora({ r: 3, alpha: 6, targets: [...ALL_PROJECTIONS], dropout: 0.3, seed: 4 });
  const rng = createRng(8);
  const w = m.loraWeights();
  for (const p of w.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
  m.setLoraWeights(w);
  return m;
}

/**
 * One layer's saved activations (native/engine/model.h LayerActs) in floats per token, for a qk-norm model with
 * LoRA on all 7 projections: rstd1, q, k, v, q_pre, k_pre, rstd_q, rstd_k, att, lse, res2, rstd2, g, u, and per
 * LoRA module x A^T (the norms' outputs h1, h2 and swiglu(g, u) are one buffer each for all layers). LoRA dropout
 * adds nothing per layer: only the mask's seed is kept.
 */
export function layerSetFloats(c: typeof PEAK_MODEL, loraRank: number): number {
  const D = c.hidden_size;
  const F = c.intermediate_size;
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const q = H * c.head_dim;
  const kv = KV * c.head_dim;
  return 1 + q + 2 * kv + (q + kv + H + KV) + q + H + D + 1 + 2 * F + 7 * loraRank;
}

/** The training memory estimate for PEAK_MODEL with PEAK_LORA on all 7 projections, N tokens, k checkpointed layers. */
export function peakModelEstimate(N: number, k: number, more: Partial<MemoryInput> = {}): MemoryEstimate {
  return estimateTrainingMemory({
    config: parseModelConfig({ model_type: "qwen3", ...PEAK_MODEL, rms_norm_eps: 1e-5 }),
    tokensPerMicroBatch: N,
    finetuning: "lora",
    lora: { r: PEAK_LORA.r, targets: ALL_PROJECTIONS, dropout: PEAK_LORA.dropout },
    gradientCheckpointing: k,
    ...more,
  });
}

/** Same tensor names, and every value bit for bit (the first difference is named). */
export function assertBitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string) {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
    const i = xb.findIndex((v, k) => v !== yb[k]);
    assert.equal(i, -1, `${what}: ${name}[${i}] = ${x[i]} vs ${y[i]}`);
  }
}
