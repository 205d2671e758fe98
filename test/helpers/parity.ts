// The parity checks against HF transformers + PEFT on one fixture (logits, loss, LoRA gradients, one AdamW step,
// the 10-step loss trajectory, greedy generation single and left-padded batch with step logits, merged weights),
// shared by the CPU parity test (test/engine/parity.test.ts) and the CUDA one (test/gpu/model.test.ts): both
// backends must meet the same tolerances, those of fixtures/README.md.
import assert from "node:assert/strict";
import { batchOf, maxAbsDiff, openFixture, relErr, type Fixture } from "../engine/fixture.js";

function adamw(fx: Fixture) {
  const a = fx.meta.adamw;
  return { lr: a.lr, beta1: a.betas[0], beta2: a.betas[1], eps: a.eps, weightDecay: a.weight_decay };
}

/** Runs every parity check on an opened fixture, recording each error in `errs` (asserts the tolerances). */
export function checkFixture(fx: Fixture, errs: Record<string, number>) {
  const V = fx.model.config.vocabSize;
  const batch = batchOf(fx);

  // 1. logits at every unpadded position
  const logits = fx.model.forward(batch);
  const want = fx.expected.readF32("logits");
  let le = 0;
  for (let i = 0; i < fx.rows * fx.T; i++) {
    if (batch.attentionMask[i])
      le = Math.max(le, maxAbsDiff(logits.subarray(i * V, (i + 1) * V), want.subarray(i * V, (i + 1) * V)));
  }
  errs.logits = le;
  assert.ok(le <= 1e-4, `logits max abs error ${le}`);

  // 2. loss and LoRA gradients
  const out = fx.model.forwardBackward(batch);
  errs.loss = Math.abs(out.loss - fx.meta.loss) / fx.meta.loss;
  assert.ok(errs.loss <= 1e-5, `loss ${out.loss} vs ${fx.meta.loss}`);
  const grads = fx.model.loraGrads();
  assert.equal(grads.size, fx.adapter.size);
  let ge = 0;
  for (const [mod, g] of grads) {
    for (const k of ["A", "B"] as const) {
      const e = relErr(g[k], fx.expected.readF32(`grad.${mod}.lora_${k}.weight`));
      assert.ok(e <= 1e-4, `${mod} lora_${k} gradient relative error ${e}`);
      ge = Math.max(ge, e);
    }
  }
  errs.grad = ge;

  // 3. one AdamW step fed the fixture's own gradients
  fx.model.setLoraGrads(
    new Map(
      [...fx.adapter.keys()].map((mod) => [
        mod,
        {
          A: fx.expected.readF32(`grad.${mod}.lora_A.weight`),
          B: fx.expected.readF32(`grad.${mod}.lora_B.weight`),
        },
      ]),
    ),
  );
  fx.model.resetOptimizer();
  fx.model.adamwStep(adamw(fx));
  let ae = 0;
  for (const [mod, w] of fx.model.loraWeights()) {
    for (const k of ["A", "B"] as const)
      ae = Math.max(ae, maxAbsDiff(w[k], fx.expected.readF32(`after1.${mod}.lora_${k}.weight`)));
  }
  errs.adamw = ae;
  assert.ok(ae <= 1e-6, `AdamW step max abs error ${ae}`);

  // 4. ten steps on the same batch from the original adapter
  resetAdapter(fx);
  const traj: number[] = [];
  for (let s = 0; s < 10; s++) {
    fx.model.zeroGrads();
    traj.push(fx.model.forwardBackward(batch).loss);
    fx.model.adamwStep(adamw(fx));
  }
  errs.trajectory = maxAbsDiff(traj, fx.meta.loss_trajectory_10_steps_same_batch);
  assert.ok(errs.trajectory <= 1e-4, `trajectory ${traj} vs ${fx.meta.loss_trajectory_10_steps_same_batch}`);

  // 5. greedy generation, single prompt and left-padded batch, from the original adapter
  resetAdapter(fx);
  const prompt = Array.from(fx.expected.readI32("generate.prompt"));
  const single = fx.model.generateWithLogits([prompt], { maxNewTokens: 12, eosTokenIds: [] });
  assert.deepEqual(prompt.concat(single.tokens[0]), Array.from(fx.expected.readI32("generate.output")));
  errs.genLogits = maxAbsDiff(single.stepLogits!, fx.expected.readF32("generate.step_logits"));
  assert.ok(errs.genLogits <= 1e-4, `step logits error ${errs.genLogits}`);

  const bIds = fx.expected.readI32("generate_batch.input_ids");
  const bMask = fx.expected.readI32("generate_batch.attention_mask");
  const P = fx.expected.info("generate_batch.input_ids").shape[1];
  const prompts = [0, 1].map((r) =>
    Array.from(bIds.subarray(r * P, (r + 1) * P)).filter((_, t) => bMask[r * P + t] === 1),
  );
  const batched = fx.model.generateWithLogits(prompts, { maxNewTokens: 8, eosTokenIds: [] });
  const bOut = fx.expected.readI32("generate_batch.output");
  const L = P + 8;
  for (let r = 0; r < 2; r++)
    assert.deepEqual(batched.tokens[r], Array.from(bOut.subarray(r * L + P, (r + 1) * L)));
  errs.batchLogits = maxAbsDiff(batched.stepLogits!, fx.expected.readF32("generate_batch.step_logits"));
  assert.ok(errs.batchLogits <= 1e-4, `batched step logits error ${errs.batchLogits}`);

  // 6. merged weights W + scale * B @ A
  const merged = fx.model.merge();
  errs.merge = 0;
  for (const mod of ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"]) {
    errs.merge = Math.max(
      errs.merge,
      maxAbsDiff(merged.get(mod)!, fx.expected.readF32(`merged.${mod}.weight`)),
    );
  }
  assert.ok(errs.merge <= 1e-6, `merge error ${errs.merge}`);
}

// Back to the adapter in adapter/, with fresh optimizer state and zero gradients.
function resetAdapter(fx: Fixture) {
  fx.model.setLoraWeights(fx.adapter);
  fx.model.resetOptimizer();
  fx.model.zeroGrads();
}

/** Opens fixture `shape/arch` on `device`, checks it and records its errors in report["shape/arch"]. */
export function runParity(
  shape: string,
  arch: string,
  device: "cpu" | "cuda",
  report: Record<string, Record<string, number>>,
): void {
  const fx = openFixture(shape, arch, device);
  assert.equal(fx.model.device, device);
  const errs: Record<string, number> = {};
  try {
    checkFixture(fx, errs);
  } finally {
    report[`${shape}/${arch}`] = errs;
    fx.model.dispose();
    fx.expected.close();
  }
}

/** Prints one line of errors per fixture, for the log of a parity run. */
export function printParityReport(report: Record<string, Record<string, number>>): void {
  for (const [k, e] of Object.entries(report)) {
    console.log(
      k,
      Object.entries(e)
        .map(([n, v]) => `${n}=${v.toExponential(2)}`)
        .join(" "),
    );
  }
}
