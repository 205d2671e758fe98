// `tuneforge init`: start a project from a bundled example.
import { relative } from "node:path";
import { Option, type Command } from "commander";
import { INIT_TEMPLATES, initProject } from "../../config/init.js";
import type { CliContext } from "../main.js";

const TEMPLATE_DESCRIPTIONS: Record<keyof typeof INIT_TEMPLATES, string> = {
  translation: "English–Arabic translation in three domains (CSV)",
  chat: "Algerian Darija chat messages with English translations (JSON segments)",
  "json-extraction": "Spanish purchase orders -> structured JSON (JSONL)",
  "documents-qa": "plain-text documents chunked for domain adaptation (TXT)",
};

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command("init")
    .description("Create a commented tuneforge.yaml and example data for a use case")
    .addOption(
      new Option("-t, --template <name>", "the use case to start from")
        .choices(Object.keys(INIT_TEMPLATES))
        .default("translation"),
    )
    .option("-d, --dir <folder>", "where to write the files", ".")
    .option("-f, --force", "overwrite files that already exist", false)
    .addHelpText(
      "after",
      `
Templates:
${Object.entries(TEMPLATE_DESCRIPTIONS)
  .map(([name, what]) => `  ${name.padEnd(16)} ${what}`)
  .join("\n")}

Examples:
  $ tuneforge init --template translation
  $ tuneforge init --template json-extraction --dir my-orders
  $ tuneforge init --template chat --dir . --force`,
    )
    .action((opts: { template: string; dir: string; force: boolean }) => {
      const written = initProject({ template: opts.template, dir: opts.dir, force: opts.force });
      for (const path of written) ctx.out(`wrote ${relative(process.cwd(), path) || path}`);
      const config = written.find((p) => p.endsWith("tuneforge.yaml"));
      ctx.out(
        `\nNext: edit ${config ? relative(process.cwd(), config) : "tuneforge.yaml"}, then run ` +
          `\`tuneforge prepare${opts.dir === "." ? "" : ` --config ${relative(process.cwd(), config ?? opts.dir)}`}\`.`,
      );
    });
}
