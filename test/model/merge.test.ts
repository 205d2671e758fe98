import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Checkpoint,
  SafetensorsFile,
  writeSafetensors,
  type TensorToWrite,
} from "../../src/model/safetensors.js";
import { mergeAdapter } from "../../src/model/merge.js";
import { TuneforgeError } from "../../src/errors.js";
import { ARCHS, SHAPE_SETS, fixtureDir } from "../helpers/fixtures.js";

const tmp = () => mkdtempSync(join(tmpdir(), "tf-merge-"));
const MERGED = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"];

for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    test(`merging the ${shape}/${arch} adapter matches PEFT's merged weights`, () => {
      const fx = fixtureDir(shape, arch);
      const out = join(tmp(), "merged");
      let progress = 0;
      const result = mergeAdapter({
        modelDir: join(fx, "model"),
        adapterDir: join(fx, "adapter"),
        outDir: out,
        onProgress: (done, total) => {
          progress = done;
          assert.ok(done <= total);
        },
      });
      assert.deepEqual(result.weightFiles, ["model.safetensors"]);
      assert.equal(progress, result.tensors);
      assert.ok(!existsSync(join(out, "model.safetensors.index.json")));
      for (const f of ["config.json", "generation_config.json"]) {
        assert.equal(readFileSync(join(out, f), "utf8"), readFileSync(join(fx, "model", f), "utf8"));
      }
      const expected = SafetensorsFile.open(join(fx, "expected.safetensors"));
      const base = Checkpoint.open(join(fx, "model"));
      const merged = Checkpoint.open(out);
      assert.deepEqual(merged.names().sort(), base.names().sort());
      for (const name of MERGED) {
        const want = expected.readF32(`merged.${name}`);
        const got = merged.readF32(name);
        assert.equal(got.length, want.length);
        let maxErr = 0;
        for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
        assert.ok(maxErr <= 1e-6, `${name}: max error ${maxErr}`);
        assert.ok(!merged.readRaw(name).equals(base.readRaw(name)), `${name} unchanged`);
      }
      // Every projection changed, every other tensor is copied bit for bit.
      for (const name of base.names()) {
        const isProj = /\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name);
        assert.equal(merged.info(name).dtype, base.info(name).dtype);
        assert.deepEqual(merged.info(name).shape, base.info(name).shape);
        assert.equal(merged.readRaw(name).equals(base.readRaw(name)), !isProj, name);
      }
      expected.close();
      base.close();
      merged.close();
    });
  }
}

test("keeps a sharded BF16 base sharded and in BF16, and copies tokenizer files", () => {
  const fx = fixtureDir("odd", "llama");
  const src = tmp();
  cpSync(join(fx, "model", "config.json"), join(src, "config.json"));
  writeFileSync(join(src, "tokenizer.json"), '{"fake": true}\n');
  writeFileSync(join(src, "tokenizer_config.json"), '{"eos_token": "x"}\n');
  const base = Checkpoint.open(join(fx, "model"));
  const names = base.names().sort();
  const shards: Record<string, TensorToWrite[]> = {
    "model-00001-of-00002.safetensors": [],
    "model-00002-of-00002.safetensors": [],
  };
  const weightMap: Record<string, string> = {};
  names.forEach((name, i) => {
    const shard =
      i < names.length / 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    shards[shard].push({ name, dtype: "BF16", shape: base.info(name).shape, data: base.readF32(name) });
    weightMap[name] = shard;
  });
  for (const [file, tensors] of Object.entries(shards))
    writeSafetensors(join(src, file), tensors, { format: "pt" });
  writeFileSync(
    join(src, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
  base.close();

  const out = tmp();
  const result = mergeAdapter({ modelDir: src, adapterDir: join(fx, "adapter"), outDir: out });
  assert.deepEqual(result.weightFiles, Object.keys(shards));
  assert.equal(result.mergedModules, 14);
  const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
  assert.deepEqual(index.weight_map, weightMap);
  let size = 0;
  for (const file of Object.keys(shards)) {
    const f = SafetensorsFile.open(join(out, file));
    assert.deepEqual(
      [...f.tensors.keys()].sort(),
      names.filter((n) => weightMap[n] === file),
    );
    for (const t of f.tensors.values()) {
      assert.equal(t.dtype, "BF16");
      size += t.byteLength;
    }
    f.close();
  }
  assert.equal(index.metadata.total_size, size);
  assert.equal(readFileSync(join(out, "tokenizer.json"), "utf8"), '{"fake": true}\n');
  assert.equal(readFileSync(join(out, "tokenizer_config.json"), "utf8"), '{"eos_token": "x"}\n');
  const expected = SafetensorsFile.open(join(fx, "expected.safetensors"));
  const merged = Checkpoint.open(out);
  const f32Base = Checkpoint.open(join(fx, "model"));
  for (const name of MERGED) {
    const want = expected.readF32(`merged.${name}`);
    const w = f32Base.readF32(name);
    const got = merged.readF32(name);
    // Two BF16 roundings (the base, then the result), each within 2^-8 relative (8-bit significand).
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Math.abs(got[i] - want[i]) <= 2 ** -8 * (Math.abs(w[i]) + Math.abs(want[i])) + 1e-7,
        `${name}[${i}]`,
      );
    }
  }
  f32Base.close();
  expected.close();
  merged.close();
});

test("refuses an adapter for another model and writing over the base", () => {
  assert.throws(
    () =>
      mergeAdapter({
        modelDir: join(fixtureDir("odd", "qwen2"), "model"),
        adapterDir: join(fixtureDir("base", "qwen2"), "adapter"),
        outDir: tmp(),
      }),
    (e: unknown) => e instanceof TuneforgeError && /another base model/.test(e.message),
  );
  const model = join(fixtureDir("base", "qwen2"), "model");
  assert.throws(
    () =>
      mergeAdapter({
        modelDir: model,
        adapterDir: join(fixtureDir("base", "qwen2"), "adapter"),
        outDir: model,
      }),
    /over its base model/,
  );
});
