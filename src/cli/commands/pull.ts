// `tuneforge pull`: download a model from the Hugging Face Hub, with progress and resume.
import type { Command } from "commander";
import { pullModel } from "../../model/hub.js";
import { hubModelDir } from "../../model/resolve.js";
import { createProgress, type Progress } from "../progress.js";
import type { CliContext } from "../main.js";

export function registerPull(program: Command, ctx: CliContext): void {
  program
    .command("pull")
    .description("Download a model (config, tokenizer, safetensors) from the Hugging Face Hub")
    .argument("<repo>", "a hub id such as Qwen/Qwen2.5-0.5B-Instruct")
    .option("-d, --dir <folder>", "where to put it (default: tuneforge's model cache, found by name later)")
    .option("-r, --revision <rev>", "branch, tag or commit", "main")
    .addHelpText(
      "after",
      `
Private or gated models need a token in the environment: HF_TOKEN=hf_... (never put it in a config file).
HF_ENDPOINT points at a mirror. An interrupted download resumes where it stopped when run again.
TUNEFORGE_HOME moves the model cache (default ~/.cache/tuneforge).

Examples:
  $ tuneforge pull Qwen/Qwen2.5-0.5B-Instruct
  $ tuneforge pull meta-llama/Llama-3.2-1B-Instruct --dir models/llama-1b
  $ HF_TOKEN=hf_xxx tuneforge pull my-org/private-model --revision v2`,
    )
    .action(async (repo: string, opts: { dir?: string; revision: string }) => {
      let bar: Progress | null = null;
      let current = "";
      const result = await pullModel(repo, {
        dir: opts.dir ?? hubModelDir(repo),
        revision: opts.revision,
        onProgress: (p) => {
          if (p.file !== current) {
            bar?.stop();
            current = p.file;
            bar = createProgress({
              total: p.total ?? 1,
              label: `[${p.fileIndex + 1}/${p.fileCount}] ${p.file}`,
              stream: process.stderr,
            });
          }
          bar?.update(p.downloaded);
        },
      });
      (bar as Progress | null)?.stop();
      ctx.out(
        `${repo}@${result.commit.slice(0, 12)} -> ${result.dir} (${result.files.length} files, ${result.reused.length} already there)`,
      );
    });
}
