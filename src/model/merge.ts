// Merging a LoRA adapter into its base model: W' = W + scale * B @ A for every adapted projection, written
// as a plain HF model folder (same dtype and sharding as the base) that transformers and vLLM load
// without PEFT. Tensors stream through one at a time, so memory stays at about one tensor whatever the
// model size.
import { existsSync, mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { loadModelConfig } from "./config.js";
import {
  Checkpoint,
  encodeFloats,
  toFloat32,
  writeSafetensorsStreaming,
  type TensorEntry,
} from "./safetensors.js";
import { checkAdapterMatchesModel, readAdapter, type LoraWeights } from "./peft.js";
import { copyModelSideFiles } from "./folder.js";

export interface MergeOptions {
  /** The base model folder (config.json + safetensors). */
  modelDir: string;
  /** The PEFT adapter folder. */
  adapterDir: string;
  /** Where the merged model folder is written (created if missing). */
  outDir: string;
  /** Called after each tensor is written. */
  onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface MergeResult {
  outDir: string;
  /** Number of projections that received a LoRA update. */
  mergedModules: number;
  /** Number of tensors written (every tensor of the base). */
  tensors: number;
  /** The safetensors files written, relative to outDir. */
  weightFiles: string[];
}

/**
 * W + scale * B @ A for one projection, accumulated in float64 and rounded once to float32.
 * `w` is [out, in] row-major; returns a new array.
 */
export function mergeLoraWeight(
  w: Float32Array,
  shape: readonly [number, number],
  lora: LoraWeights,
  scale: number,
): Float32Array {
  const [out, inp] = shape;
  const r = lora.aShape[0];
  if (lora.aShape[1] !== inp || lora.bShape[0] !== out || lora.bShape[1] !== r || w.length !== out * inp) {
    throw new TuneforgeError(
      `cannot merge LoRA A [${lora.aShape}] and B [${lora.bShape}] into a weight of shape [${shape}]`,
      { hint: "the adapter was trained for another base model" },
    );
  }
  const { A, B } = lora;
  const merged = new Float32Array(out * inp);
  const row = new Float64Array(inp);
  for (let o = 0; o < out; o++) {
    const wOff = o * inp;
    for (let i = 0; i < inp; i++) row[i] = w[wOff + i];
    for (let k = 0; k < r; k++) {
      const c = scale * B[o * r + k];
      if (c === 0) continue;
      const aOff = k * inp;
      for (let i = 0; i < inp; i++) row[i] += c * A[aOff + i];
    }
    for (let i = 0; i < inp; i++) merged[wOff + i] = row[i];
  }
  return merged;
}

/** Merges the adapter in `adapterDir` into the model in `modelDir` and writes the result to `outDir`. */
export function mergeAdapter(options: MergeOptions): MergeResult {
  const { modelDir, adapterDir, outDir, onProgress } = options;
  if (resolve(outDir) === resolve(modelDir)) {
    throw new TuneforgeError("the merged model cannot be written over its base model", {
      file: outDir,
      hint: "choose another output folder",
    });
  }
  const modelConfig = loadModelConfig(modelDir);
  const adapter = readAdapter(adapterDir);
  checkAdapterMatchesModel(adapter, modelConfig);

  const ck = Checkpoint.open(modelDir);
  try {
    for (const module of adapter.weights.keys()) {
      if (!ck.has(`${module}.weight`)) {
        throw new TuneforgeError(
          `the adapter targets "${module}" but the checkpoint has no "${module}.weight"`,
          {
            file: modelDir,
            hint: "the checkpoint is incomplete or the adapter was trained for another base model",
          },
        );
      }
    }
    // Keep the base's file layout: one file stays one file, shards stay the same shards.
    const shards = new Map<string, TensorEntry[]>();
    for (const name of ck.names()) {
      const info = ck.info(name);
      const shard = basename(info.file);
      const list = shards.get(shard) ?? [];
      list.push({ name, dtype: info.dtype, shape: info.shape, byteLength: info.byteLength });
      shards.set(shard, list);
    }
    const total = ck.names().length;
    let done = 0;
    const produce = (name: string): Uint8Array => {
      const raw = ck.readRaw(name);
      const module = name.endsWith(".weight") ? name.slice(0, -".weight".length) : "";
      const lora = adapter.weights.get(module);
      if (!lora) return raw;
      const info = ck.info(name);
      const w = toFloat32(raw, info.dtype, `${info.file}: "${name}"`);
      const merged = mergeLoraWeight(w, [info.shape[0], info.shape[1]], lora, adapter.config.scale);
      return encodeFloats(merged, info.dtype, `${info.file}: "${name}"`);
    };

    mkdirSync(outDir, { recursive: true });
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    const weightFiles = [...shards.keys()].sort();
    for (const shard of weightFiles) {
      const entries = shards.get(shard)!;
      for (const e of entries) weightMap[e.name] = shard;
      totalSize += writeSafetensorsStreaming(
        join(outDir, shard),
        entries,
        produce,
        { format: "pt" },
        (name) => onProgress?.(++done, total, name),
      );
    }
    if (existsSync(join(modelDir, "model.safetensors.index.json"))) {
      const sortedMap = Object.fromEntries(
        Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
      writeJsonAtomic(join(outDir, "model.safetensors.index.json"), {
        metadata: { total_size: totalSize },
        weight_map: sortedMap,
      });
    }
    copyModelSideFiles(modelDir, outDir);
    return { outDir, mergedModules: adapter.weights.size, tensors: total, weightFiles };
  } finally {
    ck.close();
  }
}
