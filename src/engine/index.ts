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
