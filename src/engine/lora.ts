// LoRA bookkeeping on the TS side: module shapes and the mapping between the
// engine's flat parameter names (`<module>.lora_A.weight`) and per-module {A, B} pairs.
import { TuneforgeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { ALL_PROJECTIONS, projectionModule, projectionShape, type Projection } from "../model/layout.js";
import type { LoraPair } from "./types.js";

export interface LoraModule {
  module: string;
  proj: Projection;
  /** [out, in] of the base projection. */
  shape: [number, number];
}

/** Every LoRA module for these targets, layer by layer. */
export function loraModules(config: ModelConfig, targets: readonly Projection[]): LoraModule[] {
  const out: LoraModule[] = [];
  for (let l = 0; l < config.numLayers; l++)
    for (const proj of ALL_PROJECTIONS)
      if (targets.includes(proj))
        out.push({ module: projectionModule(l, proj), proj, shape: projectionShape(config, proj) });
  return out;
}

export function checkLoraPair(m: LoraModule, r: number, pair: LoraPair): void {
  const [out, inp] = m.shape;
  if (pair.A.length !== r * inp || pair.B.length !== out * r) {
    throw new TuneforgeError(
      `LoRA weights for ${m.module} have ${pair.A.length}/${pair.B.length} values, expected ` +
        `A [${r}, ${inp}] and B [${out}, ${r}]`,
      { key: "lora.r", hint: "the adapter's rank and target modules must match the LoRA settings" },
    );
  }
}

/** Flat engine names -> per-module pairs. */
export function toPairs(flat: Record<string, Float32Array>): Map<string, LoraPair> {
  const out = new Map<string, LoraPair>();
  for (const [name, value] of Object.entries(flat)) {
    const m = /^(.*)\.lora_([AB])\.weight$/.exec(name);
    if (!m) continue;
    const pair = out.get(m[1]) ?? { A: new Float32Array(0), B: new Float32Array(0) };
    pair[m[2] as "A" | "B"] = value;
    out.set(m[1], pair);
  }
  return out;
}

/** Per-module pairs -> flat engine names. */
export function fromPairs(pairs: Map<string, LoraPair>): Record<string, Float32Array> {
  const flat: Record<string, Float32Array> = {};
  for (const [module, { A, B }] of pairs) {
    flat[`${module}.lora_A.weight`] = A;
    flat[`${module}.lora_B.weight`] = B;
  }
  return flat;
}
