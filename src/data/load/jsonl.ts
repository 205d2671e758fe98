// JSONL: one JSON object per line, read line by line (blank lines skipped).
import type { LoadedRow } from "../types.js";
import type { FileContext } from "./context.js";
import { interpretRow, isProblem } from "./rows.js";
import { readUtf8Chunks } from "./utf8.js";

export interface TextLine {
  /** The line without its "\n" / "\r\n". */
  text: string;
  /** 1-based line number. */
  line: number;
}

/** Splits streamed text into numbered lines, handed over per chunk read: one promise per chunk, not per line. */
export async function* textLines(chunks: AsyncIterable<{ text: string }>): AsyncGenerator<TextLine[]> {
  let pending = "";
  let line = 1;
  for await (const { text } of chunks) {
    const out: TextLine[] = [];
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      out.push({ text: stripCr(pending + text.slice(start, nl)), line: line++ });
      pending = "";
      start = nl + 1;
    }
    pending += text.slice(start);
    if (out.length > 0) yield out;
  }
  if (pending !== "") yield [{ text: stripCr(pending), line }];
}

function stripCr(s: string): string {
  return s.endsWith("\r") ? s.slice(0, -1) : s;
}

export async function* loadJsonl(ctx: FileContext): AsyncGenerator<LoadedRow[]> {
  for await (const lines of textLines(readUtf8Chunks(ctx.file))) {
    const out: LoadedRow[] = [];
    for (const { text, line } of lines) {
      if (text.trim() === "") continue;
      const source = { file: ctx.file, line };
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        const looksLikeArray = line === 1 && text.trim().startsWith("[");
        ctx.bad({
          source,
          raw: text,
          reason: `invalid JSON: ${(e as Error).message}`,
          hint: looksLikeArray
            ? "this looks like one JSON array, not one object per line: name the file .json (or set data.format: json)"
            : "each line must be one complete JSON object; fix the line, or set data.skip_invalid: true to reject bad lines",
        });
        continue;
      }
      const row = interpretRow(value, ctx.domain, source, ctx.columns);
      if (isProblem(row)) ctx.bad({ source, raw: text, reason: row.reason, hint: row.hint });
      else out.push(row);
    }
    if (out.length > 0) yield out;
  }
}
