// Device selection: "cpu" | "cuda" | "auto" resolved against what the addon was built with and the machine has,
// with a clear TuneforgeError when CUDA is asked for and cannot be had.
import { test } from "node:test";
import assert from "node:assert/strict";
import { describeDevice, EngineModel, resolveDevice } from "../../src/engine/index.js";
import { cudaInfo, noCudaInfo, type CudaInfo } from "../../src/engine/native.js";
import { TuneforgeError } from "../../src/errors.js";
import { writeRandomModel } from "./random-model.js";

const DIR = writeRandomModel(2);
const real = cudaInfo();

function fakeInfo(over: Partial<CudaInfo>): CudaInfo {
  return { ...noCudaInfo(""), built: true, ...over };
}

test("device cuda on this build: a TuneforgeError with the reason and how to build with CUDA", () => {
  if (real.available) {
    assert.equal(resolveDevice("cuda"), "cuda");
    return;
  }
  const check = (e: unknown) => {
    assert.ok(e instanceof TuneforgeError);
    assert.match(e.message, /device "cuda" was asked for/);
    assert.ok(e.message.includes(real.reason), `the reason "${real.reason}" is in: ${e.message}`);
    assert.match(e.hint ?? "", real.built ? /nvidia-smi/ : /CUDA toolkit and cuBLAS/);
    return true;
  };
  assert.throws(
    () => resolveDevice("cuda", { key: "training.device" }),
    (e) => {
      check(e);
      assert.equal((e as TuneforgeError).location.key, "training.device");
      return true;
    },
  );
  assert.throws(() => EngineModel.load(DIR, { device: "cuda" }), check);
});

test('device "auto" picks cpu without a usable GPU, and the model lives there', () => {
  const want = real.available ? "cuda" : "cpu";
  assert.equal(resolveDevice("auto"), want);
  const m = EngineModel.load(DIR, { threads: 1, device: "auto" });
  try {
    assert.equal(m.device, want);
    const batch = { rows: 1, inputIds: Int32Array.from([1, 2, 3, 4]), labels: Int32Array.from([1, 2, 3, 4]) };
    assert.ok(m.forwardBackward(batch).loss > 0);
    const mem = m.memory();
    assert.equal(mem.device, want);
    assert.ok(mem.peak >= mem.inUse && mem.inUse > 0);
  } finally {
    m.dispose();
  }
  // the default stays the CPU
  const d = EngineModel.load(DIR, { threads: 1 });
  assert.equal(d.device, "cpu");
  d.dispose();
});

test("resolveDevice: built without a GPU, with a GPU, and unknown names", () => {
  const noGpu = fakeInfo({ reason: "no usable CUDA device: no CUDA-capable device is detected" });
  assert.equal(resolveDevice("auto", { info: noGpu }), "cpu");
  assert.equal(resolveDevice("cpu", { info: noGpu }), "cpu");
  assert.throws(
    () => resolveDevice("cuda", { info: noGpu }),
    (e) =>
      e instanceof TuneforgeError &&
      e.message.includes("no GPU can be used: no usable CUDA device: no CUDA-capable device is detected") &&
      /nvidia-smi/.test(e.hint ?? ""),
  );
  const notBuilt = fakeInfo({ built: false, reason: "this build of the engine has no CUDA backend" });
  assert.throws(
    () => resolveDevice("cuda", { info: notBuilt }),
    (e) =>
      e instanceof TuneforgeError &&
      /no CUDA backend/.test(e.message) &&
      /build-standalone/.test(e.hint ?? ""),
  );
  const gpu = fakeInfo({
    available: true,
    name: "NVIDIA H100",
    computeCapability: "9.0",
    totalBytes: 80 * 2 ** 30,
    freeBytes: 60.5 * 2 ** 30,
  });
  assert.equal(resolveDevice("cuda", { info: gpu }), "cuda");
  assert.equal(resolveDevice("auto", { info: gpu }), "cuda");
  assert.equal(resolveDevice("cpu", { info: gpu }), "cpu");
  assert.throws(
    () => resolveDevice("gpu", { key: "training.device" }),
    (e) =>
      e instanceof TuneforgeError &&
      e.location.key === "training.device" &&
      /auto, cpu, cuda/.test(e.hint ?? ""),
  );
  assert.equal(describeDevice("cuda", gpu), "cuda, NVIDIA H100 (compute 9.0, 60.5 GiB free of 80.0 GiB)");
  assert.equal(describeDevice("cpu"), "cpu");
});
