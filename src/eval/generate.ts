// Text in, text out over the engine: tokenize prompts, generate in length-sorted batches, decode, cut at stop
// strings. Also the model/adapter loading that evaluate, translate and compare share.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { EngineModel, type DeviceChoice, type LoraPair } from "../engine/index.js";
import { TuneforgeError } from "../errors.js";
import { Tokenizer } from "../data/tokenizer.js";
import type { Projection } from "../model/layout.js";
import {
  checkAdapterMatchesModel,
  parseProjectionModule,
  readAdapter,
  type LoraAdapter,
} from "../model/peft.js";

export interface GenerationOptions {
  /** New tokens per prompt at most (default 256). */
  maxNewTokens?: number;
  /** 0 (default): greedy decoding; above 0: sampling at this temperature. */
  temperature?: number;
  /** Sampling only: keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Sampling only: nucleus probability mass (1 = all). */
  topP?: number;
  /** HF/CTRL repetition penalty (1 = off). */
  repetitionPenalty?: number;
  /** The output is cut before the first occurrence of any of these strings. */
  stop?: readonly string[];
  /** Prompts per engine call (default 8). */
  batchSize?: number;
  /** Sampling seed (default 0); batch i uses seed + i. */
  seed?: number;
  onProgress?: (progress: { done: number; total: number }) => void;
}

export const DEFAULT_MAX_NEW_TOKENS = 256;
export const DEFAULT_BATCH_SIZE = 8;

// End-of-turn tokens of the supported families: ChatML (Qwen), Llama 3, Llama 2 / Mistral. A model ends its
// answer with the turn marker, but a base model may emit the document end instead, so both stop generation.
const END_TOKENS = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "</s>"];

/**
 * Token ids that end an answer: the tokenizer's eos, the model's eos ids (config.json and
 * generation_config.json), and whichever known end-of-turn special tokens the tokenizer has.
 */
export function endOfTurnIds(tokenizer: Tokenizer, modelEosIds: readonly number[] = []): number[] {
  const ids = new Set<number>([tokenizer.eosTokenId, ...modelEosIds, ...generationConfigEos(tokenizer.dir)]);
  for (const token of END_TOKENS) {
    const id = tokenizer.tokenToId(token);
    if (id !== undefined && tokenizer.specialTokenIds.has(id)) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}

function generationConfigEos(dir: string): number[] {
  const path = join(dir, "generation_config.json");
  if (!existsSync(path)) return [];
  try {
    const eos = (JSON.parse(readFileSync(path, "utf8")) as { eos_token_id?: unknown }).eos_token_id;
    const list = Array.isArray(eos) ? eos : [eos];
    return list.filter((v): v is number => Number.isInteger(v));
  } catch {
    return []; // a damaged generation_config.json only loses extra stop ids; config.json's eos still applies
  }
}

/** `text` up to (not including) the earliest occurrence of any stop string. */
export function cutAtStop(text: string, stop: readonly string[] = []): string {
  let end = text.length;
  for (const s of stop) {
    if (s === "") continue;
    const at = text.indexOf(s);
    if (at !== -1 && at < end) end = at;
  }
  return text.slice(0, end);
}

function checkPositiveInt(value: number, key: string): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TuneforgeError(`${key} is ${value}; expected a positive integer`, {
      key,
      hint: "use a whole number of at least 1",
    });
  }
}

/**
 * Generates an answer for each prompt. Prompts are tokenized as they are (no special tokens added: a rendered
 * prompt already holds them), sorted by length so a batch holds prompts of similar length (less padding), and
 * the outputs come back in the prompts' order, decoded without special tokens and cut at the stop strings.
 */
export function generateText(
  model: EngineModel,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: GenerationOptions = {},
): string[] {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  checkPositiveInt(batchSize, "eval.batch_size");
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  checkPositiveInt(maxNewTokens, "eval.max_new_tokens");
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0)) {
    throw new TuneforgeError(`temperature is ${temperature}; expected 0 (greedy) or more`, {
      key: "eval.temperature",
      hint: "use 0 for greedy decoding, e.g. 0.7 for sampling",
    });
  }
  const ids = prompts.map((p, i) => {
    const tokens = tokenizer.encode(p);
    if (tokens.length === 0) {
      throw new TuneforgeError(`prompt ${i + 1} is empty`, {
        hint: "every prompt needs some text for the model to answer",
      });
    }
    return tokens;
  });
  const eosTokenIds = endOfTurnIds(tokenizer, model.config.eosTokenIds);
  // Longest first (stable): the slowest batches start while progress is still meaningful.
  const order = ids.map((_, i) => i).sort((a, b) => ids[b].length - ids[a].length || a - b);
  const outputs = new Array<string>(prompts.length);
  const seed = options.seed ?? 0;
  for (let start = 0, batch = 0; start < order.length; start += batchSize, batch++) {
    const members = order.slice(start, start + batchSize);
    const generated = model.generate(
      members.map((i) => ids[i]),
      {
        maxNewTokens,
        doSample: temperature > 0,
        temperature: temperature > 0 ? temperature : 1,
        topK: options.topK,
        topP: options.topP,
        repetitionPenalty: options.repetitionPenalty,
        seed: seed + batch,
        eosTokenIds,
      },
    );
    members.forEach((i, k) => {
      outputs[i] = cutAtStop(tokenizer.decode(generated[k], { skipSpecialTokens: true }), options.stop);
    });
    options.onProgress?.({ done: Math.min(start + batchSize, order.length), total: order.length });
  }
  return outputs;
}

/** The base model and its tokenizer, loaded once for a whole evaluation / translation / comparison. */
export interface LoadedModel {
  dir: string;
  model: EngineModel;
  tokenizer: Tokenizer;
}

export async function loadModel(
  modelDir: string,
  options: { threads?: number; device?: DeviceChoice } = {},
): Promise<LoadedModel> {
  if (!existsSync(join(modelDir, "config.json"))) {
    throw new TuneforgeError("no config.json: this is not a model folder", {
      file: modelDir,
      hint: "point at a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)",
    });
  }
  const tokenizer = await Tokenizer.fromModelDir(modelDir);
  const model = EngineModel.load(modelDir, { threads: options.threads, device: options.device });
  return { dir: modelDir, model, tokenizer };
}

/** Reads a PEFT adapter folder, refusing a missing folder or an adapter made for another base model. */
export function readAdapterFor(adapterDir: string, model: EngineModel): LoraAdapter {
  if (!existsSync(adapterDir) || !statSync(adapterDir).isDirectory()) {
    throw new TuneforgeError("adapter folder not found", {
      file: adapterDir,
      hint: "train one first (`tuneforge train`), or pass the folder holding adapter_config.json",
    });
  }
  const adapter = readAdapter(adapterDir);
  try {
    checkAdapterMatchesModel(adapter, model.config);
  } catch (e) {
    if (!(e instanceof TuneforgeError)) throw e;
    // Same error, located at the adapter folder so the user sees which adapter does not fit.
    throw new TuneforgeError(e.message.split("\n  fix: ")[0], { file: adapterDir, hint: e.hint, cause: e });
  }
  return adapter;
}

/** Puts the adapter's LoRA weights on the model, replacing any adapter applied before (dropout off). */
export function applyAdapter(model: EngineModel, adapter: LoraAdapter): void {
  const targets = new Set<Projection>();
  const weights = new Map<string, LoraPair>();
  for (const [module, w] of adapter.weights) {
    // readAdapter accepts projection modules only, so parse never fails here.
    targets.add(parseProjectionModule(module)!.proj);
    weights.set(module, { A: w.A, B: w.B });
  }
  // Layers the adapter leaves out get PEFT's fresh init (B = 0): no change there, as in PEFT.
  model.setLora({
    r: adapter.config.r,
    alpha: adapter.config.alpha,
    useRslora: adapter.config.useRslora,
    dropout: 0,
    targets: [...targets],
    weights,
  });
}
