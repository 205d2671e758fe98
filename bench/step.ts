// Whole-step CPU benchmark: one training step (forward, loss, backward, AdamW) and forward-only, on the fixture
// shape, on a Qwen-like shape that fits a small machine (LoRA) and on the demo's tiny model (full fine-tuning),
// with tokens/s, achieved GFLOP/s and the process CPU time per step (an honest second figure on a busy machine).
// FLOPs are counted from the model's shapes (matmuls, attention, LM head), not measured, so GFLOP/s is
// comparable with the GEMM benchmark's numbers: the goal is a step at >= 40% of our best GEMM throughput.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineModel } from "../src/engine/index.js";
import { parseModelConfig, type ModelConfig } from "../src/model/config.js";
import { ALL_PROJECTIONS, expectedTensors, projectionShape } from "../src/model/layout.js";
import { writeSafetensors } from "../src/model/safetensors.js";
import { FIXTURES } from "../test/helpers/fixtures.js";

export interface StepCase {
  label: string;
  /** The GEMM benchmark's label for this model's matrix shapes (bench/shapes.ts BENCH_MODELS). */
  gemmLabel: string;
  /** An HF config.json for a random model, or a fixture model folder. */
  config?: Record<string, unknown>;
  modelDir?: string;
  rows: number;
  seq: number;
  /** LoRA rank on every projection; 0 = full fine-tuning (every weight trained, as the demo does). */
  loraRank: number;
  /** Part of `bench:cpu --quick`. */
  quick?: boolean;
}

export const STEP_CASES: StepCase[] = [
  {
    label: "fixture (base/qwen3)",
    gemmLabel: "fixture",
    modelDir: join(FIXTURES, "base/qwen3/model"),
    rows: 2,
    seq: 24,
    loraRank: 8,
    quick: true,
  },
  ...[1, 4].map((rows) => ({
    label: `qwen-like vocab 151936, hidden 256, 4 layers, seq 256, batch ${rows}`,
    gemmLabel: rows === 1 ? "qwen-t256" : "qwen-t1024",
    config: {
      model_type: "qwen3",
      vocab_size: 151936,
      hidden_size: 256,
      intermediate_size: 768,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 64,
      rms_norm_eps: 1e-6,
      rope_theta: 1e6,
      tie_word_embeddings: true,
    },
    rows,
    seq: 256,
    loraRank: 16,
    quick: rows === 1,
  })),
  {
    // src/demo: DEMO_TINY_SIZES on TINY_DEFAULTS (src/model/tiny.ts), its own BPE vocabulary (2048 + 3 special
    // tokens), batch 4 of length-grouped rows of ~150-300 tokens.
    label: "demo tiny, full FT (vocab 2051, hidden 128, 2 layers, seq 224, batch 4)",
    gemmLabel: "demo",
    config: {
      model_type: "qwen3",
      vocab_size: 2051,
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      tie_word_embeddings: true,
    },
    rows: 4,
    seq: 224,
    loraRank: 0,
    quick: true,
  },
];

/** Matmul + attention FLOPs of one forward pass over `tokens` tokens in sequences of `seq`. */
export function forwardFlops(c: ModelConfig, tokens: number, seq: number, loraRank: number) {
  let proj = 0;
  let lora = 0;
  for (const p of ALL_PROJECTIONS) {
    const [out, inp] = projectionShape(c, p);
    proj += 2 * out * inp;
    lora += 2 * loraRank * (out + inp);
  }
  // Causal attention: on average each query sees seq/2 keys, for QK^T and PV.
  const attention = 2 * 2 * (seq / 2) * c.headDim * c.numHeads;
  const head = 2 * c.hiddenSize * c.vocabSize;
  return {
    base: tokens * c.numLayers * proj,
    lora: tokens * c.numLayers * lora,
    attention: tokens * c.numLayers * attention,
    head: tokens * head,
  };
}

/** A LoRA step: forward, then input gradients through the frozen base and head (same cost as forward),
 * LoRA's own weight and input gradients (twice its forward) and attention backward (twice its forward). */
export function loraStepFlops(c: ModelConfig, tokens: number, seq: number, r: number): number {
  const f = forwardFlops(c, tokens, seq, r);
  return 2 * (f.base + f.head) + 3 * f.lora + 3 * f.attention;
}

/** A full fine-tuning step: a LoRA step without LoRA, plus the weight gradients of every projection and the head. */
export function fullStepFlops(c: ModelConfig, tokens: number, seq: number): number {
  const f = forwardFlops(c, tokens, seq, 0);
  return 3 * (f.base + f.head) + 3 * f.attention;
}

function fill(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (((Math.imul(i + seed, 2654435761) >>> 0) % 2048) / 1024 - 1) * scale;
  return out;
}

function randomModel(raw: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "tf-bench-step-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
  const config = parseModelConfig(raw);
  const tensors = expectedTensors(config).map((t, i) => ({
    name: t.name,
    dtype: "F32" as const,
    shape: t.shape,
    data:
      t.shape.length === 1 ? new Float32Array(t.shape[0]).fill(1) : fill(t.shape[0] * t.shape[1], i, 0.05),
  }));
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

/** Best wall seconds of `run` over ~`seconds` of repeats (after one warm-up call), and the mean process CPU
 * seconds per run (all threads: spinning or contended threads show up here, not in the best wall time). */
function best(run: () => void, seconds: number, minRuns = 3): { wall: number; cpu: number } {
  run();
  let bestTime = Infinity;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let runs = 0;
  for (; runs < minRuns || performance.now() - start < seconds * 1e3; runs++) {
    const t = performance.now();
    run();
    bestTime = Math.min(bestTime, (performance.now() - t) / 1e3);
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: bestTime, cpu: (cpu.user + cpu.system) / 1e6 / runs };
}

export function benchStep(c: StepCase, seconds = 3) {
  const dir = c.modelDir ?? randomModel(c.config!);
  try {
    const model = EngineModel.load(dir);
    const cfg = model.config;
    if (c.loraRank > 0) {
      model.setLora({ r: c.loraRank, alpha: 2 * c.loraRank, targets: [...ALL_PROJECTIONS], seed: 1 });
    } else {
      model.setFullFinetune(true);
    }
    const n = c.rows * c.seq;
    const inputIds = Int32Array.from({ length: n }, (_, i) => (i * 7919) % cfg.vocabSize);
    const labels = Int32Array.from(inputIds);
    const batch = { rows: c.rows, inputIds, labels };
    // The trainer's step: gradient clipping as configured by default (max_grad_norm 1).
    const { wall: train, cpu: trainCpu } = best(() => {
      model.zeroGrads();
      model.forwardBackward(batch);
      model.adamwStep({ lr: 1e-4, maxGradNorm: 1 });
    }, seconds);
    const { wall: forward } = best(() => model.evalLoss(batch), seconds);
    const f = forwardFlops(cfg, n, c.seq, c.loraRank);
    const stepFlops =
      c.loraRank > 0 ? loraStepFlops(cfg, n, c.seq, c.loraRank) : fullStepFlops(cfg, n, c.seq);
    const fwdFlops = f.base + f.lora + f.attention + f.head;
    const peakMb = model.memory().peak / 2 ** 20;
    model.dispose();
    return {
      case: c.label,
      tokens: n,
      trainStep: {
        ms: +(train * 1e3).toFixed(2),
        cpuMs: +(trainCpu * 1e3).toFixed(2),
        tokensPerS: Math.round(n / train),
        gflops: +(stepFlops / train / 1e9).toFixed(1),
      },
      forward: {
        ms: +(forward * 1e3).toFixed(2),
        tokensPerS: Math.round(n / forward),
        gflops: +(fwdFlops / forward / 1e9).toFixed(1),
      },
      engineMemoryPeakMb: Math.round(peakMb),
    };
  } finally {
    if (!c.modelDir) rmSync(dir, { recursive: true, force: true });
  }
}
