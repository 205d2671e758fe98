// Which device the engine runs on: the user's choice (`training.device`, `--device`) resolved against what the
// addon was built with and what the machine has.
import { TuneforgeError } from "../errors.js";
import { cudaInfo, type CudaInfo } from "./native.js";

export type DeviceChoice = "auto" | "cpu" | "cuda";
export type EngineDevice = "cpu" | "cuda";

export const DEVICE_CHOICES: readonly DeviceChoice[] = ["auto", "cpu", "cuda"];

const BUILD_HINT =
  "build the addon on a machine with the CUDA toolkit and cuBLAS (`npm run build:native` finds them under " +
  "CUDA_HOME, or CUDA_CUBLAS_INCLUDE / CUDA_CUBLAS_LIB; on a GPU machine without node-gyp: " +
  "native/build-standalone.sh), or use device cpu or auto";

/**
 * "cpu" and "cuda" as asked ("cuda" only when this addon has the CUDA backend and a GPU answers), "auto": cuda
 * when available, else cpu. `key` names the config key in errors. `info` is the GPU description (tests pass one).
 */
export function resolveDevice(choice: string, options: { key?: string; info?: CudaInfo } = {}): EngineDevice {
  if (!(DEVICE_CHOICES as readonly string[]).includes(choice)) {
    throw new TuneforgeError(`unknown device "${choice}"`, {
      key: options.key,
      hint: `use one of ${DEVICE_CHOICES.join(", ")}`,
    });
  }
  if (choice === "cpu") return "cpu";
  const info = options.info ?? cudaInfo();
  if (info.available) return "cuda";
  if (choice === "auto") return "cpu";
  if (!info.built) {
    throw new TuneforgeError(
      `device "cuda" was asked for, but ${info.reason || "this engine has no CUDA backend"}`,
      {
        key: options.key,
        hint: BUILD_HINT,
      },
    );
  }
  throw new TuneforgeError(
    `device "cuda" was asked for, but no GPU can be used: ${info.reason || "no CUDA device answered"}`,
    {
      key: options.key,
      hint: "check `nvidia-smi` and CUDA_VISIBLE_DEVICES (and the driver), or use device cpu or auto",
    },
  );
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/** For the run log: "cpu", or for a GPU "cuda, <name> (compute <cc>, <free> GiB free of <total> GiB)". */
export function describeDevice(device: EngineDevice, info?: CudaInfo): string {
  if (device === "cpu") return "cpu";
  const i = info ?? cudaInfo();
  return `cuda, ${i.name} (compute ${i.computeCapability}, ${gib(i.freeBytes)} free of ${gib(i.totalBytes)})`;
}
