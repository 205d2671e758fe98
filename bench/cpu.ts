// CPU GEMM benchmark: our sgemm vs numpy + OpenBLAS on the products of a training step.
// Prints ONE JSON object on stdout (progress goes to stderr).
// Usage: tsx bench/cpu.ts [--quick] [--python=/usr/bin/python3]
//   --quick skips the batch-4 Qwen-like case (GEMM shapes and step); --python picks the interpreter whose numpy is the peer.
import { cpus, loadavg } from "node:os";
import { loadGemm, type GemmAddon } from "./gemm-addon.js";
import { NumpyPeer, type TimingGoal } from "./numpy-peer.js";
import { BENCH_MODELS, trainingStepShapes, type GemmShape } from "./shapes.js";
import { benchStep, STEP_CASES } from "./step.js";

// Each shape is timed in alternating rounds (ours, peer, ours, ...) and each side keeps its best,
// so a burst of other work on the machine does not land on one side only.
const ROUNDS = 3;
const ROUND_GOAL: TimingGoal = { minSeconds: 0.1, minRuns: 2 };

/** Deterministic values in [-1, 1) without paying for a PRNG on 100M+ elements. */
function filled(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((Math.imul(i, 2654435761) >>> 0) % 2048) / 1024 - 1;
  return out;
}

/** A closure running our sgemm on fresh operands of the shape (C = A B, beta = 0). */
function prepareOurs(gemm: GemmAddon, s: GemmShape): () => void {
  const lda = s.transA ? s.M : s.K;
  const ldb = s.transB ? s.K : s.N;
  const A = filled(s.M * s.K);
  const B = filled(s.K * s.N);
  const C = new Float32Array(s.M * s.N);
  return () => gemm.sgemm(s.transA, s.transB, s.M, s.N, s.K, 1, A, lda, B, ldb, 0, C, s.N);
}

/** Best seconds per call, timed like the peer: batches of >= 1 ms, best batch. */
function bestTime(run: () => void, goal: TimingGoal): number {
  let t = performance.now();
  run();
  const once = (performance.now() - t) / 1e3;
  const inner = Math.max(1, Math.floor(1e-3 / Math.max(once, 1e-7)));
  let best = Infinity;
  const start = performance.now();
  for (let runs = 0; runs < goal.minRuns || performance.now() - start < goal.minSeconds * 1e3; runs++) {
    t = performance.now();
    for (let i = 0; i < inner; i++) run();
    best = Math.min(best, (performance.now() - t) / 1e3 / inner);
  }
  return best;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
const geomean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const python = process.argv.find((a) => a.startsWith("--python="))?.slice("--python=".length);
  const gemm = loadGemm();
  const loadBefore = loadavg()[0];
  // The whole steps first: after the GEMM section, hundreds of MB of operands left for the garbage collector and
  // the exiting numpy process took CPU from the small steps (the fixture's step ran 20% slower there).
  const stepRuns = (quick ? STEP_CASES.filter((c) => c.quick) : STEP_CASES).map((c) => {
    const r = benchStep(c);
    process.stderr.write(
      `${r.case}: train ${r.trainStep.ms} ms (${r.trainStep.cpuMs} ms CPU) ${r.trainStep.tokensPerS} tok/s ${r.trainStep.gflops} GFLOP/s\n`,
    );
    return { c, r };
  });
  const peer = await NumpyPeer.start(python);
  const models = quick ? BENCH_MODELS.filter((m) => m.tokens <= 256 || m.quick) : BENCH_MODELS;
  const rows: { name: string; oursGflops: number; ratio: number | null }[] = [];
  let peerFailure: string | null = null;
  try {
    for (const model of models) {
      for (const s of trainingStepShapes(model)) {
        const flop = 2 * s.M * s.N * s.K;
        const runOurs = prepareOurs(gemm, s);
        let ours = Infinity;
        let theirs: number | null = null;
        for (let round = 0; round < ROUNDS; round++) {
          ours = Math.min(ours, bestTime(runOurs, ROUND_GOAL));
          if (!(peer instanceof NumpyPeer) || peerFailure) continue;
          try {
            theirs = Math.min(theirs ?? Infinity, await peer.time(s, ROUND_GOAL));
          } catch (e) {
            // Keep our numbers (e.g. the peer ran out of memory); say why its column stops.
            peerFailure = `${(e as Error).message}; no peer numbers from here on`;
            theirs = null;
          }
        }
        const row = {
          name: s.name,
          op: `${s.transA ? "T" : "N"}${s.transB ? "T" : "N"}`,
          M: s.M,
          N: s.N,
          K: s.K,
          oursGflops: round(flop / ours / 1e9, 1),
          peerGflops: theirs === null ? null : round(flop / theirs / 1e9, 1),
          oursMs: round(ours * 1e3, 4),
          peerMs: theirs === null ? null : round(theirs * 1e3, 4),
          ratio: theirs === null ? null : round(theirs / ours, 2),
        };
        rows.push(row);
        process.stderr.write(
          `${row.name.padEnd(28)} ${row.op} ${String(row.oursGflops).padStart(7)} vs ${String(row.peerGflops).padStart(7)} GFLOP/s  x${row.ratio}\n`,
        );
      }
    }
  } finally {
    if (peer instanceof NumpyPeer) peer.close();
  }

  // The whole step, against our own best GEMM throughput of this run.
  const bestGemm = Math.max(...rows.map((r) => r.oursGflops));
  const bestOfShapes = (label: string) => {
    const own = rows.filter((r) => r.name.startsWith(`${label}/`)).map((r) => r.oursGflops);
    return own.length > 0 ? Math.max(...own) : null;
  };
  const steps = stepRuns.map(({ c, r }) => {
    return {
      ...r,
      trainStepVsBestGemm: round(r.trainStep.gflops / bestGemm, 2),
      // Tiny models cannot reach the big shapes' GEMM speed: also compare with the best of their own products.
      trainStepVsBestGemmOfItsShapes: bestOfShapes(c.gemmLabel)
        ? round(r.trainStep.gflops / bestOfShapes(c.gemmLabel)!, 2)
        : null,
      forwardVsBestGemm: round(r.forward.gflops / bestGemm, 2),
    };
  });

  const ratios = rows.map((r) => r.ratio).filter((r): r is number => r !== null);
  const result = {
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      logicalCpus: cpus().length,
      ...gemm.gemmInfo(),
      // Other work on the machine skews both columns; a 1-minute load near 0 means a clean run.
      loadAvg1mBefore: round(loadBefore, 2),
      loadAvg1mAfter: round(loadavg()[0], 2),
    },
    peer: peer instanceof NumpyPeer ? { name: "numpy + BLAS", ...peer.info } : null,
    ...(peer instanceof NumpyPeer ? {} : { peerReason: peer.reason }),
    ...(peerFailure ? { peerFailure } : {}),
    goal: "ratio = our GFLOP/s / peer GFLOP/s, target >= 0.7 on every shape",
    summary:
      ratios.length === 0
        ? null
        : {
            geomeanRatio: round(geomean(ratios), 2),
            minRatio: Math.min(...ratios),
            belowTarget: rows.filter((r) => r.ratio !== null && r.ratio < 0.7).map((r) => r.name),
          },
    shapes: rows,
    step: {
      goal: "a training step at >= 40% of our best GEMM GFLOP/s (bestGemmGflops)",
      bestGemmGflops: bestGemm,
      cases: steps,
    },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

await main();
