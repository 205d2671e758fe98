// CSV/TSV through csv-parse, streamed: the delimiter is detected from the first lines, the header picks
// the source/target columns, and every row remembers the line where its record starts.
import { Readable, pipeline } from "node:stream";
import { batches } from "./batches.js";
import { parse, CsvError } from "csv-parse";
import { TuneforgeError } from "../../errors.js";
import type { Example } from "../types.js";
import { resolveHeader } from "./columns.js";
import type { FileContext } from "./context.js";
import { countNewlines, readUtf8Chunks, type Utf8Chunk } from "./utf8.js";

export const CSV_DELIMITERS = [",", ";", "\t", "|"] as const;

const SAMPLE_CHARS = 64 * 1024;
const SAMPLE_RECORDS = 20;

/**
 * Picks the delimiter that splits the sample's records into the same, largest number of fields.
 * Quotes are respected, so a comma inside "a, b" does not count. Falls back to the first candidate.
 * `complete` says the sample is the whole file (its last record is not cut off).
 */
export function detectDelimiter(
  sample: string,
  candidates: readonly string[] = CSV_DELIMITERS,
  complete = true,
): string {
  const records = splitRecords(sample, complete).slice(0, SAMPLE_RECORDS);
  if (records.length === 0) return candidates[0];
  let best = candidates[0];
  let bestScore = -1;
  for (const d of candidates) {
    const counts = records.map((r) => countOutsideQuotes(r, d));
    const header = counts[0];
    if (header === 0) continue;
    const agreeing = counts.filter((c) => c === header).length;
    // Agreement first (a real delimiter splits every record alike), then more fields.
    const score = (agreeing / counts.length) * 1000 + Math.min(header, 999);
    if (score > bestScore) {
      best = d;
      bestScore = score;
    }
  }
  return best;
}

/** The sample's non-blank records (line breaks inside quotes stay inside the record). */
function splitRecords(sample: string, complete: boolean): string[] {
  const out: string[] = [];
  let inQuotes = false;
  let start = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample[i];
    if (c === '"') inQuotes = !inQuotes;
    else if (c === "\n" && !inQuotes) {
      out.push(sample.slice(start, i));
      start = i + 1;
    }
  }
  if (complete && start < sample.length) out.push(sample.slice(start));
  return out.filter((r) => r.trim() !== "");
}

function countOutsideQuotes(record: string, delimiter: string): number {
  let n = 0;
  let inQuotes = false;
  for (const c of record) {
    if (c === '"') inQuotes = !inQuotes;
    else if (c === delimiter && !inQuotes) n++;
  }
  return n;
}

/**
 * Maps csv-parse's byte offsets to line numbers. Holds only the bytes not yet passed, so memory stays
 * bounded by the stream's read-ahead rather than the file size.
 */
class LineTracker {
  private chunks: Buffer[] = [];
  private chunkStart = 0; // byte offset of chunks[0]
  private pos = 0;
  private line = 1;

  push(bytes: Buffer): void {
    if (bytes.length > 0) this.chunks.push(bytes);
  }

  /** The line where the record in [from, to) starts: blank lines before it are skipped. */
  recordStart(from: number, to: number): number {
    this.advance(from);
    for (;;) {
      if (this.pos >= to || this.chunks.length === 0) break;
      const chunk = this.chunks[0];
      const local = this.pos - this.chunkStart;
      if (local >= chunk.length) {
        this.dropFirst();
        continue;
      }
      const b = chunk[local];
      if (b !== 0x0a && b !== 0x0d) break;
      if (b === 0x0a) this.line++;
      this.pos++;
    }
    return this.line;
  }

  /** Byte offset the tracker has reached (after recordStart: where the record's first byte is). */
  get position(): number {
    return this.pos;
  }

  /** The text of bytes [from, to); `from` must not be behind `position`. */
  text(from: number, to: number): string {
    const parts: Buffer[] = [];
    let chunkStart = this.chunkStart;
    for (const chunk of this.chunks) {
      const lo = Math.max(from - chunkStart, 0);
      const hi = Math.min(to - chunkStart, chunk.length);
      if (lo < hi) parts.push(chunk.subarray(lo, hi));
      chunkStart += chunk.length;
    }
    return Buffer.concat(parts).toString("utf8");
  }

  private advance(to: number): void {
    while (this.pos < to && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const local = this.pos - this.chunkStart;
      if (local >= chunk.length) {
        this.dropFirst();
        continue;
      }
      const end = Math.min(chunk.length, to - this.chunkStart);
      this.line += countNewlines(chunk.subarray(local, end));
      this.pos = this.chunkStart + end;
    }
  }

  private dropFirst(): void {
    this.chunkStart += this.chunks[0].length;
    this.chunks.shift();
  }
}

interface CsvRecord {
  fields: string[];
  /** Byte offset just past the record (its line break included). */
  end: number;
}

export async function* loadCsv(ctx: FileContext, tsv: boolean): AsyncGenerator<Example[]> {
  const chunks = readUtf8Chunks(ctx.file);
  // Read enough of the start of the file to detect the delimiter, then replay it into the parser.
  const head: Utf8Chunk[] = [];
  let sample = "";
  let sampleLines = 0;
  let complete = false;
  for (;;) {
    const next = await chunks.next();
    if (next.done) {
      complete = true;
      break;
    }
    head.push(next.value);
    sample += next.value.text;
    sampleLines += countNewlines(next.value.bytes);
    if (sample.length >= SAMPLE_CHARS || sampleLines > SAMPLE_RECORDS) break;
  }
  const delimiter = tsv ? "\t" : detectDelimiter(sample, CSV_DELIMITERS, complete);

  const tracker = new LineTracker();
  async function* bytes(): AsyncGenerator<Buffer> {
    for (const c of head) {
      tracker.push(c.bytes);
      yield c.bytes;
    }
    head.length = 0;
    for await (const c of chunks) {
      tracker.push(c.bytes);
      yield c.bytes;
    }
  }
  const parser = parse({
    delimiter,
    bom: true,
    relax_column_count: true, // a row with a wrong field count is reported by us, with its line
    skip_empty_lines: true,
  });
  // Each record is tagged with its end offset as csv-parse emits it (`parser.info.bytes` is exactly the
  // end of the record being pushed). This replaces the `info`/`on_record` options, whose per-record info
  // objects made parsing over twice as slow. `parsedEnd` also tells where a malformed record starts, as
  // csv-parse runs ahead of the consumer and drops its buffered records on an error.
  let parsedEnd = 0;
  const push = parser.push.bind(parser);
  parser.push = (record: string[] | null): boolean => {
    if (record === null) return push(null);
    parsedEnd = parser.info.bytes;
    return push({ fields: record, end: parsedEnd } satisfies CsvRecord);
  };
  // A small read-ahead: memory stays flat, and the tracker holds only chunks the parser has not passed.
  pipeline(Readable.from(bytes(), { highWaterMark: 2 }), parser, () => {
    // Errors reach the consumer through `batches`, after the records parsed before them.
  });

  let header: string[] | null = null;
  let columns = { source: 0, target: 1 };
  let prevEnd = 0;
  try {
    for await (const records of batches<CsvRecord>(parser)) {
      const out: Example[] = [];
      for (const rec of records) {
        const line = tracker.recordStart(prevEnd, rec.end);
        const start = tracker.position;
        prevEnd = rec.end;
        if (header === null) {
          header = rec.fields.map((h) => h.trim());
          columns = resolveHeader(header, ctx.columns, ctx.file, delimiter);
          continue;
        }
        const source = { file: ctx.file, line };
        if (rec.fields.length !== header.length) {
          ctx.bad({
            source,
            raw: tracker.text(start, rec.end).replace(/[\r\n]+$/, ""),
            reason: `expected ${header.length} fields (as in the header), found ${rec.fields.length}`,
            hint:
              `quote fields that contain the delimiter ${JSON.stringify(delimiter)} or line breaks ("like, this"); ` +
              `fix the row, or set data.skip_invalid: true to write bad rows to the rejects file`,
          });
          continue;
        }
        out.push({
          kind: "example",
          domain: ctx.domain,
          source,
          messages: [
            { role: "user", content: rec.fields[columns.source] },
            { role: "assistant", content: rec.fields[columns.target] },
          ],
        });
      }
      if (out.length > 0) yield out;
    }
  } catch (e) {
    if (e instanceof CsvError) {
      const line = tracker.recordStart(Math.max(prevEnd, parsedEnd), Infinity);
      throw new TuneforgeError(`malformed CSV record starting here: ${describeCsvError(e)}`, {
        file: ctx.file,
        line,
        hint: 'inside a quoted field write a quote as two quotes (""); quote fields that contain quotes, the delimiter or line breaks',
        cause: e,
      });
    }
    throw e;
  }
}

function describeCsvError(e: CsvError): string {
  switch (e.code) {
    case "CSV_INVALID_CLOSING_QUOTE":
      return "text follows a closing quote before the next delimiter";
    case "CSV_QUOTE_NOT_CLOSED":
      return "a quoted field is never closed (the file ends inside quotes)";
    case "INVALID_OPENING_QUOTE":
      return "a quote appears inside an unquoted field";
    default:
      return `${e.message} (${e.code})`;
  }
}
