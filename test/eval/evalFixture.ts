// Shared set-up of the evaluation tests: a small tiny model, prepared test rows made with the real template +
// tokenizer code, a manifest, and LoRA adapters with random B (so each adapter changes the outputs).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRng } from "../../src/data/random.js";
import { tokenizeExample } from "../../src/data/render.js";
import type { TemplateSpec } from "../../src/data/template.js";
import { Tokenizer } from "../../src/data/tokenizer.js";
import type { Message, PreparedRow } from "../../src/data/types.js";
import type { ModelConfig } from "../../src/model/config.js";
import type { Projection } from "../../src/model/layout.js";
import { initLoraWeights, writeAdapter } from "../../src/model/peft.js";
import { ensureTinyModel, type TinyModelOptions } from "../../src/model/tiny.js";

export const PAIRS: [string, string][] = [
  ["The meeting is tomorrow at nine.", "La reunión es mañana a las nueve."],
  ["Where is the train station?", "¿Dónde está la estación de tren?"],
  ["I would like a cup of tea, please.", "Quisiera una taza de té, por favor."],
  ["The report must be ready by Friday.", "El informe debe estar listo el viernes."],
  ["The office opens at eight.", "La oficina abre a las ocho."],
  ["Please send me the invoice.", "Por favor, envíame la factura."],
];

export const JSON_PAIRS: [string, string][] = [
  ["Order 12 pens for Acme.", '{"customer":"Acme","item":"pens","quantity":12}'],
  ["Acme needs 3 desks.", '{"customer":"Acme","item":"desks","quantity":3}'],
  ["Send Globex 7 lamps.", '{"customer":"Globex","item":"lamps","quantity":7}'],
];

const CORPUS = [...PAIRS, ...JSON_PAIRS].flatMap(([a, b]) => [a, b, `${a}\n${b}`]);

export const SMALL: Partial<TinyModelOptions> = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 32,
  intermediateSize: 128,
  tokenizerVocabSize: 400,
};

export interface TinyEval {
  root: string;
  modelDir: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
}

const roots: string[] = [];
process.on("exit", () => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A fresh temp folder holding a tiny model (sizes may be overridden to get "another base model"). */
export async function tinyEval(sizes: Partial<TinyModelOptions> = {}, seed = 7): Promise<TinyEval> {
  const root = mkdtempSync(join(tmpdir(), "tuneforge-eval-"));
  roots.push(root);
  const tiny = ensureTinyModel({ corpus: CORPUS, seed, dir: join(root, "model"), ...SMALL, ...sizes });
  return { root, modelDir: tiny.dir, config: tiny.config, tokenizer: await Tokenizer.fromModelDir(tiny.dir) };
}

/** Prepared rows, made as `tuneforge prepare` makes them (template render + tokenize, loss on the answer). */
export function preparedRows(
  tokenizer: Tokenizer,
  pairs: readonly [string, string][],
  options: { domain?: string; template?: TemplateSpec; systemPrompt?: string } = {},
): PreparedRow[] {
  const domain = options.domain ?? "translation";
  return pairs.map(([user, answer], i) => {
    const messages: Message[] = [
      { role: "user", content: user },
      { role: "assistant", content: answer },
    ];
    const source = { file: `${domain}.csv`, line: i + 2 };
    const t = tokenizeExample(
      { kind: "example", domain, source, messages },
      {
        tokenizer,
        template: options.template ?? "chatml",
        systemPrompt: options.systemPrompt,
        maxSeqLength: 512,
        lossOn: "completion",
      },
    );
    return {
      domain,
      source,
      prompt: t.prompt,
      completion: t.completion,
      input_ids: t.input_ids,
      labels: t.labels,
    };
  });
}

/** Writes `<dir>/<domain>_test.jsonl` (+ a manifest.json recording `tokenizerHash`) and returns the file. */
export function writeTestSet(
  dir: string,
  domain: string,
  rows: readonly PreparedRow[],
  tokenizerHash?: string,
): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${domain}_test.jsonl`);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  if (tokenizerHash !== undefined) {
    writeFileSync(
      join(dir, "manifest.json"),
      JSON.stringify({
        version: 1,
        tokenizer: { dir: "somewhere", hash: tokenizerHash },
        files: [{ file: `${domain}_test.jsonl`, domain, split: "test", rows: rows.length, tokens: 0 }],
      }),
    );
  }
  return file;
}

/** A PEFT adapter folder with PEFT's A init and a random (non-zero) B, so it really changes the model. */
export function makeAdapter(
  dir: string,
  config: ModelConfig,
  options: { r: number; seed: number; targets?: Projection[]; baseModel?: string },
): string {
  const adapter = initLoraWeights(config, {
    r: options.r,
    seed: options.seed,
    targets: options.targets ?? ["q_proj", "v_proj", "down_proj"],
    baseModel: options.baseModel ?? "tiny",
  });
  const rng = createRng(options.seed + 1000);
  for (const w of adapter.weights.values()) for (let i = 0; i < w.B.length; i++) w.B[i] = rng.next() * 2 - 1;
  writeAdapter(dir, adapter);
  return dir;
}
