// Loading what a report shows: run folders (metrics.jsonl + optional run.json) and evaluation results files.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve, isAbsolute } from "node:path";
import { z } from "zod";
import { TuneforgeError } from "../../errors.js";
import { readMetricsJsonl } from "./metricsLog.js";
import type { LoadedResults, LoadedRun, ResultsFile, RunInfo } from "./types.js";

export const METRICS_FILE = "metrics.jsonl";
export const RUN_INFO_FILE = "run.json";
export const RESULTS_SUFFIX = "_results.json";

const runInfoSchema = z
  .object({
    name: z.string().min(1),
    domain: z.string().optional(),
    base_model: z.string(),
    config: z.record(z.string(), z.unknown()),
    started_at: z.string(),
    finished_at: z.string().optional(),
  })
  .loose();

// null scores are allowed: NaN/Infinity (e.g. an overflowing perplexity) have no JSON form.
const resultsSchema = z
  .object({
    name: z.string().min(1),
    domain: z.string().optional(),
    run: z.string().optional(),
    adapter: z.string().optional(),
    base_model: z.string(),
    task: z.enum(["translation", "json-extraction", "chat"]),
    scores: z.record(z.string(), z.number().nullable()),
    signature: z.union([z.string(), z.record(z.string(), z.string())]).optional(),
    settings: z.record(z.string(), z.unknown()),
    examples: z.array(
      z
        .object({
          source: z.string(),
          reference: z.string(),
          output: z.string(),
          score: z.number().nullable().optional(),
        })
        .loose(),
    ),
  })
  .loose();

function readJson(file: string, hint: string): unknown {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new TuneforgeError(`cannot read JSON (${(e as Error).message})`, { file, hint, cause: e });
  }
}

function validate<T>(schema: z.ZodType<T>, value: unknown, file: string, hint: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new TuneforgeError(issue.message, { file, key: issue.path.join(".") || undefined, hint });
}

/** Load one run folder. Throws when it has no metrics.jsonl: there is nothing to report without it. */
export function loadRun(runDir: string): LoadedRun {
  const dir = resolve(runDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TuneforgeError("run folder not found", {
      file: runDir,
      hint: "pass a run folder such as runs/<name> (the trainer's output folder)",
    });
  }
  const metricsFile = join(dir, METRICS_FILE);
  if (!existsSync(metricsFile)) {
    throw new TuneforgeError(`no ${METRICS_FILE} in this run folder`, {
      file: runDir,
      hint:
        `a run folder must hold ${METRICS_FILE} (one JSON object per line, e.g. {"step":10,"loss":2.31,"lr":0.0002}), ` +
        "written by `tuneforge train`; check the path, or train first",
    });
  }
  const metrics = readMetricsJsonl(metricsFile);
  const infoFile = join(dir, RUN_INFO_FILE);
  let info: RunInfo | undefined;
  if (existsSync(infoFile)) {
    const hint = `${RUN_INFO_FILE} must be {name, base_model, config: {...}, started_at, domain?, finished_at?}`;
    info = validate(runInfoSchema, readJson(infoFile, hint), infoFile, hint) as RunInfo;
  }
  return { dir, name: info?.name ?? basename(dir), info, metrics };
}

/** Every run folder under a runs/ folder (for `--all`), sorted by name. */
export function findRunDirs(runsDir: string): string[] {
  if (!existsSync(runsDir) || !statSync(runsDir).isDirectory()) {
    throw new TuneforgeError("runs folder not found", {
      file: runsDir,
      hint: "pass the folder that holds one sub-folder per training run (e.g. runs/)",
    });
  }
  const dirs = readdirSync(runsDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => join(runsDir, e.name))
    .sort();
  if (dirs.length === 0) {
    throw new TuneforgeError("no run folders in this folder", {
      file: runsDir,
      hint: "train a model first (`tuneforge train`), which writes runs/<name>/metrics.jsonl",
    });
  }
  return dirs;
}

export function loadResultsFile(file: string): LoadedResults {
  const hint =
    "a results file must be {name, base_model, task, scores: {...}, settings: {...}, " +
    "examples: [{source, reference, output, score?}]}, as `tuneforge eval` writes it";
  const results = validate(resultsSchema, readJson(file, hint), file, hint) as ResultsFile;
  return { file, results };
}

/** Every `<name>_results.json` in a folder, sorted by file name. */
export function loadResultsDir(resultsDir: string): LoadedResults[] {
  return readdirSync(resultsDir)
    .filter((f) => f.endsWith(RESULTS_SUFFIX))
    .sort()
    .map((f) => loadResultsFile(join(resultsDir, f)));
}

/** `runs/<name>` -> `results/`, the evaluator's default output folder beside runs/. */
export function defaultResultsDir(runDir: string): string {
  return resolve(runDir, "..", "..", "results");
}

/**
 * Does a results file evaluate this run? Yes when it names the run (`run` or `name`), or when its adapter
 * path lies inside the run folder (relative adapter paths are taken from the project root: the folder
 * holding results/).
 */
export function resultsBelongToRun(loaded: LoadedResults, run: LoadedRun): boolean {
  const r = loaded.results;
  if (r.run === run.name || r.run === basename(run.dir)) return true;
  if (r.name === run.name) return true;
  if (r.adapter === undefined) return false;
  const adapter = resolve(dirname(dirname(loaded.file)), r.adapter);
  const rel = relative(run.dir, adapter);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** Results of the base model alone (no adapter) on a run's base model: the baseline it should beat. */
export function isBaselineFor(
  loaded: LoadedResults,
  runs: ReadonlyArray<LoadedRun>,
  matched: ReadonlyArray<LoadedResults>,
): boolean {
  if (loaded.results.adapter !== undefined) return false;
  const bases = new Set<string>();
  for (const run of runs) if (run.info) bases.add(run.info.base_model);
  for (const m of matched) bases.add(m.results.base_model);
  return bases.has(loaded.results.base_model);
}
