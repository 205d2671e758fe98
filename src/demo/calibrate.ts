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
  /** Timed steps after the untimed warm-up steps (default 8). */
  steps?: number;
}

// The first steps of a fresh model are several times slower than the rest (allocation, page faults, thread pool
// start-up): measured 0.30 s against 0.10 s in the run. They are run but not timed, on the LONGEST batch: the
// engine's work buffers only grow, so a timed batch longer than every earlier one would pay for their growth
// (timing short-to-long batches that way overestimated the step by ~30%: 0.07 s planned, 0.05 s in the run).
const WARMUP_STEPS = 3;

/**
 * Seconds per optimizer step (the mean of the timed steps). Training groups rows of similar length into a batch
 * (group_by_length), so each timed batch is a run of neighbours in length order, and the timed batches are spread
 * evenly over the length range (their mean is then the mean step of an epoch). The estimate only holds while the
 * machine's load stays as it was: another process taking a core during training makes every step slower.
 */
export function measureStepSeconds(o: CalibrationOptions): number {
  const model = EngineModel.load(o.modelDir, { threads: o.threads ?? availableParallelism() });
  try {
    if (o.finetuning === "full") model.setFullFinetune(true);
    else model.setLora({ r: 16, alpha: 32, useRslora: false, dropout: 0, targets: [...ALL_PROJECTIONS] });
    const steps = o.steps ?? 8;
    const byLength = [...o.rows].sort((a, b) => a.ids.length - b.ids.length);
    const size = Math.min(o.batchSize, byLength.length);
    // Batch k of n starts at the (k + 0.5) / n quantile of length.
    const batchAt = (k: number, n: number) => {
      const start = Math.floor(((k + 0.5) / n) * (byLength.length - size + 1));
      return byLength.slice(start, start + size);
    };
    let total = 0;
    for (let s = 0; s < WARMUP_STEPS + steps; s++) {
      const timed = s >= WARMUP_STEPS;
      const batch = timed ? batchAt(s - WARMUP_STEPS, steps) : byLength.slice(byLength.length - size);
      const started = performance.now();
      model.zeroGrads();
      model.forwardBackward(collate(batch, o.padId), { gradScale: 1e-3 });
      model.adamwStep({ lr: 0, weightDecay: 0, maxGradNorm: 1 });
      if (timed) total += (performance.now() - started) / 1000;
    }
    return total / steps;
  } finally {
    model.dispose();
  }
}
