// Exact match: the share of outputs equal to a reference after trimming, optionally after normalising case,
// whitespace and punctuation (for short answers where "Paris." and "paris" mean the same).
import { referencesBySegment, sentenceReferences, type References } from "./references.js";

export interface ExactMatchOptions {
  /** Compare case-insensitively. */
  lowercase?: boolean;
  /** Treat any run of whitespace as one space. */
  collapseWhitespace?: boolean;
  /** Drop Unicode punctuation (ASCII and e.g. Arabic "،" "؟"). */
  stripPunctuation?: boolean;
  /** Shorthand for all three, plus Unicode NFC so composed and decomposed accents compare equal. */
  normalize?: boolean;
}

export interface ExactMatchScore {
  /** matches / total, 0-1. */
  accuracy: number;
  matches: number;
  total: number;
  signature: string;
}

export function normalizeForExact(text: string, opts: ExactMatchOptions = {}): string {
  const all = opts.normalize === true;
  let s = all ? text.normalize("NFC") : text;
  if (all || opts.stripPunctuation) s = s.replace(/\p{P}/gu, "");
  if (all || opts.collapseWhitespace) s = s.replace(/\s+/gu, " ");
  if (all || opts.lowercase) s = s.toLowerCase();
  return s.trim();
}

/** True when the output equals any of the references after normalisation. */
export function isExactMatch(
  hyp: string,
  refs: string | ReadonlyArray<string>,
  opts: ExactMatchOptions = {},
): boolean {
  const h = normalizeForExact(hyp, opts);
  return sentenceReferences(refs).some((r) => normalizeForExact(r, opts) === h);
}

export function exactMatchSignature(opts: ExactMatchOptions, nrefs: number | "var"): string {
  const all = opts.normalize === true;
  return [
    `nrefs:${nrefs}`,
    "trim:yes",
    `case:${all || opts.lowercase ? "lc" : "mixed"}`,
    `space:${all || opts.collapseWhitespace ? "collapse" : "keep"}`,
    `punct:${all || opts.stripPunctuation ? "strip" : "keep"}`,
    `nfc:${all ? "yes" : "no"}`,
  ].join("|");
}

/** Per-segment matches and the corpus accuracy. */
export function exactMatch(
  hyps: ReadonlyArray<string>,
  refs: References,
  opts: ExactMatchOptions = {},
): { score: ExactMatchScore; matched: boolean[] } {
  const { perSegment, nrefs } = referencesBySegment(hyps.length, refs, "exact match");
  const matched = hyps.map((h, i) => isExactMatch(h, perSegment[i], opts));
  const matches = matched.filter(Boolean).length;
  return {
    score: {
      accuracy: matches / hyps.length,
      matches,
      total: hyps.length,
      signature: exactMatchSignature(opts, nrefs),
    },
    matched,
  };
}
