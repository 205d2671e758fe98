// `tuneforge translate` and `tuneforge compare`: the quick way to try adapters on your own text.
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { DEVICE_CHOICES, type DeviceChoice } from "../../engine/device.js";
import { compare } from "../../eval/compare.js";
import { translate } from "../../eval/translate.js";
import { TuneforgeError } from "../../errors.js";
import { resolveModelDir } from "../../model/resolve.js";
import { DEFAULT_MODEL } from "../../config/schema.js";
import type { CliContext } from "../main.js";

interface TextFlags {
  model: string;
  text?: string[];
  file?: string;
  maxNewTokens: number;
  threads?: number;
  device: DeviceChoice;
}

function addTextOptions(cmd: Command): Command {
  return cmd
    .option("-m, --model <name-or-folder>", "the base model the adapters were trained on", DEFAULT_MODEL)
    .option("-t, --text <text...>", "text(s) to run (else --file, else standard input, one segment per line)")
    .option("-f, --file <file>", "a file with one segment per line")
    .option("--max-new-tokens <n>", "longest output", (v) => Number.parseInt(v, 10), 256)
    .option("--threads <n>", "CPU threads", (v) => Number.parseInt(v, 10))
    .addOption(
      new Option("--device <device>", "where the model runs (auto: a CUDA GPU when there is one)")
        .choices(DEVICE_CHOICES)
        .default("auto"),
    );
}

async function inputTexts(flags: TextFlags): Promise<string[]> {
  if (flags.text?.length) return flags.text;
  const raw = flags.file ? readFileSync(flags.file, "utf8") : await readStdin();
  const texts = raw.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (texts.length === 0) {
    throw new TuneforgeError("no text to run", {
      hint: 'pass --text "...", --file segments.txt, or pipe lines in',
    });
  }
  return texts;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return "";
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export function registerTranslate(program: Command, ctx: CliContext): void {
  addTextOptions(
    program
      .command("translate")
      .description("Run text through a base model + adapter with the prompt format it was trained with")
      .option("-a, --adapter <folder>", "the adapter (its tuneforge.json gives template and system prompt)"),
  )
    .addHelpText(
      "after",
      `
Examples:
  $ tuneforge translate --adapter models/technology --text "The server restarts after the update."
  $ tuneforge translate --adapter models/technology --file segments.txt > arabic.txt
  $ echo "Quiero 3 sillas para el lunes" | tuneforge translate --adapter models/orders`,
    )
    .action(async (flags: TextFlags & { adapter?: string }) => {
      const outputs = await translate({
        modelDir: await resolveModelDir(flags.model),
        adapterDir: flags.adapter,
        texts: await inputTexts(flags),
        maxNewTokens: flags.maxNewTokens,
        threads: flags.threads,
        device: flags.device,
      });
      for (const out of outputs) ctx.out(out);
    });
}

export function registerCompare(program: Command, ctx: CliContext): void {
  addTextOptions(
    program
      .command("compare")
      .description("Run the same text through several adapters on one loaded base model, side by side")
      .requiredOption("-a, --adapters <folders>", "comma-separated adapter folders"),
  )
    .addHelpText(
      "after",
      `
Examples:
  $ tuneforge compare --adapters models/technology,models/economic,models/education --text "Interest rates rose."
  $ tuneforge compare -a models/a,models/b --file sentences.txt`,
    )
    .action(async (flags: TextFlags & { adapters: string }) => {
      const result = await compare({
        modelDir: await resolveModelDir(flags.model),
        adapterDirs: flags.adapters
          .split(",")
          .map((a) => a.trim())
          .filter(Boolean),
        texts: await inputTexts(flags),
        maxNewTokens: flags.maxNewTokens,
        threads: flags.threads,
        device: flags.device,
      });
      const width = Math.max(...result.adapters.map((a) => a.length));
      for (const row of result.rows) {
        ctx.out(`── ${row.text}`);
        row.outputs.forEach((out, i) => ctx.out(`${result.adapters[i].padEnd(width)}  ${out}`));
      }
    });
}
