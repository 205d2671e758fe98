// Which files a LoadSpec path stands for, and in which format each is read.
import { readdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { TuneforgeError } from "../../errors.js";
import type { SourceFormat } from "./types.js";

export const FORMAT_BY_EXTENSION: Readonly<Record<string, SourceFormat>> = {
  ".csv": "csv",
  ".tsv": "tsv",
  ".json": "json",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".txt": "txt",
  ".pdf": "pdf",
  ".docx": "docx",
};

export const SOURCE_FORMATS: readonly SourceFormat[] = ["csv", "tsv", "json", "jsonl", "txt", "pdf", "docx"];

/** The format of `file` by its extension (case-insensitive), or null when tuneforge cannot read it. */
export function formatOf(file: string): SourceFormat | null {
  return FORMAT_BY_EXTENSION[extname(file).toLowerCase()] ?? null;
}

/** Like formatOf, but an unsupported extension is a user error with a fix. */
export function detectFormat(file: string): SourceFormat {
  const format = formatOf(file);
  if (format) return format;
  const ext = extname(file) || "(none)";
  throw new TuneforgeError(`unsupported file extension ${ext}`, {
    file,
    hint:
      `tuneforge reads ${Object.keys(FORMAT_BY_EXTENSION).join(" ")}; rename the file, ` +
      `or set data.format to one of ${SOURCE_FORMATS.join(", ")} if its content is one of those`,
  });
}

/** "economic v1.csv" -> "economic_v1", "Education_Research.csv" -> "education_research". */
export function slugifyDomain(path: string): string {
  const name = basename(path.replace(/[\\/]+$/, ""));
  const stem = name.slice(0, name.length - extname(name).length) || name;
  const slug = stem
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, "_")
    .replace(/^_+|_+$/g, "");
  return slug || "data";
}

export interface SourceFile {
  path: string;
  format: SourceFormat;
}

export interface SourceDescription {
  path: string;
  kind: "file" | "directory";
  /** The data files to read, in order (sorted by name for a directory). */
  files: SourceFile[];
  /** Entries of a directory that are not data files (subdirectories, other extensions); not read. */
  ignored: string[];
  /** The default domain: the file or directory name slugified. */
  domain: string;
}

/** Resolves a LoadSpec path to the files it stands for. Throws a TuneforgeError when there are none. */
export function describeSource(path: string, formatOverride?: SourceFormat): SourceDescription {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new TuneforgeError("data path does not exist", {
      file: path,
      hint: "check data.path (relative paths are resolved from the directory you run tuneforge in)",
    });
  }
  const domain = slugifyDomain(path);
  if (!stat.isDirectory()) {
    return {
      path,
      kind: "file",
      files: [{ path, format: formatOverride ?? detectFormat(path) }],
      ignored: [],
      domain,
    };
  }
  const files: SourceFile[] = [];
  const ignored: string[] = [];
  const names = readdirSync(path).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    if (name.startsWith(".")) continue; // .DS_Store, editor swap files
    const full = join(path, name);
    const format = formatOf(name);
    if (format && statSync(full).isFile()) files.push({ path: full, format: formatOverride ?? format });
    else ignored.push(full);
  }
  if (files.length === 0) {
    throw new TuneforgeError("the directory holds no data files", {
      file: path,
      hint:
        `put ${Object.keys(FORMAT_BY_EXTENSION).join(" ")} files directly in it (subdirectories are not read)` +
        (ignored.length ? `; found only: ${ignored.map((f) => basename(f)).join(", ")}` : ""),
    });
  }
  return { path, kind: "directory", files, ignored, domain };
}
