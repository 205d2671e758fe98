// Turning loaded runs and results into what the page shows: chart specs (plain data the in-page script hands to
// Chart.js), final numbers per run, score rows and example tables. Pure data, no HTML here.
import { basename } from "node:path";
import type { LoadedResults, LoadedRun, MetricsLine, ResultsExample } from "./types.js";

export interface ChartPoint {
  x: number;
  y: number | null;
}

export interface ChartDataset {
  label: string;
  /** `#rrggbb`; the in-page check looks for this colour inside the plot area to prove the series drew. */
  color: string;
  /** Line charts: points by step (`null` y = a gap). */
  points?: ChartPoint[];
  /** Bar charts: one value per category label. */
  values?: (number | null)[];
  dashed?: boolean;
  /** Whether the series must leave visible marks (false for bars that are all zero). */
  expectVisible: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  type: "line" | "bar";
  xLabel: string;
  yLabel: string;
  /** Bar charts: the categories (domains). */
  labels?: string[];
  datasets: ChartDataset[];
  note?: string;
}

export interface RunSummary {
  name: string;
  dir: string;
  baseModel?: string;
  domain?: string;
  startedAt?: string;
  finishedAt?: string;
  /** Seconds between started_at and finished_at (or the absence of finished_at: the run did not finish). */
  durationS?: number;
  logLines: number;
  lastStep?: number;
  lastEpoch?: number;
  firstLoss?: number;
  finalLoss?: number;
  bestValLoss?: { value: number; step: number };
  finalValLoss?: number;
  finalLr?: number;
  meanTokensPerS?: number;
  peakMemoryMb?: number;
  /** Last and best value of each task metric logged during training. */
  taskMetrics: { metric: string; last: number; best: number; bestStep: number }[];
  /** The resolved config, flattened to `a.b.c` -> value rows. */
  settings: [string, string][];
}

export interface ResultsSummary {
  /** The name the score charts use: the run's name, else the results' name, or `base: <model>` for a baseline. */
  label: string;
  name: string;
  file: string;
  domain: string;
  task: string;
  adapter?: string;
  baseModel: string;
  scores: Record<string, number | null>;
  signature?: string;
  settings: [string, string][];
  examples: ResultsExample[];
  /** All examples in the file (the table may show fewer). */
  examplesTotal: number;
}

export interface ReportModel {
  title: string;
  generatedAt: string;
  /** Things the reader must know: skipped partial log lines, missing data. */
  notes: string[];
  trainingCharts: ChartSpec[];
  scoreCharts: ChartSpec[];
  runs: RunSummary[];
  results: ResultsSummary[];
  /** Every score key present across results, in display order. */
  scoreKeys: string[];
}

// Tableau 10 without its grey: distinct from the greys of grid lines and text, which the draw check relies on.
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#1f77b4",
];

export function paletteColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** A darker shade of a `#rrggbb` colour: pairs a run's validation curve with its training curve. */
export function darker(color: string, amount = 0.35): string {
  const channel = (i: number): string =>
    Math.round(parseInt(color.slice(i, i + 2), 16) * (1 - amount))
      .toString(16)
      .padStart(2, "0");
  return `#${channel(1)}${channel(3)}${channel(5)}`;
}

const SCORE_ORDER = ["bleu", "chrf", "chrfpp", "json_f1", "exact"];
const LOWER_IS_BETTER = new Set(["loss", "perplexity"]);
const SCORE_TITLES: Record<string, string> = {
  bleu: "BLEU",
  chrf: "chrF",
  chrfpp: "chrF++",
  json_f1: "JSON F1",
  exact: "Exact match",
  loss: "Eval loss",
  perplexity: "Perplexity",
};

export function scoreTitle(key: string): string {
  return SCORE_TITLES[key] ?? key;
}

/** Display order of score keys: the main metrics, then any others by name, then loss and perplexity. */
export function orderScoreKeys(keys: Iterable<string>): string[] {
  const set = new Set(keys);
  const main = SCORE_ORDER.filter((k) => set.has(k));
  const tail = ["loss", "perplexity"].filter((k) => set.has(k));
  const rest = [...set].filter((k) => !SCORE_ORDER.includes(k) && !LOWER_IS_BETTER.has(k)).sort();
  return [...main, ...rest, ...tail];
}

function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Nested config -> sorted `a.b.c` rows; arrays and scalars are shown as JSON. */
export function flattenSettings(value: Record<string, unknown>, prefix = ""): [string, string][] {
  const rows: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0) {
      rows.push(...flattenSettings(v as Record<string, unknown>, path));
    } else {
      rows.push([path, typeof v === "string" ? v : (JSON.stringify(v) ?? String(v))]);
    }
  }
  return prefix ? rows : rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function lastOf(lines: ReadonlyArray<MetricsLine>, key: keyof MetricsLine): number | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const v = lines[i][key];
    if (isNum(v)) return v;
  }
  return undefined;
}

function firstOf(lines: ReadonlyArray<MetricsLine>, key: keyof MetricsLine): number | undefined {
  for (const line of lines) if (isNum(line[key])) return line[key] as number;
  return undefined;
}

export function summarizeRun(run: LoadedRun): RunSummary {
  const lines = run.metrics.lines;
  const info = run.info;
  let bestValLoss: RunSummary["bestValLoss"];
  let tokSum = 0;
  let tokCount = 0;
  let peakMemoryMb: number | undefined;
  let lastStep: number | undefined;
  const task = new Map<string, { metric: string; last: number; best: number; bestStep: number }>();
  for (const line of lines) {
    lastStep = lastStep === undefined ? line.step : Math.max(lastStep, line.step);
    if (isNum(line.val_loss) && (bestValLoss === undefined || line.val_loss < bestValLoss.value)) {
      bestValLoss = { value: line.val_loss, step: line.step };
    }
    if (isNum(line.tokens_per_s)) {
      tokSum += line.tokens_per_s;
      tokCount++;
    }
    if (isNum(line.memory_mb)) peakMemoryMb = Math.max(peakMemoryMb ?? -Infinity, line.memory_mb);
    if (line.eval && isNum(line.eval.value)) {
      const { metric, value } = line.eval;
      const lowerBetter = LOWER_IS_BETTER.has(metric);
      const prev = task.get(metric);
      const better = prev === undefined || (lowerBetter ? value < prev.best : value > prev.best);
      task.set(metric, {
        metric,
        last: value,
        best: better ? value : prev.best,
        bestStep: better ? line.step : prev.bestStep,
      });
    }
  }
  let durationS: number | undefined;
  if (info?.finished_at) {
    const ms = Date.parse(info.finished_at) - Date.parse(info.started_at);
    if (Number.isFinite(ms)) durationS = ms / 1000;
  }
  return {
    name: run.name,
    dir: run.dir,
    baseModel: info?.base_model,
    domain: info?.domain,
    startedAt: info?.started_at,
    finishedAt: info?.finished_at,
    durationS,
    logLines: lines.length,
    lastStep,
    lastEpoch: lastOf(lines, "epoch"),
    firstLoss: firstOf(lines, "loss"),
    finalLoss: lastOf(lines, "loss"),
    bestValLoss,
    finalValLoss: lastOf(lines, "val_loss"),
    finalLr: lastOf(lines, "lr"),
    meanTokensPerS: tokCount > 0 ? tokSum / tokCount : undefined,
    peakMemoryMb,
    taskMetrics: [...task.values()],
    settings: info ? flattenSettings(info.config) : [],
  };
}

function seriesOf(lines: ReadonlyArray<MetricsLine>, pick: (l: MetricsLine) => unknown): ChartPoint[] {
  const points: ChartPoint[] = [];
  for (const line of lines) {
    const v = pick(line);
    // null is a value the trainer could not compute (NaN): keep it as a visible gap in the curve.
    if (isNum(v) || v === null) points.push({ x: line.step, y: v });
  }
  return points;
}

function lineDataset(
  label: string,
  color: string,
  points: ChartPoint[],
  dashed = false,
): ChartDataset | undefined {
  if (!points.some((p) => p.y !== null)) return undefined;
  return { label, color, points, dashed, expectVisible: true };
}

/** Loss (train + validation), learning rate and task-metric charts; every run overlaid, one colour per run. */
export function trainingCharts(runs: ReadonlyArray<LoadedRun>): ChartSpec[] {
  const multi = runs.length > 1;
  const loss: ChartDataset[] = [];
  const lr: ChartDataset[] = [];
  const taskSets: ChartDataset[] = [];
  const metricNames = new Set<string>();
  runs.forEach((run, i) => {
    const color = paletteColor(i);
    const lines = run.metrics.lines;
    const prefix = multi ? `${run.name} ` : "";
    const train = lineDataset(
      `${prefix}train loss`,
      color,
      seriesOf(lines, (l) => l.loss),
    );
    // Validation dashed, in a darker shade of the run's colour: the pair reads as one run, yet each series
    // keeps a colour of its own (the in-page draw check tells series apart by colour).
    const val = lineDataset(
      `${prefix}validation loss`,
      darker(color),
      seriesOf(lines, (l) => l.val_loss),
      true,
    );
    const rate = lineDataset(
      multi ? run.name : "learning rate",
      color,
      seriesOf(lines, (l) => l.lr),
    );
    for (const d of [train, val]) if (d) loss.push(d);
    if (rate) lr.push(rate);
    for (const line of lines) if (line.eval) metricNames.add(line.eval.metric);
  });
  // Task metrics: one series per (run, metric). With one metric each run keeps its colour; with several,
  // colours run through the palette so every series is distinct.
  let k = 0;
  for (const [ri, run] of runs.entries()) {
    for (const metric of [...metricNames].sort()) {
      const points = seriesOf(run.metrics.lines, (l) =>
        l.eval && l.eval.metric === metric ? l.eval.value : undefined,
      );
      const d = lineDataset(
        multi ? `${run.name} ${metric}` : metric,
        metricNames.size === 1 ? paletteColor(ri) : paletteColor(k),
        points,
      );
      if (d) {
        taskSets.push(d);
        k++;
      }
    }
  }
  const charts: ChartSpec[] = [];
  if (loss.length > 0) {
    charts.push({
      id: "chart-loss",
      title: "Loss",
      type: "line",
      xLabel: "step",
      yLabel: "loss",
      datasets: loss,
    });
  }
  if (lr.length > 0) {
    charts.push({
      id: "chart-lr",
      title: "Learning rate",
      type: "line",
      xLabel: "step",
      yLabel: "lr",
      datasets: lr,
    });
  }
  if (taskSets.length > 0) {
    const names = [...metricNames].sort().join(", ");
    charts.push({
      id: "chart-task",
      title: `Task metric during training (${names})`,
      type: "line",
      xLabel: "step",
      yLabel: names,
      datasets: taskSets,
    });
  }
  return charts;
}

/**
 * One bar chart per score: categories are domains, one bar series per model (run, results name or baseline).
 * A run keeps the colour of its training curves (`runNames` in the order given to trainingCharts); other
 * series take the palette colours after the runs'.
 */
export function scoreCharts(
  results: ReadonlyArray<ResultsSummary>,
  scoreKeys: ReadonlyArray<string>,
  runNames: ReadonlyArray<string> = [],
): ChartSpec[] {
  const domains = [...new Set(results.map((r) => r.domain))].sort();
  const labels = [...new Set(results.map((r) => r.label))];
  const colorIndex = new Map(runNames.map((name, i) => [name, i]));
  for (const label of labels) if (!colorIndex.has(label)) colorIndex.set(label, colorIndex.size);
  const charts: ChartSpec[] = [];
  scoreKeys.forEach((key, ci) => {
    const datasets: ChartDataset[] = [];
    labels.forEach((label) => {
      const values = domains.map((domain) => {
        const r = results.find((x) => x.label === label && x.domain === domain);
        const v = r?.scores[key];
        return isNum(v) ? v : null;
      });
      if (values.every((v) => v === null)) return;
      datasets.push({
        label,
        color: paletteColor(colorIndex.get(label)!),
        values,
        expectVisible: values.some((v) => v !== null && v !== 0),
      });
    });
    if (datasets.length === 0) return;
    charts.push({
      id: `chart-score-${ci}`,
      title: scoreTitle(key),
      type: "bar",
      xLabel: "domain",
      yLabel: key,
      labels: domains,
      datasets,
      note: LOWER_IS_BETTER.has(key) ? "lower is better" : undefined,
    });
  });
  return charts;
}

function signatureText(sig: string | Record<string, string> | undefined): string | undefined {
  if (sig === undefined) return undefined;
  return typeof sig === "string" ? sig : Object.values(sig).join("\n");
}

/**
 * Summaries of results files with unique chart labels: a results file of a run is labelled with the run's
 * name, a baseline `base: <model>`; when two files would share a label and domain, the results' own name
 * is added so neither hides the other.
 */
export function summarizeResults(
  loaded: ReadonlyArray<LoadedResults>,
  runOf: (r: LoadedResults) => LoadedRun | undefined,
  maxExamples: number,
): ResultsSummary[] {
  const taken = new Set<string>();
  return loaded.map((l) => {
    const r = l.results;
    const run = runOf(l);
    const domain = r.domain ?? run?.info?.domain ?? "(all)";
    let label = run ? run.name : r.adapter === undefined ? `base: ${r.base_model}` : r.name;
    if (taken.has(`${label}\u0000${domain}`)) label = `${label} (${r.name})`;
    taken.add(`${label}\u0000${domain}`);
    return {
      label,
      name: r.name,
      file: basename(l.file),
      domain,
      task: r.task,
      adapter: r.adapter,
      baseModel: r.base_model,
      scores: Object.fromEntries(Object.entries(r.scores).map(([k, v]) => [k, v ?? null])),
      signature: signatureText(r.signature),
      settings: flattenSettings(r.settings),
      examples: r.examples.slice(0, maxExamples),
      examplesTotal: r.examples.length,
    };
  });
}
