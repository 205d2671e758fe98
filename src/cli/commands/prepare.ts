// `tuneforge prepare`: the data pipeline of tuneforge.yaml, with progress and a summary of what was kept.
import { relative } from "node:path";
import type { Command } from "commander";
import { acceptConfigOverrides } from "../../config/overrides.js";
import { prepare } from "../../data/prepare.js";
import type { StatsJson } from "../../data/stats.js";
import { estimateRows } from "../../data/load/estimate.js";
import { createProgress } from "../progress.js";
import { loadProjectConfig, projectTokenizer } from "../project.js";
import type { CliContext } from "../main.js";

export function registerPrepare(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("prepare")
    .description("Clean, split, template and tokenize the data of tuneforge.yaml into data/prepared/")
    .option("-f, --force", "rebuild even if inputs and settings are unchanged", false)
    .option("--no-tokenize", "write rendered prompt/completion text only (no token ids)");
  acceptConfigOverrides(cmd).addHelpText(
    "after",
    `
Output: <data.output_dir>/<domain>_<train|val|test>.jsonl, stats.json (rows kept and dropped by reason,
token-length percentiles), manifest.json (tokenizer hash, files), rejects.jsonl (with --skip_invalid).

Examples:
  $ tuneforge prepare
  $ tuneforge prepare --config examples/translation/tuneforge.yaml
  $ tuneforge prepare --max_seq_length 256 --packing --skip_invalid
  $ tuneforge prepare --set data.split.train=0.9 --set data.split.val=0.05 --set data.split.test=0.05`,
  );
  cmd.action(async (opts: { force: boolean; tokenize: boolean }) => {
    const loaded = loadProjectConfig(cmd);
    const tokenizer = await projectTokenizer(loaded, ctx);
    const total = await estimateRows(loaded.config.data.inputs.map((i) => i.path));
    const progress = createProgress({ total, label: "prepare", fields: ["rows"], stream: process.stderr });
    let result;
    try {
      result = await prepare({
        config: loaded.config,
        tokenizer,
        force: opts.force,
        tokenize: opts.tokenize,
        onRow: ({ rows }) => {
          if (rows % 64 === 0) progress.update(Math.min(rows, total), { rows });
        },
      });
      progress.update(total, { rows: result.stats.rows_in });
    } finally {
      progress.stop();
    }
    const out = relative(process.cwd(), result.outputDir) || ".";
    if (result.upToDate) {
      ctx.out(`${out} is up to date (inputs and settings unchanged; --force rebuilds)`);
      return;
    }
    for (const line of summarize(result.stats)) ctx.out(line);
    ctx.out(
      `\nwrote ${result.manifest.files.length} files to ${out}/ (tokenizer ${result.manifest.tokenizer.hash.slice(0, 12)})`,
    );
    if (result.manifest.rejects > 0)
      ctx.out(`${result.manifest.rejects} rejected rows in ${out}/rejects.jsonl`);
  });
}

/** A per-domain table: rows in, kept, per split, and the drop reasons. */
export function summarize(stats: StatsJson): string[] {
  const lines = [
    `${"domain".padEnd(20)} ${"in".padStart(7)} ${"kept".padStart(7)} ${"train".padStart(7)} ${"val".padStart(6)} ${"test".padStart(6)}  dropped`,
  ];
  for (const [name, d] of Object.entries(stats.domains)) {
    const dropped =
      Object.entries(d.dropped)
        .map(([r, n]) => `${r} ${n}`)
        .join(", ") || "-";
    lines.push(
      `${name.padEnd(20)} ${String(d.rows_in).padStart(7)} ${String(d.kept).padStart(7)} ` +
        `${String(d.splits.train?.rows ?? 0).padStart(7)} ${String(d.splits.val?.rows ?? 0).padStart(6)} ` +
        `${String(d.splits.test?.rows ?? 0).padStart(6)}  ${dropped}`,
    );
  }
  const t = stats.tokens;
  lines.push(`tokens per row: p50 ${t.p50} p95 ${t.p95} max ${t.max}; truncated rows: ${stats.truncated}`);
  return lines;
}
