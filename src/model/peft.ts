// PEFT LoRA adapter folders: `adapter_config.json` + `adapter_model.safetensors`, the format
// `peft.PeftModel.from_pretrained` loads. We read what PEFT writes (and refuse, with a reason, what we cannot
// apply), write folders PEFT loads, and create a fresh adapter initialised exactly as PEFT does.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { createRng } from "../data/random.js";
import type { ModelConfig } from "./config.js";
import {
  ALL_PROJECTIONS,
  PROJECTIONS,
  projectionModule,
  projectionShape,
  type Projection,
} from "./layout.js";
import { SafetensorsError, SafetensorsFile, writeSafetensors, type TensorToWrite } from "./safetensors.js";
import { readJsonFile } from "./folder.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

export interface LoraAdapterConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** As in adapter_config.json `target_modules`: short names ("q_proj") or full module names. */
  targetModules: string[];
  useRslora: boolean;
  /** `base_model_name_or_path`: the model the adapter was trained on, where known. */
  baseModel: string | null;
  /** The factor the LoRA update is multiplied by: alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scale: number;
}

/** One module's LoRA pair, row-major as in PyTorch: A is [r, in], B is [out, r]. */
export interface LoraWeights {
  A: Float32Array;
  aShape: [number, number];
  B: Float32Array;
  bShape: [number, number];
}

export interface LoraAdapter {
  config: LoraAdapterConfig;
  /** Keyed by module name, e.g. `model.layers.0.self_attn.q_proj`. */
  weights: Map<string, LoraWeights>;
}

/** The LoRA scaling factor PEFT uses. */
export function loraScale(r: number, alpha: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Splits `model.layers.<n>.<self_attn|mlp>.<proj>` into its layer and projection; null for other modules. */
export function parseProjectionModule(module: string): { layer: number; proj: Projection } | null {
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(module);
  if (!m) return null;
  const proj = ALL_PROJECTIONS.find((p) => PROJECTIONS[p] === m[2]);
  return proj ? { layer: Number(m[1]), proj } : null;
}

const PEFT_PREFIX = "base_model.model.";
// PEFT saves `<module>.lora_A.weight`; some tools keep the adapter name (`.lora_A.default.weight`).
const LORA_KEY = /^base_model\.model\.(.+)\.lora_(A|B)(?:\.default)?\.weight$/;

function unsupported(what: string, file: string, hint: string): TuneforgeError {
  return new TuneforgeError(`this adapter uses ${what}, which tuneforge does not support`, { file, hint });
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

/** Parses and validates adapter_config.json. */
function parseAdapterConfig(raw: Record<string, unknown>, file: string): LoraAdapterConfig {
  if (raw.peft_type !== "LORA") {
    throw new TuneforgeError(
      `peft_type is ${JSON.stringify(raw.peft_type)}; tuneforge reads LoRA adapters only`,
      {
        file,
        key: "peft_type",
        hint: 'use an adapter trained with LoRA (peft_type "LORA")',
      },
    );
  }
  const r = raw.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r <= 0) {
    throw new TuneforgeError(`r is ${JSON.stringify(r)}; expected a positive integer`, {
      file,
      key: "r",
      hint: "set r to the LoRA rank, e.g. 8",
    });
  }
  const alpha = raw.lora_alpha ?? 8; // LoraConfig's default, which PEFT applies when the key is absent
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw new TuneforgeError(`lora_alpha is ${JSON.stringify(alpha)}; expected a number`, {
      file,
      key: "lora_alpha",
      hint: "set lora_alpha to a number, e.g. 2 * r",
    });
  }
  if (raw.use_dora === true) {
    throw unsupported("DoRA (use_dora: true)", file, "train a plain LoRA adapter (use_dora: false)");
  }
  if (!isEmpty(raw.rank_pattern)) {
    throw unsupported(
      "per-module ranks (rank_pattern)",
      file,
      "train with one r for every module (rank_pattern: {})",
    );
  }
  if (!isEmpty(raw.alpha_pattern)) {
    throw unsupported(
      "per-module alphas (alpha_pattern)",
      file,
      "train with one lora_alpha for every module (alpha_pattern: {})",
    );
  }
  if (raw.bias !== undefined && raw.bias !== null && raw.bias !== "none") {
    throw unsupported(`trained biases (bias: ${JSON.stringify(raw.bias)})`, file, 'train with bias: "none"');
  }
  if (raw.lora_bias === true) {
    throw unsupported("a LoRA bias (lora_bias: true)", file, "train with lora_bias: false");
  }
  if (raw.fan_in_fan_out === true) {
    throw unsupported(
      "fan_in_fan_out (GPT-2 Conv1D layout)",
      file,
      "tuneforge trains Qwen/Llama/Mistral linear layers",
    );
  }
  const dropout = raw.lora_dropout ?? 0;
  if (typeof dropout !== "number") {
    throw new TuneforgeError(`lora_dropout is ${JSON.stringify(dropout)}; expected a number`, {
      file,
      key: "lora_dropout",
      hint: "set lora_dropout to e.g. 0.05",
    });
  }
  const tm = raw.target_modules;
  let targetModules: string[];
  if (typeof tm === "string") targetModules = [tm];
  else if (Array.isArray(tm) && tm.every((t) => typeof t === "string")) targetModules = tm as string[];
  else {
    throw new TuneforgeError(`target_modules is ${JSON.stringify(tm)}; expected a list of module names`, {
      file,
      key: "target_modules",
      hint: 'list the projections, e.g. ["q_proj", "k_proj", "v_proj", "o_proj"]',
    });
  }
  const useRslora = raw.use_rslora === true;
  const base = raw.base_model_name_or_path;
  return {
    r,
    alpha,
    dropout,
    targetModules,
    useRslora,
    baseModel: typeof base === "string" && base !== "" ? base : null,
    scale: loraScale(r, alpha, useRslora),
  };
}

/** Whether `module` is matched by the config's target_modules (a list matches by name suffix, as in PEFT). */
function isTargeted(module: string, targets: string[], rawTargets: unknown): boolean {
  if (typeof rawTargets === "string") {
    // A regex (full match) or "all-linear"; PEFT resolves these itself, so trust the saved weights.
    if (rawTargets === "all-linear") return true;
    try {
      return new RegExp(`^(?:${rawTargets})$`).test(module);
    } catch {
      return true; // a Python-only regex: JS cannot check it, so the saved weights decide
    }
  }
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/** Reads a PEFT LoRA adapter folder. Weights come back as float32 whatever their stored dtype. */
export function readAdapter(dir: string): LoraAdapter {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(configPath)) {
    throw new TuneforgeError(`no ${ADAPTER_CONFIG_FILE}; this is not a PEFT adapter folder`, {
      file: dir,
      hint: "point at the folder that holds adapter_config.json and adapter_model.safetensors",
    });
  }
  const raw = readJsonFile(configPath, "adapter config");
  const config = parseAdapterConfig(raw, configPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const hasBin = existsSync(join(dir, "adapter_model.bin"));
    throw new TuneforgeError(`no ${ADAPTER_WEIGHTS_FILE}${hasBin ? " (only adapter_model.bin)" : ""}`, {
      file: dir,
      hint: hasBin
        ? "re-save the adapter with safetensors: model.save_pretrained(dir, safe_serialization=True)"
        : "the adapter folder is incomplete; copy adapter_model.safetensors next to adapter_config.json",
    });
  }

  let file: SafetensorsFile;
  try {
    file = SafetensorsFile.open(weightsPath);
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new TuneforgeError(e.message, {
        file: weightsPath,
        hint: "the file is damaged; re-save or re-download the adapter",
        cause: e,
      });
    }
    throw e;
  }
  try {
    const parts = new Map<string, { A?: string; B?: string }>();
    for (const key of file.tensors.keys()) {
      const m = LORA_KEY.exec(key);
      if (!m) {
        if (key.includes("modules_to_save")) {
          throw unsupported(
            `modules_to_save weights ("${key}")`,
            weightsPath,
            "train without modules_to_save (LoRA weights only)",
          );
        }
        if (key.includes("lora_magnitude_vector")) {
          throw unsupported(`DoRA ("${key}")`, weightsPath, "train a plain LoRA adapter (use_dora: false)");
        }
        if (key.includes("lora_embedding")) {
          throw unsupported(
            `LoRA on embeddings ("${key}")`,
            weightsPath,
            "target the attention/MLP projections only",
          );
        }
        throw new TuneforgeError(
          `unexpected tensor "${key}" (expected ${PEFT_PREFIX}<module>.lora_A/lora_B.weight)`,
          {
            file: weightsPath,
            hint: "tuneforge reads plain PEFT LoRA adapters; re-save the adapter with PEFT",
          },
        );
      }
      const [, module, which] = m;
      if (!parseProjectionModule(module)) {
        throw unsupported(
          `LoRA on "${module}"`,
          weightsPath,
          `tuneforge applies LoRA to the projections ${ALL_PROJECTIONS.join(", ")} of each layer only`,
        );
      }
      if (!isTargeted(module, config.targetModules, raw.target_modules)) {
        throw new TuneforgeError(
          `has weights for "${module}", which target_modules (${config.targetModules.join(", ")}) does not list`,
          {
            file: weightsPath,
            hint: "the adapter config and weights do not belong together; re-save the adapter with PEFT",
          },
        );
      }
      const entry = parts.get(module) ?? {};
      if (entry[which as "A" | "B"]) {
        throw new TuneforgeError(`"${module}" has two lora_${which} tensors`, {
          file: weightsPath,
          hint: "re-save the adapter with PEFT",
        });
      }
      entry[which as "A" | "B"] = key;
      parts.set(module, entry);
    }
    if (parts.size === 0) {
      throw new TuneforgeError("holds no LoRA weights", {
        file: weightsPath,
        hint: "re-save the adapter with PEFT",
      });
    }

    const weights = new Map<string, LoraWeights>();
    for (const [module, { A, B }] of parts) {
      if (!A || !B) {
        throw new TuneforgeError(`"${module}" has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`, {
          file: weightsPath,
          hint: "the adapter is incomplete; re-save it with PEFT",
        });
      }
      const aShape = file.info(A).shape;
      const bShape = file.info(B).shape;
      if (aShape.length !== 2 || bShape.length !== 2 || aShape[0] !== config.r || bShape[1] !== config.r) {
        throw new TuneforgeError(
          `"${module}": lora_A is [${aShape}] and lora_B is [${bShape}]; with r ${config.r} expected A [${config.r}, in] and B [out, ${config.r}]`,
          {
            file: weightsPath,
            hint: "adapter_config.json's r must match the saved weights; re-save the adapter with PEFT",
          },
        );
      }
      const read = (key: string) => {
        try {
          return file.readF32(key);
        } catch (e) {
          if (e instanceof SafetensorsError)
            throw new TuneforgeError(e.message, {
              file: weightsPath,
              hint: "save the adapter in float32, float16 or bfloat16",
              cause: e,
            });
          throw e;
        }
      };
      weights.set(module, {
        A: read(A),
        aShape: [aShape[0], aShape[1]],
        B: read(B),
        bShape: [bShape[0], bShape[1]],
      });
    }
    return { config, weights };
  } finally {
    file.close();
  }
}

/**
 * Throws when the adapter cannot be applied to a model with `modelConfig` (a layer it lacks or a projection
 * of another size): the usual cause is an adapter trained for another base model.
 */
export function checkAdapterMatchesModel(adapter: LoraAdapter, modelConfig: ModelConfig): void {
  const trainedFor = adapter.config.baseModel ?? "(not recorded)";
  const mismatch = (detail: string) =>
    new TuneforgeError(
      `adapter was trained for another base model (base_model_name_or_path: ${trainedFor}): ${detail}`,
      {
        hint: `load the adapter on the model it was trained for (${trainedFor}), or train a new adapter for this model`,
      },
    );
  for (const [module, w] of adapter.weights) {
    const parsed = parseProjectionModule(module);
    if (!parsed) throw mismatch(`"${module}" is not a projection of a decoder layer`);
    if (parsed.layer >= modelConfig.numLayers) {
      throw mismatch(`it has weights for "${module}" but the model has ${modelConfig.numLayers} layers`);
    }
    const [out, inp] = projectionShape(modelConfig, parsed.proj);
    if (w.aShape[1] !== inp || w.bShape[0] !== out) {
      throw mismatch(
        `"${module}" lora_A is [${w.aShape}] and lora_B is [${w.bShape}], but the model's ${parsed.proj} is ` +
          `[${out}, ${inp}] (expected lora_A [${w.aShape[0]}, ${inp}] and lora_B [${out}, ${w.bShape[1]}])`,
      );
    }
  }
}

/** Writes a PEFT adapter folder (config + float32 weights) that `PeftModel.from_pretrained` loads. */
export function writeAdapter(
  dir: string,
  adapter: { config: LoraAdapterConfig; weights: Map<string, LoraWeights>; baseModel?: string | null },
): void {
  const { config, weights } = adapter;
  if (weights.size === 0)
    throw new TuneforgeError("refusing to write an adapter with no LoRA weights", { file: dir });
  const tensors: TensorToWrite[] = [];
  for (const [module, w] of weights) {
    const r = config.r;
    if (
      w.aShape[0] !== r ||
      w.bShape[1] !== r ||
      w.A.length !== w.aShape[0] * w.aShape[1] ||
      w.B.length !== w.bShape[0] * w.bShape[1]
    ) {
      throw new TuneforgeError(
        `"${module}": lora_A [${w.aShape}] (${w.A.length} values) and lora_B [${w.bShape}] (${w.B.length} values) do not fit r ${r}`,
        { file: dir, hint: "this is a bug in the caller; the LoRA weights and their shapes disagree" },
      );
    }
    tensors.push({
      name: `${PEFT_PREFIX}${module}.lora_A.weight`,
      dtype: "F32",
      shape: [...w.aShape],
      data: w.A,
    });
    tensors.push({
      name: `${PEFT_PREFIX}${module}.lora_B.weight`,
      dtype: "F32",
      shape: [...w.bShape],
      data: w.B,
    });
  }
  const baseModel = adapter.baseModel !== undefined ? adapter.baseModel : config.baseModel;
  // The keys PEFT has written since 0.10 (older PEFT rejects unknown keys, newer fills in missing ones).
  const json = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: config.targetModules,
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: config.useRslora,
  };
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), json);
}

export interface InitLoraOptions {
  r: number;
  /** Projections to adapt in every layer. */
  targets: readonly Projection[];
  seed: number;
  /** Default 2 * r. */
  alpha?: number;
  /** Default 0. */
  dropout?: number;
  useRslora?: boolean;
  baseModel?: string | null;
}

/**
 * A fresh adapter as PEFT makes it: B = 0 (so training starts from the base model exactly) and A drawn from
 * kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)), from the project's seeded PRNG.
 */
export function initLoraWeights(modelConfig: ModelConfig, options: InitLoraOptions): LoraAdapter {
  const { r, targets, seed } = options;
  if (!Number.isInteger(r) || r <= 0) {
    throw new TuneforgeError(`LoRA rank ${r} is not a positive integer`, {
      hint: "set the LoRA r to e.g. 8 or 16",
    });
  }
  if (targets.length === 0) {
    throw new TuneforgeError("no LoRA target modules given", {
      hint: `choose among ${ALL_PROJECTIONS.join(", ")}`,
    });
  }
  for (const t of targets) {
    if (!ALL_PROJECTIONS.includes(t)) {
      throw new TuneforgeError(`LoRA target "${t}" is not a projection tuneforge can adapt`, {
        hint: `choose among ${ALL_PROJECTIONS.join(", ")}`,
      });
    }
  }
  const uniqueTargets = [...new Set(targets)];
  const alpha = options.alpha ?? 2 * r;
  const useRslora = options.useRslora ?? false;
  const rng = createRng(seed);
  const weights = new Map<string, LoraWeights>();
  for (let layer = 0; layer < modelConfig.numLayers; layer++) {
    for (const proj of uniqueTargets) {
      const [out, inp] = projectionShape(modelConfig, proj);
      const bound = 1 / Math.sqrt(inp);
      const A = new Float32Array(r * inp);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.next() - 1) * bound;
      weights.set(projectionModule(layer, proj), {
        A,
        aShape: [r, inp],
        B: new Float32Array(out * r),
        bShape: [out, r],
      });
    }
  }
  return {
    config: {
      r,
      alpha,
      dropout: options.dropout ?? 0,
      targetModules: uniqueTargets,
      useRslora,
      baseModel: options.baseModel ?? null,
      scale: loraScale(r, alpha, useRslora),
    },
    weights,
  };
}
