// `tuneforge validate`: check tuneforge.yaml and read every data file through the loaders, writing nothing.
import type { Command } from "commander";
import { acceptConfigOverrides } from "../../config/overrides.js";
import { validateProject } from "../../data/validate.js";
import { TuneforgeError } from "../../errors.js";
import { loadProjectConfig } from "../project.js";
import type { CliContext } from "../main.js";

export function registerValidate(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("validate")
    .description("Check tuneforge.yaml and every data file it names, without writing anything")
    .option("--max-problems <n>", "how many bad rows to list", (v) => Number.parseInt(v, 10), 20);
  acceptConfigOverrides(cmd).addHelpText(
    "after",
    `
Checks: every config key (types, ranges, typos with suggestions), that each input exists and loads
(encoding, columns, JSON syntax, row format), and how many rows each holds.

Examples:
  $ tuneforge validate
  $ tuneforge validate --config examples/translation/tuneforge.yaml
  $ tuneforge validate --max-problems 100`,
  );
  cmd.action(async (opts: { maxProblems: number }) => {
    const loaded = loadProjectConfig(cmd);
    ctx.out(`config ${loaded.file}: ok`);
    const report = await validateProject(loaded.config);
    for (const input of report.inputs) {
      ctx.out(
        `${input.path}: ${input.rows} rows (domain ${input.domains.join(", ")})${input.problems ? `, ${input.problems} bad` : ""}`,
      );
    }
    for (const p of report.problems.slice(0, opts.maxProblems)) {
      ctx.err(`  ${p.source.line > 0 ? `${p.source.file}:${p.source.line}: ` : ""}${p.reason}`);
    }
    if (report.problems.length > opts.maxProblems)
      ctx.err(`  ... and ${report.problems.length - opts.maxProblems} more`);
    if (report.problems.length > 0) {
      throw new TuneforgeError(`${report.problems.length} bad rows in the data`, {
        hint: "fix the rows listed above, or set data.skip_invalid: true to skip them (they go to rejects.jsonl)",
      });
    }
    ctx.out(`all ${report.inputs.length} inputs are valid (${report.totalRows} rows)`);
  });
}
