// Streaming JSONL output. Rows go to a temporary file next to the target; `commit()` renames it into place,
// so readers never see a half-written file and an interrupted run leaves the old output untouched.
import { createWriteStream, renameSync, rmSync, mkdirSync, type WriteStream } from "node:fs";
import { once } from "node:events";
import { dirname, basename, join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { textLines } from "../data/load/jsonl.js";
import { readUtf8Chunks } from "../data/load/utf8.js";

export class JsonlWriter {
  private readonly tmp: string;
  private readonly stream: WriteStream;
  private closed = false;
  rows = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.stream = createWriteStream(this.tmp, { encoding: "utf8" });
  }

  /** Appends one row; waits when the OS buffer is full, so memory stays flat on large outputs. */
  async write(row: unknown): Promise<void> {
    this.rows++;
    if (!this.stream.write(JSON.stringify(row) + "\n")) await once(this.stream, "drain");
  }

  /** Flushes and moves the file into place. */
  async commit(): Promise<void> {
    await this.close();
    renameSync(this.tmp, this.path);
  }

  /** Throws the partial output away. */
  async abort(): Promise<void> {
    await this.close();
    rmSync(this.tmp, { force: true });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.end();
    await once(this.stream, "finish");
  }
}

/** Streams the rows of a JSONL file (blank lines skipped), with 1-based line numbers. */
export async function* readJsonl<T = unknown>(path: string): AsyncGenerator<{ line: number; row: T }> {
  for await (const lines of textLines(readUtf8Chunks(path))) {
    for (const { text, line } of lines) {
      if (text.trim() === "") continue;
      let row: T;
      try {
        row = JSON.parse(text) as T;
      } catch (e) {
        throw new TuneforgeError(`invalid JSON (${(e as Error).message})`, { file: path, line });
      }
      yield { line, row };
    }
  }
}
