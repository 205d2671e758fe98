// `tuneforge report`: one self-contained HTML file (charts, scores, examples, settings) for one run or many.
import { existsSync, statSync } from "node:fs";
import { relative, resolve } from "node:path";
import { TuneforgeError } from "../../errors.js";
import { writeFileAtomic } from "../../store/atomic.js";
import { chartJsSource } from "./chartjs.js";
import { defaultResultsDir, isBaselineFor, loadResultsDir, loadRun, resultsBelongToRun } from "./inputs.js";
import {
  orderScoreKeys,
  scoreCharts,
  summarizeResults,
  summarizeRun,
  trainingCharts,
  type ReportModel,
} from "./model.js";
import { renderReportHtml } from "./render.js";
import type { LoadedResults, LoadedRun, ReportOptions, WriteReportOptions } from "./types.js";

const DEFAULT_MAX_EXAMPLES = 50;

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

function collectResults(options: ReportOptions, runs: ReadonlyArray<LoadedRun>): LoadedResults[] {
  let dirs: string[];
  if (options.resultsDir !== undefined) {
    if (!existsSync(options.resultsDir) || !statSync(options.resultsDir).isDirectory()) {
      throw new TuneforgeError("results folder not found", {
        file: options.resultsDir,
        hint: "pass the folder holding <name>_results.json files written by `tuneforge eval`, or leave it out",
      });
    }
    dirs = [resolve(options.resultsDir)];
  } else {
    // No results/ yet just means nothing was evaluated: the report still shows training.
    dirs = [...new Set(runs.map((r) => defaultResultsDir(r.dir)))].filter((d) => existsSync(d));
  }
  const all = dirs.flatMap(loadResultsDir);
  if (options.allResults) return all;
  const matched = all.filter((l) => runs.some((run) => resultsBelongToRun(l, run)));
  return all.filter((l) => matched.includes(l) || isBaselineFor(l, runs, matched));
}

/** Load the runs and their results and shape everything the page shows. */
export function buildReportModel(options: ReportOptions): ReportModel {
  if (options.runDirs.length === 0) {
    throw new TuneforgeError("no run folder given", {
      hint: "pass a run folder (e.g. runs/<name>) or use --all for every run under runs/",
    });
  }
  const runs = options.runDirs.map(loadRun);
  const names = new Map<string, string>();
  for (const run of runs) {
    const other = names.get(run.name);
    if (other !== undefined) {
      throw new TuneforgeError(`two run folders are both named "${run.name}" (${other} and ${run.dir})`, {
        file: resolve(run.dir, "run.json"),
        hint: "give each run a distinct name in run.json so their curves and scores can be told apart",
      });
    }
    names.set(run.name, run.dir);
  }
  const loaded = collectResults(options, runs);
  const results = summarizeResults(
    loaded,
    (l) => runs.find((run) => resultsBelongToRun(l, run)),
    options.maxExamplesPerResults ?? DEFAULT_MAX_EXAMPLES,
  );
  const scoreKeys = orderScoreKeys(results.flatMap((r) => Object.keys(r.scores)));
  const notes: string[] = [];
  for (const run of runs) {
    const m = run.metrics;
    if (m.truncatedLastLine !== undefined) {
      const shown =
        m.truncatedLastLine.length > 120 ? `${m.truncatedLastLine.slice(0, 120)}…` : m.truncatedLastLine;
      notes.push(
        `${displayPath(m.file)}: the last line is incomplete (the run stopped while writing it) and is left out: ${shown}`,
      );
    }
    if (m.lines.length === 0) notes.push(`${displayPath(m.file)}: no metrics logged yet.`);
    if (!run.info) notes.push(`${displayPath(run.dir)}: no run.json, so no run settings to show.`);
  }
  return {
    title: options.title ?? `tuneforge report: ${runs.map((r) => r.name).join(", ")}`,
    generatedAt: new Date().toISOString(),
    notes,
    trainingCharts: trainingCharts(runs),
    scoreCharts: scoreCharts(
      results,
      scoreKeys,
      runs.map((r) => r.name),
    ),
    runs: runs.map(summarizeRun),
    results,
    scoreKeys,
  };
}

/** The report as one HTML string (inline Chart.js, CSS and data; no external URL). */
export function buildReportHtml(options: ReportOptions): string {
  return renderReportHtml(buildReportModel(options), chartJsSource());
}

/** Write the report atomically to `options.out`; returns the path written. */
export function writeReport(options: WriteReportOptions): string {
  const html = buildReportHtml(options);
  writeFileAtomic(options.out, html);
  return options.out;
}
