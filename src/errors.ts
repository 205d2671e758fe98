// Errors a user can act on. The CLI prints their message (no stack trace) and exits non-zero;
// the message names the file/line/key involved and says what to do.
export interface ErrorLocation {
  file?: string;
  /** 1-based line (or row) number in `file`. */
  line?: number;
  /** A dotted config key path such as `training.learning_rate`. */
  key?: string;
}

export class TuneforgeError extends Error {
  readonly location: ErrorLocation;
  readonly hint?: string;

  constructor(message: string, options: ErrorLocation & { hint?: string; cause?: unknown } = {}) {
    const where = formatLocation(options);
    super(
      where
        ? `${where}: ${message}${options.hint ? `\n  fix: ${options.hint}` : ""}`
        : message + (options.hint ? `\n  fix: ${options.hint}` : ""),
      {
        cause: options.cause,
      },
    );
    this.name = "TuneforgeError";
    this.location = { file: options.file, line: options.line, key: options.key };
    this.hint = options.hint;
  }
}

function formatLocation(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.file) parts.push(loc.line !== undefined ? `${loc.file}:${loc.line}` : loc.file);
  if (loc.key) parts.push(loc.key);
  return parts.join(" ");
}
