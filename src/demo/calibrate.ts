// How long one optimizer step takes on this machine, measured on real prepared rows before training, so a
// time budget (`--minutes`) becomes a step count: the learning-rate schedule needs the total up front.
import { availableParallelism } from "node:os";
import { EngineModel } from "../engine/model.js";
import { ALL_PROJECTIONS } from "../model/layout.js";
import { collate } from "../train/batches.js";
import type { TrainRow } from "../train/data.js";

export interface CalibrationOptions {
  modelDir: string;
  rows: readonly TrainRow[];
  batchSize: number;
  finetuning: "full" | "lora";
  padId: number;
  threads?: number;
  /** Timed steps after the untimed warm-up steps (default 5). */
  steps?: number;
}

// The first steps of a fresh model are several times slower than the rest (allocation, page faults, thread pool
// start-up): measured 0.30 s against 0.10 s in the run. They are run but not timed.
const WARMUP_STEPS = 3;

/** Seconds per optimizer step (the median of the timed steps), with batches drawn evenly over `rows`. */
export function measureStepSeconds(o: CalibrationOptions): number {
  const model = EngineModel.load(o.modelDir, { threads: o.threads ?? availableParallelism() });
  try {
    if (o.finetuning === "full") model.setFullFinetune(true);
    else model.setLora({ r: 16, alpha: 32, useRslora: false, dropout: 0, targets: [...ALL_PROJECTIONS] });
    const steps = o.steps ?? 5;
    const all = steps + WARMUP_STEPS;
    const times: number[] = [];
    for (let s = 0; s < all; s++) {
      // Rows spread over the whole set: their lengths are typical of the training batches.
      const stride = Math.max(1, Math.floor(o.rows.length / (o.batchSize * all)));
      const batch = Array.from(
        { length: Math.min(o.batchSize, o.rows.length) },
        (_, k) => o.rows[(s * o.batchSize + k) * stride] ?? o.rows[k],
      );
      const started = performance.now();
      model.zeroGrads();
      model.forwardBackward(collate(batch, o.padId), { gradScale: 1e-3 });
      model.adamwStep({ lr: 0, weightDecay: 0, maxGradNorm: 1 });
      if (s >= WARMUP_STEPS) times.push((performance.now() - started) / 1000);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    model.dispose();
  }
}
