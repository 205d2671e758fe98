// Which dtype the frozen base weights are held in: `training.bf16` (auto | true | false) resolved against the
// device and the kind of fine-tuning. bf16 halves the base weights' memory (fp16 on GPUs without bf16); LoRA
// weights, gradients and AdamW state stay fp32 either way.
import { TuneforgeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { expectedTensors } from "../model/layout.js";
import { cudaInfo, type CudaInfo } from "./native.js";
import type { EngineDevice } from "./device.js";

/** f16: fp16 base weights, for GPUs without bf16 (compute capability below 8.0, such as Colab's T4). */
export type WeightsDtype = "f32" | "bf16" | "f16";

/** Bytes of the model's weights as the engine holds them: matrices in `dtype`, norms and biases in f32. */
export function weightBytes(config: ModelConfig, dtype: WeightsDtype): number {
  return expectedTensors(config).reduce((n, t) => {
    const count = t.shape.reduce((a, b) => a * b, 1);
    return n + count * (dtype !== "f32" && t.shape.length === 2 ? 2 : 4);
  }, 0);
}

/**
 * Whether the engine saves the large activations for backward in bf16: bf16 mode on a GPU, as autocast does
 * (native/engine/model.cc), unless TUNEFORGE_CUDA_BF16_ACTIVATIONS=0 (read by the engine too). The CPU keeps them in
 * fp32 in every mode.
 */
export function keepsBf16Activations(device: EngineDevice, weights: WeightsDtype): boolean {
  return device === "cuda" && weights === "bf16" && process.env.TUNEFORGE_CUDA_BF16_ACTIVATIONS !== "0";
}

/** Bytes of the embedding table as the engine holds it (a matrix: 2 per value in bf16 or f16). */
export function embeddingTableBytes(config: ModelConfig, dtype: WeightsDtype): number {
  return config.vocabSize * config.hiddenSize * (dtype === "f32" ? 4 : 2);
}

/**
 * Whether the engine keeps the embedding table in pinned host memory, off the GPU (native/engine/model.cc
 * Model::embedding_table): on a GPU, for an untied model whose table is frozen (LoRA or inference; full fine-tuning
 * moves it to the device), unless TUNEFORGE_CUDA_HOST_EMBEDDING=0 (read by the engine too). Only the gather of a step's
 * rows reads it. A loaded model says where its table is: memory().hostBytes.
 */
export function embeddingOnHost(
  config: ModelConfig,
  device: EngineDevice,
  finetuning: "lora" | "full" | "none",
): boolean {
  return (
    device === "cuda" &&
    !config.tieWordEmbeddings &&
    finetuning !== "full" &&
    process.env.TUNEFORGE_CUDA_HOST_EMBEDDING !== "0"
  );
}

/**
 * How the engine lays out training memory on a device, as the memory estimate takes it (MemoryInput): bf16 activation
 * sets (keepsBf16Activations), LoRA dropout drawn inside the LoRA kernels with no mask buffers (a GPU:
 * Backend::fused_lora), and the embedding table in host memory (embeddingOnHost).
 */
export function trainingLayout(
  device: EngineDevice,
  weights: WeightsDtype,
  config: ModelConfig,
  finetuning: "lora" | "full",
): { bf16Activations: boolean; fusedLora: boolean; embeddingOnHost: boolean } {
  return {
    bf16Activations: keepsBf16Activations(device, weights),
    fusedLora: device === "cuda",
    embeddingOnHost: embeddingOnHost(config, device, finetuning),
  };
}

/** The KV cache's dtype on a device: bf16 in bf16 mode on a GPU (Model::make_cache), else fp32. */
export function kvCacheBytes(device: EngineDevice, weights: WeightsDtype): number {
  return device === "cuda" && weights === "bf16" ? 2 : 4;
}

export type Bf16Choice = "auto" | boolean;

export interface WeightsChoice {
  weights: WeightsDtype;
  /** Why, for the run log. */
  reason: string;
}

/** bf16 tensor-core products need compute capability 8.0 (Ampere) or newer. */
function gpuHasBf16(info: CudaInfo): boolean {
  return Number.parseFloat(info.computeCapability) >= 8;
}

/**
 * "auto": bf16 on a GPU that supports it, fp16 on one that does not (compute capability below 8.0: the same memory,
 * tensor cores since Volta), f32 on the CPU (where bf16 saves memory but no time) and for full fine-tuning (which
 * updates the base weights in place, so they must be fp32). true: bf16, refused for full fine-tuning and on GPUs
 * without bf16. false: f32. `key` names the config key in errors.
 */
export function resolveWeightsDtype(
  choice: Bf16Choice,
  device: EngineDevice,
  options: { fullFinetune?: boolean; key?: string; info?: CudaInfo } = {},
): WeightsChoice {
  const key = options.key ?? "training.bf16";
  if (choice === false) return { weights: "f32", reason: `${key} is false` };
  const info = device === "cuda" ? (options.info ?? cudaInfo()) : undefined;
  if (choice === "auto") {
    if (device === "cpu") return { weights: "f32", reason: `${key} auto on the cpu` };
    if (options.fullFinetune) return { weights: "f32", reason: `${key} auto with full fine-tuning` };
    if (!gpuHasBf16(info!)) {
      return {
        weights: "f16",
        reason: `${key} auto, the GPU (compute ${info!.computeCapability}) has no bf16: fp16 instead`,
      };
    }
    return { weights: "bf16", reason: `${key} auto on cuda (compute ${info!.computeCapability})` };
  }
  if (options.fullFinetune) {
    throw new TuneforgeError("bf16 base weights cannot be fully fine-tuned", {
      key,
      hint: 'full fine-tuning updates every base weight in fp32: set bf16 to false or "auto", or use LoRA',
    });
  }
  if (info && !gpuHasBf16(info)) {
    throw new TuneforgeError(
      `this GPU (${info.name}, compute ${info.computeCapability}) has no bf16 support`,
      {
        key,
        hint:
          'bf16 needs compute capability 8.0 or newer (A100, RTX 30xx, H100); "auto" holds the base in fp16 on ' +
          "this GPU, false in f32",
      },
    );
  }
  return { weights: "bf16", reason: `${key} is true` };
}
