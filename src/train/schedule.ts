// Learning-rate schedules with warmup, with the semantics of HF transformers' get_*_schedule_with_warmup:
// linear warmup from 0 over `warmupSteps`, then constant, linear decay to 0, or half-cosine decay to 0.

export type SchedulerType = "constant" | "linear" | "cosine";

export interface Schedule {
  type: SchedulerType;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** HF computes warmup steps as ceil(ratio * total) when only a ratio is given. */
export function warmupStepsFor(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

/** The learning rate used for optimizer step `step` (0-based: the first update uses step 0). */
export function learningRateAt(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.baseLr * step) / Math.max(1, s.warmupSteps);
  if (s.type === "constant") return s.baseLr;
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = (step - s.warmupSteps) / decaySteps;
  if (s.type === "linear") return s.baseLr * Math.max(0, 1 - progress);
  return s.baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
