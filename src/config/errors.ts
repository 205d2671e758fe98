// One error for everything wrong with a config, so the user fixes every problem in one pass.
import { TuneforgeError } from "../errors.js";

export interface ConfigIssue {
  /** Dotted key path, e.g. `training.learning_rate` ("" for the whole file). */
  key: string;
  /** What is wrong, in words (without the location). */
  message: string;
  file?: string;
  /** 1-based line of the offending key in `file`. */
  line?: number;
  /** The command-line flag that set the value, when it did not come from the file. */
  flag?: string;
  expected?: string;
  found?: string;
  /** The key (or value) the user probably meant. */
  suggestion?: string;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.flag
    ? `${issue.flag} (command line)`
    : issue.file
      ? issue.line !== undefined
        ? `${issue.file}:${issue.line}`
        : issue.file
      : "";
  const key = issue.key ? `${issue.key}: ` : "";
  return `${where ? where + " " : ""}${key}${issue.message}`;
}

export class ConfigError extends TuneforgeError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[], file?: string) {
    const one = issues.length === 1 ? issues[0] : undefined;
    const hint =
      one?.suggestion && one.message.startsWith("unknown key")
        ? `rename it to \`${one.suggestion}\``
        : "fix the problems listed; `tuneforge init` writes a commented tuneforge.yaml showing every key";
    if (one) {
      super(one.message, {
        file: one.flag ? `${one.flag} (command line)` : one.file,
        line: one.flag ? undefined : one.line,
        key: one.key || undefined,
        hint,
      });
    } else {
      super(
        `${issues.length} problems in the configuration:\n${issues.map((i) => "  " + formatIssue(i)).join("\n")}`,
        {
          file,
          hint,
        },
      );
    }
    this.name = "ConfigError";
    this.issues = issues;
  }
}
