// Public API of the training stage.
export { train, trainAllDomains, totalStepsFor, validationLoss } from "./trainer.js";
export type { TrainOptions, TrainAllOptions, TrainResult, StopReason } from "./trainer.js";
export { createTaskEvaluator, resolveTaskMetric, sampleRows, type TaskEvaluator } from "./taskEval.js";
export { estimateTrainingMemory, checkTrainingMemory, activationFloatsPerToken } from "./memory.js";
export type { MemoryEstimate, MemoryInput } from "./memory.js";
export { latestCheckpoint, type TrainerState } from "./checkpoint.js";
export {
  METRICS_FILE,
  type LogEntry,
  type TaskEvalLogLine,
  type TrainLogLine,
  type ValLogLine,
} from "./metrics.js";
export { learningRateAt, warmupStepsFor, type Schedule, type SchedulerType } from "./schedule.js";
