// Helpers for the non-weight files of an HF model folder: which files travel with a model (config,
// generation config, tokenizer), reading them as JSON with useful errors, and copying them to a new folder.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeFileAtomic } from "../store/atomic.js";

/** Model configuration files, copied verbatim by merge/export and downloaded by `pull`. */
export const CONFIG_FILES = ["config.json", "generation_config.json"] as const;

/**
 * Tokenizer files an HF folder may hold. Fast tokenizers need tokenizer.json (+ tokenizer_config.json);
 * the others are kept so that slow tokenizers and older transformers versions load the folder too.
 */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "tokenizer.model",
  "chat_template.jinja",
  "chat_template.json",
] as const;

/** Every file of a model folder that is not weights, in the order we copy them. */
export const MODEL_SIDE_FILES: readonly string[] = [...CONFIG_FILES, ...TOKENIZER_FILES];

/** True for a file name that belongs to a model folder besides its weights (see MODEL_SIDE_FILES). */
export function isModelSideFile(name: string): boolean {
  return MODEL_SIDE_FILES.includes(basename(name));
}

/** Reads and parses a JSON file, throwing a TuneforgeError that names the file when it is missing or broken. */
export function readJsonFile<T = Record<string, unknown>>(path: string, what = "file"): T {
  if (!existsSync(path)) {
    throw new TuneforgeError(`${what} not found`, {
      file: path,
      hint: `check the folder path; it must contain ${basename(path)}`,
    });
  }
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new TuneforgeError(`${what} is not valid JSON (${(e as Error).message})`, {
      file: path,
      hint: "restore the file from its source (re-download or re-export the model)",
      cause: e,
    });
  }
}

/**
 * Copies the config and tokenizer files that exist in `srcDir` into `dstDir` (each write atomic).
 * Returns the names copied. Files a folder does not have are skipped: no model has all of them.
 */
export function copyModelSideFiles(srcDir: string, dstDir: string): string[] {
  mkdirSync(dstDir, { recursive: true });
  const copied: string[] = [];
  for (const name of MODEL_SIDE_FILES) {
    const src = join(srcDir, name);
    if (!existsSync(src)) continue;
    writeFileAtomic(join(dstDir, name), readFileSync(src));
    copied.push(name);
  }
  return copied;
}
