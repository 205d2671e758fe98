// Evaluation metrics usable without a model: BLEU and chrF(++) identical to sacreBLEU 2.6.0, JSON field F1,
// exact match and perplexity.
export * from "./bleu.js";
export * from "./chrf.js";
export * from "./exact.js";
export * from "./jsonExtract.js";
export * from "./jsonF1.js";
export * from "./perplexity.js";
export { tokenize13a, type BleuTokenizer } from "./tokenize13a.js";
export { SACREBLEU_VERSION } from "./signature.js";
export type { References as MetricReferences } from "./references.js";
