// The whole Model on the GPU: EngineModel.load(dir, { device: "cuda" }) against the HF/PEFT fixtures of both
// shape sets with the CPU parity test's own checks and tolerances (logits 1e-4, loss rel 1e-5, LoRA gradients
// rel-norm 1e-4, AdamW 1e-6, 10-step trajectory 1e-4, greedy generation single + batched left-padded with step
// logits 1e-4, merge 1e-6), and CUDA against the CPU backend on a random odd-shaped model (MQA, head_dim 10,
// every bias, qk-norm) with packed, padded rows, LoRA dropout and full fine-tuning. bf16 mode (frozen base
// matrices in bf16, tensor-core products) against the fp32 references with the bounds of test/engine/bf16-checks.ts
// (loss 1% rel, LoRA gradient cosine >= 0.999, the first 8 greedy tokens identical, 10-step trajectory 2%).
//
// The CUDA parts run only where the addon has the CUDA backend and a GPU answers; elsewhere they skip and say
// why. The CPU-vs-device comparison then runs CPU against CPU, so its harness is checked everywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel, type Batch } from "../../src/engine/index.js";
import { cudaInfo } from "../../src/engine/native.js";
import { ALL_PROJECTIONS, type Projection } from "../../src/model/layout.js";
import { createRng } from "../../src/data/random.js";
import { ARCHS, FIXTURES, HAVE_FIXTURES, SHAPE_SETS } from "../helpers/fixtures.js";
import { printParityReport, runParity } from "../helpers/parity.js";
import { maxAbsDiff, relErr } from "../engine/fixture.js";
import { checkBf16Fixture, cosine } from "../engine/bf16-checks.js";
import { writeRandomModel } from "../engine/random-model.js";
import { loadModelConfig, parseModelConfig } from "../../src/model/config.js";
import { TuneforgeError } from "../../src/errors.js";
import { embeddingOnHost, keepsBf16Activations, resetMemoryPeak } from "../../src/engine/index.js";
import { estimateTrainingMemory } from "../../src/train/memory.js";
import {
  PEAK_BATCH,
  PEAK_LORA,
  PEAK_MODEL,
  assertBitwiseEqual,
  layerSetFloats,
  peakModelEstimate,
} from "../engine/checkpointing-shared.js";

const info = cudaInfo();
const noGpu = info.available ? false : `no CUDA device for the engine: ${info.reason}`;
const DEVICE = info.available ? "cuda" : "cpu";
if (noGpu) console.log(`# skipping the CUDA model tests (${noGpu}); comparing CPU with CPU instead`);

const report: Record<string, Record<string, number>> = {};
for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    const skip = noGpu || (!HAVE_FIXTURES && `fixtures not found at ${FIXTURES} (set TUNEFORGE_FIXTURES)`);
    test(`cuda parity ${shape}/${arch}`, { skip }, () => runParity(shape, arch, "cuda", report));
  }
}

test("cuda parity summary", { skip: noGpu || !HAVE_FIXTURES }, () => {
  printParityReport(report);
  if (info.available)
    console.log(`# ${info.name}: engine peak ${(cudaInfo().peakBytes / 2 ** 20).toFixed(1)} MiB`);
});

const bf16Report: Record<string, Record<string, number>> = {};
for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    const skip = noGpu || (!HAVE_FIXTURES && `fixtures not found at ${FIXTURES} (set TUNEFORGE_FIXTURES)`);
    test(`cuda bf16 faithful to fp32 on ${shape}/${arch}`, { skip }, () =>
      checkBf16Fixture(shape, arch, "cuda", bf16Report),
    );
  }
}

test("cuda bf16 summary", { skip: noGpu || !HAVE_FIXTURES }, () => printParityReport(bf16Report));

// fp16 mode (GPUs without bf16, such as a T4): the same bounds, with the base and the products' activations in fp16.
const f16Report: Record<string, Record<string, number>> = {};
for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    const skip = noGpu || (!HAVE_FIXTURES && `fixtures not found at ${FIXTURES} (set TUNEFORGE_FIXTURES)`);
    test(`cuda fp16 faithful to fp32 on ${shape}/${arch}`, { skip }, () =>
      checkBf16Fixture(shape, arch, "cuda", f16Report, "f16"),
    );
  }
}

test("cuda fp16 summary", { skip: noGpu || !HAVE_FIXTURES }, () => printParityReport(f16Report));

// ---- CPU against the device on a random odd-shaped model ----

const V = 53;
const DIR = writeRandomModel(3);
const UNTIED = writeRandomModel(4, {
  model_type: "llama",
  tie_word_embeddings: false,
  attention_bias: false,
  mlp_bias: false,
  num_key_value_heads: 3,
});

function loadPair(
  dir: string,
  lora: boolean,
  weights: "f32" | "bf16" = "f32",
  targets: Projection[] = ALL_PROJECTIONS,
): [EngineModel, EngineModel] {
  const models = [
    EngineModel.load(dir, { threads: 1, device: "cpu", weights }),
    EngineModel.load(dir, { device: DEVICE, weights }),
  ];
  if (lora) {
    // PEFT starts B at 0; a random B makes every gradient non-zero
    const rng = createRng(11);
    let weights = null;
    for (const m of models) {
      m.setLora({ r: 4, alpha: 8, dropout: 0.1, seed: 5, targets: [...targets] });
      if (!weights) {
        weights = m.loraWeights();
        for (const p of weights.values()) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.next() - 0.5;
      }
      m.setLoraWeights(weights);
    }
  }
  return models as [EngineModel, EngineModel];
}

// Two rows of 11 tokens: row 0 packs segments of 4 and 5 tokens and 2 pads, row 1 packs 6 + 5; the first token
// of each segment is a prompt (label -100).
function packedBatch(): Batch {
  const rng = createRng(21);
  const layout = [
    [4, 5, 0],
    [6, 5, 0],
  ];
  const T = 11;
  const ids = new Int32Array(2 * T);
  const mask = new Int32Array(2 * T);
  const labels = new Int32Array(2 * T).fill(-100);
  const seg = new Int32Array(2 * T);
  layout.forEach((lens, r) => {
    let t = 0;
    lens.forEach((len, s) => {
      for (let i = 0; i < len; i++, t++) {
        ids[r * T + t] = rng.int(V);
        mask[r * T + t] = 1;
        labels[r * T + t] = i === 0 ? -100 : ids[r * T + t];
        seg[r * T + t] = s;
      }
    });
    for (; t < T; t++) seg[r * T + t] = lens.length; // pads: a segment of their own, masked out
  });
  return { rows: 2, inputIds: ids, attentionMask: mask, labels, segmentIds: seg };
}

/** Max |a - b| over the logits of real tokens (padding's logits are whatever each backend leaves there). */
function realTokenLogitsDiff(a: Float32Array, b: Float32Array, mask: Int32Array): number {
  let err = 0;
  for (let i = 0; i < mask.length; i++)
    if (mask[i])
      err = Math.max(err, maxAbsDiff(a.subarray(i * V, (i + 1) * V), b.subarray(i * V, (i + 1) * V)));
  return err;
}

function assertClose(name: string, err: number, tol: number) {
  assert.ok(err <= tol, `${name}: ${err} > ${tol} (${DEVICE} vs cpu)`);
}

function sameMaps(
  name: string,
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
  cmp: (x: Float32Array, y: Float32Array) => number,
  tol: number,
) {
  assert.deepEqual([...b.keys()], [...a.keys()], `${name}: tensor names`);
  for (const [k, x] of a) assertClose(`${name} ${k}`, cmp(b.get(k)!, x), tol);
}

test(`${DEVICE} agrees with cpu: LoRA with dropout on packed rows, AdamW, generation, merge`, () => {
  const [cpu, dev] = loadPair(DIR, true);
  try {
    assert.equal(dev.device, DEVICE);
    const batch = packedBatch();
    const mask = batch.attentionMask!;

    const lc = cpu.forward(batch);
    const ld = dev.forward(batch);
    assertClose("logits", realTokenLogitsDiff(ld, lc, mask), 1e-4);
    assert.ok(maxAbsDiff(lc, new Float32Array(lc.length)) > 0.1, "logits are not trivially zero");

    const ec = cpu.evalLoss(batch);
    const ed = dev.evalLoss(batch);
    assert.equal(ed.tokens, ec.tokens);
    assertClose("eval loss", Math.abs(ed.loss - ec.loss) / ec.loss, 1e-5);

    // training forward with dropout: both draw the same masks from (seed, counter)
    const fc = cpu.forwardBackward(batch);
    const fd = dev.forwardBackward(batch);
    assert.equal(fd.tokens, fc.tokens);
    assertClose("train loss", Math.abs(fd.loss - fc.loss) / fc.loss, 1e-5);
    assert.notEqual(fc.loss, ec.loss, "dropout changed the training loss");
    assert.equal(dev.dropoutCounter, cpu.dropoutCounter);
    sameMaps("LoRA grad", cpu.trainable("grads"), dev.trainable("grads"), relErr, 1e-4);

    // one AdamW step (with clipping) from identical gradients, and the optimizer state it leaves
    dev.setTrainable("grads", cpu.trainable("grads"));
    const settings = { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0.5 };
    const nc = cpu.adamwStep(settings).gradNorm;
    const nd = dev.adamwStep(settings).gradNorm;
    assertClose("grad norm", Math.abs(nd - nc) / nc, 1e-6);
    sameMaps("after AdamW", cpu.trainable("weights"), dev.trainable("weights"), maxAbsDiff, 1e-6);
    const sc = cpu.optimizerState();
    const sd = dev.optimizerState();
    assert.equal(sd.step, sc.step);
    sameMaps("AdamW m", sc.m, sd.m, maxAbsDiff, 1e-6);
    sameMaps("AdamW v", sc.v, sd.v, maxAbsDiff, 1e-6);

    // five more steps, each on its own: the trajectories agree
    for (let s = 0; s < 5; s++) {
      const losses = [cpu, dev].map((m) => {
        m.zeroGrads();
        const l = m.forwardBackward(batch).loss;
        m.adamwStep({ lr: 1e-3 });
        return l;
      });
      assertClose(`trajectory step ${s}`, Math.abs(losses[1] - losses[0]), 1e-4);
    }

    // a restored optimizer state takes the same next step on the device
    dev.setOptimizerState(cpu.optimizerState());
    dev.setTrainable("weights", cpu.trainable("weights"));
    for (const m of [cpu, dev]) {
      m.setTrainable("grads", cpu.trainable("grads"));
      m.adamwStep({ lr: 1e-3 });
    }
    sameMaps("after a restored step", cpu.trainable("weights"), dev.trainable("weights"), maxAbsDiff, 1e-6);

    // greedy generation, left-padded batch: same tokens, step logits within 1e-4
    const prompts = [
      [3, 9, 27, 4, 50],
      [8, 1, 30],
    ];
    const gc = cpu.generateWithLogits(prompts, { maxNewTokens: 6, eosTokenIds: [] });
    const gd = dev.generateWithLogits(prompts, { maxNewTokens: 6, eosTokenIds: [] });
    assert.deepEqual(gd.tokens, gc.tokens);
    assertClose("generation step logits", maxAbsDiff(gd.stepLogits!, gc.stepLogits!), 1e-4);

    const mc = cpu.merge();
    const md = dev.merge();
    sameMaps("merged", mc, md, maxAbsDiff, 1e-6);

    const mem = dev.memory();
    assert.equal(mem.device, DEVICE);
    assert.ok(mem.peak >= mem.inUse && mem.inUse > 0, `memory ${JSON.stringify(mem)}`);
  } finally {
    cpu.dispose();
    dev.dispose();
  }
});

test(`${DEVICE}: decoding steps replay one recorded step (a CUDA graph) and give what launching each kernel gives`, () => {
  const [cpu, dev] = loadPair(DIR, true);
  const prompts = [[3, 9, 27, 4, 50], [8, 1, 30], [7]];
  const settings = { maxNewTokens: 7, eosTokenIds: [] };
  try {
    const recorded = dev.generateWithLogits(prompts, settings); // logits back to the host (sampling's path)
    const recordedGreedy = dev.generateWithLogits(prompts, settings, false); // greedy tokens picked on the device
    process.env.TUNEFORGE_CUDA_GRAPHS = "0";
    let direct, directGreedy;
    try {
      direct = dev.generateWithLogits(prompts, settings);
      directGreedy = dev.generateWithLogits(prompts, settings, false);
    } finally {
      delete process.env.TUNEFORGE_CUDA_GRAPHS;
    }
    const ref = cpu.generateWithLogits(prompts, settings);
    if (DEVICE === "cuda") {
      // 7 steps: the prefill, then 6 single-token steps; the first runs directly, the second is recorded, and the
      // recording runs it and the 4 after it, each layer's 13 kernels and products included
      for (const r of [recorded, recordedGreedy]) {
        assert.equal(r.replayedSteps, 5);
        assert.ok(r.stepLaunches > 12 * 2, `the recording holds ${r.stepLaunches} launches for 2 layers`);
        // Each layer's 4 LoRA x A^T launches (q/k/v, o, gate/up, down) run beside the products, off the chain
        assert.equal(
          r.stepLaunches - r.stepDepth,
          4 * 2,
          `${r.stepLaunches} launches, ${r.stepDepth} in a row`,
        );
      }
      for (const r of [direct, directGreedy])
        assert.deepEqual([r.replayedSteps, r.stepLaunches, r.stepDepth], [0, 0, 0]);
    } else {
      assert.deepEqual(
        [recorded.replayedSteps, recorded.stepLaunches, recorded.stepDepth],
        [0, 0, 0],
        "the CPU records nothing",
      );
    }
    assert.deepEqual(recorded.tokens, direct.tokens);
    assert.deepEqual(recordedGreedy.tokens, recorded.tokens);
    assert.deepEqual(directGreedy.tokens, recorded.tokens);
    assert.deepEqual(recorded.tokens, ref.tokens);
    // The same kernels on the same buffers: equal up to what a GPU library may vary between launches
    assertClose("recorded vs direct step logits", maxAbsDiff(recorded.stepLogits!, direct.stepLogits!), 1e-6);
    assertClose("recorded step logits", maxAbsDiff(recorded.stepLogits!, ref.stepLogits!), 1e-4);
  } finally {
    cpu.dispose();
    dev.dispose();
  }
});

// A decoding step runs q/k/v and gate/up as one product each over stacked weights. With LoRA on q and v only (PEFT's
// default) the stacked biases are added in one pass and LoRA's terms carry none (with LoRA on all, as above, each term
// carries its bias).
test(`${DEVICE} agrees with cpu: decoding with LoRA on q and v only, biases on every projection`, () => {
  const [cpu, dev] = loadPair(DIR, true, "f32", ["q_proj", "v_proj"]);
  try {
    const prompts = [[3, 9, 27, 4, 50], [8, 1, 30], [7]];
    const settings = { maxNewTokens: 5, eosTokenIds: [] };
    const gc = cpu.generateWithLogits(prompts, settings);
    const gd = dev.generateWithLogits(prompts, settings);
    assert.deepEqual(gd.tokens, gc.tokens);
    assertClose("step logits", maxAbsDiff(gd.stepLogits!, gc.stepLogits!), 1e-4);
  } finally {
    cpu.dispose();
    dev.dispose();
  }
});

test(`${DEVICE} agrees with cpu: full fine-tuning of an untied model`, () => {
  const [cpu, dev] = loadPair(UNTIED, false);
  try {
    const batch = packedBatch();
    for (const m of [cpu, dev]) m.setFullFinetune(true);
    const fc = cpu.forwardBackward(batch);
    const fd = dev.forwardBackward(batch);
    assertClose("loss", Math.abs(fd.loss - fc.loss) / fc.loss, 1e-5);
    // full fine-tuning updates the table every step: on a GPU it leaves pinned host memory for the device
    assert.equal(dev.memory().hostBytes, 0);
    const gc = cpu.trainable("grads");
    assert.ok(gc.has("lm_head.weight") && gc.has("model.embed_tokens.weight"));
    sameMaps("grad", gc, dev.trainable("grads"), relErr, 1e-4);
    dev.setTrainable("grads", gc);
    for (const m of [cpu, dev]) m.adamwStep({ lr: 1e-3, maxGradNorm: 1 });
    sameMaps("after AdamW", cpu.trainable("weights"), dev.trainable("weights"), maxAbsDiff, 1e-6);
  } finally {
    cpu.dispose();
    dev.dispose();
  }
});

// bf16 on both: the same bf16 weights; the GPU also rounds activations to bf16 for its tensor cores, the CPU
// does not, so the bounds are bf16-sized (CPU against CPU here is bitwise).
test(`${DEVICE} agrees with cpu in bf16 mode: LoRA with dropout on packed rows, eval, merge`, () => {
  const [cpu, dev] = loadPair(UNTIED, true, "bf16");
  try {
    assert.equal(dev.memory().weights, "bf16");
    const batch = packedBatch();
    const fc = cpu.forwardBackward(batch);
    const fd = dev.forwardBackward(batch);
    assertClose("loss", Math.abs(fd.loss - fc.loss) / fc.loss, 1e-2);
    assertClose("eval loss", Math.abs(dev.evalLoss(batch).loss - cpu.evalLoss(batch).loss) / fc.loss, 1e-2);
    const gc = cpu.trainable("grads");
    sameMaps("grad", gc, dev.trainable("grads"), (x, y) => 1 - cosine(x, y), 1e-3);
    // merging widens the bf16 weight exactly on both devices: only the fp32 LoRA product's order differs
    sameMaps("merged", cpu.merge(), dev.merge(), maxAbsDiff, 1e-6);
  } finally {
    cpu.dispose();
    dev.dispose();
  }
});

test(`${DEVICE}: an untied model's frozen embedding table is in pinned host memory on a GPU, the same numbers with less on the device`, () => {
  const config = loadModelConfig(UNTIED);
  const tableBytes = config.vocabSize * config.hiddenSize * 2;
  const expected = embeddingOnHost(config, DEVICE, "lora") ? tableBytes : 0;
  assert.equal(expected, DEVICE === "cuda" ? tableBytes : 0);
  const batch = packedBatch();
  const run = (onHost: boolean) => {
    const was = process.env.TUNEFORGE_CUDA_HOST_EMBEDDING;
    if (onHost) delete process.env.TUNEFORGE_CUDA_HOST_EMBEDDING;
    else process.env.TUNEFORGE_CUDA_HOST_EMBEDDING = "0";
    const before = resetMemoryPeak(DEVICE).inUse;
    let m: EngineModel | null = null;
    try {
      m = EngineModel.load(UNTIED, { device: DEVICE, weights: "bf16" });
      const loaded = m.memory().inUse - before;
      // the rule the estimate uses (embeddingOnHost) reads the same variable
      assert.equal(embeddingOnHost(config, DEVICE, "lora"), onHost && DEVICE === "cuda");
      const mem = m.memory();
      if (DEVICE === "cuda") assert.ok(cudaInfo().hostMappedBytes! >= mem.hostBytes!);
      m.setLora({ r: 4, alpha: 8, dropout: 0.1, seed: 5, targets: [...ALL_PROJECTIONS] });
      const loss = m.forwardBackward(batch).loss;
      const tokens = m.generate([[1, 2, 3]], { maxNewTokens: 4, eosTokenIds: [] });
      return {
        hostBytes: mem.hostBytes!,
        weightBytes: mem.weightBytes!,
        loaded,
        loss,
        grads: m.trainable("grads"),
        tokens,
      };
    } finally {
      m?.dispose();
      if (was === undefined) delete process.env.TUNEFORGE_CUDA_HOST_EMBEDDING;
      else process.env.TUNEFORGE_CUDA_HOST_EMBEDDING = was;
    }
  };
  const host = run(true);
  const device = run(false);
  assert.equal(host.hostBytes, expected);
  assert.equal(device.hostBytes, 0);
  assert.equal(device.loaded - host.loaded, expected, "the device holds less by exactly the table");
  assert.equal(host.weightBytes, device.weightBytes);
  // the gather reads the same bits from either memory
  assert.equal(host.loss, device.loss);
  assertBitwiseEqual(host.grads, device.grads, "table on the host vs on the device");
  assert.deepEqual(host.tokens, device.tokens);
  // the estimate leaves the table out exactly where the engine does
  const est = (onHost: boolean) =>
    estimateTrainingMemory({
      config,
      tokensPerMicroBatch: 22,
      finetuning: "lora",
      lora: { r: 4, targets: ALL_PROJECTIONS },
      weightsDtype: "bf16",
      embeddingOnHost: onHost,
    }).weights;
  assert.equal(est(false), device.weightBytes);
  assert.equal(est(true), device.weightBytes - tableBytes);
});

test(`${DEVICE} bf16 mode: each recomputed layer saves one activation set, its large tensors in bf16 on a GPU`, () => {
  // The CPU keeps every activation in fp32; a GPU in bf16 mode saves the large ones in bf16.
  const raw = PEAK_MODEL;
  const m = EngineModel.load(writeRandomModel(23, raw), { device: DEVICE, weights: "bf16" });
  try {
    m.setLora({ ...PEAK_LORA, targets: [...ALL_PROJECTIONS] });
    const L = raw.num_hidden_layers;
    m.setGradientCheckpointing(L);
    m.forwardBackward(PEAK_BATCH); // the grow-only work buffers exist from here on
    const step: number[] = [];
    const grads: Map<string, Float32Array>[] = [];
    for (const k of [1, 2, 3]) {
      m.setGradientCheckpointing(k);
      m.dropoutCounter = 0; // the same masks every time
      m.zeroGrads();
      const before = resetMemoryPeak(DEVICE).inUse;
      m.forwardBackward(PEAK_BATCH);
      step.push(m.memory().peak - before);
      grads.push(m.trainable("grads"));
    }
    // Recomputed layers make the same round trip through their saved set: the gradients do not depend on k.
    assertBitwiseEqual(grads[0]!, grads[1]!, "k 1 vs 2");
    assertBitwiseEqual(grads[0]!, grads[2]!, "k 1 vs 3");
    const N = PEAK_BATCH.inputIds.length;
    const F = raw.intermediate_size;
    const bf16 = keepsBf16Activations(DEVICE, "bf16");
    assert.equal(bf16, DEVICE === "cuda");
    // The large tensors: q, att, k, v, g, u and q, k before the qk-norm.
    const q = raw.num_attention_heads * raw.head_dim;
    const kv = raw.num_key_value_heads * raw.head_dim;
    const large = 3 * q + 3 * kv + 2 * F;
    const setBytes = N * (layerSetFloats(raw, PEAK_LORA.r) - large) * 4 + N * large * (bf16 ? 2 : 4);
    assert.equal(step[0]! - step[1]!, setBytes, "k 1 -> 2");
    assert.equal(step[1]! - step[2]!, setBytes, "k 2 -> 3");
    // The estimate's step per layer is the engine's.
    const est = (k: number) =>
      peakModelEstimate(N, k, { weightsDtype: "bf16", bf16Activations: bf16 }).activations;
    const perLayer = est(2) - est(3);
    assert.equal(perLayer, setBytes, "the estimate's step per layer is the engine's");
  } finally {
    m.dispose();
  }
});

// ---- out of device memory ----

test(
  "running out of GPU memory is reported with the numbers and what to change, and frees what it took",
  {
    skip: noGpu,
  },
  () => {
    const before = cudaInfo();
    // Llama-style layers of 2 x (4 H^2 + 3 H F) bf16 bytes (~103 MB at H 2048, F 5632).
    const H = 2048,
      F = 5632;
    const layersFor = (share: number) =>
      Math.ceil((share * before.totalBytes) / (2 * (4 * H * H + 3 * H * F)));
    const llama = (layers: number) =>
      parseModelConfig({
        model_type: "llama",
        vocab_size: 1000,
        hidden_size: H,
        intermediate_size: F,
        num_hidden_layers: layers,
        num_attention_heads: 16,
        num_key_value_heads: 16,
        rms_norm_eps: 1e-5,
        tie_word_embeddings: false,
      });
    // Weights a quarter larger than the device: the load says so, with the numbers and load-time advice.
    assert.throws(
      () => EngineModel.random(llama(layersFor(1.25)), { device: "cuda", weights: "bf16" }),
      (e: Error) => {
        assert.ok(e instanceof TuneforgeError, String(e));
        assert.match(
          e.message,
          /the model's weights \([\d.]+ GiB in bf16\) do not fit on the GPU: out of GPU memory: needed [\d.]+ GiB more, the engine holds [\d.]+ GiB in tensors .* the device has [\d.]+ GiB free of [\d.]+ GiB\n {2}fix: use a smaller base model/,
        );
        return true;
      },
    );
    assert.equal(cudaInfo().inUseBytes, before.inUseBytes, "the half-built model's tensors went back");
    // Weights that fit (40%) and a batch whose activations do not: the training-time advice. The rows are sized from
    // the estimate to need twice the memory left: a fixed batch that overflows the emulator's 1 GiB fits on 80 GB.
    const config = llama(layersFor(0.4));
    const m = EngineModel.random(config, { device: "cuda", weights: "bf16" });
    m.setLora({ r: 4, alpha: 8, dropout: 0, seed: 1, targets: [...ALL_PROJECTIONS] });
    const T = 2000;
    const perRow = estimateTrainingMemory({
      config,
      tokensPerMicroBatch: T,
      finetuning: "lora",
      lora: { r: 4, targets: ALL_PROJECTIONS },
      weightsDtype: "bf16",
      bf16Activations: keepsBf16Activations(DEVICE, "bf16"),
      fusedLora: true,
    });
    const rows = Math.ceil((2 * cudaInfo().freeBytes) / (perRow.activations + perRow.workBuffers));
    const ids = Int32Array.from({ length: rows * T }, (_, i) => (i * 7) % 1000);
    assert.throws(
      () =>
        m.forwardBackward({
          rows,
          inputIds: ids,
          attentionMask: new Int32Array(rows * T).fill(1),
          labels: ids,
        }),
      /out of GPU memory: needed [\d.]+ GiB more.*\. Lower the micro-batch size or the sequence length, or enable activation checkpointing/,
    );
    m.dispose();
    assert.equal(cudaInfo().inUseBytes, before.inUseBytes);
    // The device still computes correctly.
    const [cpu, gpu] = loadPair(DIR, false);
    const batch = packedBatch();
    const err = realTokenLogitsDiff(gpu.forward(batch), cpu.forward(batch), batch.attentionMask!);
    assertClose("logits after out-of-memory errors", err, 1e-4);
    cpu.dispose();
    gpu.dispose();
  },
);
