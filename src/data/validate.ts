// Reads every input of a config through the loaders, collecting bad rows instead of stopping at the first,
// so `tuneforge validate` can list all problems at once. Writes nothing.
import type { TuneforgeConfig } from "../config/schema.js";
import { loadRows, type LoadReject } from "./load/index.js";
import { TuneforgeError } from "../errors.js";

export interface InputReport {
  path: string;
  rows: number;
  domains: string[];
  problems: number;
}

export interface ValidationReport {
  inputs: InputReport[];
  problems: LoadReject[];
  totalRows: number;
}

export async function validateProject(config: TuneforgeConfig): Promise<ValidationReport> {
  const problems: LoadReject[] = [];
  const inputs: InputReport[] = [];
  for (const input of config.data.inputs) {
    const report: InputReport = { path: input.path, rows: 0, domains: [], problems: 0 };
    const domains = new Set<string>();
    try {
      for await (const row of loadRows({
        path: input.path,
        domain: input.domain,
        format: input.format === "auto" ? undefined : input.format,
        columns: input.columns,
        skipInvalid: true,
        onReject: (r) => {
          report.problems++;
          problems.push(r);
        },
      })) {
        report.rows++;
        domains.add(row.domain);
      }
    } catch (e) {
      // A whole-file problem (missing file, bad encoding, no rows): record it and go on to the next input.
      if (!(e instanceof TuneforgeError)) throw e;
      report.problems++;
      // line 0: the message already names the file (and line) itself.
      problems.push({ source: { file: input.path, line: 0 }, reason: e.message, raw: "" });
    }
    report.domains = [...domains];
    inputs.push(report);
  }
  if (config.data.inputs.length === 0) {
    throw new TuneforgeError("no data inputs configured", {
      key: "data.inputs",
      hint: "list your files under data.inputs",
    });
  }
  return { inputs, problems, totalRows: inputs.reduce((n, i) => n + i.rows, 0) };
}
