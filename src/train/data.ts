// The trainer's view of `prepare`'s output: checks that the prepared files belong to this model's tokenizer
// and loads one domain's rows as compact token arrays.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { MANIFEST_FILE, readManifest, type PrepareManifest } from "../data/prepare.js";
import type { PreparedRow, Split } from "../data/types.js";
import { readJsonl } from "../store/jsonl.js";

/** One training sequence. `boundaries` (packed rows) are the start offsets of each example in it. */
export interface TrainRow {
  ids: Int32Array;
  labels: Int32Array;
  boundaries?: number[];
}

/** The manifest of a prepared folder, checked to be tokenized with the tokenizer of `modelDir`. */
export function checkPrepared(preparedDir: string, modelDir: string): PrepareManifest {
  const manifest = readManifest(preparedDir);
  const manifestPath = join(preparedDir, MANIFEST_FILE);
  if (!manifest) {
    throw new TuneforgeError("no prepared data (manifest.json is missing)", {
      file: manifestPath,
      hint: "run `tuneforge prepare` first",
    });
  }
  if (!manifest.tokenized) {
    throw new TuneforgeError("the prepared data is not tokenized (it was made with tokenize: false)", {
      file: manifestPath,
      hint: "run `tuneforge prepare` again with tokenization on",
    });
  }
  const tokenizerPath = join(modelDir, "tokenizer.json");
  // A model folder without tokenizer.json (weights only) cannot be checked; the data's tokenizer is trusted.
  if (existsSync(tokenizerPath)) {
    const hash = createHash("sha256").update(readFileSync(tokenizerPath)).digest("hex");
    if (hash !== manifest.tokenizer.hash) {
      throw new TuneforgeError(
        `the prepared data was tokenized with another tokenizer (${manifest.tokenizer.dir}) than the model's ` +
          `(${tokenizerPath}): token ids would mean different things`,
        {
          file: manifestPath,
          key: "model.tokenizer",
          hint: "run `tuneforge prepare --force` with this model (or set model.tokenizer to the model's folder)",
        },
      );
    }
  }
  return manifest;
}

/** The domains that have a train file in the manifest, in manifest order. */
export function preparedDomains(manifest: PrepareManifest): string[] {
  const out: string[] = [];
  for (const f of manifest.files) if (f.split === "train" && !out.includes(f.domain)) out.push(f.domain);
  return out;
}

export function preparedFile(preparedDir: string, domain: string, split: Split): string {
  return join(preparedDir, `${domain}_${split}.jsonl`);
}

/** Reads `<domain>_<split>.jsonl`; a missing file gives [] when `optional`, else an error. */
export async function readPreparedRows(
  preparedDir: string,
  domain: string,
  split: Split,
  vocabSize: number,
  optional = false,
): Promise<TrainRow[]> {
  const file = preparedFile(preparedDir, domain, split);
  if (!existsSync(file)) {
    if (optional) return [];
    throw new TuneforgeError(`no ${split} data for domain "${domain}"`, {
      file,
      hint: "check the domain name, or run `tuneforge prepare` again",
    });
  }
  const rows: TrainRow[] = [];
  for await (const { line, row } of readJsonl<PreparedRow>(file)) {
    const bad = (what: string) =>
      new TuneforgeError(what, {
        file,
        line,
        hint: "the prepared file is damaged; run `tuneforge prepare --force`",
      });
    const ids = row.input_ids;
    const labels = row.labels;
    if (!Array.isArray(ids) || !Array.isArray(labels)) throw bad("row has no input_ids/labels arrays");
    if (ids.length !== labels.length) throw bad(`${ids.length} input_ids but ${labels.length} labels`);
    if (ids.length === 0) throw bad("row has no tokens");
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new TuneforgeError(`token id ${id} is outside the model's vocabulary (size ${vocabSize})`, {
          file,
          line,
          hint: "the data was tokenized for another model; run `tuneforge prepare --force` with this model",
        });
      }
    }
    const b = row.boundaries;
    if (b !== undefined && (!Array.isArray(b) || b[0] !== 0 || b.some((x, i) => i > 0 && x <= b[i - 1]))) {
      throw bad("boundaries must start at 0 and increase");
    }
    rows.push({ ids: Int32Array.from(ids), labels: Int32Array.from(labels), boundaries: b });
  }
  return rows;
}
