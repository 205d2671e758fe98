// Cuts long documents into overlapping chunks that fit a training context. Both splitters are the
// recursive splitter of @langchain/textsplitters (paragraphs, then lines, then words, then characters);
// the token splitter only swaps the length measure for the caller's tokenizer, so any tokenizer plugs in.
import { RecursiveCharacterTextSplitter } from "@langchain/textsplitters";
import { TuneforgeError } from "../../errors.js";
import type { ChunkOptions } from "./types.js";

export const DEFAULT_CHUNK_CHARS = { size: 2000, overlap: 200 } as const;
export const DEFAULT_CHUNK_TOKENS = { size: 512, overlap: 64 } as const;

export interface Chunk {
  text: string;
  /** 1-based line of `text` where the chunk starts. */
  line: number;
}

/** Splits by characters: chunks of at most `size` characters sharing up to `overlap` with the previous one. */
export async function splitByCharacters(text: string, size: number, overlap: number): Promise<string[]> {
  checkSizes(size, overlap);
  return new RecursiveCharacterTextSplitter({ chunkSize: size, chunkOverlap: overlap }).splitText(text);
}

/** Splits by tokens as counted by `countTokens` (any tokenizer): chunks of at most `size` tokens. */
export async function splitByTokens(
  text: string,
  size: number,
  overlap: number,
  countTokens: (text: string) => number,
): Promise<string[]> {
  checkSizes(size, overlap);
  return new RecursiveCharacterTextSplitter({
    chunkSize: size,
    chunkOverlap: overlap,
    lengthFunction: countTokens,
  }).splitText(text);
}

/** Chunks `text` per `options` (characters by default, tokens with `countTokens`), with start lines. */
export async function chunkText(text: string, options: ChunkOptions = {}): Promise<Chunk[]> {
  const pieces = options.countTokens
    ? await splitByTokens(
        text,
        options.size ?? DEFAULT_CHUNK_TOKENS.size,
        options.overlap ?? DEFAULT_CHUNK_TOKENS.overlap,
        options.countTokens,
      )
    : await splitByCharacters(
        text,
        options.size ?? DEFAULT_CHUNK_CHARS.size,
        options.overlap ?? DEFAULT_CHUNK_CHARS.overlap,
      );
  return withLines(text, pieces);
}

/**
 * Finds where each chunk starts in `text` (chunks are in order and are substrings of it, up to trimmed
 * whitespace) and turns that into a line number. A chunk not found keeps the previous chunk's line.
 */
function withLines(text: string, pieces: string[]): Chunk[] {
  const out: Chunk[] = [];
  let searchFrom = 0;
  let lineAt = 0; // text offset up to which newlines are counted
  let line = 1;
  for (const piece of pieces) {
    let at = text.indexOf(piece, searchFrom);
    if (at === -1) at = text.indexOf(piece.slice(0, 64), searchFrom);
    if (at !== -1) {
      for (let i = text.indexOf("\n", lineAt); i !== -1 && i < at; i = text.indexOf("\n", i + 1)) line++;
      lineAt = Math.max(lineAt, at);
      // The next chunk may overlap this one, so it can start anywhere after this chunk's start.
      searchFrom = at + 1;
    }
    out.push({ text: piece, line });
  }
  return out;
}

function checkSizes(size: number, overlap: number): void {
  if (!Number.isInteger(size) || size <= 0) {
    throw new TuneforgeError(`chunk size must be a positive integer, got ${size}`, {
      key: "data.chunking.size",
    });
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new TuneforgeError(`chunk overlap must be an integer in [0, size), got ${overlap} (size ${size})`, {
      key: "data.chunking.overlap",
    });
  }
}
