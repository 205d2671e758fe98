// Scoring model outputs against references, the engine of `tuneforge score`: from files with one segment per
// line (read like the sacrebleu CLI does), or from arrays in memory.
import { readFileSync } from "node:fs";
import { TuneforgeError } from "../errors.js";
import {
  bleuFromStatistics,
  bleuStatistics,
  sentenceBleuFromStatistics,
  type BleuOptions,
  type BleuScore,
} from "./metrics/bleu.js";
import {
  chrfFromStatistics,
  chrfStatistics,
  sentenceChrfFromStatistics,
  type ChrfOptions,
  type ChrfScore,
} from "./metrics/chrf.js";
import { exactMatch, type ExactMatchOptions, type ExactMatchScore } from "./metrics/exact.js";
import { corpusJsonF1, type JsonF1Score } from "./metrics/jsonF1.js";
import { pyRstrip } from "./metrics/pyText.js";
import { referencesBySegment, type References } from "./metrics/references.js";

export const METRIC_NAMES = ["bleu", "chrf", "chrf++", "json-f1", "exact"] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface MetricOptions {
  metrics: ReadonlyArray<MetricName>;
  bleu?: BleuOptions;
  /** For chrF and chrF++ (chrF++ always uses word order 2 unless set here). */
  chrf?: Omit<ChrfOptions, "wordOrder">;
  exact?: ExactMatchOptions;
  /** Also return one entry of sentence-level scores per segment. */
  perSegment?: boolean;
}

/** Sentence-level scores of one segment (sentence BLEU with the effective order, as sacreBLEU). */
export interface SegmentScore {
  bleu?: number;
  chrf?: number;
  chrfpp?: number;
  json_f1?: number;
  exact?: boolean;
}

export interface ScoreReport {
  bleu?: BleuScore;
  chrf?: ChrfScore;
  chrfpp?: ChrfScore;
  json_f1?: JsonF1Score;
  exact?: ExactMatchScore;
  /** The signature of every metric computed, by metric name. */
  signature: Partial<Record<MetricName, string>>;
  /** Number of segments scored. */
  segments: number;
  perSegment?: SegmentScore[];
}

function checkMetrics(metrics: ReadonlyArray<string>): void {
  if (metrics.length === 0) {
    throw new TuneforgeError("no metric was asked for", {
      key: "metrics",
      hint: `choose one or more of ${METRIC_NAMES.join(", ")}`,
    });
  }
  for (const m of metrics) {
    if (!(METRIC_NAMES as ReadonlyArray<string>).includes(m)) {
      throw new TuneforgeError(`unknown metric "${m}"`, {
        key: "metrics",
        hint: `choose from ${METRIC_NAMES.join(", ")}`,
      });
    }
  }
}

/** Score hypotheses held in memory; `refs` is one reference per hypothesis or several streams of them. */
export function scoreSegments(
  args: MetricOptions & { hyps: ReadonlyArray<string>; refs: References; refNames?: ReadonlyArray<string> },
): ScoreReport {
  const { hyps, refs, metrics } = args;
  checkMetrics(metrics);
  // Validates counts once, up front, with one clear message whatever the metrics.
  referencesBySegment(hyps.length, refs, "score");
  const report: ScoreReport = { signature: {}, segments: hyps.length };
  const seg: SegmentScore[] = hyps.map(() => ({}));
  const want = new Set(metrics);

  if (want.has("bleu")) {
    const stats = bleuStatistics(hyps, refs, args.bleu);
    report.bleu = bleuFromStatistics(stats, args.bleu);
    report.signature.bleu = report.bleu.signature;
    if (args.perSegment)
      seg.forEach((s, i) => (s.bleu = sentenceBleuFromStatistics(stats, i, args.bleu).score));
  }
  for (const [name, wordOrder] of [
    ["chrf", 0],
    ["chrf++", 2],
  ] as const) {
    if (!want.has(name)) continue;
    const opts: ChrfOptions = { ...args.chrf, wordOrder };
    const stats = chrfStatistics(hyps, refs, opts);
    const score = chrfFromStatistics(stats, opts);
    const key = name === "chrf" ? "chrf" : "chrfpp";
    report[key] = score;
    report.signature[name] = score.signature;
    if (args.perSegment) seg.forEach((s, i) => (s[key] = sentenceChrfFromStatistics(stats, i, opts).score));
  }
  if (want.has("json-f1")) {
    const { score, examples } = corpusJsonF1(hyps, refs, { refNames: args.refNames });
    report.json_f1 = score;
    report.signature["json-f1"] = score.signature;
    if (args.perSegment) seg.forEach((s, i) => (s.json_f1 = examples[i].f1));
  }
  if (want.has("exact")) {
    const { score, matched } = exactMatch(hyps, refs, args.exact);
    report.exact = score;
    report.signature.exact = score.signature;
    if (args.perSegment) seg.forEach((s, i) => (s.exact = matched[i]));
  }
  if (args.perSegment) report.perSegment = seg;
  return report;
}

/**
 * Read one segment per line as the sacrebleu CLI does: UTF-8, lines split on "\n" only, trailing whitespace
 * (and so a "\r") stripped from each, no line for a final newline. Invalid UTF-8 is an error naming the line.
 */
export function readSegments(path: string): string[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TuneforgeError(`cannot read the file: ${(e as Error).message}`, {
      file: path,
      hint: "check the path; hypotheses and references are plain text files, one segment per line",
      cause: e,
    });
  }
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const lines: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(start, end));
    } catch (e) {
      throw new TuneforgeError("the line is not valid UTF-8", {
        file: path,
        line: lines.length + 1,
        hint: "convert the file to UTF-8 (e.g. `iconv -f <encoding> -t UTF-8`)",
        cause: e,
      });
    }
    lines.push(pyRstrip(text));
    start = end + 1;
  }
  return lines;
}

/**
 * Score a hypothesis file against one or several reference files (each a stream with one reference per line),
 * like `sacrebleu REF... -i HYP -m bleu chrf`.
 */
export function scoreFiles(
  args: MetricOptions & { hyp: string; ref: string | ReadonlyArray<string> },
): ScoreReport {
  checkMetrics(args.metrics);
  const refFiles = typeof args.ref === "string" ? [args.ref] : [...args.ref];
  if (refFiles.length === 0) {
    throw new TuneforgeError("no reference file was given", { hint: "pass at least one reference file" });
  }
  const hyps = readSegments(args.hyp);
  if (hyps.length === 0) {
    throw new TuneforgeError("the hypothesis file is empty", {
      file: args.hyp,
      hint: "write one model output per line (generate them first with the model you want to score)",
    });
  }
  const refs = refFiles.map((f) => {
    const lines = readSegments(f);
    if (lines.length !== hyps.length) {
      throw new TuneforgeError(
        `the hypothesis file has ${hyps.length} lines but the reference file ${f} has ${lines.length} lines`,
        {
          file: args.hyp,
          hint:
            "line N of the hypotheses must be the output for line N of the references: look for a missing or " +
            "extra line (an empty output still needs its own empty line)",
        },
      );
    }
    return lines;
  });
  return scoreSegments({ ...args, hyps, refs, refNames: refFiles });
}
