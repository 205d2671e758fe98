// The built-in tiny base model. No pretrained weights can be downloaded in every setting (offline CI,
// air-gapped machines), so tuneforge can build its own small Qwen3-architecture model on demand: a real HF
// folder (config, randomly initialised safetensors, generation config, a BPE tokenizer trained on the
// user's corpus, a ChatML chat template) that the whole pipeline - and transformers - treat like any other.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { createRng, type Rng } from "../data/random.js";
import { loadModelConfig, parseModelConfig, type ModelConfig } from "./config.js";
import { expectedTensors } from "./layout.js";
import { writeSafetensors, type TensorToWrite } from "./safetensors.js";
import { tokenizerJson, trainByteLevelBpe } from "./bpe.js";

/** Bump when the output of buildTinyModel changes, so caches built by older versions are not reused. */
const TINY_FORMAT_VERSION = 1;

export const TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/** Qwen2.5's ChatML template without tools: a default system prompt when the conversation has none. */
export const CHATML_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' %}" +
  "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
  "{%- else %}" +
  "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}" +
  "{%- endif %}" +
  "{%- for message in messages %}" +
  '{%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}' +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}" +
  "{%- endif %}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}" +
  "{{- '<|im_start|>assistant\\n' }}" +
  "{%- endif %}";

export interface TinyModelOptions {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  /** BPE vocabulary size including the 256 byte tokens; the 3 special tokens come on top. */
  tokenizerVocabSize: number;
  /**
   * Standard deviation of the random weights (HF's initializer_range). 0.15, not HF's 0.02: this model is never
   * pretrained, and with tied embeddings that small every logit stays near 0, so a LoRA (which cannot rescale
   * the frozen embeddings or norms) could barely make any answer likely.
   */
  initStd: number;
}

export const TINY_DEFAULTS: TinyModelOptions = {
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  intermediateSize: 384,
  ropeTheta: 10000,
  maxPositionEmbeddings: 1024,
  rmsNormEps: 1e-6,
  tokenizerVocabSize: 2048,
  initStd: 0.15,
};

export interface EnsureTinyModelOptions extends Partial<TinyModelOptions> {
  /** The texts the tokenizer is trained on (the bundled examples' texts). */
  corpus: readonly string[];
  seed: number;
  /** The model folder; default `<cacheDir>/tiny-<hash of corpus + options>`. */
  dir?: string;
  /** Default `.tuneforge-cache` (in the working directory). */
  cacheDir?: string;
}

export interface TinyModel {
  dir: string;
  /** False when an existing folder was reused. */
  built: boolean;
  config: ModelConfig;
}

function resolveOptions(options: Partial<TinyModelOptions>): TinyModelOptions {
  const o: TinyModelOptions = { ...TINY_DEFAULTS };
  for (const key of Object.keys(TINY_DEFAULTS) as (keyof TinyModelOptions)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new TuneforgeError(
        `tiny model option ${key} is ${JSON.stringify(v)}; expected a positive number`,
        {
          key,
          hint: `remove it to use the default (${TINY_DEFAULTS[key]})`,
        },
      );
    }
    o[key] = v;
  }
  const ints: (keyof TinyModelOptions)[] = [
    "hiddenSize",
    "numLayers",
    "numHeads",
    "numKvHeads",
    "headDim",
    "intermediateSize",
    "maxPositionEmbeddings",
    "tokenizerVocabSize",
  ];
  for (const key of ints) {
    if (!Number.isInteger(o[key])) {
      throw new TuneforgeError(`tiny model option ${key} is ${o[key]}; expected an integer`, {
        key,
        hint: "use a whole number",
      });
    }
  }
  if (o.numHeads % o.numKvHeads !== 0) {
    throw new TuneforgeError(`numHeads (${o.numHeads}) must be a multiple of numKvHeads (${o.numKvHeads})`, {
      key: "numKvHeads",
      hint: "choose numKvHeads dividing numHeads, e.g. 2 for 4 heads",
    });
  }
  if (o.headDim % 2 !== 0) {
    throw new TuneforgeError(`headDim ${o.headDim} must be even (rotary embeddings rotate pairs)`, {
      key: "headDim",
      hint: "use e.g. 32",
    });
  }
  if (o.tokenizerVocabSize < 256) {
    throw new TuneforgeError(`tokenizerVocabSize ${o.tokenizerVocabSize} is below the 256 byte tokens`, {
      key: "tokenizerVocabSize",
      hint: "use at least 256 (default 2048)",
    });
  }
  return o;
}

/** The cache key of a tiny model: a hash of everything its bytes depend on. */
export function tinyModelHash(
  corpus: readonly string[],
  seed: number,
  options: Partial<TinyModelOptions> = {},
): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ version: TINY_FORMAT_VERSION, seed, options: resolveOptions(options) }));
  for (const text of corpus) {
    // Length-prefixed, so ["ab", "c"] and ["a", "bc"] hash differently.
    h.update(`\n${Buffer.byteLength(text, "utf8")}:`);
    h.update(text, "utf8");
  }
  return h.digest("hex").slice(0, 16);
}

/** A standard normal sampler (Box–Muller) on the project's seeded PRNG. */
function normalSampler(rng: Rng): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u1 = 1 - rng.next(); // (0, 1]: log stays finite
    const u2 = rng.next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    spare = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  };
}

/** The config.json of a tiny model (Qwen3, tied embeddings, float32), readable by transformers 4.51+ and 5. */
function tinyConfigJson(
  o: TinyModelOptions,
  vocabSize: number,
  ids: Record<string, number>,
): Record<string, unknown> {
  return {
    architectures: ["Qwen3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: ids["<|endoftext|>"],
    dtype: "float32",
    eos_token_id: ids["<|im_end|>"],
    head_dim: o.headDim,
    hidden_act: "silu",
    hidden_size: o.hiddenSize,
    initializer_range: o.initStd,
    intermediate_size: o.intermediateSize,
    max_position_embeddings: o.maxPositionEmbeddings,
    max_window_layers: o.numLayers,
    model_type: "qwen3",
    num_attention_heads: o.numHeads,
    num_hidden_layers: o.numLayers,
    num_key_value_heads: o.numKvHeads,
    pad_token_id: ids["<|endoftext|>"],
    rms_norm_eps: o.rmsNormEps,
    // Both spellings: transformers 5 reads rope_parameters, 4.x reads rope_theta/rope_scaling.
    rope_parameters: { rope_theta: o.ropeTheta, rope_type: "default" },
    rope_scaling: null,
    rope_theta: o.ropeTheta,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: vocabSize,
  };
}

/** Writes a complete tiny model folder into `dir` (not atomic by itself: see ensureTinyModel). */
export function buildTinyModel(
  dir: string,
  corpus: readonly string[],
  seed: number,
  options: Partial<TinyModelOptions> = {},
): ModelConfig {
  const o = resolveOptions(options);
  if (corpus.every((t) => t.length === 0)) {
    throw new TuneforgeError(
      "the tiny model's tokenizer needs some text to train on, and the corpus is empty",
      {
        hint: "pass the texts of your training examples as the corpus",
      },
    );
  }
  mkdirSync(dir, { recursive: true });

  const bpe = trainByteLevelBpe(corpus, { vocabSize: o.tokenizerVocabSize });
  const tokJson = tokenizerJson(bpe, TINY_SPECIAL_TOKENS);
  const base = Object.keys(bpe.vocab).length;
  const ids: Record<string, number> = {};
  TINY_SPECIAL_TOKENS.forEach((t, i) => (ids[t] = base + i));
  const vocabSize = base + TINY_SPECIAL_TOKENS.length;

  const rawConfig = tinyConfigJson(o, vocabSize, ids);
  const config = parseModelConfig(rawConfig, join(dir, "config.json"));

  // Weights: N(0, std) for matrices (HF's _init_weights), 1 for RMSNorm scales.
  const normal = normalSampler(createRng(seed));
  const tensors: TensorToWrite[] = expectedTensors(config).map(({ name, shape }) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) data.fill(1);
    else if (!name.endsWith(".bias")) for (let i = 0; i < data.length; i++) data[i] = normal() * o.initStd;
    return { name, dtype: "F32", shape, data };
  });

  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeJsonAtomic(join(dir, "config.json"), rawConfig);
  writeJsonAtomic(join(dir, "generation_config.json"), {
    bos_token_id: ids["<|endoftext|>"],
    eos_token_id: [ids["<|im_end|>"], ids["<|endoftext|>"]],
    pad_token_id: ids["<|endoftext|>"],
  });
  writeJsonAtomic(join(dir, "tokenizer.json"), tokJson);
  writeJsonAtomic(join(dir, "tokenizer_config.json"), {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      TINY_SPECIAL_TOKENS.map((content) => [
        String(ids[content]),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
    bos_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    errors: "replace",
    model_max_length: o.maxPositionEmbeddings,
    pad_token: "<|endoftext|>",
    split_special_tokens: false,
    tokenizer_class: "Qwen2Tokenizer",
    unk_token: null,
  });
  return config;
}

/**
 * Returns the tiny model for this corpus and these options, building it on first use. The folder is built
 * under a temporary name and renamed into place, so a folder that exists is always complete, and two
 * processes racing to build it both end up using one good copy.
 */
export function ensureTinyModel(options: EnsureTinyModelOptions): TinyModel {
  const { corpus, seed, dir: given, cacheDir = ".tuneforge-cache", ...sizes } = options;
  const dir = resolve(given ?? join(cacheDir, `tiny-${tinyModelHash(corpus, seed, sizes)}`));
  if (existsSync(join(dir, "config.json"))) {
    return { dir, built: false, config: loadModelConfig(dir) };
  }
  if (existsSync(dir)) {
    throw new TuneforgeError("exists but is not a model folder (no config.json)", {
      file: dir,
      hint: "remove the folder or choose another one for the tiny model",
    });
  }
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    const config = buildTinyModel(tmp, corpus, seed, sizes);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished first: use its copy (identical bytes: same inputs).
      if (existsSync(join(dir, "config.json"))) return { dir, built: false, config: loadModelConfig(dir) };
      throw e;
    }
    return { dir, built: true, config };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
