// Reads an HF `config.json` into one normalised ModelConfig that the engine understands.
// Supports the decoder-only families tuneforge trains: qwen2 (Qwen2, Qwen2.5), qwen3, llama, mistral.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { TuneforgeError } from "../errors.js";

export const SUPPORTED_ARCHS = ["qwen2", "qwen3", "llama", "mistral"] as const;
export type Arch = (typeof SUPPORTED_ARCHS)[number];

export type RopeScaling =
  | { type: "default" }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface ModelConfig {
  arch: Arch;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  rope: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (always for qwen2; `attention_bias` for the others). */
  qkvBias: boolean;
  /** Bias on o_proj (llama/qwen3 `attention_bias`; never for qwen2). */
  oBias: boolean;
  /** Bias on the MLP projections (llama `mlp_bias`). */
  mlpBias: boolean;
  /** Per-head RMSNorm on q and k before rotary (qwen3). */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The checkpoint's stored dtype as declared ("float32", "bfloat16", "float16"). */
  dtype: string;
}

export class ModelConfigError extends TuneforgeError {}

const ARCH_BY_MODEL_TYPE: Record<string, Arch> = {
  qwen2: "qwen2",
  qwen3: "qwen3",
  llama: "llama",
  mistral: "mistral",
};

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, source: string, fallback?: number): number {
  const v = raw[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(`${source}: "${key}" is missing (expected a number)`);
  }
  throw new ModelConfigError(`${source}: "${key}" is ${JSON.stringify(v)} (expected a number)`);
}

function tokenIds(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

/** Parses the JSON of an HF config.json. `source` names the file in error messages. */
export function parseModelConfig(raw: Raw, source = "config.json"): ModelConfig {
  const modelType = String(raw.model_type ?? "");
  const arch = ARCH_BY_MODEL_TYPE[modelType];
  if (!arch) {
    throw new ModelConfigError(
      `${source}: model_type "${modelType || "(missing)"}" is not supported; tuneforge trains ` +
        `${SUPPORTED_ARCHS.join(", ")} checkpoints (Qwen2/2.5/3, Llama 2/3.x, Mistral)`,
    );
  }
  const hiddenSize = num(raw, "hidden_size", source);
  const numHeads = num(raw, "num_attention_heads", source);
  const numKvHeads = num(raw, "num_key_value_heads", source, numHeads);
  const headDim = num(raw, "head_dim", source, hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `${source}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }

  // transformers 5 puts rope settings under rope_parameters; older files use rope_theta + rope_scaling.
  const ropeParams = (raw.rope_parameters ?? null) as Raw | null;
  const ropeScaling = (raw.rope_scaling ?? null) as Raw | null;
  const ropeSource = ropeParams ?? ropeScaling ?? {};
  const ropeTheta = num(ropeParams ?? {}, "rope_theta", source, num(raw, "rope_theta", source, 10000));
  const ropeType = String(ropeSource.rope_type ?? ropeSource.type ?? "default");
  let rope: RopeScaling;
  if (ropeType === "default") rope = { type: "default" };
  else if (ropeType === "llama3") {
    const where = `${source} (${ropeParams ? "rope_parameters" : "rope_scaling"})`;
    rope = {
      type: "llama3",
      factor: num(ropeSource, "factor", where),
      lowFreqFactor: num(ropeSource, "low_freq_factor", where),
      highFreqFactor: num(ropeSource, "high_freq_factor", where),
      originalMaxPositions: num(ropeSource, "original_max_position_embeddings", where),
    };
  } else {
    throw new ModelConfigError(
      `${source}: rope type "${ropeType}" is not supported; supported rope types: default, llama3`,
    );
  }

  const attentionBias = raw.attention_bias === true;
  const hiddenAct = String(raw.hidden_act ?? "silu");
  if (hiddenAct !== "silu") {
    throw new ModelConfigError(`${source}: hidden_act "${hiddenAct}" is not supported (only silu/SwiGLU)`);
  }
  return {
    arch,
    vocabSize: num(raw, "vocab_size", source),
    hiddenSize,
    intermediateSize: num(raw, "intermediate_size", source),
    numLayers: num(raw, "num_hidden_layers", source),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(raw, "rms_norm_eps", source, 1e-6),
    ropeTheta,
    rope,
    maxPositionEmbeddings: num(raw, "max_position_embeddings", source, 4096),
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    qkvBias: arch === "qwen2" ? true : attentionBias,
    oBias: arch === "qwen2" ? false : attentionBias,
    mlpBias: raw.mlp_bias === true,
    qkNorm: arch === "qwen3",
    bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
    eosTokenIds: tokenIds(raw.eos_token_id),
    padTokenId: typeof raw.pad_token_id === "number" ? raw.pad_token_id : null,
    dtype: String(raw.dtype ?? raw.torch_dtype ?? "float32"),
  };
}

/** Reads `<dir>/config.json`. */
export function loadModelConfig(dir: string): ModelConfig {
  const path = join(dir, "config.json");
  if (!existsSync(path)) {
    throw new ModelConfigError(
      `${dir}: no config.json; point --model at an HF model folder (config.json + *.safetensors)`,
    );
  }
  let raw: Raw;
  try {
    raw = JSON.parse(readFileSync(path, "utf8")) as Raw;
  } catch (e) {
    throw new ModelConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(raw, path);
}

/** Rotary inverse frequencies (head_dim/2 of them), with llama3 scaling applied, in float64. */
export function ropeInvFreq(config: ModelConfig): Float64Array {
  const half = config.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  if (config.rope.type === "llama3") {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = config.rope;
    const lowWavelen = originalMaxPositions / lowFreqFactor;
    const highWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = inv[i] / factor;
      else if (wavelen >= highWavelen) {
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = ((1 - smooth) * inv[i]) / factor + smooth * inv[i];
      }
    }
  }
  return inv;
}
