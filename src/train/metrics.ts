// `<outputDir>/metrics.jsonl`: one JSON line per logging step (and per validation or task evaluation),
// appended as training goes so a crash loses at most the line being written. The report reads exactly these shapes.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../store/atomic.js";

export const METRICS_FILE = "metrics.jsonl";

export interface TrainLogLine {
  step: number;
  epoch: number;
  loss: number | null;
  lr: number;
  grad_norm: number | null;
  tokens_per_s: number;
  memory_mb: number;
}

export interface ValLogLine {
  step: number;
  val_loss: number | null;
}

/** A task metric measured during training (training.eval_task_metric), as the report draws it. */
export interface TaskEvalLogLine {
  step: number;
  epoch: number;
  eval: { metric: string; value: number | null };
}

export type LogEntry = TrainLogLine | ValLogLine | TaskEvalLogLine;

/** NaN and Infinity have no JSON form: the report expects null for a value that could not be computed. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export class MetricsLog {
  constructor(readonly path: string) {}

  /** Starts an empty log (a fresh run) or keeps only the lines up to `step` (a run resumed from there). */
  reset(keepUpToStep: number | null): void {
    let kept = "";
    if (keepUpToStep !== null && existsSync(this.path)) {
      for (const line of readFileSync(this.path, "utf8").split("\n")) {
        try {
          const row = JSON.parse(line) as { step?: unknown };
          if (typeof row.step === "number" && row.step <= keepUpToStep) kept += line + "\n";
        } catch {
          // a line cut short by a crash: the resumed run writes it again
        }
      }
    }
    writeFileAtomic(this.path, kept);
  }

  append(entry: LogEntry): void {
    appendFileSync(this.path, JSON.stringify(entry) + "\n");
  }
}
