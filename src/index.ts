// The public API of tuneforge: everything the CLI does is available as a function here.
export * from "./model/config.js";
export * from "./model/safetensors.js";
export { writeFileAtomic, writeJsonAtomic } from "./store/atomic.js";
export * from "./model/layout.js";
export { createRng, deriveSeed, type Rng } from "./data/random.js";
export { TuneforgeError } from "./errors.js";
export type * from "./data/types.js";
export {
  cleanExample,
  cleanText,
  DEFAULT_CLEAN_OPTIONS,
  type CleanOptions,
  type CleanResult,
  type DropReason,
} from "./data/clean.js";
export {
  Deduplicator,
  exactKey,
  normalizedKey,
  normalizeForMatch,
  type DedupMode,
  type DedupOptions,
  type DedupScope,
} from "./data/dedup.js";
export {
  DEFAULT_SPLIT_RATIOS,
  Splitter,
  splitPoint,
  validateSplitRatios,
  type SplitRatios,
} from "./data/split.js";
export {
  Augmenter,
  DEFAULT_AUGMENT_OPTIONS,
  loadSynonyms,
  type AugmentOptions,
  type SynonymDictionary,
} from "./data/augment.js";
export { LengthHistogram, PrepareStats, type KeptRow, type StatsJson } from "./data/stats.js";
export { Tokenizer, defaultTokenizerDir, type DecodeOptions } from "./data/tokenizer.js";
export {
  renderExample,
  renderPrompt,
  type Conversation,
  type RenderedExample,
  type RenderOptions,
  type TemplateOptions,
  type TemplateSpec,
} from "./data/template.js";
export {
  IGNORE_INDEX,
  promptTokenCount,
  tokenizeExample,
  truncateTokenizedRow,
  type TokenizedExample,
  type TokenizeOptions,
} from "./data/render.js";
export { Packer, packRows, type Pack, type PackableRow, type PackerOptions } from "./data/pack.js";
export {
  CONFIG_FILES,
  TOKENIZER_FILES,
  MODEL_SIDE_FILES,
  isModelSideFile,
  readJsonFile,
  copyModelSideFiles,
} from "./model/folder.js";
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  checkAdapterMatchesModel,
  initLoraWeights,
  loraScale,
  parseProjectionModule,
  readAdapter,
  writeAdapter,
  type InitLoraOptions,
  type LoraAdapter,
  type LoraAdapterConfig,
  type LoraWeights,
} from "./model/peft.js";
export { mergeAdapter, mergeLoraWeight, type MergeOptions, type MergeResult } from "./model/merge.js";
export {
  PULL_RECORD_FILE,
  pullModel,
  selectModelFiles,
  type PullOptions,
  type PullProgress,
  type PullResult,
} from "./model/hub.js";
export {
  QWEN_SPLIT_PATTERN,
  byteToUnicode,
  pretokenize,
  toByteLevel,
  tokenizerJson,
  trainByteLevelBpe,
  type BpeModel,
  type BpeTrainOptions,
} from "./model/bpe.js";
export {
  CHATML_TEMPLATE,
  TINY_DEFAULTS,
  TINY_SPECIAL_TOKENS,
  buildTinyModel,
  ensureTinyModel,
  tinyModelHash,
  type EnsureTinyModelOptions,
  type TinyModel,
  type TinyModelOptions,
} from "./model/tiny.js";
export * from "./eval/metrics/index.js";
export {
  METRIC_NAMES,
  readSegments,
  scoreFiles,
  scoreSegments,
  type MetricName,
  type MetricOptions,
  type ScoreReport,
  type SegmentScore,
} from "./eval/score.js";
export * from "./config/schema.js";
export {
  configFromObject,
  loadConfig,
  parseConfig,
  resolveConfigPaths,
  type LoadedConfig,
  type ParseConfigOptions,
} from "./config/load.js";
export {
  acceptConfigOverrides,
  applyOverrides,
  overridesFromCommand,
  parseOverrides,
  resolveFlag,
  type ConfigOverrides,
} from "./config/overrides.js";
export { ConfigError, formatIssue, type ConfigIssue } from "./config/errors.js";
export {
  INIT_TEMPLATES,
  examplesDir,
  initProject,
  packageRoot,
  type InitOptions,
  type InitTemplate,
} from "./config/init.js";
export { editDistance, nearest } from "./config/suggest.js";
export { createProgress, formatDuration, type Progress, type ProgressOptions } from "./cli/progress.js";
export {
  PHRASING_IDS,
  generatePurchaseOrders,
  writePurchaseOrdersJsonl,
  type GeneratedOrder,
  type OrderProduct,
  type PurchaseOrder,
} from "./synth/purchaseOrders.js";
export * from "./engine/index.js";
export {
  buildReportHtml,
  buildReportModel,
  writeReport,
  findRunDirs,
  loadRun,
  loadResultsFile,
  loadResultsDir,
  parseMetricsJsonl,
  readMetricsJsonl,
  type ReportOptions,
  type WriteReportOptions,
  type MetricsLine,
  type RunInfo,
  type ResultsFile,
  type ResultsExample,
  type ResultsScores,
  type ReportModel,
} from "./eval/report/index.js";
export {
  loadRows,
  describeSource,
  detectFormat,
  formatOf,
  slugifyDomain,
  SOURCE_FORMATS,
  KNOWN_COLUMN_PAIRS,
  normalizeColumns,
  CSV_DELIMITERS,
  detectDelimiter,
  chunkText,
  splitByCharacters,
  splitByTokens,
  DEFAULT_CHUNK_CHARS,
  DEFAULT_CHUNK_TOKENS,
  extractDocumentText,
  ACCEPTED_ROW_FORMATS,
  type Chunk,
  type ChunkOptions,
  type ColumnMapping,
  type ColumnsConfig,
  type LoadReject,
  type LoadSpec,
  type SourceDescription,
  type SourceFile,
  type SourceFormat,
} from "./data/load/index.js";
export {
  EVAL_METRICS,
  EVAL_TASKS,
  defaultMetrics,
  detectTask,
  isGenerationMetric,
  isJsonObjectText,
  parseTask,
  resolveMetrics,
  type EvalMetric,
  type EvalTask,
  type TaskEvidence,
} from "./eval/task.js";
export {
  DEFAULT_BATCH_SIZE,
  DEFAULT_MAX_NEW_TOKENS,
  applyAdapter,
  cutAtStop,
  endOfTurnIds,
  generateText,
  loadModel,
  readAdapterFor,
  type GenerationOptions,
  type LoadedModel,
} from "./eval/generate.js";
export {
  RESULTS_FILE_SUFFIX,
  resultsJson,
  safeResultsName,
  writeResults,
  type EvalExample,
  type EvalResult,
  type EvalScores,
} from "./eval/results.js";
export {
  datasetLoss,
  evaluate,
  evaluateAllDomains,
  promptSource,
  referenceText,
  testDomains,
  type DatasetLoss,
  type EvalPhase,
  type EvalProgress,
  type EvaluateAllDomainsOptions,
  type EvaluateOptions,
  type EvaluateSettings,
  type RowLoss,
} from "./eval/evaluate.js";
export {
  TRAINING_CONFIG_FILES,
  buildPrompts,
  promptSettingsFor,
  readSavedPromptSettings,
  translate,
  translateLoaded,
  type PromptSettings,
  type TranslateOptions,
} from "./eval/translate.js";
export { compare, type CompareOptions, type CompareResult, type CompareRow } from "./eval/compare.js";
// Training loop (tuneforge train).
export * from "./train/index.js";
// The data pipeline as one call (tuneforge prepare / validate).
export {
  MANIFEST_FILE,
  REJECTS_FILE,
  STATS_FILE,
  prepare,
  readManifest,
  type PrepareManifest,
  type PrepareOptions,
  type PrepareResult,
  type PreparedFileInfo,
  type RenderedRow,
} from "./data/prepare.js";
export { validateProject, type InputReport, type ValidationReport } from "./data/validate.js";
// Where models live: the built-in tiny model, local folders, pulled hub models.
export {
  bundledCorpus,
  hubModelDir,
  isTinyModel,
  resolveModelDir,
  resolveTokenizerDir,
  tinyModelDir,
  tuneforgeHome,
} from "./model/resolve.js";
export { JsonlWriter, readJsonl } from "./store/jsonl.js";
export { learningRateAt, warmupStepsFor, type Schedule, type SchedulerType } from "./train/schedule.js";
export { main as runCli } from "./cli/main.js";
// `tuneforge demo`: the whole pipeline on generated Spanish purchase orders, before/after comparison.
export {
  runDemo,
  demoTokenizerCorpus,
  type DemoOptions,
  type DemoResult,
  type DemoScores,
  type DemoStage,
  type DemoProgress,
} from "./demo/demo.js";
export { cudaInfo, kernelCheck, type CudaInfo, type KernelCheckEntry } from "./engine/native.js";
export { RICH_TEMPLATE_SHARE, type GenerateOptions, type PhrasingVariety } from "./synth/purchaseOrders.js";
