// Field-level F1 for structured (JSON) outputs: a predicted field is a true positive when the reference has the
// same key path with the same normalised value. Micro-averaged over a corpus (true positives and field counts
// summed across examples), so big objects weigh more than small ones. Outputs with no parseable JSON object are
// counted separately and contribute no predicted fields (their reference fields still count as missed).
import { TuneforgeError } from "../../errors.js";
import { extractJsonObject, flattenJson, type JsonObject } from "./jsonExtract.js";
import { referencesBySegment, type References } from "./references.js";

export interface JsonF1Counts {
  /** Fields in both prediction and reference with equal values. */
  tp: number;
  /** Fields in the prediction. */
  predicted: number;
  /** Fields in the reference. */
  expected: number;
}

export interface JsonF1Example extends JsonF1Counts {
  precision: number;
  recall: number;
  f1: number;
  /** False when no JSON object could be found in the prediction. */
  parsed: boolean;
}

export interface JsonF1Score extends JsonF1Counts {
  /** Micro-averaged, 0-1. */
  precision: number;
  recall: number;
  f1: number;
  examples: number;
  /** Predictions with no parseable JSON object. */
  unparseable: number;
  /** unparseable / examples. */
  unparseable_rate: number;
  signature: string;
}

export interface JsonF1Options {
  /** Names of the reference streams (files), for error messages. */
  refNames?: ReadonlyArray<string>;
}

/**
 * Precision, recall and F1 from counts. With nothing to find and nothing predicted everything is right (1);
 * otherwise a 0/0 side is 0, so an empty prediction for a non-empty reference scores 0, not NaN.
 */
export function precisionRecallF1(c: JsonF1Counts): { precision: number; recall: number; f1: number } {
  if (c.predicted === 0 && c.expected === 0) return { precision: 1, recall: 1, f1: 1 };
  const precision = c.predicted > 0 ? c.tp / c.predicted : 0;
  const recall = c.expected > 0 ? c.tp / c.expected : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

function countFields(pred: Map<string, string>, ref: Map<string, string>): JsonF1Counts {
  let tp = 0;
  for (const [path, value] of pred) if (ref.get(path) === value) tp++;
  return { tp, predicted: pred.size, expected: ref.size };
}

function parseReference(ref: string | JsonObject, where: { file?: string; line?: number }): JsonObject {
  if (typeof ref !== "string") return ref;
  const obj = extractJsonObject(ref);
  if (obj === undefined) {
    const which = where.line !== undefined ? `the reference of segment ${where.line}` : "the reference";
    throw new TuneforgeError(`${which} has no JSON object, so JSON field F1 cannot score against it`, {
      ...where,
      hint: 'each reference must be a JSON object such as {"name": "x"}; use another metric for plain text',
    });
  }
  return obj;
}

/** Field F1 of one prediction (raw model text) against its reference(s); the best-scoring reference counts. */
export function jsonFieldF1(
  prediction: string,
  references: string | JsonObject | ReadonlyArray<string | JsonObject>,
): JsonF1Example {
  const refs = Array.isArray(references) ? references : [references as string | JsonObject];
  return scoreExample(
    prediction,
    refs.map((r) => parseReference(r, {})),
  );
}

function scoreExample(prediction: string, refs: ReadonlyArray<JsonObject>): JsonF1Example {
  const predObj = extractJsonObject(prediction);
  const predFields = predObj ? flattenJson(predObj) : new Map<string, string>();
  let best: JsonF1Example | undefined;
  for (const ref of refs) {
    const counts = countFields(predFields, flattenJson(ref));
    const ex = { ...counts, ...precisionRecallF1(counts), parsed: predObj !== undefined };
    if (best === undefined || ex.f1 > best.f1) best = ex;
  }
  if (best === undefined) throw new TuneforgeError("JSON field F1 needs at least one reference");
  return best;
}

export interface JsonF1Corpus {
  score: JsonF1Score;
  examples: JsonF1Example[];
}

/** Micro-averaged field F1 over a corpus, plus the per-example results. */
export function corpusJsonF1(
  predictions: ReadonlyArray<string>,
  references: References,
  opts: JsonF1Options = {},
): JsonF1Corpus {
  const { perSegment, streamOf, nrefs } = referencesBySegment(
    predictions.length,
    references,
    "JSON field F1",
  );
  const examples = predictions.map((pred, i) => {
    const refs = perSegment[i].map((r, k) =>
      parseReference(r, { file: opts.refNames?.[streamOf[i][k]], line: i + 1 }),
    );
    return scoreExample(pred, refs);
  });
  const total: JsonF1Counts = { tp: 0, predicted: 0, expected: 0 };
  let unparseable = 0;
  for (const ex of examples) {
    total.tp += ex.tp;
    total.predicted += ex.predicted;
    total.expected += ex.expected;
    if (!ex.parsed) unparseable++;
  }
  return {
    score: {
      ...total,
      ...precisionRecallF1(total),
      examples: examples.length,
      unparseable,
      unparseable_rate: unparseable / examples.length,
      signature: `nrefs:${nrefs}|avg:micro|match:path+value|num:value|str:trim`,
    },
    examples,
  };
}
