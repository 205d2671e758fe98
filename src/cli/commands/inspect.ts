// `tuneforge inspect`: look at data the way the model will see it — a prepared folder's summary, prepared
// rows with the trained (unmasked) part marked, or the first rows of a raw input file as conversations.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { describeSource, loadRows } from "../../data/load/index.js";
import { MANIFEST_FILE, readManifest, STATS_FILE } from "../../data/prepare.js";
import type { StatsJson } from "../../data/stats.js";
import { Tokenizer } from "../../data/tokenizer.js";
import type { PreparedRow } from "../../data/types.js";
import { readJsonFile } from "../../model/folder.js";
import { readJsonl } from "../../store/jsonl.js";
import type { CliContext } from "../main.js";
import { summarize } from "./prepare.js";

export function registerInspect(program: Command, ctx: CliContext): void {
  program
    .command("inspect")
    .description("Show prepared data (or a raw input file) as the model will see it")
    .argument("<path>", "a prepared folder, a prepared .jsonl file, or a raw data file/folder")
    .option("-n, --rows <n>", "how many rows to show", (v) => Number.parseInt(v, 10), 3)
    .option("--tokens", "show each token, with the masked (prompt) tokens in [brackets]", false)
    .addHelpText(
      "after",
      `
Examples:
  $ tuneforge inspect data/prepared                      # files, rows, drop reasons, token lengths
  $ tuneforge inspect data/prepared/technology_train.jsonl -n 2
  $ tuneforge inspect data/prepared/technology_train.jsonl --tokens
  $ tuneforge inspect "data/economic v1.csv"             # how a raw file is read (format, columns, rows)`,
    )
    .action(async (path: string, opts: { rows: number; tokens: boolean }) => {
      if (existsSync(join(path, MANIFEST_FILE))) return inspectPreparedDir(path, ctx);
      if (path.endsWith(".jsonl") && (await isPrepared(path))) return inspectPreparedFile(path, opts, ctx);
      return inspectRaw(path, opts.rows, ctx);
    });
}

function inspectPreparedDir(dir: string, ctx: CliContext): void {
  const manifest = readManifest(dir)!;
  ctx.out(
    `prepared ${manifest.created_at} with tokenizer ${manifest.tokenizer.hash.slice(0, 12)} (${manifest.tokenizer.dir})`,
  );
  ctx.out(
    `template ${manifest.template}, max_seq_length ${manifest.max_seq_length}, packing ${manifest.packing}`,
  );
  for (const f of manifest.files)
    ctx.out(
      `  ${f.file.padEnd(36)} ${String(f.rows).padStart(7)} rows ${String(f.tokens).padStart(9)} tokens`,
    );
  if (existsSync(join(dir, STATS_FILE)))
    for (const line of summarize(readJsonFile<StatsJson>(join(dir, STATS_FILE)))) ctx.out(line);
}

async function isPrepared(file: string): Promise<boolean> {
  for await (const { row } of readJsonl<Partial<PreparedRow>>(file)) return Array.isArray(row.input_ids);
  return false;
}

async function inspectPreparedFile(
  file: string,
  opts: { rows: number; tokens: boolean },
  ctx: CliContext,
): Promise<void> {
  const manifest = readManifest(join(file, ".."));
  const tokenizer = opts.tokens ? await Tokenizer.fromModelDir(manifest?.tokenizer.dir) : null;
  let shown = 0;
  for await (const { line, row } of readJsonl<PreparedRow>(file)) {
    if (shown++ >= opts.rows) break;
    const trained = row.labels.filter((l) => l !== -100).length;
    ctx.out(
      `── ${file}:${line}  ${row.domain}  from ${row.source.file}:${row.source.line}  ${row.input_ids.length} tokens, ${trained} trained`,
    );
    if (tokenizer) {
      ctx.out(
        row.input_ids
          .map((id, i) => (row.labels[i] === -100 ? `[${tokenizer.decode([id])}]` : tokenizer.decode([id])))
          .join("|"),
      );
    } else {
      ctx.out(`prompt:     ${JSON.stringify(row.prompt)}`);
      ctx.out(`completion: ${JSON.stringify(row.completion)}`);
    }
    if (row.boundaries)
      ctx.out(`packed: ${row.boundaries.length} examples starting at ${row.boundaries.join(", ")}`);
  }
}

async function inspectRaw(path: string, rows: number, ctx: CliContext): Promise<void> {
  const source = describeSource(path);
  ctx.out(`${path}: ${source.kind}, ${source.files.length} data file(s), domain "${source.domain}"`);
  for (const f of source.files) ctx.out(`  ${f.path} (${f.format}, ${statSync(f.path).size} bytes)`);
  let shown = 0;
  for await (const row of loadRows({ path })) {
    if (shown++ >= rows) break;
    ctx.out(`── ${row.source.file}:${row.source.line}`);
    if (row.kind === "tokenized") ctx.out(`  (tokenized) ${row.input_ids.length} tokens`);
    else {
      if (row.instruction) ctx.out(`  instruction: ${row.instruction}`);
      for (const m of row.messages) ctx.out(`  ${m.role}: ${m.content}`);
      if (row.text !== undefined)
        ctx.out(`  text: ${row.text.slice(0, 300)}${row.text.length > 300 ? "…" : ""}`);
    }
  }
}
