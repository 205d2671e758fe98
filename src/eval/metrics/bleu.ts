// BLEU (Papineni et al. 2002) as sacreBLEU 2.x computes it: 13a tokenization, n-grams up to 4, clipped counts
// against the per-n-gram maximum over references, the closest reference length (shorter on ties), corpus
// statistics summed over segments, and mteval's "exp" smoothing. Sentence BLEU uses the effective order.
import { TuneforgeError } from "../../errors.js";
import { clippedMatches, wordNgramsUpTo, type Counts } from "./ngrams.js";
import { pyRstrip, pySplit } from "./pyText.js";
import { referencesBySegment, sentenceReferences, type References } from "./references.js";
import { formatSignature } from "./signature.js";
import { tokenizeForBleu, type BleuTokenizer } from "./tokenize13a.js";

export type BleuSmoothing = "exp" | "floor" | "add-k" | "none";

export interface BleuOptions {
  /** Default "13a". */
  tokenize?: BleuTokenizer;
  /** Lowercase hypotheses and references first (signature `case:lc`). Default false. */
  lowercase?: boolean;
  /** Default "exp" (mteval-v13a's smoothing, sacreBLEU's default). */
  smoothMethod?: BleuSmoothing;
  /** For "floor" (default 0.1) and "add-k" (default 1). */
  smoothValue?: number;
  /** Default 4. */
  maxNgramOrder?: number;
  /** Average only over the orders the hypothesis has n-grams of. Default: false for corpus, true for sentence BLEU. */
  effectiveOrder?: boolean;
}

/** The same fields as sacreBLEU's BLEUScore. Score and precisions are percentages (0-100). */
export interface BleuScore {
  score: number;
  /** Clipped n-gram matches, order 1..N. */
  counts: number[];
  /** Hypothesis n-grams, order 1..N. */
  totals: number[];
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  /** sys_len / ref_len (0 when ref_len is 0). */
  ratio: number;
  signature: string;
}

const SMOOTH_DEFAULTS: Record<BleuSmoothing, number | undefined> = {
  none: undefined,
  floor: 0.1,
  "add-k": 1,
  exp: undefined,
};

interface ResolvedBleuOptions {
  tokenize: BleuTokenizer;
  lowercase: boolean;
  smoothMethod: BleuSmoothing;
  smoothValue: number | undefined;
  maxNgramOrder: number;
  effectiveOrder: boolean;
}

function resolve(opts: BleuOptions, effectiveOrderDefault: boolean): ResolvedBleuOptions {
  const smoothMethod = opts.smoothMethod ?? "exp";
  if (!(smoothMethod in SMOOTH_DEFAULTS)) {
    throw new TuneforgeError(`unknown BLEU smoothing method "${smoothMethod}"`, {
      key: "smoothMethod",
      hint: `use one of ${Object.keys(SMOOTH_DEFAULTS).join(", ")}`,
    });
  }
  const maxNgramOrder = opts.maxNgramOrder ?? 4;
  if (!Number.isInteger(maxNgramOrder) || maxNgramOrder < 1) {
    throw new TuneforgeError(`BLEU max n-gram order must be a positive integer, got ${maxNgramOrder}`, {
      key: "maxNgramOrder",
      hint: "use 4, the standard BLEU order",
    });
  }
  return {
    tokenize: opts.tokenize ?? "13a",
    lowercase: opts.lowercase ?? false,
    smoothMethod,
    smoothValue: opts.smoothValue ?? SMOOTH_DEFAULTS[smoothMethod],
    maxNgramOrder,
    effectiveOrder: opts.effectiveOrder ?? effectiveOrderDefault,
  };
}

/** sacreBLEU's BLEU signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`. */
function bleuSignature(o: ResolvedBleuOptions, nrefs: number | "var"): string {
  const def = SMOOTH_DEFAULTS[o.smoothMethod];
  const smooth =
    def === undefined ? o.smoothMethod : `${o.smoothMethod}[${(o.smoothValue ?? def).toFixed(2)}]`;
  return formatSignature([
    ["nrefs", nrefs],
    ["case", o.lowercase ? "lc" : "mixed"],
    ["eff", o.effectiveOrder ? "yes" : "no"],
    ["tok", o.tokenize],
    ["smooth", smooth],
  ]);
}

function preprocess(sent: string, o: ResolvedBleuOptions): string[] {
  const s = o.lowercase ? sent.toLowerCase() : sent;
  return pySplit(tokenizeForBleu(pyRstrip(s), o.tokenize));
}

/** The reference length closest to the hypothesis length; the shorter one on a tie. */
function closestRefLen(hypLen: number, refLens: number[]): number {
  let bestDiff = -1;
  let bestLen = -1;
  for (const len of refLens) {
    const diff = Math.abs(hypLen - len);
    if (bestDiff === -1 || diff < bestDiff) {
      bestDiff = diff;
      bestLen = len;
    } else if (diff === bestDiff && len < bestLen) {
      bestLen = len;
    }
  }
  return bestLen;
}

/** One segment's sufficient statistics: [sys_len, ref_len, correct_1..N, total_1..N], as in sacreBLEU. */
function segmentStats(hyp: string, refs: string[], o: ResolvedBleuOptions): number[] {
  const N = o.maxNgramOrder;
  // Each reference n-gram may be matched as often as its largest count in any one reference.
  const refMax: Counts[] = Array.from({ length: N }, () => new Map());
  const refLens: number[] = [];
  for (const ref of refs) {
    const tokens = preprocess(ref, o);
    refLens.push(tokens.length);
    wordNgramsUpTo(tokens, N).forEach((counts, n) => {
      for (const [ng, c] of counts) refMax[n].set(ng, Math.max(refMax[n].get(ng) ?? 0, c));
    });
  }
  const hypTokens = preprocess(hyp, o);
  const correct: number[] = [];
  const total: number[] = [];
  wordNgramsUpTo(hypTokens, N).forEach((counts, n) => {
    const m = clippedMatches(counts, refMax[n]);
    correct.push(m.matches);
    total.push(m.hypCount);
  });
  return [hypTokens.length, closestRefLen(hypTokens.length, refLens), ...correct, ...total];
}

// sacreBLEU floors log(0) to this instead of -Infinity; kept so a zero precision gives the same (zero) score.
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** sacreBLEU's `BLEU.compute_bleu`: the score from summed statistics, with smoothing. */
function computeBleu(stats: number[], o: ResolvedBleuOptions, nrefs: number | "var"): BleuScore {
  const N = o.maxNgramOrder;
  const sysLen = stats[0];
  const refLen = stats[1];
  const correct = stats.slice(2, 2 + N);
  const total = stats.slice(2 + N, 2 + 2 * N);
  const signature = bleuSignature(o, nrefs);

  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(N).fill(0);
  const result = (score: number): BleuScore => ({
    score,
    counts: correct,
    totals: total,
    precisions,
    bp,
    sys_len: sysLen,
    ref_len: refLen,
    ratio: refLen ? sysLen / refLen : 0,
    signature,
  });
  if (!correct.some((c) => c !== 0)) return result(0.0);

  const smoothValue = o.smoothValue ?? 0;
  let smoothMteval = 1.0;
  let effOrder = N;
  for (let n = 1; n <= N; n++) {
    if (o.smoothMethod === "add-k" && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    // No hypothesis n-grams of this order (a short hypothesis): stop; without the effective order the
    // missing precisions stay 0 and drive the score to 0, as in sacreBLEU.
    if (total[n - 1] === 0) break;
    if (o.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (o.smoothMethod === "exp") {
        // mteval-v13a: each further order with no match gets half the previous pseudo-count.
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (o.smoothMethod === "floor") {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += myLog(precisions[i]);
  return result(bp * Math.exp(logSum / effOrder));
}

function sumStats(rows: number[][]): number[] {
  const out = new Array<number>(rows[0].length).fill(0);
  for (const row of rows) for (let i = 0; i < row.length; i++) out[i] += row[i];
  return out;
}

/** Per-segment statistics for a corpus; lets a caller get corpus and sentence scores from one pass. */
export interface BleuStatistics {
  rows: number[][];
  nrefs: number | "var";
}

export function bleuStatistics(
  hyps: ReadonlyArray<string>,
  refs: References,
  opts: BleuOptions = {},
): BleuStatistics {
  const o = resolve(opts, false);
  const { perSegment, nrefs } = referencesBySegment(hyps.length, refs, "BLEU");
  return { rows: hyps.map((h, i) => segmentStats(h, perSegment[i], o)), nrefs };
}

/** Corpus BLEU from statistics (sums them first). */
export function bleuFromStatistics(stats: BleuStatistics, opts: BleuOptions = {}): BleuScore {
  return computeBleu(sumStats(stats.rows), resolve(opts, false), stats.nrefs);
}

/** Sentence BLEU of segment `i` from corpus statistics (effective order unless opts say otherwise). */
export function sentenceBleuFromStatistics(
  stats: BleuStatistics,
  i: number,
  opts: BleuOptions = {},
): BleuScore {
  return computeBleu([...stats.rows[i]], resolve(opts, true), stats.nrefs);
}

/**
 * Corpus BLEU, like `sacrebleu.corpus_bleu(hyps, refs)`. `refs` is one reference per hypothesis, or several
 * streams of them (`refs[stream][segment]`, `null` where a segment lacks that reference).
 */
export function corpusBleu(hyps: ReadonlyArray<string>, refs: References, opts: BleuOptions = {}): BleuScore {
  return bleuFromStatistics(bleuStatistics(hyps, refs, opts), opts);
}

/** Sentence BLEU, like `sacrebleu.sentence_bleu(hyp, refs)`: effective order on by default (`eff:yes`). */
export function sentenceBleu(
  hyp: string,
  refs: string | ReadonlyArray<string>,
  opts: BleuOptions = {},
): BleuScore {
  const o = resolve(opts, true);
  const list = sentenceReferences(refs);
  const { nrefs } = referencesBySegment(
    1,
    list.map((r) => [r]),
    "BLEU",
  );
  return computeBleu(segmentStats(hyp, list, o), o, nrefs);
}

/** sacreBLEU's one-line report: `BLEU = 47.16 83.3/66.7/41.7/33.3 (BP = 0.895 ratio = ... ref_len = 21)`. */
export function formatBleu(s: BleuScore): string {
  const prec = s.precisions.map((p) => p.toFixed(1)).join("/");
  return (
    `BLEU = ${s.score.toFixed(2)} ${prec} (BP = ${s.bp.toFixed(3)} ratio = ${s.ratio.toFixed(3)} ` +
    `hyp_len = ${s.sys_len} ref_len = ${s.ref_len})`
  );
}
