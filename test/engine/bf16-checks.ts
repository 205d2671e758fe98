// bf16 mode (frozen base matrices in bfloat16; or fp16 mode, a GPU's without bf16) against the fp32 HF/PEFT
// references of a parity fixture, with the faithfulness bounds of issue 4: loss within 1% relative, every LoRA
// gradient with cosine >= 0.999, greedy generation identical for the first 8 new tokens (single prompt and
// left-padded batch), the 10-step trajectory within 2%, and the base weights in half the bytes. Shared by the CPU
// test (test/engine/bf16.test.ts) and the CUDA one (test/gpu/model.test.ts).
import assert from "node:assert/strict";
import { loadModelConfig } from "../../src/model/config.js";
import { expectedTensors } from "../../src/model/layout.js";
import type { WeightsDtype } from "../../src/engine/index.js";
import { batchOf, openFixture, type Fixture } from "./fixture.js";

export const BF16_LOSS_REL = 0.01;
export const BF16_GRAD_COSINE = 0.999;
export const BF16_SAME_TOKENS = 8;
export const BF16_TRAJECTORY_REL = 0.02;

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  const c = ab / Math.sqrt(aa * bb);
  return Number.isNaN(c) ? -Infinity : c;
}

/** Bytes the checkpoint's weights take in an engine model: matrices 2 per value in bf16 or f16, norms/biases 4. */
export function expectedWeightBytes(modelDir: string, weights: WeightsDtype): number {
  let bytes = 0;
  for (const t of expectedTensors(loadModelConfig(modelDir))) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    bytes += n * (weights !== "f32" && t.shape.length === 2 ? 2 : 4);
  }
  return bytes;
}

function adamw(fx: Fixture) {
  const a = fx.meta.adamw;
  return { lr: a.lr, beta1: a.betas[0], beta2: a.betas[1], eps: a.eps, weightDecay: a.weight_decay };
}

/**
 * Opens fixture `shape/arch` in bf16 (or fp16) mode on `device`, asserts the bounds and records the measured
 * errors.
 */
export function checkBf16Fixture(
  shape: string,
  arch: string,
  device: "cpu" | "cuda",
  report: Record<string, Record<string, number>>,
  weights: "bf16" | "f16" = "bf16",
): void {
  const fx = openFixture(shape, arch, device, weights);
  const errs: Record<string, number> = {};
  report[`${shape}/${arch}`] = errs;
  try {
    assert.equal(fx.model.weights, weights);
    const mem = fx.model.memory();
    assert.equal(mem.weights, weights);
    const modelDir = `${fx.dir}/model`;
    assert.equal(mem.weightBytes, expectedWeightBytes(modelDir, weights));
    errs.weightBytesRatio = mem.weightBytes! / expectedWeightBytes(modelDir, "f32");

    const batch = batchOf(fx);
    const out = fx.model.forwardBackward(batch);
    errs.loss = Math.abs(out.loss - fx.meta.loss) / fx.meta.loss;
    assert.ok(errs.loss <= BF16_LOSS_REL, `${weights} loss ${out.loss} vs fp32 ${fx.meta.loss}`);
    // the rounding must show: a loss equal to the fp32 one would mean the weights were not rounded
    assert.ok(errs.loss > 0, `${weights} loss is bitwise the fp32 one`);

    let worst = 1;
    const grads = fx.model.loraGrads();
    assert.equal(grads.size, fx.adapter.size);
    for (const [mod, g] of grads) {
      for (const k of ["A", "B"] as const) {
        const c = cosine(g[k], fx.expected.readF32(`grad.${mod}.lora_${k}.weight`));
        assert.ok(c >= BF16_GRAD_COSINE, `${mod} lora_${k}: gradient cosine ${c} to fp32`);
        worst = Math.min(worst, c);
      }
    }
    errs.gradCosine = worst;
    errs.gradCosineGap = 1 - worst; // the margin to read against 1 - BF16_GRAD_COSINE (1e-3)

    const prompt = Array.from(fx.expected.readI32("generate.prompt"));
    const want = Array.from(fx.expected.readI32("generate.output")).slice(prompt.length);
    const single = fx.model.generate([prompt], { maxNewTokens: BF16_SAME_TOKENS, eosTokenIds: [] });
    assert.deepEqual(single[0], want.slice(0, BF16_SAME_TOKENS), "greedy tokens (single prompt)");

    const bIds = fx.expected.readI32("generate_batch.input_ids");
    const bMask = fx.expected.readI32("generate_batch.attention_mask");
    const P = fx.expected.info("generate_batch.input_ids").shape[1];
    const prompts = [0, 1].map((r) =>
      Array.from(bIds.subarray(r * P, (r + 1) * P)).filter((_, t) => bMask[r * P + t] === 1),
    );
    const batched = fx.model.generate(prompts, { maxNewTokens: BF16_SAME_TOKENS, eosTokenIds: [] });
    const bOut = fx.expected.readI32("generate_batch.output");
    const L = P + 8;
    for (let r = 0; r < 2; r++) {
      const wantRow = Array.from(bOut.subarray(r * L + P, r * L + P + BF16_SAME_TOKENS));
      assert.deepEqual(batched[r], wantRow, `greedy tokens (batch row ${r})`);
    }

    fx.model.setLoraWeights(fx.adapter);
    fx.model.resetOptimizer();
    const traj: number[] = [];
    for (let s = 0; s < 10; s++) {
      fx.model.zeroGrads();
      traj.push(fx.model.forwardBackward(batch).loss);
      fx.model.adamwStep(adamw(fx));
    }
    const ref = fx.meta.loss_trajectory_10_steps_same_batch;
    errs.trajectory = Math.max(...traj.map((l, i) => Math.abs(l - ref[i]) / ref[i]));
    assert.ok(errs.trajectory <= BF16_TRAJECTORY_REL, `trajectory ${traj} vs fp32 ${ref}`);
  } finally {
    fx.model.dispose();
    fx.expected.close();
  }
}
