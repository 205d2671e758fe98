// Progress for long steps (tokenizing, training, evaluating): a live bar with ETA and custom fields
// (loss, lr, ...) in a terminal; periodic plain log lines when stdout is a pipe or CI log, where
// redrawing a bar would fill the log with control characters.
import cliProgress from "cli-progress";

export type ProgressFields = Record<string, number | string>;

export interface ProgressOptions {
  total: number;
  /** Shown before the bar / at the start of each log line, e.g. "train". */
  label: string;
  /** Names of the custom fields to show, in order (e.g. ["loss", "lr"]). */
  fields?: string[];
  /** Where to draw (default process.stdout). A stream without `isTTY` gets log lines. */
  stream?: { isTTY?: boolean; write(chunk: string): unknown };
  /** Plain mode: the most time between two log lines (default 10 s). A line is also printed per 10 %. */
  logIntervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface Progress {
  /** Sets the absolute position (and any custom fields). */
  update(value: number, fields?: ProgressFields): void;
  increment(delta?: number, fields?: ProgressFields): void;
  /** Ends the bar; plain mode prints a final line. */
  stop(): void;
}

/** 3725 -> "1h02m", 192 -> "3m12s", 7 -> "7s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Numbers with 4 significant digits (losses, learning rates); strings as they are. */
function formatField(v: number | string | undefined): string {
  if (v === undefined) return "-";
  if (typeof v === "string") return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stdout;
  const names = options.fields ?? [];
  return stream.isTTY ? barProgress(options, stream, names) : logProgress(options, stream, names);
}

function barProgress(
  options: ProgressOptions,
  stream: NonNullable<ProgressOptions["stream"]>,
  names: string[],
) {
  const fieldFormat = names.map((n) => ` | ${n} {${n}}`).join("");
  const bar = new cliProgress.SingleBar(
    {
      format: `${options.label} {bar} {percentage}% | {value}/{total} | ETA {eta_formatted}${fieldFormat}`,
      stream: stream as NodeJS.WritableStream,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (fields?: ProgressFields) =>
    Object.fromEntries(names.map((n) => [n, formatField(fields?.[n] ?? last[n])]));
  const last: ProgressFields = {};
  bar.start(options.total, 0, payload());
  return {
    update(value: number, fields?: ProgressFields) {
      Object.assign(last, fields);
      bar.update(value, payload(fields));
    },
    increment(delta = 1, fields?: ProgressFields) {
      Object.assign(last, fields);
      bar.increment(delta, payload(fields));
    },
    stop() {
      bar.stop();
    },
  };
}

function logProgress(
  options: ProgressOptions,
  stream: NonNullable<ProgressOptions["stream"]>,
  names: string[],
) {
  const now = options.now ?? Date.now;
  const interval = options.logIntervalMs ?? 10_000;
  const start = now();
  const fields: ProgressFields = {};
  let value = 0;
  let lastLogAt = -Infinity;
  let lastLoggedValue = -1;
  let lastDecile = -1;
  let stopped = false;

  const line = () => {
    const elapsed = (now() - start) / 1000;
    const pct = options.total > 0 ? Math.floor((100 * value) / options.total) : 100;
    const eta = value > 0 ? (elapsed / value) * Math.max(0, options.total - value) : NaN;
    const extra = names.map((n) => ` ${n}=${formatField(fields[n])}`).join("");
    stream.write(
      `${options.label} ${value}/${options.total} (${pct}%) elapsed ${formatDuration(elapsed)} eta ${formatDuration(eta)}${extra}\n`,
    );
    lastLogAt = now();
    lastLoggedValue = value;
  };
  const maybeLog = () => {
    const decile = options.total > 0 ? Math.floor((10 * value) / options.total) : 10;
    if (decile > lastDecile || now() - lastLogAt >= interval) {
      lastDecile = Math.max(lastDecile, decile);
      line();
    }
  };
  return {
    update(v: number, f?: ProgressFields) {
      value = v;
      Object.assign(fields, f);
      maybeLog();
    },
    increment(delta = 1, f?: ProgressFields) {
      value += delta;
      Object.assign(fields, f);
      maybeLog();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (value !== lastLoggedValue) line();
    },
  };
}
