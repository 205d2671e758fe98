// Which two columns hold the prompt and the answer: from config `data.columns`, or detected from headers.
import { TuneforgeError } from "../../errors.js";
import type { ColumnsConfig } from "./types.js";

/** The normalised `data.columns`: source -> user message, target -> assistant message. */
export interface ColumnMapping {
  source: string;
  target: string;
}

/** Header pairs recognised without configuration, in priority order (matched case-insensitively). */
export const KNOWN_COLUMN_PAIRS: readonly (readonly [string, string])[] = [
  ["english", "arabic"],
  ["en", "ar"],
  ["source", "target"],
  ["input", "output"],
  ["question", "answer"],
  ["src", "tgt"],
  ["text", "translation"],
  ["prompt", "response"],
];

const SPELLINGS = [
  ["source", "target"],
  ["input", "output"],
  ["question", "answer"],
] as const;

/** Accepts {source,target}, {input,output} or {question,answer}; anything else is a config error. */
export function normalizeColumns(config: ColumnsConfig | undefined): ColumnMapping | undefined {
  if (config === undefined) return undefined;
  const raw = config as Record<string, unknown>;
  for (const [s, t] of SPELLINGS) {
    if (raw[s] === undefined && raw[t] === undefined) continue;
    for (const key of [s, t]) {
      if (typeof raw[key] !== "string" || (raw[key] as string).trim() === "") {
        throw new TuneforgeError(`must name a column (a non-empty string)`, {
          key: `data.columns.${key}`,
          hint: `set data.columns.${s} and data.columns.${t} to the column names of the prompt and the answer`,
        });
      }
    }
    return { source: (raw[s] as string).trim(), target: (raw[t] as string).trim() };
  }
  throw new TuneforgeError(`expected {source, target}, {input, output} or {question, answer}`, {
    key: "data.columns",
    hint: "e.g. data.columns: { source: English, target: Arabic }",
  });
}

/** Finds `name` among `names`: exactly, else ignoring case and surrounding spaces. -1 when absent. */
export function findColumn(names: readonly string[], name: string): number {
  const exact = names.indexOf(name);
  if (exact !== -1) return exact;
  const want = name.trim().toLowerCase();
  return names.findIndex((n) => n.trim().toLowerCase() === want);
}

/** Detects a known header pair; null when none is present. */
export function detectColumnPair(names: readonly string[]): { source: number; target: number } | null {
  for (const [s, t] of KNOWN_COLUMN_PAIRS) {
    const source = findColumn(names, s);
    const target = findColumn(names, t);
    if (source !== -1 && target !== -1) return { source, target };
  }
  return null;
}

/**
 * Resolves the source/target column indexes of a CSV header. Missing or misnamed columns are an error
 * naming the file, the columns found and the config key to set.
 */
export function resolveHeader(
  header: readonly string[],
  mapping: ColumnMapping | undefined,
  file: string,
  delimiter: string,
): { source: number; target: number } {
  const found = `columns found (delimiter ${JSON.stringify(delimiter)}): ${header.map((h) => JSON.stringify(h)).join(", ")}`;
  if (mapping) {
    const source = findColumn(header, mapping.source);
    const target = findColumn(header, mapping.target);
    for (const [idx, key, name] of [
      [source, "source", mapping.source],
      [target, "target", mapping.target],
    ] as const) {
      if (idx === -1) {
        throw new TuneforgeError(
          `column ${JSON.stringify(name)} (data.columns.${key}) is not in the header; ${found}`,
          {
            file,
            line: 1,
            hint: `set data.columns.${key} to one of the columns found, or fix the header row`,
          },
        );
      }
    }
    return { source, target };
  }
  const pair = detectColumnPair(header);
  if (pair) return pair;
  throw new TuneforgeError(`cannot tell which columns hold the prompt and the answer; ${found}`, {
    file,
    line: 1,
    hint:
      `set data.columns.source and data.columns.target to the header names (e.g. { source: English, target: Arabic }), ` +
      `or name the columns one of: ${KNOWN_COLUMN_PAIRS.map(([s, t]) => `${s}/${t}`).join(", ")}` +
      (header.length === 1
        ? "; only one column was found: is the delimiter right and is there a header row?"
        : ""),
  });
}
