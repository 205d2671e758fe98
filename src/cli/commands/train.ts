// `tuneforge train`: prepare (a no-op when up to date), then train one adapter per domain with progress,
// validation, checkpoints, and Ctrl-C that saves a checkpoint instead of losing the run (and exits 130).
import { join, relative } from "node:path";
import { CommanderError, type Command } from "commander";
import { acceptConfigOverrides } from "../../config/overrides.js";
import { prepare, readManifest } from "../../data/prepare.js";
import { Tokenizer } from "../../data/tokenizer.js";
import { TuneforgeError } from "../../errors.js";
import { resolveModelDir } from "../../model/resolve.js";
import { train, trainAllDomains, type LogEntry, type TrainResult } from "../../train/index.js";
import { createProgress, type Progress } from "../progress.js";
import { loadProjectConfig } from "../project.js";
import type { CliContext } from "../main.js";

interface TrainFlags {
  domain?: string;
  allDomains: boolean;
  initAdapter?: string;
  resume: boolean;
  threads?: number;
}

export function registerTrain(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("train")
    .description("Train a LoRA adapter (or the full model) per domain on the prepared data")
    .option("--domain <name>", "train this domain's adapter (default: the only domain)")
    .option("--all-domains", "train one adapter per domain, each into <training.output_dir>/<domain>", false)
    .option("--init-adapter <folder>", "start from an existing PEFT adapter instead of a fresh one")
    .option("--resume", "continue from the newest checkpoint in the run folder", false)
    .option("--threads <n>", "CPU threads (default: all cores)", (v) => Number.parseInt(v, 10));
  acceptConfigOverrides(cmd).addHelpText(
    "after",
    `
The data is prepared first if it is missing or out of date (with the model's own tokenizer).
Output per run: <training.output_dir>/<run_name or domain>/ with the PEFT adapter, tokenizer files,
tuneforge.json (settings), metrics.jsonl (loss, lr, grad norm, tokens/s, memory) and run.json.
With training.eval_task_metric set, a task metric (chrF, JSON F1, ...) on validation rows is logged at each
epoch end (or every eval_steps) and shown in the progress line; early_stopping_metric: task stops on it.
training.max_train_minutes stops the run after the step that reaches it, saving the adapter as usual.
Ctrl-C finishes the current step, saves a checkpoint and exits with code 130; --resume continues exactly
where it stopped.

Examples:
  $ tuneforge train --domain technology
  $ tuneforge train --all-domains --num_train_epochs 2 --lora-r 32
  $ tuneforge train --domain technology --resume
  $ tuneforge train --max_steps 1 --lr_scheduler_type constant --max_grad_norm 0 --init-adapter ./adapter`,
  );
  cmd.action(async (flags: TrainFlags) => {
    const loaded = loadProjectConfig(cmd);
    const { config } = loaded;
    const modelDir = await resolveModelDir(config.model.name_or_path);
    const preparedDir = config.data.output_dir;
    const tokenizer = await Tokenizer.fromModelDir(config.model.tokenizer ?? modelDir);
    const prepared = await prepare({ config, tokenizer });
    if (!prepared.upToDate)
      ctx.out(`prepared ${prepared.stats.kept} rows into ${relative(process.cwd(), preparedDir)}`);

    const abort = new AbortController();
    const onSigint = () => {
      if (abort.signal.aborted) process.exit(130);
      ctx.err("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)");
      abort.abort();
    };
    process.on("SIGINT", onSigint);
    let bar: Progress | null = null;
    // The newest task metric, e.g. "chrf 41.2", shown in the progress line between evaluations.
    let lastEval = "-";
    const showEval = config.training.eval_task_metric !== "off";
    const common = {
      config,
      modelDir,
      preparedDir,
      initAdapter: flags.initAdapter,
      resume: flags.resume,
      threads: flags.threads,
      signal: abort.signal,
      onInfo: (line: string) => ctx.err(line),
      onLog: (entry: LogEntry) => {
        if ("eval" in entry) {
          const v = entry.eval.value;
          lastEval = `${entry.eval.metric} ${v === null ? "n/a" : Number(v.toPrecision(4))}`;
        }
      },
      onProgress: (step: number, total: number, fields: Record<string, number>) => {
        bar ??= createProgress({
          total,
          label: "train",
          fields: showEval ? ["loss", "lr", "epoch", "eval"] : ["loss", "lr", "epoch"],
          stream: process.stderr,
        });
        bar.update(step, { ...fields, eval: lastEval });
      },
    };
    let results: TrainResult[];
    try {
      if (flags.allDomains) {
        results = await trainAllDomains({ ...common, outputDir: config.training.output_dir });
      } else {
        const domain = flags.domain ?? onlyDomain(preparedDir);
        const outputDir = join(config.training.output_dir, config.training.run_name ?? domain);
        results = [await train({ ...common, domain, outputDir })];
      }
    } finally {
      (bar as Progress | null)?.stop();
      process.off("SIGINT", onSigint);
    }
    for (const r of results) {
      const where = relative(process.cwd(), r.outputDir) || r.outputDir;
      if (r.interrupted) {
        ctx.out(
          `${r.domain}: stopped at step ${r.steps}/${r.totalSteps}; checkpoint ${r.checkpoint}. Resume with --resume.`,
        );
      } else {
        const val = r.finalValLoss === null ? "" : `, val loss ${r.finalValLoss.toFixed(4)}`;
        const task =
          r.taskMetric && r.taskMetric.value !== null
            ? `, ${r.taskMetric.metric} ${r.taskMetric.value.toFixed(4)}`
            : "";
        const last = r.losses.at(-1);
        const why = STOP_NOTES[r.stopReason] ?? "";
        ctx.out(
          `${r.domain}: ${r.steps} steps${last ? `, loss ${last.loss.toFixed(4)}` : ""}${val}${task}${why} -> ${where}`,
        );
      }
    }
    // The usual exit code of a run stopped by SIGINT (its checkpoint is saved): scripts can tell it from
    // success. run() turns a CommanderError into its exit code without printing anything more.
    if (results.some((r) => r.interrupted)) {
      throw new CommanderError(130, "tuneforge.interrupted", "training interrupted");
    }
  });
}

const STOP_NOTES: Partial<Record<TrainResult["stopReason"], string>> = {
  early_stopping: " (early stop)",
  time_limit: " (time limit: training.max_train_minutes)",
};

function onlyDomain(preparedDir: string): string {
  const domains = [
    ...new Set(
      (readManifest(preparedDir)?.files ?? []).filter((f) => f.split === "train").map((f) => f.domain),
    ),
  ];
  if (domains.length === 1) return domains[0];
  throw new TuneforgeError(`the prepared data has ${domains.length} domains (${domains.join(", ")})`, {
    hint: "choose one with --domain <name>, or train each with --all-domains",
  });
}
