// Public API of the native training engine.
export { EngineModel, type LoadOptions } from "./model.js";
export { loadNative } from "./native.js";
export {
  resolveDevice,
  describeDevice,
  DEVICE_CHOICES,
  type DeviceChoice,
  type EngineDevice,
} from "./device.js";
export { loraModules, type LoraModule } from "./lora.js";
export type {
  Batch,
  LoraSettings,
  LoraPair,
  LossOutput,
  AdamWSettings,
  GenerateSettings,
  GenerateOutput,
  MemoryStats,
  OptimizerState,
} from "./types.js";
export {
  keepsBf16Activations,
  trainingLayout,
  embeddingOnHost,
  kvCacheBytes,
  resolveWeightsDtype,
  type WeightsDtype,
  type Bf16Choice,
  type WeightsChoice,
} from "./precision.js";
export { type RandomModelOptions } from "./model.js";
export {
  setProfiling,
  takeProfile,
  copyBandwidth,
  deviceSynchronize,
  resetMemoryPeak,
  type ProfileRow,
  type ProfileReport,
  type CopyBandwidth,
} from "./bench-support.js";
