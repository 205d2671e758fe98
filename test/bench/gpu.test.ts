// bench:gpu's harness on the CPU (--smoke): tiny shapes end to end, the budget, a failing case, and the peers'
// plumbing through stand-in peer scripts (Node programs named like the python ones).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodeBytes,
  fitCheckpointing,
  refitCheckpointing,
  memoryGoalGiB,
  runGpuBench,
  type GpuBenchResult,
} from "../../bench/gpu-bench.js";
import { fullTrainCases, smokeGenerateCase, smokeTrainCases } from "../../bench/gpu-cases.js";
import { estimateTrainingMemory } from "../../src/train/memory.js";
import { lastJsonLine, runPeer } from "../../bench/gpu-peers.js";
import { parseModelConfig } from "../../src/model/config.js";

const quiet = () => {};

function fakePeers(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-peers-"));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

describe("bench:gpu --smoke on the CPU", () => {
  let smoke: GpuBenchResult;

  it("runs training, a profiled step and generation end to end", () => {
    smoke = runGpuBench({ device: "cpu", smoke: true, log: quiet });
    assert.equal(smoke.mode, "smoke");
    const [t] = smoke.training;
    assert.deepEqual(
      t!.variants.map((v) => [v.checkpointing, v.gradientCheckpointing, v.status, v.note]),
      [
        ["off", false, "ok", undefined],
        ["fit", false, "skipped", "no memory goal with a known number to fit"], // the smoke case has no anchors
        ["on", true, "ok", undefined],
      ],
    );
    const [plain, , ckpt] = t!.variants;
    const ours = plain!.ours!;
    assert.equal(ours.timedSteps, 2);
    assert.ok(ours.tokensPerS! > 0 && ours.stepMs! > 0);
    // tokens/s is rows * seq per step over the step time.
    assert.ok(Math.abs(ours.tokensPerS! - (2 * 32 * 1000) / ours.stepMs!) / ours.tokensPerS! < 0.01);
    // Random weights of std 0.02 give near-uniform logits over the 256-token vocabulary.
    assert.ok(Math.abs(ours.loss! - Math.log(256)) < 0.05, `loss ${ours.loss}`);
    assert.ok(ours.peakBytes! > 500_000, `peak ${ours.peakBytes}`);
    assert.equal(ours.deviceInUseGiB, null);
    assert.equal(ours.hostWeightsGiB, 0); // the CPU keeps every weight in its one memory
    // Checkpointing trains the same model to the same loss while keeping fewer activations.
    assert.ok(Math.abs(ckpt!.ours!.loss! - ours.loss!) < 1e-3, `${ckpt!.ours!.loss} vs ${ours.loss}`);
    assert.ok(ckpt!.ours!.peakBytes! < ours.peakBytes!, `${ckpt!.ours!.peakBytes} vs ${ours.peakBytes}`);
    assert.ok(t!.peers.every((p) => p.status === "skipped"));
    assert.equal(plain!.goals.length, 2);
    assert.ok(
      t!.variants.every((v) => v.goals.every((g) => g.ratio === null && g.met === null)),
      "no peer, no ratio",
    );
    assert.equal(smoke.settings.weights, "f32", "auto on the cpu");

    const p = smoke.profile!;
    assert.deepEqual(
      p.reports.map((r) => r.call),
      ["zero_grads", "forward_backward", "adamw_step"],
    );
    const fb = p.reports[1]!;
    const matmulFwd = fb.rows.find((r) => r.region === "layers.fwd" && r.kernel === "matmul");
    assert.ok(matmulFwd && matmulFwd.calls === 2 * 7 && matmulFwd.gflop > 0, JSON.stringify(matmulFwd));
    // The 14 base products' x, W and y in fp32, each once: per layer the sum over q, k, v, o, gate, up, down of
    // 64 rows x in + in x out + 64 rows x out (see the decode-bytes test for the shapes).
    assert.equal(matmulFwd.gbytes, (2 * 4 * 102_400) / 1e9);
    assert.ok(matmulFwd.gbPerS! > 0 && matmulFwd.ofCopyBandwidth! > 0, JSON.stringify(matmulFwd));
    assert.ok(Math.abs(fb.gbytes - fb.rows.reduce((a, r) => a + r.gbytes, 0)) <= fb.gbytes * 1e-3);
    const copyGBs = (smoke.bandwidth as { gbPerS: number }).gbPerS;
    assert.ok(Math.abs(fb.copyBoundMs! - (fb.gbytes / copyGBs) * 1e3) <= 0.01 + fb.copyBoundMs! * 1e-3);
    assert.ok(fb.rows.some((r) => r.region === "lora.bwd"));
    assert.ok(fb.rows.some((r) => r.kernel === "attention_bwd"));
    const kernelsMs = fb.rows.reduce((a, r) => a + r.ms, 0);
    assert.ok(kernelsMs > 0 && kernelsMs <= fb.ms + 0.01, `${kernelsMs} vs ${fb.ms}`);
    assert.ok(p.reports[2]!.rows.some((r) => r.kernel === "adamw_many" && r.calls === 1));
    // forward_backward's kernel time by kind: every row in exactly one kind, LoRA's cuBLAS products under LoRA
    const shares = p.shares!;
    assert.deepEqual(
      shares.map((x) => x.kind),
      ["LoRA", "attention", "products", "other"],
    );
    const sumMs = shares.reduce((a, x) => a + x.ms, 0);
    assert.ok(Math.abs(sumMs - kernelsMs) <= 0.02 + kernelsMs * 1e-3, `${sumMs} vs ${kernelsMs}`);
    const attentionMs = fb.rows.filter((r) => r.kernel.startsWith("attention")).reduce((a, r) => a + r.ms, 0);
    assert.ok(Math.abs(shares[1]!.ms - attentionMs) <= 0.01);
    const loraMs = fb.rows.filter((r) => r.region.startsWith("lora.")).reduce((a, r) => a + r.ms, 0);
    assert.ok(loraMs > 0 && Math.abs(shares[0]!.ms - loraMs) <= 0.01);
    assert.ok(Math.abs(shares.reduce((a, x) => a + x.share, 0) - 1) <= 0.03);
    assert.ok(smoke.summary.some((l) => l.includes("a profiled step's kernels: LoRA ")));

    const g = smoke.generation!;
    assert.equal(g.status, "ok", g.note);
    assert.equal(g.note, undefined, "every row must produce all its new tokens");
    assert.ok(g.ours!.tokensPerS > 0);
    assert.ok("gbPerS" in smoke.bandwidth && smoke.bandwidth.gbPerS > 0);
    const roof = g.roofline!;
    assert.ok(roof.asStored.fraction > 0 && roof.bf16.fraction > 0);
    assert.ok(roof.bf16.tokensPerS > roof.asStored.tokensPerS, "bf16 reads fewer bytes");
    assert.equal(g.goals[0]!.ratio, Number((g.ours!.tokensPerS / roof.asStored.tokensPerS).toFixed(2)));
    // One decoding step profiled: each layer's attention once, the 7 projections' base products (and the LoRA
    // pair of each: the adapter is unmerged), after a prefill of the whole prompt.
    const { prefill, step } = g.profile!;
    assert.equal(step!.call, "decode");
    assert.equal(prefill!.call, "decode");
    const layers = smokeTrainCases()[0]!.config.numLayers;
    const callsOf = (kernel: string) =>
      step!.rows.filter((r) => r.kernel === kernel).reduce((a, r) => a + r.calls, 0);
    assert.equal(callsOf("attention_fwd"), layers);
    assert.equal(callsOf("matmul") + callsOf("matmul_bf16w"), layers * 7 * 3 + 1); // + the LM head
    // the step's kernel time by kind, as for training: every row counted once, the LoRA pairs under LoRA
    const stepShares = g.profile!.stepShares!;
    const stepMs = step!.rows.reduce((a, r) => a + r.ms, 0);
    assert.ok(Math.abs(stepShares.reduce((a, x) => a + x.ms, 0) - stepMs) <= 0.02 + stepMs * 1e-3);
    assert.ok(stepShares.find((x) => x.kind === "LoRA")!.ms > 0);
    assert.ok(smoke.summary.some((l) => l.includes("a profiled decoding step's kernels: LoRA ")));
    assert.ok(smoke.summary.length >= 3);
  });

  it("counts the bytes a decode step reads: weights once (tied head), LoRA, KV up to the position", () => {
    const g = smokeGenerateCase();
    const b = decodeBytes(g.config, g, 4, 4);
    // Tiny shape: per layer q 64x64, k/v 32x64, o 64x64, gate/up/down 128x64 + 2 norms of 64, q/k norms of 16.
    const perLayer = 4096 + 2048 + 2048 + 4096 + 3 * 8192 + 128 + 32;
    const base = 2 * perLayer + 256 * 64 + 64; // + tied embedding (= LM head) + final norm
    const lora = 2 * 16 * (128 + 96 + 96 + 128 + 192 + 192 + 192);
    assert.equal(b.weightBytes, 4 * base + 4 * lora);
    // 2 layers x (K, V) x batch 2 x (8 + 8/2) keys x 2 kv heads x 16.
    assert.equal(b.kvBytes, 2 * 2 * 2 * 12 * 32 * 4);
    // Untied: the embedding table is gathered, not read; the LM head is.
    const untied = parseModelConfig({
      model_type: "qwen3",
      vocab_size: 256,
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 16,
      tie_word_embeddings: false,
    });
    assert.equal(decodeBytes(untied, g, 4, 4).weightBytes, b.weightBytes);
    assert.equal(decodeBytes(g.config, g, 2, 2).kvBytes, b.kvBytes / 2);
  });

  it("skips what the budget cannot hold, with a note, instead of running it", () => {
    const r = runGpuBench({ device: "cpu", smoke: true, budgetS: 0, log: quiet });
    assert.deepEqual(
      r.training[0]!.variants.map((v) => v.status),
      ["skipped", "skipped", "skipped"],
    );
    assert.match(r.training[0]!.variants[0]!.note!, /budget/);
    assert.equal(r.training[0]!.variants[0]!.ours, undefined);
    assert.equal(r.generation!.status, "skipped");
    assert.equal(r.profile, null);
  });

  it("reports a failing case and goes on with the next", () => {
    const [good] = smokeTrainCases();
    const bad = { ...good!, shape: "broken", config: { ...good!.config, numKvHeads: 3 } };
    const r = runGpuBench({
      device: "cpu",
      smoke: true,
      cases: [bad, good!],
      generate: null,
      profile: false,
      ckpt: "off",
      log: quiet,
    });
    const [broken] = r.training[0]!.variants;
    assert.equal(broken!.status, "error");
    assert.match(broken!.note!, /inconsistent model config/);
    assert.equal(r.training[1]!.variants[0]!.status, "ok");
    assert.equal(r.generation, null);
    assert.ok(r.summary.some((l) => l.startsWith("broken f32: error")));
  });

  it("runs the peers and takes the goals' ratios from their JSON lines", () => {
    const dir = fakePeers({
      "bench_peft.py":
        'const ck = process.argv[5]; console.log("loading"); ' +
        'console.log(JSON.stringify({ tokens_per_s: ck === "1" ? 100 : 200, peak_mem_gib: ck === "1" ? 0.5 : 2 }));',
      "bench_generate.py": "console.log(JSON.stringify({ gen_tokens_per_s: 40 }));",
    });
    const r = runGpuBench({
      device: "cpu",
      smoke: true,
      peers: true,
      peer: { python: process.execPath, dir },
      profile: false,
      ckpt: "on",
      log: quiet,
    });
    const t = r.training[0]!;
    assert.equal(t.variants.length, 1);
    const v = t.variants[0]!;
    assert.equal(v.gradientCheckpointing, true);
    assert.deepEqual(
      t.peers.map((p) => [p.status, p.args.join(" ")]),
      [
        ["ok", "smoke-tiny 32 2 0"],
        ["ok", "smoke-tiny 32 2 1"],
      ],
    );
    const [speed, mem] = v.goals;
    assert.equal(speed!.reference, 200); // against HF without checkpointing
    assert.equal(speed!.ratio, Number((v.ours!.tokensPerS! / 200).toFixed(2)));
    assert.equal(mem!.reference, 0.5); // against HF with checkpointing
    assert.equal(mem!.met, v.ours!.peakGiB! / 0.5 <= 1);
    const g = r.generation!;
    assert.equal(g.peer!.status, "ok");
    assert.deepEqual(g.peer!.args, ["smoke-tiny", "2", "8", "8", "1"]);
    assert.equal(g.goals[1]!.reference, 40);
  });

  it("classifies a peer that runs out of memory, fails, or runs out of time", () => {
    const dir = fakePeers({
      "oom.py": 'console.error("torch.OutOfMemoryError: CUDA out of memory."); process.exit(1);',
      "fail.py": 'console.error("ImportError: no peft"); process.exit(2);',
      "slow.py": "setTimeout(() => {}, 60000);",
    });
    const o = { python: process.execPath, dir };
    assert.equal(runPeer(o, "oom.py", [], 30).status, "oom");
    const fail = runPeer(o, "fail.py", [], 30);
    assert.equal(fail.status, "error");
    assert.match(fail.note!, /exit 2: ImportError: no peft/);
    assert.equal(runPeer(o, "slow.py", [], 1).status, "timeout");
    assert.equal(runPeer(o, "missing.py", [], 1).status, "unavailable");
    assert.deepEqual(lastJsonLine('noise\n{"a": 1}\n{broken\n'), { a: 1 });
  });

  it("fits the checkpointed layers to each case's memory goal (selective recomputation)", () => {
    const [q06, q15, q7] = fullTrainCases();
    assert.deepEqual(
      [q06, q15, q7].map((c) => memoryGoalGiB(c!)),
      [15.7, 17.81, 24],
    );
    // With fp32 activations the goals need some recomputation, not all of it. A GPU in bf16 mode saves the large
    // activations in bf16: Qwen3-0.6B and Qwen2-1.5B then fit without any, Qwen2.5-7B with fewer layers.
    for (const c of [q06!, q15!, q7!]) {
      const k = fitCheckpointing(c, "cpu", "bf16", 0.05);
      assert.ok(typeof k === "number" && k > 1 && k < c.config.numLayers, `${c.shape}: ${k}`);
    }
    for (const c of [q06!, q15!]) assert.equal(fitCheckpointing(c, "cuda", "bf16", 0.05), 0, c.shape);
    const k7 = fitCheckpointing(q7!, "cuda", "bf16", 0.05);
    const k7fp32 = fitCheckpointing(q7!, "cpu", "bf16", 0.05) as number;
    assert.ok(typeof k7 === "number" && k7 > 1 && k7 < k7fp32, `qwen2.5-7b: ${k7} vs ${k7fp32}`);
    // A smoke case whose goal sits halfway between its no-checkpointing and all-layers estimates runs with k.
    const [smokeCase] = smokeTrainCases();
    const tiny = { ...smokeCase!, config: { ...smokeCase!.config, numLayers: 4 } }; // k = 1 saves nothing: 4 layers
    const estimate = (k: number) =>
      estimateTrainingMemory({
        config: tiny!.config,
        tokensPerMicroBatch: tiny!.microBatch * tiny!.seq,
        finetuning: "lora",
        lora: {
          r: 16,
          targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
          dropout: 0.05,
        },
        gradientCheckpointing: k,
        weightsDtype: "f32",
      }).total;
    const layers = tiny!.config.numLayers;
    const halfway = (estimate(0) + estimate(layers)) / 2 / 0.9 / 2 ** 30;
    const c = { ...tiny!, anchors: [{ ckpt: true, tokensPerS: 1, peakGiB: halfway }] };
    const k = fitCheckpointing(c, "cpu", "f32", 0.05);
    assert.ok(typeof k === "number" && k > 1 && k < layers, `k ${k} of ${layers}`);
    const smokeRun = {
      device: "cpu",
      smoke: true,
      generate: null,
      profile: false,
      ckpt: "fit",
      log: quiet,
    } as const;
    const r = runGpuBench({ ...smokeRun, cases: [c] });
    const [v, more] = r.training[0]!.variants;
    assert.equal(v!.checkpointing, "fit");
    assert.equal(v!.gradientCheckpointing, k);
    assert.equal(v!.status, "ok");
    assert.equal(more, undefined, "the measured peak leaves no room for fewer layers");
    assert.ok(r.summary.some((l) => l.startsWith("smoke-tiny f32 ckpt fit")));

    // A goal one layer's step above the measured peak (within the refit's margin): fit still picks k from the
    // estimate, then the refit runs k - 1 layers, and its peak is the one predicted (the estimate's step per layer is
    // the engine's).
    const measured = v!.ours!.peakBytes!;
    const step = estimate(k - 1) - estimate(k);
    const roomyGiB = (measured + step + 1) / 0.97 / 2 ** 30;
    const roomy = { ...tiny!, anchors: [{ ckpt: true, tokensPerS: 1, peakGiB: roomyGiB }] };
    assert.equal(fitCheckpointing(roomy, "cpu", "f32", 0.05), k);
    assert.equal(refitCheckpointing(roomy, "cpu", "f32", 0.05, k, measured), k - 1);
    assert.equal(refitCheckpointing(roomy, "cpu", "f32", 0.05, k, measured + 2), null, "1 byte short");
    // A measured peak a step over that goal asks for one layer more, one far over it for none that fits.
    assert.equal(refitCheckpointing(roomy, "cpu", "f32", 0.05, k, measured + 2 * step), k + 1);
    assert.equal(refitCheckpointing(roomy, "cpu", "f32", 0.05, k, measured + 9 * step), null);
    const r2 = runGpuBench({ ...smokeRun, cases: [roomy] });
    const [fit2, refit] = r2.training[0]!.variants;
    assert.equal(fit2!.gradientCheckpointing, k);
    assert.equal(fit2!.ours!.peakBytes, measured);
    assert.equal(refit!.checkpointing, "refit");
    assert.equal(refit!.gradientCheckpointing, k - 1);
    assert.equal(refit!.status, "ok");
    assert.equal(refit!.ours!.peakBytes, measured + step);
    assert.ok(r2.summary.some((l) => l.startsWith("smoke-tiny f32 ckpt refit: peak memory")));

    // A goal the estimate meets only with every layer checkpointed: fit's layout is the on variant's, which runs
    // instead; its measured peak (the estimate's misses included, within the refit's margin) leaves room, so the
    // refit runs fewer layers, with the peak predicted from on's.
    const tight = {
      ...tiny!,
      anchors: [{ ckpt: true, tokensPerS: 1, peakGiB: (estimate(layers - 1) - 1) / 0.9 / 2 ** 30 }],
    };
    assert.equal(fitCheckpointing(tight, "cpu", "f32", 0.05), layers);
    const r3 = runGpuBench({ ...smokeRun, ckpt: "all", cases: [tight] });
    const byMode = new Map(r3.training[0]!.variants.map((x) => [x.checkpointing, x]));
    assert.deepEqual([...byMode.keys()], ["off", "fit", "on", "refit"]);
    assert.equal(byMode.get("fit")!.status, "skipped");
    assert.match(byMode.get("fit")!.note!, /the on variant's/);
    const onPeak = byMode.get("on")!.ours!.peakBytes!;
    const re = byMode.get("refit")!;
    assert.equal(re.status, "ok");
    const kk = re.gradientCheckpointing as number;
    assert.ok(kk > 1 && kk < layers, `refit ${kk}`);
    assert.equal(re.ours!.peakBytes, onPeak + estimate(kk) - estimate(layers));
    assert.ok(re.ours!.peakBytes! <= 0.97 * tight.anchors[0]!.peakGiB * 2 ** 30);
  });
});
