// The shape of `tuneforge.yaml`: every key, its type and its default. Objects are strict so a typo is an
// error (with a suggestion) instead of a silently ignored setting. Keys are snake_case, as users write them.
import { z } from "zod";
import { EVAL_METRICS, isGenerationMetric, METRIC_ALIASES } from "../eval/task.js";

/** The built-in tiny model used when `model.name_or_path` is not set (fast smoke runs, tests). */
export const DEFAULT_MODEL = "tuneforge/tiny";

export const INPUT_FORMATS = ["auto", "csv", "tsv", "json", "jsonl", "txt", "pdf", "docx"] as const;
export const TEMPLATES = ["chat", "chatml", "alpaca", "custom"] as const;
export const TARGET_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;

/**
 * What `training.eval_task_metric` takes: "off", "auto" (the task's main metric) or a metric on generated text,
 * spelled as `tuneforge eval --metrics` accepts it (loss is already validation loss, so it is not one).
 */
export const TASK_METRIC_CHOICES = [
  "off",
  "auto",
  ...EVAL_METRICS.filter(isGenerationMetric),
  ...Object.keys(METRIC_ALIASES).filter((a) => isGenerationMetric(METRIC_ALIASES[a])),
] as [string, ...string[]];

const ratio = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();

const modelSchema = z.strictObject({
  /** A Hugging Face hub id or a local folder with config.json + safetensors. */
  name_or_path: z.string().min(1).default(DEFAULT_MODEL),
  /** A folder with tokenizer.json when it is not next to the weights. */
  tokenizer: z.string().min(1).optional(),
  dtype: z.enum(["auto", "float32", "bfloat16", "float16"]).default("auto"),
});

const inputSchema = z.preprocess(
  // A bare string is shorthand for `{path: ...}`.
  (v) => (typeof v === "string" ? { path: v } : v),
  z.strictObject({
    path: z.string().min(1),
    /** Defaults (in the loaders) to the file's name without extension. */
    domain: z.string().min(1).optional(),
    format: z.enum(INPUT_FORMATS).default("auto"),
    /** Which CSV/TSV/JSON columns hold the source and the target text. */
    columns: z.strictObject({ source: z.string().min(1), target: z.string().min(1) }).optional(),
  }),
);

const splitSchema = z.strictObject({
  train: ratio.default(0.8),
  val: ratio.default(0.1),
  test: ratio.default(0.1),
  /** Defaults to `training.seed` (filled in after parsing). */
  seed: z.number().int().optional(),
});

const cleanSchema = z.strictObject({
  nfc: z.boolean().default(true),
  urls: z.boolean().default(false),
  emails: z.boolean().default(false),
  emojis: z.boolean().default(false),
  control_chars: z.boolean().default(true),
  whitespace: z.boolean().default(true),
  arabic_diacritics: z.boolean().default(false),
  min_chars: z.number().int().min(0).default(1),
  max_chars: positiveInt.nullable().default(null),
});

const augmentSchema = z.strictObject({
  /** Extra augmented copies per training row (0 = off). Only the train split is augmented. */
  factor: z.number().int().min(0).default(0),
  /** Path to a JSON/YAML synonym dictionary. */
  synonyms: z.string().min(1).optional(),
  instruction_variants: z.array(z.string().min(1)).default([]),
  case: z.boolean().default(false),
  punctuation: z.boolean().default(false),
  whitespace: z.boolean().default(false),
  numbers: z.boolean().default(false),
  clause_order: z.boolean().default(false),
});

const chunkingSchema = z.strictObject({
  method: z.enum(["recursive", "tokens"]).default("recursive"),
  chunk_size: positiveInt.default(1000),
  chunk_overlap: z.number().int().min(0).default(200),
});

const dataSchema = z.strictObject({
  inputs: z.array(inputSchema).default([]),
  output_dir: z.string().min(1).default("data/prepared"),
  template: z.enum(TEMPLATES).default("chat"),
  /** A Jinja chat template, required when `template: custom`. */
  custom_template: z.string().min(1).optional(),
  system_prompt: z.string().optional(),
  /** Per-domain system prompts; they win over `system_prompt`. */
  system_prompts: z.record(z.string(), z.string()).default({}),
  /** A task instruction for rows that carry none. */
  instruction: z.string().min(1).optional(),
  loss_on: z.enum(["completion", "all"]).default("completion"),
  split: splitSchema.prefault({}),
  dedup: z.enum(["normalized", "exact", "none"]).default("normalized"),
  dedup_scope: z.enum(["domain", "global"]).default("domain"),
  clean: cleanSchema.prefault({}),
  augment: augmentSchema.prefault({}),
  chunking: chunkingSchema.prefault({}),
  packing: z.boolean().default(false),
  /** Skip rows that fail to load (and report them) instead of stopping. */
  skip_invalid: z.boolean().default(false),
});

const loraSchema = z.strictObject({
  r: positiveInt.default(16),
  alpha: z.number().positive().default(32),
  dropout: z.number().min(0).lt(1).default(0.05),
  target_modules: z
    .array(z.enum(TARGET_MODULES))
    .min(1)
    .default([...TARGET_MODULES]),
  use_rslora: z.boolean().default(false),
});

const trainingSchema = z.strictObject({
  finetuning_type: z.enum(["lora", "qlora", "full"]).default("lora"),
  learning_rate: z.number().positive().default(2e-4),
  lr_scheduler_type: z.enum(["cosine", "linear", "constant"]).default("cosine"),
  warmup_ratio: z.number().min(0).lt(1).default(0.1),
  weight_decay: z.number().min(0).default(0.01),
  num_train_epochs: z.number().positive().default(3),
  per_device_train_batch_size: positiveInt.default(4),
  gradient_accumulation_steps: positiveInt.default(4),
  max_seq_length: positiveInt.default(512),
  seed: z.number().int().default(42),
  /** "auto": bfloat16 base weights on a GPU that supports it (float16 on one without, e.g. a T4), float32 on the CPU. */
  bf16: z.union([z.literal("auto"), z.boolean()]).default("auto"),
  /** -1: run `num_train_epochs`; otherwise stop after this many optimizer steps. */
  max_steps: z.number().int().min(-1).default(-1),
  max_grad_norm: z.number().min(0).default(1.0),
  logging_steps: positiveInt.default(10),
  eval_steps: positiveInt.default(50),
  save_steps: positiveInt.default(200),
  /** Evaluations without improvement before stopping; 0 = off. */
  early_stopping_patience: z.number().int().min(0).default(0),
  /**
   * What early stopping watches: "loss" (validation loss, lower is better, every `eval_steps`) or "task"
   * (`eval_task_metric`, higher is better, at each task evaluation). The best step's weights are kept.
   */
  early_stopping_metric: z.enum(["loss", "task"]).default("loss"),
  /**
   * A task metric measured during training by greedy generation on validation rows, logged to metrics.jsonl
   * as `{"step", "epoch", "eval": {"metric", "value"}}`: "off"; "auto" = the task's main metric (chrf for
   * translation, json-f1 for JSON extraction, none for chat); or a metric name as `tuneforge eval --metrics`
   * takes it (bleu, chrf, chrf++, json-f1, exact). Generation uses eval.max_new_tokens and eval.batch_size.
   */
  eval_task_metric: z
    .preprocess((v) => (typeof v === "string" ? v.trim().toLowerCase() : v), z.enum(TASK_METRIC_CHOICES))
    .default("off"),
  /** When the task metric is measured: at each epoch end, or every `eval_steps` (with validation loss). */
  eval_task_strategy: z.enum(["epoch", "steps"]).default("epoch"),
  /** Validation rows the task metric is measured on: the same seeded sample every time (all when fewer). */
  eval_task_samples: positiveInt.default(32),
  /**
   * Wall-clock limit for this training call, in minutes: the run stops after the step during which it passed
   * and finishes normally (final adapter, final validation, run.json stop_reason "time_limit").
   */
  max_train_minutes: z.number().positive().optional(),
  group_by_length: z.boolean().default(true),
  /**
   * Activation checkpointing (recompute layers' forward in backward instead of keeping their activations;
   * gradients unchanged): false; true = every layer (least memory, about one more forward pass of compute); a
   * number k = the bottom k layers only (k - 1 of them recomputed, k - 1 layers' activations saved); "auto" = the
   * fewest layers whose estimated peak fits the device's free memory (RAM on the CPU) with a 10% margin.
   */
  gradient_checkpointing: z.union([z.boolean(), z.number().int().min(0), z.literal("auto")]).default(false),
  device: z.enum(["auto", "cpu", "cuda"]).default("auto"),
  output_dir: z.string().min(1).default("models"),
  run_name: z.string().min(1).optional(),
});

const evalSchema = z.strictObject({
  /** Metric names; "auto" picks them from the task (translation, JSON, chat). A bare string is one item. */
  metrics: z
    .preprocess((v) => (typeof v === "string" ? [v] : v), z.array(z.string().min(1)).min(1))
    .default(["auto"]),
  max_new_tokens: positiveInt.default(256),
  batch_size: positiveInt.default(8),
  num_examples: z.number().int().min(0).default(5),
  temperature: z.number().min(0).default(0),
});

const exportSchema = z.strictObject({
  merged: z.boolean().default(false),
  gguf: z.boolean().default(false),
  gguf_quantization: z.enum(["q8_0", "q4_k_m", "q4_0", "f16", "bf16", "f32"]).default("q8_0"),
});

/** The raw schema, before `data.split.seed` is filled in from `training.seed`. */
export const configSchema = z.strictObject({
  model: modelSchema.prefault({}),
  data: dataSchema.prefault({}),
  lora: loraSchema.prefault({}),
  training: trainingSchema.prefault({}),
  eval: evalSchema.prefault({}),
  export: exportSchema.prefault({}),
});

type Parsed = z.output<typeof configSchema>;

/** The resolved configuration: every key present, defaults applied, snake_case as in the YAML. */
export type TuneforgeConfig = Omit<Parsed, "data"> & {
  data: Omit<Parsed["data"], "split"> & { split: Omit<Parsed["data"]["split"], "seed"> & { seed: number } };
};
export type ModelSection = TuneforgeConfig["model"];
export type DataSection = TuneforgeConfig["data"];
export type DataInput = DataSection["inputs"][number];
export type LoraSection = TuneforgeConfig["lora"];
export type TrainingSection = TuneforgeConfig["training"];
export type EvalSection = TuneforgeConfig["eval"];
export type ExportSection = TuneforgeConfig["export"];

/** Fills in the keys whose default depends on another key. */
export function finalizeConfig(parsed: Parsed): TuneforgeConfig {
  return {
    ...parsed,
    data: {
      ...parsed.data,
      split: { ...parsed.data.split, seed: parsed.data.split.seed ?? parsed.training.seed },
    },
  };
}

/** The configuration with every default, as if `tuneforge.yaml` were empty. */
export function defaultConfig(): TuneforgeConfig {
  return finalizeConfig(configSchema.parse({}));
}
