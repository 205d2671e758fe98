// N-gram counting shared by BLEU and chrF(++). One map per order; keys are the n-gram's items joined: words by
// a space (words come from a whitespace split, so never contain one), characters by nothing (n code points
// concatenate to a unique string). Either way two different n-grams never share a key.
import { codePoints } from "./pyText.js";

export type Counts = Map<string, number>;

/** Counts of the n-grams of one order, like `Counter(' '.join(tokens[i:i+n]) ...)`. */
export function ngramCounts(items: ReadonlyArray<string>, n: number, joiner = " "): Counts {
  const counts: Counts = new Map();
  for (let i = 0; i + n <= items.length; i++) {
    const key = items.slice(i, i + n).join(joiner);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Word n-gram counts for orders 1..maxOrder (index n-1). */
export function wordNgramsUpTo(tokens: ReadonlyArray<string>, maxOrder: number): Counts[] {
  const out: Counts[] = [];
  for (let n = 1; n <= maxOrder; n++) out.push(ngramCounts(tokens, n));
  return out;
}

/** Character n-gram counts for orders 1..maxOrder over code points (the caller removes whitespace first). */
export function charNgramsUpTo(text: string, maxOrder: number): Counts[] {
  const chars = codePoints(text);
  const out: Counts[] = [];
  for (let n = 1; n <= maxOrder; n++) out.push(ngramCounts(chars, n, ""));
  return out;
}

export function totalCount(counts: Counts): number {
  let sum = 0;
  for (const c of counts.values()) sum += c;
  return sum;
}

/** [hypothesis n-grams, matched n-grams]: each hypothesis n-gram matches at most as often as in `ref`. */
export function clippedMatches(hyp: Counts, ref: Counts): { hypCount: number; matches: number } {
  let hypCount = 0;
  let matches = 0;
  for (const [ng, c] of hyp) {
    hypCount += c;
    const r = ref.get(ng);
    if (r !== undefined) matches += Math.min(c, r);
  }
  return { hypCount, matches };
}
