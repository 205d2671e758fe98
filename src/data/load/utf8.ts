// Reads a file as strictly-validated UTF-8, in chunks, so memory stays flat however large the file is.
// Invalid bytes are an error (naming the byte offset and line), never a silent U+FFFD: a Windows-1256 or
// UTF-16 export would otherwise train the model on mojibake.
import { createReadStream } from "node:fs";
import { TuneforgeError } from "../../errors.js";

export interface Utf8Chunk {
  /** The raw bytes as read (a leading UTF-8 BOM included), for parsers that count byte offsets. */
  bytes: Buffer;
  /** The same bytes decoded; the BOM is dropped and a character split across chunks is carried over. */
  text: string;
}

const CHUNK_BYTES = 64 * 1024;

/** Streams `file` as validated UTF-8. Throws a TuneforgeError at the first invalid byte. */
export async function* readUtf8Chunks(file: string): AsyncGenerator<Utf8Chunk> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let offset = 0; // byte offset of the current chunk's start
  let lines = 1; // line number at `offset`
  let carry: Uint8Array = new Uint8Array(0); // trailing bytes of an incomplete character
  let first = true;
  for await (const raw of createReadStream(file, { highWaterMark: CHUNK_BYTES })) {
    const bytes = raw as Buffer;
    if (first) {
      checkNotUtf16(bytes, file);
      first = false;
    }
    let text: string;
    try {
      text = decoder.decode(bytes, { stream: true });
    } catch {
      throw invalidUtf8(file, concat(carry, bytes), offset - carry.length, lines);
    }
    lines += countNewlines(bytes);
    offset += bytes.length;
    carry = incompleteTail(concat(carry, bytes));
    yield { bytes, text };
  }
  try {
    const rest = decoder.decode();
    if (rest) yield { bytes: Buffer.alloc(0), text: rest };
  } catch {
    // The file ends in the middle of a multi-byte character.
    throw invalidUtf8(file, carry, offset - carry.length, lines);
  }
}

/** Decodes a whole buffer (documents are read whole anyway) with the same checks and error messages. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  checkNotUtf16(bytes, file);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalidUtf8(file, bytes, 0, 1);
  }
}

/**
 * Index of the first byte that does not start (or continue) a well-formed UTF-8 sequence, or -1.
 * A sequence cut off by the end of `bytes` counts as invalid at its first byte.
 */
export function findInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f; // no UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else return i;
    if (i + need >= n) return i;
    const second = bytes[i + 1];
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) {
      const c = bytes[i + k];
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

function checkNotUtf16(bytes: Uint8Array, file: string): void {
  const le = bytes[0] === 0xff && bytes[1] === 0xfe;
  const be = bytes[0] === 0xfe && bytes[1] === 0xff;
  // UTF-16 without a BOM shows up as NUL bytes between ASCII letters; NUL never belongs in text data.
  const nul = bytes.subarray(0, 4096).indexOf(0) !== -1;
  if (!le && !be && !nul) return;
  const what = le
    ? "UTF-16 LE (it starts with a UTF-16 byte-order mark)"
    : be
      ? "UTF-16 BE (it starts with a UTF-16 byte-order mark)"
      : "UTF-16 or binary (it contains NUL bytes)";
  throw new TuneforgeError(`the file is ${what}; tuneforge reads UTF-8 only`, {
    file,
    line: 1,
    hint: `convert it to UTF-8, e.g. \`iconv -f UTF-16 -t UTF-8 ${shellQuote(file)} > converted.${extOf(file)}\` (in Excel: "Save As" > "CSV UTF-8")`,
  });
}

function invalidUtf8(file: string, bytes: Uint8Array, base: number, lineAtBase: number): TuneforgeError {
  let idx = findInvalidUtf8(bytes);
  if (idx < 0) idx = 0;
  const line = lineAtBase + countNewlines(bytes.subarray(0, idx));
  const offset = base + idx;
  const sample = Array.from(bytes.subarray(idx, idx + 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return new TuneforgeError(
    `invalid UTF-8 at byte offset ${offset} (bytes ${sample}); tuneforge reads UTF-8 only`,
    {
      file,
      line,
      hint:
        `the file is probably in a legacy encoding; convert it, e.g. for Arabic Windows exports ` +
        `\`iconv -f WINDOWS-1256 -t UTF-8 ${shellQuote(file)} > converted.${extOf(file)}\` ` +
        `(or -f WINDOWS-1252 / ISO-8859-1 for Western European text)`,
    },
  );
}

/** The bytes at the end of `bytes` that begin a character not yet complete (at most 3). */
function incompleteTail(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return len > back ? bytes.slice(n - back) : new Uint8Array(0);
  }
  return new Uint8Array(0);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export function countNewlines(bytes: Uint8Array): number {
  let count = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) count++;
  return count;
}

function extOf(file: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(file);
  return m ? m[1] : "txt";
}

export function shellQuote(s: string): string {
  return /^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
