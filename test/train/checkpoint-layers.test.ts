// training.gradient_checkpointing as true | false | <layers> | "auto": the config accepts only those, the memory
// estimate falls by one layer's activations per recomputed layer, "auto" picks the fewest layers that fit a budget,
// and the trainer applies and logs the choice without changing what it trains.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseModelConfig } from "../../src/model/config.js";
import { configFromObject } from "../../src/config/load.js";
import { train } from "../../src/train/index.js";
import { resetMemoryPeak } from "../../src/engine/bench-support.js";
import {
  activationFloatsPerToken,
  autoCheckpointing,
  checkpointLayersToFit,
  checkpointedLayerCount,
  checkTrainingMemory,
  estimateTrainingMemory,
  type MemoryInput,
} from "../../src/train/memory.js";
import { TuneforgeError } from "../../src/errors.js";
import { tinyTask } from "./helpers.js";

// Qwen2-like: hidden 64, 6 layers, 4 heads x 16, 2 KV heads, intermediate 128, vocab 1000, tied.
const config = parseModelConfig({
  model_type: "qwen2",
  vocab_size: 1000,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
});
// One layer's set: its input and res2 (2 x 64), q and att (2 x 64), k and v (2 x 32), g and u (2 x 128) and the rows'
// statistics (2 norms' rstd, 4 heads' log-sum-exp) = 582 floats per token, 64 of them the kept residual (the input);
// and one h1, h2 (2 x 64) and swiglu(g, u) (128) shared by all layers.
const SET = 582;
const SHARED = 256;
const N = 512;
const INPUT: MemoryInput = { config, tokensPerMicroBatch: N, finetuning: "full" };
/** Bytes one more recomputed layer saves: one set less its residual, for N tokens. */
const STEP = N * (SET - 64) * 4;

test("the config takes true, false, a layer count or auto, and names the key for anything else", () => {
  const parse = (v: unknown) =>
    configFromObject({ training: { gradient_checkpointing: v } }).training.gradient_checkpointing;
  assert.equal(configFromObject({}).training.gradient_checkpointing, false);
  for (const v of [true, false, 0, 9, "auto"]) assert.equal(parse(v), v);
  for (const bad of [-1, 2.5, "yes", "AUTO", null, "all"]) {
    assert.throws(
      () => parse(bad),
      (e: unknown) => e instanceof Error && e.message.includes("training.gradient_checkpointing"),
      JSON.stringify(bad),
    );
  }
});

test("activations: every layer's residual plus one set per plain layer and one shared by the checkpointed", () => {
  const L = config.numLayers;
  assert.equal(activationFloatsPerToken(config), L * SET + SHARED);
  assert.equal(activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: 0 }), L * SET + SHARED);
  // k = 1: the one checkpointed layer has the shared set to itself and is never recomputed.
  assert.equal(activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: 1 }), L * SET + SHARED);
  // k = 4: layers 4 and 5 keep their sets, 0..3 share one: 6 residuals + 3 sets' rest.
  assert.equal(
    activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: 4 }),
    L * 64 + 3 * (SET - 64) + SHARED,
  );
  const all = L * 64 + (SET - 64) + SHARED;
  assert.equal(activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: true }), all);
  assert.equal(activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: L }), all);
  assert.equal(activationFloatsPerToken(config, 0, 0, { gradientCheckpointing: 99 }), all, "clamped");
  assert.deepEqual(
    [false, true, 3, 99, undefined].map((s) => checkpointedLayerCount(config, s)),
    [0, L, 3, L, 0],
  );
  const est = estimateTrainingMemory({ ...INPUT, gradientCheckpointing: 4 });
  assert.equal(est.checkpointedLayers, 4);
  assert.equal(est.gradientCheckpointing, true);
  assert.equal(est.activations, N * (L * 64 + 3 * (SET - 64) + SHARED) * 4);
  assert.equal(est.checkpointedActivations, N * all * 4);
});

test("checkpointLayersToFit: the fewest checkpointed layers whose estimated peak fits, or null", () => {
  const plain = estimateTrainingMemory(INPUT).total;
  assert.equal(checkpointLayersToFit(INPUT, plain), 0);
  assert.equal(checkpointLayersToFit(INPUT, plain + 1e9), 0);
  // 1 byte short of the plain peak: k = 1 saves nothing, k = 2 recomputes one layer.
  assert.equal(checkpointLayersToFit(INPUT, plain - 1), 2);
  assert.equal(checkpointLayersToFit(INPUT, plain - STEP), 2);
  assert.equal(checkpointLayersToFit(INPUT, plain - STEP - 1), 3);
  assert.equal(checkpointLayersToFit(INPUT, plain - 2.5 * STEP), 4, "3 layers recomputed save 3 steps");
  assert.equal(checkpointLayersToFit(INPUT, plain - 5 * STEP), 6);
  assert.equal(checkpointLayersToFit(INPUT, plain - 5 * STEP - 1), null, "even all layers do not fit");
  // The input's own setting does not matter.
  assert.equal(checkpointLayersToFit({ ...INPUT, gradientCheckpointing: true }, plain), 0);
});

test("auto: the fewest layers within the budget less a 10% margin, all layers when nothing fits", () => {
  const plain = estimateTrainingMemory(INPUT).total;
  const where = "free on the GPU";
  // The margin: exactly the plain peak available is not enough, plain / 0.9 is.
  // (one byte over plain / 0.9: 0.9 x (plain / 0.9) may round below plain)
  assert.equal(autoCheckpointing(INPUT, { bytes: (plain + 1) / 0.9, where }).layers, 0);
  const tight = autoCheckpointing(INPUT, { bytes: plain, where });
  assert.equal(tight.layers, checkpointLayersToFit(INPUT, 0.9 * plain));
  assert.ok(tight.layers > 1);
  assert.match(tight.reason, /^auto: /);
  assert.match(tight.reason, new RegExp(`90% of ${Math.round(plain / 2 ** 20)} MB free on the GPU`));
  assert.match(tight.reason, new RegExp(`; ${tight.layers - 1} recomputed in backward`));
  assert.equal(autoCheckpointing(INPUT, { bytes: plain - 3 * STEP, where }, 0).layers, 4, "no margin");
  const none = autoCheckpointing(INPUT, { bytes: 1000, where: "of free RAM" });
  assert.equal(none.layers, config.numLayers);
  assert.match(none.reason, /even with every layer checkpointed .* exceeds 90% of 0 MB of free RAM/);
});

test("the memory check suggests checkpointing (true or auto) while some layers still keep their sets", () => {
  const hint = (setting: boolean | number) => {
    const est = estimateTrainingMemory({
      ...INPUT,
      tokensPerMicroBatch: 400_000,
      gradientCheckpointing: setting,
    });
    try {
      checkTrainingMemory(est, { total: 2 ** 30, free: 2 ** 29 });
    } catch (e) {
      assert.ok(e instanceof TuneforgeError);
      return e.hint ?? "";
    }
    assert.fail("the estimate should not fit in 1 GB");
  };
  assert.match(hint(false), /training\.gradient_checkpointing: true .* or "auto"/);
  assert.match(hint(3), /training\.gradient_checkpointing: true/);
  assert.doesNotMatch(hint(true), /gradient_checkpointing/);
  assert.doesNotMatch(hint(config.numLayers), /gradient_checkpointing/);
});

test("the trainer applies a layer count or auto, logs it, and trains exactly as without checkpointing", async () => {
  const task = await tinyTask();
  const run = async (setting: boolean | number | string, name: string, listen = true) => {
    const info: string[] = [];
    let peakMb = 0;
    resetMemoryPeak("cpu"); // the run's own high-water mark (the allocator's is per process)
    const result = await train({
      ...task.trainOptions(task.config({ max_steps: 3, gradient_checkpointing: setting }, { dropout: 0.1 })),
      outputDir: join(task.dir, name),
      onInfo: listen ? (line) => info.push(line) : undefined,
      onLog: (e) => {
        if ("memory_mb" in e) peakMb = Math.max(peakMb, e.memory_mb);
      },
    });
    return { result, peakMb, ckpt: info.filter((l) => l.startsWith("gradient checkpointing:")) };
  };
  const plain = await run(false, "plain");
  assert.deepEqual(plain.ckpt, []);
  const two = await run(2, "two");
  assert.deepEqual(two.ckpt, ["gradient checkpointing: 2 of 2 layers (training.gradient_checkpointing: 2)"]);
  // Applied whether or not anyone listens to the log: the second layer's activations are not kept.
  const quiet = await run(2, "quiet", false);
  assert.ok(two.peakMb < plain.peakMb, `peak ${two.peakMb} MB vs ${plain.peakMb} MB without`);
  assert.equal(quiet.peakMb, two.peakMb);
  const auto = await run("auto", "auto");
  // What auto picks depends on this machine's free memory; that it says why, and trains the same, does not.
  assert.equal(auto.ckpt.length, 1);
  assert.match(auto.ckpt[0], /^gradient checkpointing: (off|\d+ of 2 layers) \(auto: /);
  for (const r of [two, quiet, auto]) {
    assert.equal(r.result.finalValLoss, plain.result.finalValLoss);
    assert.equal(r.result.steps, 3);
  }
  assert.ok(Number.isFinite(plain.result.finalValLoss));
});
