// `tuneforge report`: one self-contained HTML page with loss curves, learning rate, task metrics,
// scores by domain and example outputs; opens offline in any browser.
import { join, relative } from "node:path";
import type { Command } from "commander";
import { findRunDirs, writeReport } from "../../eval/report/index.js";
import { TuneforgeError } from "../../errors.js";
import type { CliContext } from "../main.js";

export function registerReport(program: Command, ctx: CliContext): void {
  program
    .command("report")
    .description("Write an HTML report (loss curves, metrics, scores by domain, examples) for training runs")
    .argument("[run]", "a run folder (e.g. models/technology)")
    .option("--all [folder]", "report every run under this folder (default: models)")
    .option(
      "--results <folder>",
      "where the <name>_results.json files are (default: results/ beside the runs folder)",
    )
    .option("--all-results", "include every results file, not only those of the runs shown", false)
    .option(
      "-o, --out <file>",
      "the HTML file to write (default: <run>/report.html, or <folder>/report.html)",
    )
    .addHelpText(
      "after",
      `
The page is one file with its charting library inlined: no network is needed to open it.

Examples:
  $ tuneforge report models/technology
  $ tuneforge report --all                 # every run under models/, side by side
  $ tuneforge report --all runs --out report.html`,
    )
    .action(
      (
        run: string | undefined,
        opts: { all?: string | boolean; results?: string; allResults: boolean; out?: string },
      ) => {
        if (!run && !opts.all) {
          throw new TuneforgeError("name a run folder or pass --all", {
            hint: "tuneforge report models/<name>  or  tuneforge report --all",
          });
        }
        const root = typeof opts.all === "string" ? opts.all : "models";
        const runDirs = run ? [run] : findRunDirs(root);
        const out = opts.out ?? join(run ?? root, "report.html");
        writeReport({ runDirs, resultsDir: opts.results, allResults: opts.allResults, out });
        ctx.out(
          `wrote ${relative(process.cwd(), out) || out} (${runDirs.length} run${runDirs.length === 1 ? "" : "s"})`,
        );
      },
    );
}
