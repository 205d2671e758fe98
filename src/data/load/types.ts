// Public shapes of the loading stage: what a caller asks for (LoadSpec) and what a skipped row looks like.
import type { SourceRef } from "../types.js";

/** Input formats, chosen by file extension unless `LoadSpec.format` overrides it. */
export type SourceFormat = "csv" | "tsv" | "json" | "jsonl" | "txt" | "pdf" | "docx";

/**
 * Which two columns (CSV headers or JSON keys) hold the prompt and the answer: config `data.columns`.
 * Any one of the three spellings is accepted; they all mean source -> user message, target -> assistant.
 */
export type ColumnsConfig =
  | { source: string; target: string }
  | { input: string; output: string }
  | { question: string; answer: string };

/** A row the loader could not use, handed to `onReject` when `skipInvalid` is set. */
export interface LoadReject {
  source: SourceRef;
  /** Why the row was rejected, in words a user can act on. */
  reason: string;
  /** The row as it appeared in the file (the CSV record, the JSONL line, the JSON element). */
  raw: string;
}

/** How documents (txt/pdf/docx) are cut into training texts. */
export interface ChunkOptions {
  /** Largest chunk: characters, or tokens when `countTokens` is given. Default 2000 chars / 512 tokens. */
  size?: number;
  /** How much consecutive chunks share. Default 200 chars / 64 tokens. */
  overlap?: number;
  /** Measure chunks in tokens of any tokenizer, e.g. `(t) => tokenizer.encode(t).length`. */
  countTokens?: (text: string) => number;
}

export interface LoadSpec {
  /** A data file, or a directory whose data files (sorted by name) load as one dataset. */
  path: string;
  /** The dataset's domain; default: the file (or directory) name slugified, "economic v1.csv" -> "economic_v1". */
  domain?: string;
  /** Config `data.columns`; default: detect well-known header pairs (english/arabic, input/output, ...). */
  columns?: ColumnsConfig;
  /** Config `data.format`: read every file as this format whatever its extension. */
  format?: SourceFormat;
  /** Pass bad rows to `onReject` and go on, instead of throwing at the first one. */
  skipInvalid?: boolean;
  onReject?: (reject: LoadReject) => void;
  /** Chunking of documents (txt/pdf/docx). */
  chunking?: ChunkOptions;
}
