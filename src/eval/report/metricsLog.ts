// Parsing `<runDir>/metrics.jsonl`, the trainer's append-only log. A run killed mid-write leaves a partial last
// line: that one is tolerated (and reported); a bad line anywhere else means a corrupt log and is an error.
import { readFileSync } from "node:fs";
import { TuneforgeError } from "../../errors.js";
import type { MetricsLine, MetricsLog } from "./types.js";

/** Known numeric fields; each must be a number or null (unknown keys pass through untouched). */
const NUMERIC_FIELDS = ["epoch", "loss", "lr", "grad_norm", "tokens_per_s", "memory_mb", "val_loss"] as const;

const LOG_HINT =
  "each line of metrics.jsonl must be one JSON object with a numeric `step`, as the trainer writes";

export function parseMetricsJsonl(text: string, file: string): MetricsLog {
  const rows = text.split("\n");
  // The index of the last line with content: only that one may be a partial write.
  let last = rows.length - 1;
  while (last >= 0 && rows[last].trim() === "") last--;
  const lines: MetricsLine[] = [];
  let truncatedLastLine: string | undefined;
  for (let i = 0; i <= last; i++) {
    const raw = rows[i].trim();
    if (raw === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      if (i === last) {
        truncatedLastLine = raw;
        break;
      }
      throw new TuneforgeError(`line is not valid JSON (${(e as Error).message})`, {
        file,
        line: i + 1,
        hint: LOG_HINT,
        cause: e,
      });
    }
    lines.push(checkLine(value, file, i + 1));
  }
  return truncatedLastLine === undefined ? { file, lines } : { file, lines, truncatedLastLine };
}

export function readMetricsJsonl(file: string): MetricsLog {
  return parseMetricsJsonl(readFileSync(file, "utf8"), file);
}

function checkLine(value: unknown, file: string, line: number): MetricsLine {
  const fail = (what: string): never => {
    throw new TuneforgeError(what, { file, line, hint: LOG_HINT });
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("line is not a JSON object");
  const row = value as Record<string, unknown>;
  if (typeof row.step !== "number" || !Number.isFinite(row.step)) fail("`step` is missing or not a number");
  for (const key of NUMERIC_FIELDS) {
    const v = row[key];
    if (v !== undefined && v !== null && typeof v !== "number")
      fail(`\`${key}\` is ${JSON.stringify(v)}, not a number`);
  }
  if (row.eval !== undefined) {
    const ev = row.eval as Record<string, unknown> | null;
    if (
      typeof ev !== "object" ||
      ev === null ||
      typeof ev.metric !== "string" ||
      (ev.value !== null && typeof ev.value !== "number")
    ) {
      fail('`eval` must look like {"metric": "chrf", "value": 41.2}');
    }
  }
  return row as MetricsLine;
}
