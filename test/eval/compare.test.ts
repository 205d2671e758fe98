import { before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { compare } from "../../src/eval/compare.js";
import { translate } from "../../src/eval/translate.js";
import { TuneforgeError } from "../../src/errors.js";
import { PAIRS, makeAdapter, tinyEval, type TinyEval } from "./evalFixture.js";

let fx: TinyEval;
let adapters: string[];
const TEXTS = PAIRS.map((p) => p[0]);
const GEN = { template: "chatml" as const, maxNewTokens: 8, threads: 2 };

before(async () => {
  fx = await tinyEval();
  // Different ranks and targets: the engine re-creates LoRA on each switch.
  adapters = [
    makeAdapter(join(fx.root, "models", "a"), fx.config, { r: 2, seed: 2 }),
    makeAdapter(join(fx.root, "models", "b"), fx.config, {
      r: 4,
      seed: 11,
      targets: ["k_proj", "o_proj", "up_proj"],
    }),
  ];
});

test("compare: one output per adapter per text, each equal to that adapter evaluated alone", async () => {
  const result = await compare({ modelDir: fx.modelDir, adapterDirs: adapters, texts: TEXTS, ...GEN });
  assert.deepEqual(result.adapters, adapters);
  assert.deepEqual(
    result.rows.map((r) => r.text),
    TEXTS,
  );
  for (const row of result.rows) assert.equal(row.outputs.length, 2);
  const alone = await Promise.all(
    adapters.map((adapterDir) => translate({ modelDir: fx.modelDir, adapterDir, texts: TEXTS, ...GEN })),
  );
  assert.deepEqual(
    result.rows.map((r) => r.outputs[0]),
    alone[0],
  );
  assert.deepEqual(
    result.rows.map((r) => r.outputs[1]),
    alone[1],
  );
  assert.ok(
    result.rows.some((r) => r.outputs[0] !== r.outputs[1]),
    "two different adapters should not answer everything alike",
  );
  // Switching back gives the first adapter's outputs again (nothing of the second one is left over).
  const again = await compare({
    modelDir: fx.modelDir,
    adapterDirs: [adapters[1], adapters[0]],
    texts: TEXTS,
    ...GEN,
  });
  assert.deepEqual(
    again.rows.map((r) => r.outputs[1]),
    alone[0],
  );
});

test("compare refuses an empty list and an adapter of another base model", async () => {
  await assert.rejects(
    compare({ modelDir: fx.modelDir, adapterDirs: [], texts: TEXTS }),
    (e: unknown) => e instanceof TuneforgeError && /no adapter to compare/.test(e.message),
  );
  const other = await tinyEval({ numLayers: 3 }, 9);
  const wrong = makeAdapter(join(fx.root, "models", "wrong"), other.config, { r: 2, seed: 3 });
  await assert.rejects(
    compare({ modelDir: fx.modelDir, adapterDirs: [adapters[0], wrong], texts: TEXTS }),
    (e: unknown) =>
      e instanceof TuneforgeError && /another base model/.test(e.message) && e.location.file === wrong,
  );
});
