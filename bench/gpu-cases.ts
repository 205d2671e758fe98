// The shapes and goals of `npm run bench:gpu` (issue 4, "Fast and lean"): the HF configs of
// ../shared/reference/bench_peft.py (random weights, seq 1024, LoRA r16 on all 7 projections) and the peer numbers
// measured on an H100 (../shared/anchors), kept beside each case for context when the peer cannot run.
import { parseModelConfig, type ModelConfig } from "../src/model/config.js";

/** A goal of the issue for one case: our figure over the reference's, at least `target` (or at most, for memory). */
export interface Goal {
  /** What is compared, e.g. "tokens/s vs HF without checkpointing". */
  what: string;
  metric: "tokensPerS" | "peakGiB";
  /** The peer run the ratio is taken against (bench_peft.py's ckpt argument), or an absolute limit in GiB. */
  against: { peerCkpt: boolean } | { limitGiB: number };
  /** tokensPerS: ours / theirs >= target; peakGiB: ours / theirs (or / limit) <= target. */
  target: number;
  stretch?: number;
}

export interface TrainCase {
  /** bench_peft.py's shape name. */
  shape: string;
  config: ModelConfig;
  microBatch: number;
  seq: number;
  /** Peer runs (bench_peft.py ckpt 0|1) this case's goals need. */
  peerCkpts: boolean[];
  goals: Goal[];
  /** Anchor numbers measured on an H100 (2026-11-22), by checkpointing: context only, never a ratio's basis. */
  anchors?: { ckpt: boolean; tokensPerS: number; peakGiB: number }[];
  /** Run our checkpointing mode first (the 7B case, whose memory goal needs it). */
  ckptFirst?: boolean;
  /** Rough seconds our side needs (model creation, warm-up, timed steps): a case is skipped below this. */
  estimateS: number;
  /** Rough seconds one peer run needs (python start, model creation, 13 steps). */
  peerEstimateS: number;
}

export interface GenerateCase {
  shape: string;
  config: ModelConfig;
  batch: number;
  promptLen: number;
  newTokens: number;
  /** HF generate on an H100 with the adapter unmerged (tokens/s), context only. */
  anchorTokensPerS?: number;
  estimateS: number;
  peerEstimateS: number;
}

/** bench_peft.py's CFGS, as HF config.json objects. */
export const HF_SHAPES: Record<string, Record<string, unknown>> = {
  "qwen3-0.6b": {
    model_type: "qwen3",
    vocab_size: 151936,
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    tie_word_embeddings: true,
    rope_theta: 1000000.0,
    max_position_embeddings: 40960,
    rms_norm_eps: 1e-6,
  },
  "qwen2-1.5b": {
    model_type: "qwen2",
    vocab_size: 151936,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    tie_word_embeddings: true,
    rope_theta: 1000000.0,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
  },
  "qwen2.5-7b": {
    model_type: "qwen2",
    vocab_size: 152064,
    hidden_size: 3584,
    intermediate_size: 18944,
    num_hidden_layers: 28,
    num_attention_heads: 28,
    num_key_value_heads: 4,
    tie_word_embeddings: false,
    rope_theta: 1000000.0,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
  },
};

const shape = (name: string) => parseModelConfig(HF_SHAPES[name]!, `bench_peft.py ${name}`);

export const SEQ = 1024;

export function fullTrainCases(): TrainCase[] {
  return [
    {
      shape: "qwen3-0.6b",
      config: shape("qwen3-0.6b"),
      microBatch: 8,
      seq: SEQ,
      peerCkpts: [false, true],
      goals: [
        {
          what: "tokens/s >= 2x HF's best (no checkpointing)",
          metric: "tokensPerS",
          against: { peerCkpt: false },
          target: 2,
        },
        {
          what: "peak memory <= HF with checkpointing",
          metric: "peakGiB",
          against: { peerCkpt: true },
          target: 1,
        },
      ],
      anchors: [
        { ckpt: false, tokensPerS: 27461, peakGiB: 32.78 },
        { ckpt: true, tokensPerS: 20795, peakGiB: 15.7 },
      ],
      estimateS: 60,
      peerEstimateS: 45,
    },
    {
      shape: "qwen2-1.5b",
      config: shape("qwen2-1.5b"),
      microBatch: 8,
      seq: SEQ,
      peerCkpts: [true],
      goals: [
        {
          what: "tokens/s >= 2x HF with checkpointing",
          metric: "tokensPerS",
          against: { peerCkpt: true },
          target: 2,
        },
        {
          what: "peak memory <= HF with checkpointing",
          metric: "peakGiB",
          against: { peerCkpt: true },
          target: 1,
        },
      ],
      anchors: [{ ckpt: true, tokensPerS: 18260, peakGiB: 17.81 }],
      estimateS: 90,
      peerEstimateS: 60,
    },
    {
      shape: "qwen2.5-7b",
      config: shape("qwen2.5-7b"),
      microBatch: 4,
      seq: SEQ,
      peerCkpts: [false],
      goals: [
        {
          what: "tokens/s >= 1.2x HF without checkpointing (1.5x stretch)",
          metric: "tokensPerS",
          against: { peerCkpt: false },
          target: 1.2,
          stretch: 1.5,
        },
        { what: "peak memory <= 24 GiB", metric: "peakGiB", against: { limitGiB: 24 }, target: 1 },
      ],
      anchors: [
        { ckpt: false, tokensPerS: 9907, peakGiB: 51.71 },
        { ckpt: true, tokensPerS: 6945, peakGiB: 22.6 },
      ],
      ckptFirst: true,
      estimateS: 150,
      peerEstimateS: 120,
    },
  ];
}

export function fullGenerateCase(): GenerateCase {
  return {
    shape: "qwen3-0.6b",
    config: shape("qwen3-0.6b"),
    batch: 32,
    promptLen: 128,
    newTokens: 128,
    anchorTokensPerS: 243,
    estimateS: 60,
    peerEstimateS: 60,
  };
}

/** `--smoke`: the same harness on a model small enough for a CPU test (seconds), no peers. */
const TINY = parseModelConfig(
  {
    model_type: "qwen3",
    vocab_size: 256,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
  },
  "smoke shape",
);

export function smokeTrainCases(): TrainCase[] {
  const [first] = fullTrainCases();
  return [
    { ...first!, shape: "smoke-tiny", config: TINY, microBatch: 2, seq: 32, anchors: [], estimateS: 1 },
  ];
}

export function smokeGenerateCase(): GenerateCase {
  return {
    shape: "smoke-tiny",
    config: TINY,
    batch: 2,
    promptLen: 8,
    newTokens: 8,
    estimateS: 1,
    peerEstimateS: 1,
  };
}
