// `prepare`: a user's files -> clean, split, templated, tokenized JSONL the trainer reads.
// One streaming pass: load -> clean -> dedup -> split -> augment (train only) -> render + tokenize -> (pack)
// -> data/prepared/<domain>_<split>.jsonl. Every dropped row is counted with its reason in stats.json; bad
// rows either stop the run (naming file and line) or, with skip_invalid, go to rejects.jsonl.
// Outputs are written to temporary files and moved into place at the end, with manifest.json last: an
// interrupted run leaves the previous output as it was, and a re-run on unchanged inputs does nothing.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TuneforgeConfig } from "../config/schema.js";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { collectGarbage } from "../store/gc.js";
import { JsonlWriter } from "../store/jsonl.js";
import { Augmenter, loadSynonyms } from "./augment.js";
import { cleanExample, type CleanOptions, type DropReason } from "./clean.js";
import { Deduplicator } from "./dedup.js";
import { unitHash } from "./hash.js";
import { describeSource, loadRows, type LoadReject, type LoadSpec } from "./load/index.js";
import { Packer, type Pack } from "./pack.js";
import { tokenizeExample } from "./render.js";
import { splitForPoint, Splitter } from "./split.js";
import { PrepareStats, type StatsJson } from "./stats.js";
import { renderExample, type TemplateSpec } from "./template.js";
import type { Tokenizer } from "./tokenizer.js";
import type { Example, PreparedRow, Split, TokenizedRow } from "./types.js";

/** A row of an untokenized output (`tokenize: false`). */
export type RenderedRow = Pick<PreparedRow, "domain" | "source" | "prompt" | "completion">;

/** Bump when the prepared format or the pipeline's behaviour changes, so old outputs are rebuilt. */
const PIPELINE_VERSION = 1;
export const MANIFEST_FILE = "manifest.json";
/** Keeps peak memory flat on large inputs (see store/gc.ts). */
const GC_EVERY_ROWS = 50_000;
export const STATS_FILE = "stats.json";
export const REJECTS_FILE = "rejects.jsonl";

export interface PrepareOptions {
  /** The resolved config (paths absolute, see loadConfig). */
  config: TuneforgeConfig;
  tokenizer: Tokenizer;
  /** Rebuild even when the inputs and settings are unchanged. */
  force?: boolean;
  /**
   * Tokenize (default). With false, rows hold only the rendered `prompt` and `completion` (for inspection or
   * another trainer); `tuneforge train` needs tokenized files.
   */
  tokenize?: boolean;
  /** Called after each input row with the running count (for a progress bar). */
  onRow?: (progress: { rows: number; file: string }) => void;
}

export interface PreparedFileInfo {
  file: string;
  domain: string;
  split: Split;
  rows: number;
  tokens: number;
}

/** `data/prepared/manifest.json`: what was made, from what, with which tokenizer. */
export interface PrepareManifest {
  version: number;
  fingerprint: string;
  tokenizer: { dir: string; hash: string };
  template: string;
  max_seq_length: number;
  packing: boolean;
  tokenized: boolean;
  files: PreparedFileInfo[];
  rejects: number;
  created_at: string;
}

export interface PrepareResult {
  outputDir: string;
  upToDate: boolean;
  manifest: PrepareManifest;
  stats: StatsJson;
}

/** Runs the whole data pipeline of `config.data`. */
export async function prepare(options: PrepareOptions): Promise<PrepareResult> {
  const { config, tokenizer } = options;
  const data = config.data;
  if (data.inputs.length === 0) {
    throw new TuneforgeError("no data inputs configured", {
      key: "data.inputs",
      hint: "list your files under data.inputs, e.g. `inputs: [{path: data/technology.csv, domain: technology}]`",
    });
  }
  const outputDir = data.output_dir;
  const tokenize = options.tokenize ?? true;
  if (!tokenize && config.data.packing) {
    throw new TuneforgeError("packing needs token counts, so it cannot be combined with tokenize: false", {
      key: "data.packing",
    });
  }
  const fingerprint = fingerprintOf(config, tokenizer, tokenize);
  const previous = readManifest(outputDir);
  if (!options.force && previous?.fingerprint === fingerprint && outputsExist(outputDir, previous)) {
    return { outputDir, upToDate: true, manifest: previous, stats: readStats(outputDir) };
  }

  const run = new PrepareRun(config, tokenizer, outputDir, tokenize);
  try {
    await run.loadAll(options.onRow);
    return await run.finish(fingerprint);
  } catch (e) {
    await run.abort();
    throw e;
  }
}

/** One execution of the pipeline: the per-(domain, split) writers, packers and counters. */
class PrepareRun {
  private readonly stats = new PrepareStats();
  private readonly writers = new Map<string, { writer: JsonlWriter; info: PreparedFileInfo }>();
  private readonly packers = new Map<string, Packer<PreparedRow>>();
  private readonly dedup: Deduplicator;
  private readonly splitter: Splitter;
  private readonly augmenter: Augmenter | null;
  private readonly clean: Partial<CleanOptions>;
  private readonly template: TemplateSpec;
  private rejects: JsonlWriter | null = null;
  private rows = 0;

  constructor(
    private readonly config: TuneforgeConfig,
    private readonly tokenizer: Tokenizer,
    private readonly outputDir: string,
    private readonly tokenize: boolean,
  ) {
    const d = config.data;
    this.dedup = new Deduplicator({ mode: d.dedup, scope: d.dedup_scope });
    this.splitter = new Splitter(d.split.seed, {
      train: d.split.train,
      val: d.split.val,
      test: d.split.test,
    });
    this.clean = {
      nfc: d.clean.nfc,
      stripUrls: d.clean.urls,
      stripEmails: d.clean.emails,
      stripEmojis: d.clean.emojis,
      controlChars: d.clean.control_chars,
      whitespace: d.clean.whitespace,
      arabicDiacritics: d.clean.arabic_diacritics,
      dropEmpty: d.clean.min_chars >= 1,
      minChars: d.clean.min_chars,
      maxChars: d.clean.max_chars,
    };
    const a = d.augment;
    this.augmenter =
      a.factor > 0
        ? new Augmenter({
            factor: a.factor,
            seed: d.split.seed,
            synonyms: a.synonyms ? loadSynonyms(a.synonyms) : {},
            instructionVariants: a.instruction_variants,
            defaultInstruction: d.instruction,
            clauseOrder: a.clause_order,
            punctuation: a.punctuation,
            numbers: a.numbers,
            case: a.case,
            whitespace: a.whitespace,
          })
        : null;
    this.template = templateSpec(config);
  }

  async loadAll(onRow?: PrepareOptions["onRow"]): Promise<void> {
    const d = this.config.data;
    for (const input of d.inputs) {
      const spec: LoadSpec = {
        path: input.path,
        domain: input.domain,
        format: input.format === "auto" ? undefined : input.format,
        columns: input.columns,
        chunking: {
          size: d.chunking.chunk_size,
          overlap: d.chunking.chunk_overlap,
          countTokens: d.chunking.method === "tokens" ? (t) => this.tokenizer.encode(t).length : undefined,
        },
        skipInvalid: d.skip_invalid,
        onReject: d.skip_invalid ? (r) => this.reject(r) : undefined,
      };
      for await (const row of loadRows(spec)) {
        this.rows++;
        this.stats.recordInput(row.domain);
        if (row.kind === "tokenized") await this.addTokenized(row);
        else await this.addExample(row);
        onRow?.({ rows: this.rows, file: row.source.file });
        if (this.rows % GC_EVERY_ROWS === 0) collectGarbage();
      }
    }
  }

  private async addExample(raw: Example): Promise<void> {
    const cleaned = cleanExample(this.withInstruction(raw), this.clean);
    if (!cleaned.ok) return this.stats.recordDrop(raw.domain, cleaned.reason);
    const ex = cleaned.example;
    const dup = this.dedup.check(ex);
    if (dup) return this.stats.recordDrop(ex.domain, dup);
    const split = this.splitter.assign(ex);
    await this.emit(ex, split, false);
    if (split === "train" && this.augmenter) {
      for (const variant of this.augmenter.variants(ex)) await this.emit(variant, split, true);
    }
  }

  /** `data.instruction` applies to supervised rows that carry no instruction of their own. */
  private withInstruction(ex: Example): Example {
    const instruction = this.config.data.instruction;
    if (!instruction || ex.instruction || ex.messages.length === 0) return ex;
    return { ...ex, instruction };
  }

  private async emit(ex: Example, split: Split, augmented: boolean): Promise<void> {
    const render = {
      tokenizer: this.tokenizer,
      template: this.template,
      systemPrompt: this.config.data.system_prompts[ex.domain] ?? this.config.data.system_prompt,
    };
    if (!this.tokenize) {
      const r = renderExample(ex, render);
      this.stats.recordKept(ex.domain, split, { augmented });
      return this.writeRow(ex.domain, split, { domain: ex.domain, source: ex.source, ...r });
    }
    const t = tokenizeExample(ex, {
      ...render,
      maxSeqLength: this.config.training.max_seq_length,
      lossOn: this.config.data.loss_on,
    });
    if (t.dropReason) return this.stats.recordDrop(ex.domain, "completion_truncated" satisfies DropReason);
    this.stats.recordKept(ex.domain, split, {
      tokens: t.input_ids.length,
      truncated: t.truncated,
      augmented,
    });
    await this.output(
      {
        domain: ex.domain,
        source: ex.source,
        prompt: t.prompt,
        completion: t.completion,
        input_ids: t.input_ids,
        labels: t.labels,
      },
      split,
    );
  }

  /** Already-tokenized rows skip cleaning and templating; their split is decided by a hash of their ids. */
  private async addTokenized(row: TokenizedRow): Promise<void> {
    const labels = row.labels ?? row.input_ids;
    const max = this.config.training.max_seq_length;
    const truncated = row.input_ids.length > max;
    const ids = row.input_ids.slice(0, max);
    const split = splitForPoint(
      unitHash(`${this.config.data.split.seed}\0${ids.join(",")}`),
      this.splitter.ratios,
    );
    this.stats.recordKept(row.domain, split, { tokens: ids.length, truncated });
    await this.output(
      {
        domain: row.domain,
        source: row.source,
        prompt: "",
        completion: "",
        input_ids: ids,
        labels: labels.slice(0, max),
      },
      split,
    );
  }

  private async output(row: PreparedRow, split: Split): Promise<void> {
    const key = fileKey(row.domain, split);
    if (!this.config.data.packing) return this.writeRow(row.domain, split, row);
    let packer = this.packers.get(key);
    if (!packer) {
      packer = new Packer<PreparedRow>({ maxSeqLength: this.config.training.max_seq_length });
      this.packers.set(key, packer);
    }
    for (const pack of packer.add(row)) await this.writePack(pack, row.domain, split);
  }

  private async writePack(pack: Pack<PreparedRow>, domain: string, split: Split): Promise<void> {
    const packed: PreparedRow = {
      domain,
      source: pack.rows[0].source,
      prompt: "",
      completion: "",
      input_ids: pack.input_ids,
      labels: pack.labels,
      boundaries: pack.boundaries,
      sources: pack.rows.map((r) => r.source),
    };
    await this.writeRow(domain, split, packed);
  }

  /** Appends a row to `<domain>_<split>.jsonl`, opening that file on first use. */
  private async writeRow(domain: string, split: Split, row: PreparedRow | RenderedRow): Promise<void> {
    const key = fileKey(domain, split);
    let entry = this.writers.get(key);
    if (!entry) {
      const file = `${key}.jsonl`;
      entry = {
        writer: new JsonlWriter(join(this.outputDir, file)),
        info: { file, domain, split, rows: 0, tokens: 0 },
      };
      this.writers.set(key, entry);
    }
    entry.info.rows++;
    entry.info.tokens += "input_ids" in row ? row.input_ids.length : 0;
    await entry.writer.write(row);
  }

  private reject(r: LoadReject): void {
    this.rejects ??= new JsonlWriter(join(this.outputDir, REJECTS_FILE));
    // Synchronous callback: queue the write; JsonlWriter keeps order.
    void this.rejects.write(r);
  }

  async finish(fingerprint: string): Promise<PrepareResult> {
    for (const [key, packer] of this.packers) {
      const [domain, split] = splitKey(key);
      for (const pack of packer.flush()) await this.writePack(pack, domain, split);
    }
    if (this.writers.size === 0) {
      throw new TuneforgeError("every row was dropped; nothing to write", {
        key: "data",
        hint: "see the drop reasons above (empty rows, duplicates, too long); relax data.clean or check the inputs",
      });
    }
    removeStaleOutputs(this.outputDir, new Set([...this.writers.keys()].map((k) => `${k}.jsonl`)));
    for (const { writer } of this.writers.values()) await writer.commit();
    if (this.rejects) await this.rejects.commit();
    else rmSync(join(this.outputDir, REJECTS_FILE), { force: true });
    const stats = this.stats.toJSON();
    writeJsonAtomic(join(this.outputDir, STATS_FILE), stats);
    const manifest: PrepareManifest = {
      version: PIPELINE_VERSION,
      fingerprint,
      tokenizer: { dir: this.tokenizer.dir, hash: this.tokenizer.hash },
      template: typeof this.template === "string" ? this.template : "custom",
      max_seq_length: this.config.training.max_seq_length,
      packing: this.config.data.packing,
      tokenized: this.tokenize,
      files: [...this.writers.values()].map((w) => w.info).sort((a, b) => a.file.localeCompare(b.file)),
      rejects: this.rejects?.rows ?? 0,
      created_at: new Date().toISOString(),
    };
    writeJsonAtomic(join(this.outputDir, MANIFEST_FILE), manifest);
    return { outputDir: this.outputDir, upToDate: false, manifest, stats };
  }

  async abort(): Promise<void> {
    for (const { writer } of this.writers.values()) await writer.abort();
    await this.rejects?.abort();
  }
}

function templateSpec(config: TuneforgeConfig): TemplateSpec {
  const d = config.data;
  if (d.template !== "custom") return d.template;
  if (!d.custom_template) {
    throw new TuneforgeError("template is custom but no custom_template is given", {
      key: "data.custom_template",
    });
  }
  return { custom: d.custom_template };
}

function fileKey(domain: string, split: Split): string {
  return `${domain}_${split}`;
}

function splitKey(key: string): [string, Split] {
  const i = key.lastIndexOf("_");
  return [key.slice(0, i), key.slice(i + 1) as Split];
}

/** What the output depends on: the data settings, the tokenizer, and each input file's size and mtime. */
function fingerprintOf(config: TuneforgeConfig, tokenizer: Tokenizer, tokenize: boolean): string {
  const inputs = config.data.inputs.map((input) => ({
    ...input,
    files: describeSource(input.path, input.format === "auto" ? undefined : input.format).files.map((f) => {
      const st = statSync(f.path);
      return [f.path, st.size, st.mtimeMs];
    }),
  }));
  const synonyms = config.data.augment.synonyms;
  const relevant = {
    version: PIPELINE_VERSION,
    data: { ...config.data, inputs },
    synonyms: synonyms && existsSync(synonyms) ? statSync(synonyms).mtimeMs : null,
    max_seq_length: config.training.max_seq_length,
    tokenizer: tokenizer.hash,
    tokenize,
  };
  return createHash("sha256").update(JSON.stringify(relevant)).digest("hex");
}

export function readManifest(outputDir: string): PrepareManifest | null {
  const path = join(outputDir, MANIFEST_FILE);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as PrepareManifest;
  } catch {
    return null;
  }
}

function readStats(outputDir: string): StatsJson {
  return JSON.parse(readFileSync(join(outputDir, STATS_FILE), "utf8")) as StatsJson;
}

function outputsExist(outputDir: string, manifest: PrepareManifest): boolean {
  return (
    existsSync(join(outputDir, STATS_FILE)) &&
    manifest.files.every((f) => existsSync(join(outputDir, f.file)))
  );
}

/** Prepared files of an earlier run whose domain/split no longer exists would mislead `train --all-domains`. */
function removeStaleOutputs(outputDir: string, keep: Set<string>): void {
  const previous = readManifest(outputDir);
  if (!previous) return;
  for (const f of previous.files) if (!keep.has(f.file)) rmSync(join(outputDir, f.file), { force: true });
}
