// `tuneforge demo`: the README's first command. Fine-tunes a model on generated Spanish purchase orders and shows
// how much better it extracts JSON from orders written in wordings it never saw, offline, in minutes.
import { relative } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { runDemo, type DemoProgress, type DemoResult, type DemoStage } from "../../demo/demo.js";
import { DEFAULT_MINUTES, DEFAULT_TRAIN_ORDERS, HELDOUT_ORDERS } from "../../demo/settings.js";
import { createProgress, formatDuration, type Progress } from "../progress.js";
import type { CliContext } from "../main.js";

interface DemoFlags {
  model?: string;
  dir: string;
  trainOrders: number;
  minutes: number;
  threads?: number;
}

const BAR_LABELS: Partial<Record<DemoStage, { label: string; fields?: string[] }>> = {
  prepare: { label: "prepare" },
  "eval-before": { label: "eval (before)" },
  train: { label: "train", fields: ["loss", "lr"] },
  "eval-after": { label: "eval (after)" },
};

const shown = (path: string) => relative(process.cwd(), path) || path;
const oneLine = (text: string, max = 160) => {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** The before/after table, one metric a line. */
export function comparisonTable(r: Pick<DemoResult, "before" | "after">): string[] {
  const rows: [string, string, string][] = [
    ["", "before", "after"],
    ["JSON field F1", r.before.jsonF1.toFixed(3), r.after.jsonF1.toFixed(3)],
    ["exact match", r.before.exact.toFixed(3), r.after.exact.toFixed(3)],
    [
      "unparseable",
      `${(100 * r.before.unparseable).toFixed(1)}%`,
      `${(100 * r.after.unparseable).toFixed(1)}%`,
    ],
  ];
  return rows.map(([name, b, a]) => `  ${name.padEnd(15)} ${b.padStart(8)} ${a.padStart(8)}`);
}

function parsePositive(what: string, integer: boolean) {
  return (v: string) => {
    const n = Number(v);
    if (!(n > 0) || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(
        `${what} must be a positive ${integer ? "whole " : ""}number, got "${v}"`,
      );
    return n;
  };
}

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description(
      "Fine-tune a model on generated Spanish purchase orders and compare JSON extraction before/after",
    )
    .option("--model <hub-id-or-folder>", "base model (default: the built-in tiny model, built on first use)")
    .option("--dir <folder>", "work folder for data, run, results and report", "./tuneforge-demo")
    .option(
      "--train-orders <n>",
      "generated training orders",
      parsePositive("--train-orders", true),
      DEFAULT_TRAIN_ORDERS,
    )
    .option(
      "--minutes <m>",
      "training time budget (steps are derived from a measured step time)",
      parsePositive("--minutes", false),
      DEFAULT_MINUTES,
    )
    .option("--threads <n>", "CPU threads (default: all cores)", parsePositive("--threads", true))
    .addHelpText(
      "after",
      `
Offline, no GPU needed. Generates Spanish purchase orders (free text + JSON) and ${HELDOUT_ORDERS} held-out orders
written in phrasings never used for training, prepares them with the model's tokenizer, evaluates the base
model, trains (full fine-tuning for the built-in tiny model, LoRA for --model), evaluates again and prints
JSON field F1, exact match and the unparseable rate before and after, with a few examples.
Writes <dir>/results/*_results.json, <dir>/runs/demo (the trained model) and <dir>/report.html.
Ctrl-C stops training after the current step.

Examples:
  $ tuneforge demo
  $ tuneforge demo --minutes 3 --dir /tmp/demo
  $ tuneforge demo --model Qwen/Qwen2.5-0.5B-Instruct --minutes 30   # after \`tuneforge pull\``,
    )
    .action(async (flags: DemoFlags) => {
      const abort = new AbortController();
      const onSigint = () => {
        if (abort.signal.aborted) process.exit(130);
        ctx.err("\nstopping after this step (Ctrl-C again to quit at once)");
        abort.abort();
      };
      process.on("SIGINT", onSigint);
      let bar: { stage: DemoStage; progress: Progress } | null = null;
      const stopBar = () => {
        bar?.progress.stop();
        bar = null;
      };
      let result: DemoResult;
      try {
        result = await runDemo({
          model: flags.model,
          dir: flags.dir,
          trainOrders: flags.trainOrders,
          minutes: flags.minutes,
          threads: flags.threads,
          signal: abort.signal,
          onStage: (_stage, message) => {
            stopBar();
            ctx.err(`• ${message}`);
          },
          onProgress: (p: DemoProgress) => {
            const spec = BAR_LABELS[p.stage];
            if (!spec) return;
            if (bar?.stage !== p.stage) {
              stopBar();
              bar = {
                stage: p.stage,
                progress: createProgress({
                  total: p.total,
                  label: spec.label,
                  fields: spec.fields,
                  stream: process.stderr,
                }),
              };
            }
            bar.progress.update(p.done, p.fields);
          },
        });
      } finally {
        stopBar();
        process.off("SIGINT", onSigint);
      }
      const r = result;
      ctx.out("");
      ctx.out(
        `Held-out orders (${r.heldoutRows}, phrasings never seen in training), ${r.finetuning === "full" ? "full fine-tuning" : "LoRA"}, ` +
          `${r.steps} steps on ${r.trainRows} orders${r.stoppedAtTimeLimit ? " (stopped at the time budget)" : ""}:`,
      );
      for (const line of comparisonTable(r)) ctx.out(line);
      ctx.out("");
      ctx.out("Examples (after training):");
      for (const ex of r.examples.slice(0, 3)) {
        ctx.out(`  input:     ${oneLine(ex.source)}`);
        ctx.out(`  reference: ${oneLine(ex.reference)}`);
        ctx.out(`  output:    ${oneLine(ex.output)}`);
        ctx.out("");
      }
      ctx.out(`done in ${formatDuration(r.seconds.total)} (training ${formatDuration(r.seconds.train)})`);
      ctx.out(`  run folder: ${shown(r.runDir)}`);
      ctx.out(`  results:    ${shown(r.resultsDir)}/`);
      ctx.out(`  report:     ${shown(r.reportPath)}`);
    });
}
