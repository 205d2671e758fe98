// Where a model named in the config lives on disk: the built-in tiny model (built on first use), a local
// folder, or a hub id downloaded earlier with `tuneforge pull` into tuneforge's home.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_MODEL } from "../config/schema.js";
import { examplesDir } from "../config/init.js";
import { TuneforgeError } from "../errors.js";
import { loadRows } from "../data/load/index.js";
import { ensureTinyModel, type TinyModelOptions } from "./tiny.js";

/** tuneforge's own folder for downloaded and built models: $TUNEFORGE_HOME or ~/.cache/tuneforge. */
export function tuneforgeHome(): string {
  return resolve(process.env.TUNEFORGE_HOME ?? join(homedir(), ".cache", "tuneforge"));
}

/** Where `tuneforge pull <repoId>` puts a hub model by default. */
export function hubModelDir(repoId: string): string {
  return join(tuneforgeHome(), "hub", repoId.replace("/", "--"));
}

export function isTinyModel(nameOrPath: string): boolean {
  return nameOrPath === DEFAULT_MODEL;
}

/** Every text of the bundled examples: the corpus the tiny model's tokenizer is trained on. */
export async function bundledCorpus(): Promise<string[]> {
  const root = examplesDir();
  const texts: string[] = [];
  for (const sub of ["translation", "darija-chat", "purchase-orders", "documents"]) {
    const dir = join(root, sub);
    if (!existsSync(dir)) continue;
    for await (const row of loadRows({ path: dir })) {
      if (row.kind !== "example") continue;
      if (row.instruction) texts.push(row.instruction);
      for (const m of row.messages) texts.push(m.content);
      if (row.text) texts.push(row.text);
    }
  }
  return texts;
}

/** The built-in tiny model's folder, built from the bundled examples on first use (about a second). */
export async function tinyModelDir(sizes: Partial<TinyModelOptions> = {}): Promise<string> {
  return ensureTinyModel({ corpus: await bundledCorpus(), seed: 0, cacheDir: tuneforgeHome(), ...sizes }).dir;
}

/** The local folder of `nameOrPath`, or a clear error saying how to get it. */
export async function resolveModelDir(nameOrPath: string): Promise<string> {
  if (isTinyModel(nameOrPath)) return tinyModelDir();
  if (existsSync(join(nameOrPath, "config.json"))) return resolve(nameOrPath);
  if (existsSync(nameOrPath)) {
    throw new TuneforgeError("is not an HF model folder (no config.json)", {
      file: nameOrPath,
      hint: "point model.name_or_path at a folder holding config.json and *.safetensors",
    });
  }
  const pulled = hubModelDir(nameOrPath);
  if (existsSync(join(pulled, "config.json"))) return pulled;
  throw new TuneforgeError(`model "${nameOrPath}" is not on this machine`, {
    key: "model.name_or_path",
    hint: `download it once with \`tuneforge pull ${nameOrPath}\` (it goes to ${pulled}), or give a local folder`,
  });
}

/**
 * The tokenizer data is prepared with: `model.tokenizer`, else the model's own (tiny, local or pulled), else
 * the bundled Qwen3 tokenizer with a note (training refuses data made with another tokenizer, so a wrong
 * guess here is caught before any compute is spent).
 */
export async function resolveTokenizerDir(model: {
  name_or_path: string;
  tokenizer?: string;
}): Promise<{ dir: string | undefined; note?: string }> {
  if (model.tokenizer) return { dir: model.tokenizer };
  const name = model.name_or_path;
  if (isTinyModel(name)) return { dir: await tinyModelDir() };
  if (existsSync(join(name, "tokenizer.json"))) return { dir: resolve(name) };
  const pulled = hubModelDir(name);
  if (existsSync(join(pulled, "tokenizer.json"))) return { dir: pulled };
  return {
    dir: undefined,
    note:
      `model "${name}" is not downloaded, so the bundled Qwen3 tokenizer is used ` +
      `(right for Qwen2.5/Qwen3; run \`tuneforge pull ${name}\` to use the model's own)`,
  };
}
