// `tuneforge compare`: the same texts through several adapters of one base model, side by side. The base model
// is loaded once and the adapters are switched with setLora between runs (their ranks may differ).
import type { DeviceChoice } from "../engine/index.js";
import { TuneforgeError } from "../errors.js";
import { applyAdapter, loadModel, readAdapterFor, type GenerationOptions } from "./generate.js";
import { translateLoaded, type PromptSettings } from "./translate.js";

export interface CompareOptions extends PromptSettings, GenerationOptions {
  modelDir: string;
  adapterDirs: readonly string[];
  texts: readonly string[];
  threads?: number;
  /** Where the engine runs: "cpu" (default), "cuda" or "auto" (the GPU when there is one). */
  device?: DeviceChoice;
}

export interface CompareRow {
  text: string;
  /** One output per adapter, in `adapters` order. */
  outputs: string[];
}

export interface CompareResult {
  adapters: string[];
  rows: CompareRow[];
}

export async function compare(options: CompareOptions): Promise<CompareResult> {
  const { adapterDirs, texts } = options;
  if (adapterDirs.length === 0) {
    throw new TuneforgeError("no adapter to compare", {
      hint: "pass one or more adapter folders, e.g. models/translation models/extraction",
    });
  }
  const loaded = await loadModel(options.modelDir, { threads: options.threads, device: options.device });
  try {
    // Check every adapter against the base before generating anything.
    const adapters = adapterDirs.map((dir) => readAdapterFor(dir, loaded.model));
    const perAdapter = adapters.map((adapter, a) => {
      applyAdapter(loaded.model, adapter);
      return translateLoaded(loaded, adapterDirs[a], texts, options);
    });
    return {
      adapters: [...adapterDirs],
      rows: texts.map((text, i) => ({ text, outputs: perAdapter.map((outs) => outs[i]) })),
    };
  } finally {
    loaded.model.dispose();
  }
}
