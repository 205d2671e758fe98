// What every format reader gets: the file, the domain, the column mapping, and one place that decides
// whether a bad row stops the load (default) or goes to `onReject` (skipInvalid).
import { TuneforgeError } from "../../errors.js";
import type { SourceRef } from "../types.js";
import type { ColumnMapping } from "./columns.js";
import type { ChunkOptions, LoadReject } from "./types.js";

export interface FileContext {
  file: string;
  domain: string;
  columns?: ColumnMapping;
  chunking?: ChunkOptions;
  /** Counts rejects so that a file whose every row was rejected is still reported. */
  rejected: number;
  /** Throws a TuneforgeError for a bad row, or hands it to onReject when skipInvalid is set. */
  bad(bad: BadRow): void;
}

export interface BadRow {
  source: SourceRef;
  reason: string;
  raw: string;
  hint?: string;
  /** The line to show in a thrown error when it differs from source.line (JSON: index vs text line). */
  errorLine?: number;
}

export function makeContext(
  file: string,
  domain: string,
  options: {
    columns?: ColumnMapping;
    chunking?: ChunkOptions;
    skipInvalid?: boolean;
    onReject?: (reject: LoadReject) => void;
  },
): FileContext {
  const ctx: FileContext = {
    file,
    domain,
    columns: options.columns,
    chunking: options.chunking,
    rejected: 0,
    bad(row) {
      if (!options.skipInvalid || !options.onReject) {
        throw new TuneforgeError(row.reason, {
          file,
          line: row.errorLine ?? row.source.line,
          hint:
            row.hint ?? "fix the row, or set data.skip_invalid: true to write bad rows to the rejects file",
        });
      }
      ctx.rejected++;
      options.onReject({ source: row.source, reason: row.reason, raw: row.raw });
    },
  };
  return ctx;
}
