// Saving what training produced: a PEFT adapter folder from the engine's LoRA weights, or (full fine-tuning)
// a complete HF model folder in the base model's dtype.
import { join } from "node:path";
import type { EngineModel } from "../engine/model.js";
import { loraModules } from "../engine/lora.js";
import type { LoraPair } from "../engine/types.js";
import { copyModelSideFiles } from "../model/folder.js";
import type { Projection } from "../model/layout.js";
import { loraScale, writeAdapter, type LoraAdapterConfig, type LoraWeights } from "../model/peft.js";
import { Checkpoint, writeSafetensors, type DType, type TensorToWrite } from "../model/safetensors.js";

export interface LoraSpec {
  r: number;
  alpha: number;
  dropout: number;
  targets: Projection[];
  useRslora: boolean;
}

export function adapterConfigOf(lora: LoraSpec, baseModel: string): LoraAdapterConfig {
  return {
    r: lora.r,
    alpha: lora.alpha,
    dropout: lora.dropout,
    targetModules: [...lora.targets],
    useRslora: lora.useRslora,
    baseModel,
    scale: loraScale(lora.r, lora.alpha, lora.useRslora),
  };
}

/** Writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) from LoRA pairs. */
export function saveAdapter(
  dir: string,
  model: EngineModel,
  lora: LoraSpec,
  baseModel: string,
  pairs: Map<string, LoraPair> = model.loraWeights(),
): void {
  const weights = new Map<string, LoraWeights>();
  for (const m of loraModules(model.config, lora.targets)) {
    const p = pairs.get(m.module);
    if (!p) throw new Error(`internal: no LoRA weights for ${m.module}`);
    weights.set(m.module, { A: p.A, aShape: [lora.r, m.shape[1]], B: p.B, bShape: [m.shape[0], lora.r] });
  }
  writeAdapter(dir, { config: adapterConfigOf(lora, baseModel), weights });
}

/**
 * Writes a full HF model folder: every weight (the trained ones from `values`) in the dtype the base stored it
 * in, plus the base's config and tokenizer files.
 */
export function saveFullModel(dir: string, baseDir: string, values: Map<string, Float32Array>): void {
  const base = Checkpoint.open(baseDir);
  const tensors: TensorToWrite[] = [];
  try {
    for (const name of base.names()) {
      const info = base.info(name);
      const trained = values.get(name);
      if (!trained) {
        tensors.push({ name, dtype: info.dtype, shape: info.shape, data: base.readRaw(name) });
        continue;
      }
      const dtype: DType = ["F32", "BF16", "F16"].includes(info.dtype) ? info.dtype : "F32";
      tensors.push({ name, dtype, shape: info.shape, data: trained });
    }
  } finally {
    base.close();
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  copyModelSideFiles(baseDir, dir);
}
