// `tuneforge eval`: generate on a prepared test set with an adapter, score it, and write results/<name>_results.json.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Command } from "commander";
import { acceptConfigOverrides } from "../../config/overrides.js";
import { evaluate, evaluateAllDomains } from "../../eval/evaluate.js";
import { writeResults, type EvalResult } from "../../eval/results.js";
import { TuneforgeError } from "../../errors.js";
import { resolveModelDir } from "../../model/resolve.js";
import { createProgress, type Progress } from "../progress.js";
import { loadProjectConfig } from "../project.js";
import type { CliContext } from "../main.js";

interface EvalFlags {
  model?: string;
  adapter?: string;
  data?: string;
  allDomains: boolean;
  metrics?: string;
  limit?: number;
  name?: string;
  json: boolean;
  threads?: number;
}

export function registerEval(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("eval")
    .description(
      "Evaluate a model (+ adapter) on a prepared test set: BLEU/chrF, JSON F1, exact match or loss",
    )
    .option("--model <name-or-folder>", "base model (default: model.name_or_path)")
    .option("--adapter <folder>", "the adapter to evaluate (omit for the base model alone)")
    .option(
      "--data <file>",
      "a prepared test file (default: <data.output_dir>/<the adapter's domain>_test.jsonl)",
    )
    .option(
      "--all-domains",
      "evaluate each domain's adapter (<training.output_dir>/<domain>) on its own test split",
      false,
    )
    .option(
      "--metrics <names>",
      "comma-separated: bleu, chrf, chrf++, json-f1, exact, loss, perplexity (default: by task)",
    )
    .option("--limit <n>", "evaluate only the first n rows", (v) => Number.parseInt(v, 10))
    .option("--name <name>", "results name (default: the adapter folder's name)")
    .option("--json", "print the scores as one JSON object", false)
    .option("--threads <n>", "CPU threads", (v) => Number.parseInt(v, 10));
  acceptConfigOverrides(cmd).addHelpText(
    "after",
    `
Writes results/<name>_results.json (scores, settings, example outputs) beside the models folder;
\`tuneforge report\` turns them into charts.

Examples:
  $ tuneforge eval --adapter models/technology
  $ tuneforge eval --adapter models/orders --data data/prepared/orders_test.jsonl --metrics json-f1,exact
  $ tuneforge eval --all-domains --json
  $ tuneforge eval --data data/prepared/technology_test.jsonl --name base_technology   # the base model alone`,
  );
  cmd.action(async (flags: EvalFlags) => {
    const { config } = loadProjectConfig(cmd);
    const baseModel = flags.model ?? config.model.name_or_path;
    const modelDir = await resolveModelDir(baseModel);
    const resultsDir = join(dirname(config.training.output_dir), "results");
    let bar: Progress | null = null;
    const settings = {
      baseModel,
      metrics: flags.metrics ?? (config.eval.metrics.includes("auto") ? undefined : config.eval.metrics),
      maxNewTokens: config.eval.max_new_tokens,
      batchSize: config.eval.batch_size,
      numExamples: config.eval.num_examples,
      temperature: config.eval.temperature,
      limit: flags.limit,
      threads: flags.threads,
      // training.device (`--device cuda`) picks the engine's device for evaluation too.
      device: config.training.device,
      onProgress: (p: { done: number; total: number }) => {
        bar ??= createProgress({ total: p.total, label: "eval", stream: process.stderr });
        bar.update(p.done);
      },
    };
    let results: EvalResult[];
    try {
      if (flags.allDomains) {
        results = await evaluateAllDomains({
          ...settings,
          modelDir,
          adaptersRoot: config.training.output_dir,
          preparedDir: config.data.output_dir,
          resultsDir,
        });
      } else {
        const data = flags.data ?? defaultTestFile(flags.adapter, config.data.output_dir);
        const result = await evaluate({
          ...settings,
          modelDir,
          adapterDir: flags.adapter,
          data,
          name: flags.name,
        });
        writeResults(result, resultsDir);
        results = [result];
      }
    } finally {
      (bar as Progress | null)?.stop();
    }
    if (flags.json) {
      ctx.out(
        JSON.stringify(
          results.length === 1
            ? results[0].scores
            : Object.fromEntries(results.map((r) => [r.domain ?? r.name, r.scores])),
        ),
      );
      return;
    }
    for (const r of results) {
      const scores = Object.entries(r.scores).map(
        ([k, v]) =>
          `${k} ${typeof v === "number" ? v.toFixed(k === "bleu" || k.startsWith("chrf") ? 2 : 4) : v}`,
      );
      ctx.out(`${r.name}: ${scores.join(", ")} on ${r.count} rows (${r.task})`);
      for (const ex of r.examples.slice(0, 3))
        ctx.out(`  source: ${ex.source}\n  ref:    ${ex.reference}\n  output: ${ex.output}`);
    }
    ctx.out(`results in ${relative(process.cwd(), resultsDir) || resultsDir}/`);
  });
}

/** The test split of the domain an adapter was trained on (its run.json says which). */
function defaultTestFile(adapter: string | undefined, preparedDir: string): string {
  const runInfo = adapter && join(adapter, "run.json");
  if (runInfo && existsSync(runInfo)) {
    const domain = (JSON.parse(readFileSync(runInfo, "utf8")) as { domain?: string }).domain;
    if (domain) return join(preparedDir, `${domain}_test.jsonl`);
  }
  throw new TuneforgeError("which test file? none was given and the adapter does not say its domain", {
    hint: "pass --data data/prepared/<domain>_test.jsonl (or --all-domains)",
  });
}
