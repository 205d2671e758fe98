import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModelConfig } from "../../src/model/config.js";
import { projectionShape } from "../../src/model/layout.js";
import { SafetensorsFile, writeSafetensors } from "../../src/model/safetensors.js";
import { TuneforgeError } from "../../src/errors.js";
import {
  checkAdapterMatchesModel,
  initLoraWeights,
  readAdapter,
  writeAdapter,
  type LoraAdapter,
} from "../../src/model/peft.js";
import { ARCHS, SHAPE_SETS, fixtureDir } from "../helpers/fixtures.js";

const tmp = () => mkdtempSync(join(tmpdir(), "tf-peft-"));

function copyFixtureAdapter(shape: string, arch: string): string {
  const dir = tmp();
  cpSync(join(fixtureDir(shape, arch), "adapter"), dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const path = join(dir, "adapter_config.json");
  const c = JSON.parse(readFileSync(path, "utf8"));
  edit(c);
  writeFileSync(path, JSON.stringify(c));
}

for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    test(`reads, checks and round-trips the ${shape}/${arch} fixture adapter`, () => {
      const src = join(fixtureDir(shape, arch), "adapter");
      const fixtureConfig = JSON.parse(readFileSync(join(src, "adapter_config.json"), "utf8"));
      const adapter = readAdapter(src);
      const modelConfig = loadModelConfig(join(fixtureDir(shape, arch), "model"));
      assert.equal(adapter.config.r, fixtureConfig.r);
      assert.equal(adapter.config.alpha, fixtureConfig.lora_alpha);
      assert.equal(adapter.config.useRslora, fixtureConfig.use_rslora);
      const expectedScale = fixtureConfig.use_rslora
        ? fixtureConfig.lora_alpha / Math.sqrt(fixtureConfig.r)
        : fixtureConfig.lora_alpha / fixtureConfig.r;
      assert.equal(adapter.config.scale, expectedScale);
      assert.deepEqual([...adapter.config.targetModules].sort(), [...fixtureConfig.target_modules].sort());
      assert.equal(adapter.weights.size, 7 * modelConfig.numLayers);
      const q = adapter.weights.get("model.layers.1.self_attn.q_proj")!;
      const [out, inp] = projectionShape(modelConfig, "q_proj");
      assert.deepEqual(q.aShape, [fixtureConfig.r, inp]);
      assert.deepEqual(q.bShape, [out, fixtureConfig.r]);
      checkAdapterMatchesModel(adapter, modelConfig);

      const dir = tmp();
      writeAdapter(dir, { ...adapter, baseModel: "Qwen/Qwen3-0.6B" });
      const written = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
      // Every key we write exists in what PEFT itself wrote, with the same value except the base model.
      for (const [k, v] of Object.entries(written)) {
        assert.ok(k in fixtureConfig, `unknown adapter_config key ${k}`);
        if (k !== "base_model_name_or_path") assert.deepEqual(v, fixtureConfig[k], k);
      }
      assert.equal(written.base_model_name_or_path, "Qwen/Qwen3-0.6B");
      const f = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
      const g = SafetensorsFile.open(join(src, "adapter_model.safetensors"));
      assert.equal(f.metadata.format, "pt");
      assert.deepEqual([...f.tensors.keys()].sort(), [...g.tensors.keys()].sort());
      for (const key of g.tensors.keys()) {
        assert.deepEqual(f.info(key).shape, g.info(key).shape);
        assert.ok(f.readRaw(key).equals(g.readRaw(key)), `${key} differs after round trip`);
      }
      f.close();
      g.close();
      const back = readAdapter(dir);
      assert.equal(back.config.baseModel, "Qwen/Qwen3-0.6B");
      assert.deepEqual(back.weights, adapter.weights);
    });
  }
}

test("reads .default key names and BF16/F16 weights", () => {
  const src = readAdapter(join(fixtureDir("base", "qwen2"), "adapter"));
  const dir = tmp();
  writeAdapter(dir, src);
  const tensors = [];
  let i = 0;
  for (const [module, w] of src.weights) {
    const dtype = i++ % 2 ? "BF16" : "F16";
    tensors.push({
      name: `base_model.model.${module}.lora_A.default.weight`,
      dtype,
      shape: w.aShape,
      data: w.A,
    } as const);
    tensors.push({
      name: `base_model.model.${module}.lora_B.default.weight`,
      dtype,
      shape: w.bShape,
      data: w.B,
    } as const);
  }
  writeSafetensors(
    join(dir, "adapter_model.safetensors"),
    tensors.map((t) => ({ ...t, shape: [...t.shape] })),
  );
  const back = readAdapter(dir);
  assert.equal(back.weights.size, src.weights.size);
  for (const [module, w] of src.weights) {
    const b = back.weights.get(module)!;
    for (let k = 0; k < w.A.length; k++)
      assert.ok(Math.abs(b.A[k] - w.A[k]) <= Math.abs(w.A[k]) * 2 ** -8 + 1e-7);
    assert.notDeepEqual(b.A, w.A); // really converted from a 16-bit type, not a copy of the F32 file
  }
});

test("refuses unsupported PEFT features with the reason", () => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ["dora", (c) => (c.use_dora = true), /DoRA/],
    ["rank_pattern", (c) => (c.rank_pattern = { q_proj: 4 }), /rank_pattern/],
    ["alpha_pattern", (c) => (c.alpha_pattern = { q_proj: 4 }), /alpha_pattern/],
    ["bias", (c) => (c.bias = "all"), /bias/],
    ["peft_type", (c) => (c.peft_type = "IA3"), /LoRA adapters only/],
    ["r", (c) => (c.r = "8"), /r is "8"/],
    ["alpha", (c) => (c.lora_alpha = "x"), /lora_alpha/],
  ];
  for (const [name, edit, msg] of cases) {
    const dir = copyFixtureAdapter("base", "qwen3");
    editConfig(dir, edit);
    assert.throws(
      () => readAdapter(dir),
      (e: unknown) => e instanceof TuneforgeError && msg.test(e.message),
      name,
    );
  }
  assert.throws(() => readAdapter(tmp()), /no adapter_config.json/);
});

test("refuses modules_to_save weights, missing halves and inconsistent shapes", () => {
  const adapter = readAdapter(join(fixtureDir("base", "qwen3"), "adapter"));
  const write = (extra: { name: string; shape: number[]; data: Float32Array }[], drop?: string) => {
    const dir = copyFixtureAdapter("base", "qwen3");
    const tensors = [];
    for (const [m, w] of adapter.weights) {
      tensors.push({
        name: `base_model.model.${m}.lora_A.weight`,
        dtype: "F32" as const,
        shape: [...w.aShape],
        data: w.A,
      });
      tensors.push({
        name: `base_model.model.${m}.lora_B.weight`,
        dtype: "F32" as const,
        shape: [...w.bShape],
        data: w.B,
      });
    }
    writeSafetensors(join(dir, "adapter_model.safetensors"), [
      ...tensors.filter((t) => t.name !== drop),
      ...extra.map((e) => ({ ...e, dtype: "F32" as const })),
    ]);
    return dir;
  };
  const lm = write([
    {
      name: "base_model.model.lm_head.modules_to_save.default.weight",
      shape: [2, 2],
      data: new Float32Array(4),
    },
  ]);
  assert.throws(() => readAdapter(lm), /modules_to_save/);
  const half = write([], "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
  assert.throws(() => readAdapter(half), /"model\.layers\.1\.mlp\.up_proj" has lora_A but no lora_B/);
  const bad = adapter.weights.get("model.layers.0.self_attn.k_proj")!;
  const wrongR = write(
    [
      {
        name: "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
        shape: [4, bad.aShape[1] * 2],
        data: new Float32Array(bad.A.length),
      },
    ],
    "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
  );
  assert.throws(() => readAdapter(wrongR), /with r 8 expected A \[8, in\]/);
});

test("an adapter for another base model is refused with the base model's name and the shape", () => {
  const dir = copyFixtureAdapter("base", "qwen3");
  editConfig(dir, (c) => (c.base_model_name_or_path = "org/other-model"));
  const adapter = readAdapter(dir);
  const odd = loadModelConfig(join(fixtureDir("odd", "qwen3"), "model"));
  assert.throws(
    () => checkAdapterMatchesModel(adapter, odd),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      /adapter was trained for another base model/.test(e.message) &&
      e.message.includes("org/other-model") &&
      /lora_A is \[8,\d+\]/.test(e.message),
  );
});

test("initLoraWeights makes PEFT's initial adapter: B zero, A uniform in ±1/sqrt(in), seeded", () => {
  const config = loadModelConfig(join(fixtureDir("odd", "qwen3"), "model"));
  const a1 = initLoraWeights(config, { r: 4, targets: ["q_proj", "down_proj"], seed: 7 });
  const a2 = initLoraWeights(config, { r: 4, targets: ["q_proj", "down_proj"], seed: 7 });
  const a3 = initLoraWeights(config, { r: 4, targets: ["q_proj", "down_proj"], seed: 8 });
  assert.deepEqual(
    [...a1.weights.keys()],
    [
      "model.layers.0.self_attn.q_proj",
      "model.layers.0.mlp.down_proj",
      "model.layers.1.self_attn.q_proj",
      "model.layers.1.mlp.down_proj",
    ],
  );
  assert.deepEqual(a1.weights, a2.weights);
  assert.notDeepEqual(
    a1.weights.get("model.layers.0.mlp.down_proj")!.A,
    a3.weights.get("model.layers.0.mlp.down_proj")!.A,
  );
  assert.equal(a1.config.alpha, 8);
  assert.equal(a1.config.scale, 2);
  for (const [module, w] of a1.weights) {
    const inp = w.aShape[1];
    assert.equal(inp, module.endsWith("down_proj") ? config.intermediateSize : config.hiddenSize);
    assert.ok(w.B.every((x) => x === 0));
    const bound = 1 / Math.sqrt(inp);
    let max = 0;
    let sum = 0;
    let sq = 0;
    for (const x of w.A) {
      assert.ok(Math.abs(x) <= bound);
      max = Math.max(max, Math.abs(x));
      sum += x;
      sq += x * x;
    }
    // Uniform on ±bound: spans the range, mean ~0, variance bound²/3.
    assert.ok(max > 0.95 * bound);
    assert.ok(Math.abs(sum / w.A.length) < 0.1 * bound);
    assert.ok(Math.abs(sq / w.A.length / ((bound * bound) / 3) - 1) < 0.15);
  }
  checkAdapterMatchesModel(a1, config);
  const dir = tmp();
  writeAdapter(dir, a1 as LoraAdapter);
  assert.deepEqual(readAdapter(dir).weights, a1.weights);
  assert.throws(() => initLoraWeights(config, { r: 0, targets: ["q_proj"], seed: 1 }), TuneforgeError);
  assert.throws(
    () => initLoraWeights(config, { r: 4, targets: ["lm_head" as "q_proj"], seed: 1 }),
    /lm_head/,
  );
});
