// Greedy decoding without a repetition penalty picks each token with the backend's argmax_rows (on a GPU only B
// ints come back per step). It must choose exactly what the host path (pick_token: std::max_element, the first
// maximum) chooses: generateWithLogits keeps the host path, so the two are compared token for token, on a random
// model, on an engineered model whose logits tie, and on the parity fixtures.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { SafetensorsFile, writeSafetensors } from "../../src/model/safetensors.js";
import { createRng } from "../../src/data/random.js";
import { ARCHS, HAVE_FIXTURES, SHAPE_SETS } from "../helpers/fixtures.js";
import { openFixture } from "./fixture.js";
import { writeRandomModel } from "./random-model.js";

const V = 53;

/** Index of the first maximum of each step's logits, per row ([rows, steps, V] flattened). */
function firstMaxTokens(
  stepLogits: Float32Array,
  lengths: number[],
  steps: number,
  vocab: number,
): number[][] {
  return lengths.map((len, r) =>
    Array.from({ length: len }, (_, s) => {
      const row = stepLogits.subarray((r * steps + s) * vocab, (r * steps + s + 1) * vocab);
      let best = 0;
      for (let i = 1; i < vocab; i++) if (row[i] > row[best]) best = i;
      return best;
    }),
  );
}

function randomPrompts(seed: number, lengths: number[]): number[][] {
  const rng = createRng(seed);
  return lengths.map((n) => Array.from({ length: n }, () => rng.int(V)));
}

test("device greedy equals the host path and the first maximum of the logits (random model, ragged batch, eos)", () => {
  const m = EngineModel.load(writeRandomModel(5), { threads: 1 });
  const prompts = randomPrompts(11, [6, 2, 9, 4]);
  const settings = { maxNewTokens: 12, eosTokenIds: [] as number[] };
  const fast = m.generate(prompts, settings);
  const host = m.generateWithLogits(prompts, settings);
  assert.deepEqual(fast, host.tokens);
  assert.ok(host.stepLogits);
  const want = firstMaxTokens(
    host.stepLogits,
    host.tokens.map((t) => t.length),
    host.steps,
    V,
  );
  assert.deepEqual(fast, want);
  // eos: rows stop at different steps (finished rows keep decoding a masked pad on both paths)
  const eos = [fast[0][3], fast[2][1]];
  const stopFast = m.generate(prompts, { maxNewTokens: 12, eosTokenIds: eos });
  const stopHost = m.generateWithLogits(prompts, { maxNewTokens: 12, eosTokenIds: eos });
  assert.deepEqual(stopFast, stopHost.tokens);
  assert.ok(
    stopFast.some((r) => r.length < 12),
    "some row ended at an eos",
  );
  m.dispose();
});

test("ties go to the lowest token id on the device path, as on the host path", () => {
  // An untied head whose only non-zero rows are u at ids 7 and 30 and -u at ids 12 and 40: every logit is 0
  // except two equal pairs, so each step's maximum is a tie (7 = 30 when h.u > 0, 12 = 40 when h.u < 0).
  const dir = writeRandomModel(6, { tie_word_embeddings: false });
  const path = join(dir, "model.safetensors");
  const f = SafetensorsFile.open(path);
  const tensors = [...f.tensors.entries()].map(([name, info]) => ({
    name,
    dtype: "F32" as const,
    shape: info.shape,
    data: f.readF32(name),
  }));
  f.close();
  const head = tensors.find((t) => t.name === "lm_head.weight");
  assert.ok(head);
  const hidden = head.shape[1];
  const u = head.data.slice(0, hidden);
  head.data.fill(0);
  for (const [id, sign] of [
    [7, 1],
    [30, 1],
    [12, -1],
    [40, -1],
  ] as const)
    for (let c = 0; c < hidden; c++) head.data[id * hidden + c] = sign * u[c];
  writeSafetensors(path, tensors);

  const m = EngineModel.load(dir, { threads: 1 });
  const prompts = randomPrompts(21, [5, 3, 8, 1, 6, 2]);
  const settings = { maxNewTokens: 6, eosTokenIds: [] as number[] };
  const fast = m.generate(prompts, settings);
  const host = m.generateWithLogits(prompts, settings);
  assert.ok(host.stepLogits);
  for (let i = 0; i < host.stepLogits.length; i += V) {
    const z = host.stepLogits.subarray(i, i + V);
    assert.equal(z[7], z[30], "the engineered logits tie");
    assert.equal(z[12], z[40], "the engineered logits tie");
  }
  for (const row of fast) for (const t of row) assert.ok(t === 7 || t === 12 || t === 0, `token ${t}`);
  assert.ok(
    fast.flat().some((t) => t !== 0),
    "the ties were reached (not only all-zero logits)",
  );
  assert.deepEqual(fast, host.tokens);
  m.dispose();
});

test("device greedy equals the host path on every parity fixture", { skip: !HAVE_FIXTURES }, () => {
  for (const shape of SHAPE_SETS)
    for (const arch of ARCHS) {
      const fx = openFixture(shape, arch);
      const prompt = Array.from(fx.expected.readI32("generate.prompt"));
      const want = Array.from(fx.expected.readI32("generate.output")).slice(prompt.length);
      const settings = { maxNewTokens: want.length, eosTokenIds: [] as number[] };
      const fast = fx.model.generate([prompt, prompt.slice(0, Math.max(1, prompt.length - 2))], settings);
      const host = fx.model.generateWithLogits(
        [prompt, prompt.slice(0, Math.max(1, prompt.length - 2))],
        settings,
      );
      assert.deepEqual(fast, host.tokens, `${shape}/${arch}`);
      assert.deepEqual(fast[0], want, `${shape}/${arch}: the HF greedy reference`);
      fx.expected.close();
      fx.model.dispose();
    }
});
