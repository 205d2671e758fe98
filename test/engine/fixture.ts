// Loads a parity fixture (model + PEFT adapter + expected values) into the engine for the tests.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineModel, type LoraPair, type WeightsDtype } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { SafetensorsFile } from "../../src/model/safetensors.js";
import { fixtureDir } from "../helpers/fixtures.js";

export interface Fixture {
  dir: string;
  model: EngineModel;
  expected: SafetensorsFile;
  meta: {
    loss: number;
    loss_trajectory_10_steps_same_batch: number[];
    adamw: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  };
  adapter: Map<string, LoraPair>;
  rows: number;
  T: number;
}

export function readAdapter(dir: string): Map<string, LoraPair> {
  const f = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
  const out = new Map<string, LoraPair>();
  for (const name of f.tensors.keys()) {
    const m = /^base_model\.model\.(.*)\.lora_([AB])\.weight$/.exec(name);
    if (!m) continue;
    const pair = out.get(m[1]) ?? { A: new Float32Array(0), B: new Float32Array(0) };
    pair[m[2] as "A" | "B"] = f.readF32(name);
    out.set(m[1], pair);
  }
  f.close();
  return out;
}

export function openFixture(
  shape: string,
  arch: string,
  device: "cpu" | "cuda" = "cpu",
  weights: WeightsDtype = "f32",
): Fixture {
  const dir = fixtureDir(shape, arch);
  const model = EngineModel.load(join(dir, "model"), { threads: 1, device, weights });
  const ac = JSON.parse(readFileSync(join(dir, "adapter", "adapter_config.json"), "utf8"));
  const adapter = readAdapter(join(dir, "adapter"));
  model.setLora({
    r: ac.r,
    alpha: ac.lora_alpha,
    useRslora: ac.use_rslora,
    dropout: 0,
    targets: ALL_PROJECTIONS.filter((p) => ac.target_modules.includes(p)),
    weights: adapter,
  });
  const expected = SafetensorsFile.open(join(dir, "expected.safetensors"));
  const meta = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
  const [rows, T] = expected.info("input_ids").shape;
  return { dir, model, expected, meta, adapter, rows, T };
}

export function batchOf(fx: Fixture) {
  return {
    rows: fx.rows,
    inputIds: fx.expected.readI32("input_ids"),
    attentionMask: fx.expected.readI32("attention_mask"),
    labels: fx.expected.readI32("labels"),
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  const r = Math.sqrt(num / den);
  return Number.isNaN(r) ? Infinity : r;
}
