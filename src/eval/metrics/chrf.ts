// chrF (Popović 2015) and chrF++ (Popović 2017) as sacreBLEU 2.x computes them: character n-grams up to 6 with
// whitespace removed, plus word uni- and bigrams for chrF++ (punctuation split off word edges), beta 2, and
// sacreBLEU's default averaging: precision and recall are averaged over the orders both sides have n-grams
// of (the "effective order", signature `eff:yes`); `epsSmoothing` gives the chrF++.py/NLTK variant instead.
import { charNgramsUpTo, clippedMatches, ngramCounts, totalCount, type Counts } from "./ngrams.js";
import { codePoints, pySplit } from "./pyText.js";
import { referencesBySegment, sentenceReferences, type References } from "./references.js";
import { formatSignature } from "./signature.js";

export interface ChrfOptions {
  /** Character n-gram order, default 6. */
  charOrder?: number;
  /** Word n-gram order: 0 for chrF (default), 2 for chrF++. */
  wordOrder?: number;
  /** Weight of recall over precision, default 2. */
  beta?: number;
  /** Default false. */
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams (signature `space:yes`). Default false. */
  whitespace?: boolean;
  /** chrF++.py-style epsilon smoothing over all orders instead of the effective order. Default false. */
  epsSmoothing?: boolean;
}

export interface ChrfScore {
  /** 0-100. */
  score: number;
  /** `chrF2`, or `chrF2++` for word order 2, as sacreBLEU names it. */
  name: string;
  charOrder: number;
  wordOrder: number;
  beta: number;
  signature: string;
}

interface ResolvedChrfOptions {
  charOrder: number;
  wordOrder: number;
  beta: number;
  lowercase: boolean;
  whitespace: boolean;
  epsSmoothing: boolean;
}

function resolve(opts: ChrfOptions): ResolvedChrfOptions {
  return {
    charOrder: opts.charOrder ?? 6,
    wordOrder: opts.wordOrder ?? 0,
    beta: opts.beta ?? 2,
    lowercase: opts.lowercase ?? false,
    whitespace: opts.whitespace ?? false,
    epsSmoothing: opts.epsSmoothing ?? false,
  };
}

/** e.g. `nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0`. */
function chrfSignature(o: ResolvedChrfOptions, nrefs: number | "var"): string {
  return formatSignature([
    ["nrefs", nrefs],
    ["case", o.lowercase ? "lc" : "mixed"],
    ["eff", o.epsSmoothing ? "no" : "yes"],
    ["nc", o.charOrder],
    ["nw", o.wordOrder],
    ["space", o.whitespace ? "yes" : "no"],
  ]);
}

// Python's string.punctuation, the set sacreBLEU strips from word edges.
const PUNCTS = new Set(codePoints("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"));

/**
 * sacreBLEU's `_remove_punctuation`: one punctuation mark is split off the end of a word, or else off its
 * start (only one, so "(hi)" becomes "(hi" and ")" — sacreBLEU issue #124, kept for identical scores).
 */
export function splitEdgePunctuation(sent: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sent)) {
    const cps = codePoints(w);
    if (cps.length === 1) out.push(w);
    else if (PUNCTS.has(cps[cps.length - 1])) out.push(cps.slice(0, -1).join(""), cps[cps.length - 1]);
    else if (PUNCTS.has(cps[0])) out.push(cps[0], cps.slice(1).join(""));
    else out.push(w);
  }
  return out;
}

/** Character n-grams 1..charOrder, then word n-grams 1..wordOrder. */
function extractNgrams(sent: string, o: ResolvedChrfOptions): Counts[] {
  const s = o.lowercase ? sent.toLowerCase() : sent;
  const chars = o.whitespace ? s : pySplit(s).join("");
  const all = charNgramsUpTo(chars, o.charOrder);
  if (o.wordOrder > 0) {
    const words = splitEdgePunctuation(s);
    for (let n = 1; n <= o.wordOrder; n++) all.push(ngramCounts(words, n));
  }
  return all;
}

/** The chrF score (0-100) from flat [hyp, ref, match] triples, one per order. */
function fScore(stats: ReadonlyArray<number>, o: ResolvedChrfOptions): number {
  const eps = 1e-16;
  const factor = o.beta ** 2;
  const order = o.charOrder + o.wordOrder;
  let epsScore = 0;
  let avgPrec = 0;
  let avgRec = 0;
  let effectiveOrder = 0;
  for (let i = 0; i < order; i++) {
    const [nHyp, nRef, nMatch] = stats.slice(3 * i, 3 * i + 3);
    const prec = nHyp > 0 ? nMatch / nHyp : eps;
    const rec = nRef > 0 ? nMatch / nRef : eps;
    const denom = factor * prec + rec;
    epsScore += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
    // An order neither side has n-grams of (a short segment) does not count against the score.
    if (nHyp > 0 && nRef > 0) {
      avgPrec += prec;
      avgRec += rec;
      effectiveOrder += 1;
    }
  }
  if (o.epsSmoothing) return (100 * epsScore) / order;
  if (effectiveOrder === 0) return 0;
  avgPrec /= effectiveOrder;
  avgRec /= effectiveOrder;
  if (avgPrec + avgRec === 0) return 0;
  return (100 * ((1 + factor) * avgPrec * avgRec)) / (factor * avgPrec + avgRec);
}

/** One segment's [hyp, ref, match] triples against its best reference (highest chrF; the first on ties). */
function segmentStats(hyp: string, refs: string[], o: ResolvedChrfOptions): number[] {
  const hypNgrams = extractNgrams(hyp, o);
  let best: number[] = [];
  let bestF = -1;
  for (const ref of refs) {
    const refNgrams = extractNgrams(ref, o);
    const stats: number[] = [];
    hypNgrams.forEach((h, i) => {
      const r = refNgrams[i];
      const { hypCount, matches } = clippedMatches(h, r);
      // sacreBLEU counts no hypothesis n-grams for an order the reference has none of.
      stats.push(r.size > 0 ? hypCount : 0, totalCount(r), matches);
    });
    const f = fScore(stats, o);
    if (f > bestF) {
      bestF = f;
      best = stats;
    }
  }
  return best;
}

function toScore(stats: ReadonlyArray<number>, o: ResolvedChrfOptions, nrefs: number | "var"): ChrfScore {
  return {
    score: fScore(stats, o),
    name: `chrF${o.beta}${"+".repeat(o.wordOrder)}`,
    charOrder: o.charOrder,
    wordOrder: o.wordOrder,
    beta: o.beta,
    signature: chrfSignature(o, nrefs),
  };
}

export interface ChrfStatistics {
  rows: number[][];
  nrefs: number | "var";
}

export function chrfStatistics(
  hyps: ReadonlyArray<string>,
  refs: References,
  opts: ChrfOptions = {},
): ChrfStatistics {
  const o = resolve(opts);
  const { perSegment, nrefs } = referencesBySegment(hyps.length, refs, o.wordOrder > 0 ? "chrF++" : "chrF");
  return { rows: hyps.map((h, i) => segmentStats(h, perSegment[i], o)), nrefs };
}

/** Corpus chrF from per-segment statistics (summed over segments, then scored). */
export function chrfFromStatistics(stats: ChrfStatistics, opts: ChrfOptions = {}): ChrfScore {
  const o = resolve(opts);
  const sum = new Array<number>(3 * (o.charOrder + o.wordOrder)).fill(0);
  for (const row of stats.rows) for (let i = 0; i < row.length; i++) sum[i] += row[i];
  return toScore(sum, o, stats.nrefs);
}

/** Sentence chrF of segment `i` from corpus statistics. */
export function sentenceChrfFromStatistics(
  stats: ChrfStatistics,
  i: number,
  opts: ChrfOptions = {},
): ChrfScore {
  return toScore(stats.rows[i], resolve(opts), stats.nrefs);
}

/** Corpus chrF, like `sacrebleu.corpus_chrf`; `{ wordOrder: 2 }` (or `corpusChrfPlusPlus`) for chrF++. */
export function corpusChrf(hyps: ReadonlyArray<string>, refs: References, opts: ChrfOptions = {}): ChrfScore {
  return chrfFromStatistics(chrfStatistics(hyps, refs, opts), opts);
}

export function corpusChrfPlusPlus(
  hyps: ReadonlyArray<string>,
  refs: References,
  opts: ChrfOptions = {},
): ChrfScore {
  return corpusChrf(hyps, refs, { ...opts, wordOrder: opts.wordOrder ?? 2 });
}

/** Sentence chrF, like `sacrebleu.sentence_chrf(hyp, refs)`. */
export function sentenceChrf(
  hyp: string,
  refs: string | ReadonlyArray<string>,
  opts: ChrfOptions = {},
): ChrfScore {
  const list = sentenceReferences(refs);
  return chrfFromStatistics(
    chrfStatistics(
      [hyp],
      list.map((r) => [r]),
      opts,
    ),
    opts,
  );
}

export function sentenceChrfPlusPlus(
  hyp: string,
  refs: string | ReadonlyArray<string>,
  opts: ChrfOptions = {},
): ChrfScore {
  return sentenceChrf(hyp, refs, { ...opts, wordOrder: opts.wordOrder ?? 2 });
}
