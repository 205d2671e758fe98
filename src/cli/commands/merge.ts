// `tuneforge merge`: fold a LoRA adapter into its base model, writing a plain HF model folder.
import type { Command } from "commander";
import { mergeAdapter } from "../../model/merge.js";
import { resolveModelDir } from "../../model/resolve.js";
import { createProgress } from "../progress.js";
import type { CliContext } from "../main.js";

export function registerMerge(program: Command, ctx: CliContext): void {
  program
    .command("merge")
    .description(
      "Merge a LoRA adapter into its base model (W + scale·B·A), same dtype and sharding as the base",
    )
    .requiredOption(
      "-m, --model <name-or-folder>",
      "the base model: a folder, a pulled hub id, or tuneforge/tiny",
    )
    .requiredOption("-a, --adapter <folder>", "the PEFT adapter folder (e.g. models/technology)")
    .requiredOption("-o, --out <folder>", "where to write the merged model")
    .addHelpText(
      "after",
      `
The result loads in transformers (AutoModelForCausalLM.from_pretrained), vLLM and tuneforge without PEFT.

Examples:
  $ tuneforge merge --model Qwen/Qwen2.5-0.5B-Instruct --adapter models/technology --out merged/technology
  $ tuneforge merge -m ./base -a models/orders -o merged/orders`,
    )
    .action(async (opts: { model: string; adapter: string; out: string }) => {
      const modelDir = await resolveModelDir(opts.model);
      let bar: ReturnType<typeof createProgress> | null = null;
      const result = mergeAdapter({
        modelDir,
        adapterDir: opts.adapter,
        outDir: opts.out,
        onProgress: (done, total) => {
          bar ??= createProgress({ total, label: "merge", stream: process.stderr });
          bar.update(done);
        },
      });
      (bar as ReturnType<typeof createProgress> | null)?.stop();
      ctx.out(`merged ${result.mergedModules} projections into ${result.outDir}`);
    });
}
