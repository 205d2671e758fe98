// Loading: a user's files -> a stream of LoadedRows. Memory stays flat however large the input: CSV,
// JSONL and JSON are streamed row by row; only documents (txt/pdf/docx) are read whole.
import { TuneforgeError } from "../../errors.js";
import type { LoadedRow } from "../types.js";
import { normalizeColumns } from "./columns.js";
import { makeContext, type FileContext } from "./context.js";
import { loadCsv } from "./csv.js";
import { loadDocument } from "./document.js";
import { describeSource, type SourceFile } from "./format.js";
import { loadJson } from "./json.js";
import { loadJsonl } from "./jsonl.js";
import type { LoadSpec } from "./types.js";

export type { ChunkOptions, ColumnsConfig, LoadReject, LoadSpec, SourceFormat } from "./types.js";
export {
  describeSource,
  detectFormat,
  formatOf,
  slugifyDomain,
  SOURCE_FORMATS,
  type SourceDescription,
  type SourceFile,
} from "./format.js";
export { KNOWN_COLUMN_PAIRS, normalizeColumns, type ColumnMapping } from "./columns.js";
export { CSV_DELIMITERS, detectDelimiter } from "./csv.js";
export {
  chunkText,
  splitByCharacters,
  splitByTokens,
  DEFAULT_CHUNK_CHARS,
  DEFAULT_CHUNK_TOKENS,
  type Chunk,
} from "./chunk.js";
export { extractDocumentText } from "./document.js";
export { ACCEPTED_ROW_FORMATS } from "./rows.js";

/**
 * Streams the rows of `spec.path` (a file, or every data file of a directory in name order).
 * Throws a TuneforgeError naming the file and line for bad input; with `skipInvalid`, bad rows go to
 * `onReject` instead. A file that yields no rows at all is an error.
 */
export async function* loadRows(spec: LoadSpec): AsyncGenerator<LoadedRow> {
  if (spec.skipInvalid && !spec.onReject) {
    throw new TuneforgeError("skipInvalid needs an onReject callback, or rejected rows would vanish", {
      key: "data.skip_invalid",
    });
  }
  const columns = normalizeColumns(spec.columns);
  const source = describeSource(spec.path, spec.format);
  const domain = spec.domain ?? source.domain;
  for (const file of source.files) {
    const ctx = makeContext(file.path, domain, { ...spec, columns });
    let rows = 0;
    // Format readers hand over rows in batches: one promise per batch, not per row.
    for await (const batch of loadFile(ctx, file)) {
      rows += batch.length;
      yield* batch;
    }
    if (rows === 0) {
      throw new TuneforgeError(
        ctx.rejected > 0
          ? `all ${ctx.rejected} rows were rejected; nothing to load`
          : "the file holds no rows",
        {
          file: file.path,
          hint:
            ctx.rejected > 0
              ? "see the rejects file for why; the file is probably in an unexpected format (check data.columns / data.format)"
              : file.format === "csv" || file.format === "tsv"
                ? "a CSV needs a header row and at least one data row"
                : "add data to the file, or remove it from the data path",
        },
      );
    }
  }
}

function loadFile(ctx: FileContext, file: SourceFile): AsyncGenerator<LoadedRow[]> {
  switch (file.format) {
    case "csv":
    case "tsv":
      return loadCsv(ctx, file.format === "tsv");
    case "jsonl":
      return loadJsonl(ctx);
    case "json":
      return loadJson(ctx);
    case "txt":
    case "pdf":
    case "docx":
      return loadDocument(ctx, file.format);
  }
}
