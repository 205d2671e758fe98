// Shared set-up for the trainer tests: a resolved config with overrides, and a prepared-data folder written
// from token rows (as `prepare` would write it).
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromObject, resolveConfigPaths } from "../../src/config/load.js";
import { prepare } from "../../src/data/prepare.js";
import { Tokenizer } from "../../src/data/tokenizer.js";
import { ensureTinyModel } from "../../src/model/tiny.js";
import type { TuneforgeConfig } from "../../src/config/schema.js";
import type { TrainOptions } from "../../src/train/trainer.js";

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tuneforge-${prefix}-`));
}

export function makeConfig(sections: {
  training?: Record<string, unknown>;
  lora?: Record<string, unknown>;
}): TuneforgeConfig {
  return configFromObject({
    training: { logging_steps: 1, ...sections.training },
    lora: sections.lora ?? {},
  });
}

export interface TokenRow {
  input_ids: number[];
  labels: number[];
  boundaries?: number[];
}

/** A prepared folder with `<domain>_<split>.jsonl` files and a manifest recording `tokenizerHash`. */
export function writePrepared(
  dir: string,
  splits: Record<string, TokenRow[]>,
  tokenizerHash = "0".repeat(64),
  domain = "ref",
): string {
  mkdirSync(dir, { recursive: true });
  const files = Object.entries(splits).map(([split, rows]) => {
    const file = `${domain}_${split}.jsonl`;
    const lines = rows.map((r, i) =>
      JSON.stringify({ domain, source: { file: "test", line: i + 1 }, prompt: "", completion: "", ...r }),
    );
    writeFileSync(join(dir, file), lines.join("\n") + "\n");
    return {
      file,
      domain,
      split,
      rows: rows.length,
      tokens: rows.reduce((n, r) => n + r.input_ids.length, 0),
    };
  });
  const manifest = {
    version: 1,
    fingerprint: "test",
    tokenizer: { dir: "test", hash: tokenizerHash },
    template: "chat",
    max_seq_length: 512,
    packing: false,
    tokenized: true,
    files,
    rejects: 0,
    created_at: new Date().toISOString(),
  };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}

/** A small copy-and-transform task (upper-case two words) prepared with the real pipeline on a tiny model. */
export interface TinyTask {
  dir: string;
  modelDir: string;
  preparedDir: string;
  tokenizer: Tokenizer;
  config(training?: Record<string, unknown>, lora?: Record<string, unknown>): TuneforgeConfig;
  /** train()'s options for this task's "upper" domain on 2 threads, all but the output folder. */
  trainOptions(config: TuneforgeConfig): Omit<TrainOptions, "outputDir">;
}

const WORDS = ["cat", "dog", "sun", "red", "big", "map", "cup", "pen", "box", "hat", "fog", "jam"];

export async function tinyTask(options: { packing?: boolean } = {}): Promise<TinyTask> {
  const dir = tempDir("train-task");
  const rows = ["source,target"];
  for (const a of WORDS)
    for (const b of WORDS) if (a !== b) rows.push(`${a} ${b},${a.toUpperCase()} ${b.toUpperCase()}`);
  writeFileSync(join(dir, "upper.csv"), rows.join("\n") + "\n");
  const tiny = ensureTinyModel({
    corpus: rows.slice(1).flatMap((r) => r.split(",")),
    seed: 1,
    cacheDir: join(dir, "cache"),
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    tokenizerVocabSize: 300,
  });
  const tokenizer = await Tokenizer.fromModelDir(tiny.dir);
  const config = (training: Record<string, unknown> = {}, lora: Record<string, unknown> = {}) =>
    resolveConfigPaths(
      configFromObject({
        data: {
          inputs: [{ path: "upper.csv", domain: "upper" }],
          system_prompt: "Up.",
          packing: options.packing ?? false,
        },
        lora: { r: 8, alpha: 16, dropout: 0, ...lora },
        training: {
          learning_rate: 1e-2,
          per_device_train_batch_size: 8,
          gradient_accumulation_steps: 1,
          logging_steps: 10,
          eval_steps: 50,
          save_steps: 1000,
          warmup_ratio: 0.05,
          max_seq_length: 64,
          ...training,
        },
      }),
      dir,
    );
  await prepare({ config: config(), tokenizer });
  const preparedDir = join(dir, "data", "prepared");
  const trainOptions = (c: TuneforgeConfig) => ({
    config: c,
    modelDir: tiny.dir,
    preparedDir,
    domain: "upper",
    threads: 2,
  });
  return { dir, modelDir: tiny.dir, preparedDir, tokenizer, config, trainOptions };
}
