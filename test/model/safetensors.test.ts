import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Checkpoint,
  SafetensorsFile,
  writeSafetensors,
  f32ToBf16,
  f32ToF16,
  f16ToF32,
} from "../../src/model/safetensors.js";
import { fixtureDir } from "../helpers/fixtures.js";

test("reads fixture tensors lazily with shapes and dtypes", () => {
  const f = SafetensorsFile.open(join(fixtureDir("base", "qwen2"), "expected.safetensors"));
  assert.deepEqual(f.info("input_ids").shape.length, 2);
  assert.equal(f.info("input_ids").dtype, "I32");
  const ids = f.readI32("input_ids");
  assert.equal(ids.length, f.info("input_ids").shape[0] * f.info("input_ids").shape[1]);
  f.close();
  const ck = Checkpoint.open(join(fixtureDir("base", "qwen2"), "model"));
  const emb = ck.readF32("model.embed_tokens.weight");
  assert.equal(emb.length, 384 * 64);
  ck.close();
});

test("round-trips F32, BF16, F16 and I32 through the writer", () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-st-"));
  const vals = new Float32Array([0, 1, -2.5, 3.14159, 65504, 1e-3]);
  writeSafetensors(
    join(dir, "a.safetensors"),
    [
      { name: "f32", dtype: "F32", shape: [2, 3], data: vals },
      { name: "bf16", dtype: "BF16", shape: [6], data: vals },
      { name: "f16", dtype: "F16", shape: [6], data: vals },
      { name: "ids", dtype: "I32", shape: [3], data: new Int32Array([1, -100, 7]) },
    ],
    { format: "pt" },
  );
  const f = SafetensorsFile.open(join(dir, "a.safetensors"));
  assert.deepEqual([...f.readF32("f32")], [...vals]);
  const bf = f.readF32("bf16");
  for (let i = 0; i < vals.length; i++) assert.ok(Math.abs(bf[i] - vals[i]) <= Math.abs(vals[i]) * 2 ** -8);
  const h = f.readF32("f16");
  for (let i = 0; i < vals.length; i++)
    assert.ok(Math.abs(h[i] - vals[i]) <= Math.abs(vals[i]) * 2 ** -10 + 1e-7);
  assert.deepEqual([...f.readI32("ids")], [1, -100, 7]);
  assert.equal(f.metadata.format, "pt");
  f.close();
});

test("float conversions round to nearest even", () => {
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f16ToF32(f32ToF16(0.1)), 0.0999755859375);
  assert.equal(f32ToF16(1e6), 0x7c00);
});
