// The `tuneforge` command line. Each command lives in src/cli/commands/<name>.ts and registers itself
// through the COMMANDS list below. Errors the user can fix print as one plain message (no stack trace).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { packageRoot } from "../config/init.js";
import { TuneforgeError } from "../errors.js";
import { registerInit } from "./commands/init.js";
import { registerDemo } from "./commands/demo.js";
import { registerEval } from "./commands/evaluate.js";
import { registerInspect } from "./commands/inspect.js";
import { registerTrain } from "./commands/train.js";
import { registerCompare, registerTranslate } from "./commands/translate.js";
import { registerMerge } from "./commands/merge.js";
import { registerPull } from "./commands/pull.js";
import { registerReport } from "./commands/report.js";
import { registerScore } from "./commands/score.js";
import { registerPrepare } from "./commands/prepare.js";
import { registerValidate } from "./commands/validate.js";

/** Where commands write; tests capture it, the real CLI uses stdout/stderr. */
export interface CliContext {
  out(line: string): void;
  err(line: string): void;
}

/**
 * Every command, in the order `tuneforge --help` lists them.
 * The lead registers prepare / validate / inspect (and later train, eval, export, serve) here.
 */
const COMMANDS: Array<(program: Command, ctx: CliContext) => void> = [
  registerInit,
  registerValidate,
  registerPrepare,
  registerInspect,
  registerTrain,
  registerEval,
  registerTranslate,
  registerCompare,
  registerPull,
  registerMerge,
  registerScore,
  registerReport,
  registerDemo,
];

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
    .version;
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("tuneforge")
    .description("Fine-tune open LLMs on your own data: prepare -> train -> evaluate -> merge")
    .version(version(), "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    // Throw instead of calling process.exit, so errors go through one handler (and tests can run commands).
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s.replace(/\n$/, "")),
      writeErr: (s) => ctx.err(s.replace(/\n$/, "")),
    })
    .addHelpText(
      "after",
      `
Examples:
  $ tuneforge init --template translation
  $ tuneforge prepare --config tuneforge.yaml
  $ tuneforge <command> --help`,
    );
  for (const register of COMMANDS) register(program, ctx);
  return program;
}

const useColor = () => Boolean(process.stderr.isTTY) && !process.env.NO_COLOR;
const red = (s: string) => (useColor() ? `\x1b[31m${s}\x1b[0m` : s);

/** Runs the CLI and returns the exit code (0 ok, 1 error). `argv` is process.argv-shaped. */
export async function run(argv: readonly string[], ctx: CliContext = consoleContext()): Promise<number> {
  const debug = process.env.TUNEFORGE_DEBUG === "1";
  try {
    await buildProgram(ctx).parseAsync([...argv]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version end with exit code 0; usage errors were already printed by commander.
      return e.exitCode;
    }
    if (e instanceof TuneforgeError && !debug) {
      ctx.err(red(`error: ${e.message}`));
      return 1;
    }
    ctx.err(red(e instanceof Error ? (e.stack ?? e.message) : String(e)));
    return 1;
  }
}

function consoleContext(): CliContext {
  return {
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
  };
}

/** Entry point used by bin/tuneforge.js. */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await run(argv);
}
