// JSON: an array of rows, or an object holding the rows in one array-valued key ({"segments": [...]}).
// The file is scanned as a stream: only the current row's text is held, never the whole document, so a
// large .json export loads with flat memory like JSONL does.
import { TuneforgeError } from "../../errors.js";
import type { LoadedRow } from "../types.js";
import type { FileContext } from "./context.js";
import { interpretRow, isProblem } from "./rows.js";
import { readUtf8Chunks } from "./utf8.js";

export interface JsonElement {
  /** The element's JSON text. */
  raw: string;
  /** 1-based position in the rows array. */
  index: number;
  /** 1-based text line where the element starts. */
  line: number;
}

type Mode =
  | "start" // before the top-level value
  | "key" // top-level object: expecting a key or "}"
  | "colon" // after a key
  | "value" // after the colon
  | "arrayStart" // top-level object: just inside an array value, deciding whether it holds the rows
  | "skip" // inside a non-array value of the top-level object
  | "afterRows" // top-level object: after the rows array
  | "element" // rows array: expecting an element (or "]")
  | "inElement" // rows array: inside an element
  | "done";

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Cuts a JSON document into the elements of its rows array, chunk by chunk. */
export class JsonRowScanner {
  private mode: Mode = "start";
  private topIsObject = false;
  private line = 1;
  private inString = false;
  private escaped = false;
  private nesting = 0;
  private pending = "";
  private elementLine = 0;
  private count = 0;
  private key = "";
  private keys: string[] = [];
  /** Top-level keys holding an empty array: an empty rows array is an empty dataset, not a format error. */
  private emptyArrays: string[] = [];
  /** The top-level key holding the rows, when the top level is an object. */
  rowsKey: string | null = null;

  constructor(private readonly file: string) {}

  /** Feeds the next piece of text; returns the elements it completed. */
  push(text: string): JsonElement[] {
    const out: JsonElement[] = [];
    let start = -1; // where the collected text (key or element) begins in this chunk
    if (this.mode === "inElement" || (this.mode === "key" && this.inString)) start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) this.line++;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) {
          this.inString = false;
          if (this.mode === "key") {
            this.key = JSON.parse(this.pending + text.slice(start, i + 1)) as string;
            this.pending = "";
            start = -1;
            this.keys.push(this.key);
            this.mode = "colon";
          }
        }
        continue;
      }
      switch (this.mode) {
        case "start":
          if (WS.has(c) || c === 0xfeff) break;
          if (c === 0x5b) this.mode = "element";
          else if (c === 0x7b) {
            this.topIsObject = true;
            this.mode = "key";
          } else
            this.fail(`expected a JSON array "[...]" or object "{...}", found ${JSON.stringify(text[i])}`);
          break;
        case "key":
          if (WS.has(c)) break;
          if (c === 0x22) {
            this.inString = true;
            start = i;
          } else if (c === 0x7d) this.mode = "done";
          else this.fail(`expected a key in the top-level object, found ${JSON.stringify(text[i])}`);
          break;
        case "colon":
          if (WS.has(c)) break;
          if (c !== 0x3a) this.fail(`expected ":" after key ${JSON.stringify(this.key)}`);
          this.mode = "value";
          break;
        case "value":
          if (WS.has(c)) break;
          if (c === 0x5b) this.mode = "arrayStart";
          else {
            this.mode = "skip";
            this.nesting = 0;
            i--; // let "skip" see the value's first character
          }
          break;
        case "arrayStart":
          // Rows are objects: an array of objects holds them; other arrays ("langs": ["ar", "en"]) are metadata.
          if (WS.has(c)) break;
          if (c === 0x7b) {
            if (this.rowsKey !== null) {
              this.fail(
                `the top-level object has more than one array of objects (${JSON.stringify(this.rowsKey)} and ${JSON.stringify(this.key)}); cannot tell which holds the rows`,
                { hint: "keep one array of rows in the file, or make the file a plain array [{...}, {...}]" },
              );
            }
            if (this.key === "messages") {
              this.fail(`this file is a single chat conversation, not a list of rows`, {
                hint: `wrap it in an array ([{"messages": [...]}, ...]) or write one conversation per line in a .jsonl file`,
              });
            }
            this.rowsKey = this.key;
            this.mode = "element";
          } else {
            if (c === 0x5d) this.emptyArrays.push(this.key);
            this.mode = "skip";
            this.nesting = 1; // inside the array being skipped
          }
          i--; // re-read this character in the new mode
          break;
        case "skip":
          if (c === 0x22) this.inString = true;
          else if (c === 0x7b || c === 0x5b) this.nesting++;
          else if ((c === 0x7d || c === 0x5d) && this.nesting > 0) this.nesting--;
          else if (this.nesting === 0 && c === 0x2c) this.mode = "key";
          else if (this.nesting === 0 && c === 0x7d) this.mode = "done";
          break;
        case "afterRows":
          if (WS.has(c)) break;
          if (c === 0x2c) this.mode = "key";
          else if (c === 0x7d) this.mode = "done";
          else this.fail(`expected "," or "}" after the ${JSON.stringify(this.rowsKey)} array`);
          break;
        case "element":
          if (WS.has(c)) break;
          if (c === 0x5d && this.count === 0) {
            this.closeRows();
            break;
          }
          if (c === 0x5d || c === 0x2c)
            this.fail(`expected a row, found ${JSON.stringify(text[i])} (a stray or trailing comma?)`);
          this.mode = "inElement";
          this.nesting = 0;
          this.elementLine = this.line;
          start = i;
          i--; // re-read the first character inside the element
          break;
        case "inElement":
          if (c === 0x22) this.inString = true;
          else if (c === 0x7b || c === 0x5b) this.nesting++;
          else if ((c === 0x7d || c === 0x5d) && this.nesting > 0) this.nesting--;
          else if (this.nesting === 0 && (c === 0x2c || c === 0x5d)) {
            this.count++;
            out.push({
              raw: (this.pending + text.slice(start, i)).trim(),
              index: this.count,
              line: this.elementLine,
            });
            this.pending = "";
            start = -1;
            if (c === 0x5d) this.closeRows();
            else this.mode = "element";
          } else if (this.nesting === 0 && c === 0x7d) this.fail(`unbalanced "}" in row ${this.count + 1}`);
          break;
        case "done":
          if (!WS.has(c)) {
            this.fail(`unexpected ${JSON.stringify(text[i])} after the end of the JSON document`, {
              hint: "if the file holds one JSON object per line, name it .jsonl (or set data.format: jsonl)",
            });
          }
          break;
      }
    }
    if (start !== -1) this.pending += text.slice(start);
    return out;
  }

  /** Call at the end of the file: an unfinished document, or an object without rows, is an error. */
  end(): void {
    if (this.mode !== "done") {
      this.fail(
        this.mode === "start"
          ? "the file is empty"
          : "the file ends before the JSON document does (a missing ] or }?)",
      );
    }
    if (this.topIsObject && this.rowsKey === null && this.emptyArrays.length === 0) {
      this.fail(
        `the top-level object has no array of rows; keys found: ${this.keys.join(", ") || "(none)"}`,
        { hint: `put the rows in an array: [{...}, {...}] or {"rows": [{...}, {...}]}` },
      );
    }
  }

  private closeRows(): void {
    this.mode = this.topIsObject ? "afterRows" : "done";
  }

  private fail(message: string, extra: { hint?: string } = {}): never {
    throw new TuneforgeError(`invalid JSON: ${message}`, {
      file: this.file,
      line: this.line,
      hint: extra.hint ?? "check the file with `jq . FILE` or `python -m json.tool FILE`",
    });
  }
}

export async function* loadJson(ctx: FileContext): AsyncGenerator<LoadedRow[]> {
  const scanner = new JsonRowScanner(ctx.file);
  for await (const { text } of readUtf8Chunks(ctx.file)) {
    const out: LoadedRow[] = [];
    for (const el of scanner.push(text)) {
      const row = parseElement(el, ctx);
      if (row) out.push(row);
    }
    if (out.length > 0) yield out;
  }
  scanner.end();
}

function parseElement(el: JsonElement, ctx: FileContext): LoadedRow | null {
  const source = { file: ctx.file, line: el.index };
  let value: unknown;
  try {
    value = JSON.parse(el.raw);
  } catch (e) {
    ctx.bad({
      source,
      raw: el.raw,
      errorLine: el.line,
      reason: `row ${el.index}: invalid JSON: ${(e as Error).message}`,
    });
    return null;
  }
  const row = interpretRow(value, ctx.domain, source, ctx.columns);
  if (isProblem(row)) {
    ctx.bad({
      source,
      raw: el.raw,
      errorLine: el.line,
      reason: `row ${el.index}: ${row.reason}`,
      hint: row.hint,
    });
    return null;
  }
  return row;
}
