// Reads tuneforge.yaml, applies command-line overrides and validates the result, reporting every
// problem at once with the file, line, key, expected and found value.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { isMap, isSeq, isScalar, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { TuneforgeError } from "../errors.js";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { describeExpected, describeNode, keysAt, schemaAt } from "./introspect.js";
import { applyOverrides, emptyOverrides, type ConfigOverrides } from "./overrides.js";
import { configSchema, defaultConfig, finalizeConfig, type TuneforgeConfig } from "./schema.js";
import { nearest } from "./suggest.js";

export interface LoadedConfig {
  config: TuneforgeConfig;
  /** Absolute path of the config file. */
  file: string;
  /** Its folder: relative paths in the config are resolved against it. */
  dir: string;
}

export interface ParseConfigOptions {
  overrides?: ConfigOverrides;
}

type Path = (string | number)[];
type Raw = Record<string, unknown>;

/** Where each key sits in the YAML text, so errors can name the line. */
class Locator {
  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter,
  ) {}

  /** 1-based line of the key at `path`, or of its nearest existing parent. */
  lineOf(path: Path): number | undefined {
    if (!this.doc) return undefined;
    for (let n = path.length; n > 0; n--) {
      const parent = n === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, n - 1), true);
      const last = path[n - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(last));
        const start = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
        if (start !== undefined) return this.lines.linePos(start).line;
      } else if (isSeq(parent) && typeof last === "number") {
        const start = (parent.items[last] as { range?: [number, number, number] } | undefined)?.range?.[0];
        if (start !== undefined) return this.lines.linePos(start).line;
      }
    }
    return undefined;
  }
}

function getIn(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const seg of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function showValue(v: unknown): string {
  if (v === undefined) return "nothing (the key is missing)";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

const dotted = (path: Path) => path.map(String).join(".");

/** The sections a key name is valid in, for "`learning_rate` belongs in `training`". */
function sectionsWithKey(name: string): string[] {
  return keysAt([]).filter((section) => keysAt([section]).includes(name));
}

function issuesFromZod(error: z.ZodError, raw: Raw): Omit<ConfigIssue, "file" | "line" | "flag">[] {
  const out: Omit<ConfigIssue, "file" | "line" | "flag">[] = [];
  for (const issue of error.issues) {
    const path = issue.path as Path;
    if (issue.code === "unrecognized_keys") {
      const valid = keysAt(path);
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        const guess = nearest(key, valid);
        const elsewhere = path.length === 1 ? sectionsWithKey(key) : [];
        let message = "unknown key";
        let suggestion: string | undefined;
        if (guess) {
          suggestion = dotted([...path, guess]);
          message += `; did you mean \`${suggestion}\`?`;
        } else if (elsewhere.length > 0) {
          suggestion = `${elsewhere[0]}.${key}`;
          message += `; \`${key}\` belongs in \`${elsewhere[0]}\`: did you mean \`${suggestion}\`?`;
        } else {
          message += `; valid keys here: ${valid.join(", ")}`;
        }
        out.push({ key: dotted(keyPath), message, found: showValue(getIn(raw, keyPath)), suggestion });
      }
      continue;
    }
    const schema = schemaAt(path);
    const found = getIn(raw, path);
    const expected = schema ? describeExpected(schema) : undefined;
    if (issue.code === "too_small" || issue.code === "too_big") {
      const { origin } = issue as { origin?: string };
      const limit = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const inclusive = (issue as { inclusive?: boolean }).inclusive ?? true;
      const rel = issue.code === "too_small" ? (inclusive ? ">=" : ">") : inclusive ? "<=" : "<";
      const what =
        origin === "array"
          ? `must have ${issue.code === "too_small" ? "at least" : "at most"} ${limit} item(s)`
          : origin === "string"
            ? `must be ${issue.code === "too_small" ? "at least" : "at most"} ${limit} character(s) long`
            : `must be ${rel} ${limit}`;
      out.push({
        key: dotted(path),
        message: `${what}, found ${showValue(found)}`,
        expected: what,
        found: showValue(found),
      });
      continue;
    }
    let suggestion: string | undefined;
    if (issue.code === "invalid_value" && typeof found === "string") {
      const node = schema && describeNode(schema);
      if (node?.kind === "leaf" && node.values) suggestion = nearest(found, node.values);
    }
    const message =
      expected !== undefined
        ? `expected ${expected}, found ${showValue(found)}` +
          (suggestion ? `; did you mean "${suggestion}"?` : "")
        : issue.message;
    out.push({ key: dotted(path), message, expected, found: showValue(found), suggestion });
  }
  return out;
}

/** Rules that involve more than one key. Reads the raw values (falling back to defaults) so they are
 *  checked even when other keys have errors: the user sees everything in one pass. */
function crossFieldIssues(raw: Raw): Omit<ConfigIssue, "file" | "line" | "flag">[] {
  const defaults = defaultConfig() as unknown as Raw;
  const get = (path: Path) => getIn(raw, path) ?? getIn(defaults, path);
  const num = (path: Path) => {
    const v = get(path);
    return typeof v === "number" ? v : undefined;
  };
  const out: Omit<ConfigIssue, "file" | "line" | "flag">[] = [];

  const [tr, va, te] = [
    num(["data", "split", "train"]),
    num(["data", "split", "val"]),
    num(["data", "split", "test"]),
  ];
  if (tr !== undefined && va !== undefined && te !== undefined && Math.abs(tr + va + te - 1) > 1e-6) {
    const sum = Math.round((tr + va + te) * 1e6) / 1e6;
    out.push({
      key: "data.split",
      message: `train + val + test must sum to 1, found ${tr} + ${va} + ${te} = ${sum}`,
      expected: "ratios summing to 1",
      found: String(sum),
    });
  }
  if (tr === 0)
    out.push({ key: "data.split.train", message: "must be above 0: training needs rows", found: "0" });

  const template = get(["data", "template"]);
  const custom = get(["data", "custom_template"]);
  if (template === "custom" && custom === undefined) {
    out.push({
      key: "data.template",
      message: "`custom` needs `data.custom_template` (a Jinja chat template)",
    });
  } else if (custom !== undefined && template !== "custom") {
    out.push({
      key: "data.custom_template",
      message: `is set but \`data.template\` is ${showValue(template)}; set \`data.template: custom\` or remove it`,
    });
  }

  const size = num(["data", "chunking", "chunk_size"]);
  const overlap = num(["data", "chunking", "chunk_overlap"]);
  if (size !== undefined && overlap !== undefined && overlap >= size) {
    out.push({
      key: "data.chunking.chunk_overlap",
      message: `must be below chunk_size (${size}), found ${overlap}`,
    });
  }

  const minChars = num(["data", "clean", "min_chars"]);
  const maxChars = num(["data", "clean", "max_chars"]);
  if (minChars !== undefined && maxChars !== undefined && maxChars < minChars) {
    out.push({
      key: "data.clean.max_chars",
      message: `must be at least min_chars (${minChars}), found ${maxChars}`,
    });
  }

  const inputs = get(["data", "inputs"]);
  if (Array.isArray(inputs)) {
    inputs.forEach((input, i) => {
      if (typeof input !== "object" || input === null) return;
      const { format, columns } = input as Raw;
      if (columns !== undefined && (format === "txt" || format === "pdf" || format === "docx")) {
        out.push({
          key: `data.inputs.${i}.columns`,
          message: `a ${format} file has no columns; remove \`columns\``,
        });
      }
    });
    // A system prompt for a domain no input has is almost always a typo in the domain name.
    const domains = inputs.map((x) => (typeof x === "object" && x !== null ? (x as Raw).domain : undefined));
    const prompts = get(["data", "system_prompts"]);
    if (
      domains.length > 0 &&
      domains.every((d) => typeof d === "string") &&
      typeof prompts === "object" &&
      prompts
    ) {
      for (const name of Object.keys(prompts)) {
        if (domains.includes(name)) continue;
        const guess = nearest(name, domains as string[]);
        out.push({
          key: `data.system_prompts.${name}`,
          message:
            `no input has domain "${name}"` +
            (guess ? `; did you mean "${guess}"?` : `; the domains are ${[...new Set(domains)].join(", ")}`),
          suggestion: guess,
        });
      }
    }
  }
  return out;
}

/** Validates a raw config object; `locate` and `flags` let errors name the line or the flag. */
function validate(
  raw: Raw,
  file: string | undefined,
  locator: Locator | undefined,
  flags: Record<string, string>,
) {
  const result = configSchema.safeParse(raw, { reportInput: true });
  const issues = [...(result.success ? [] : issuesFromZod(result.error, raw)), ...crossFieldIssues(raw)];
  if (issues.length > 0) {
    const located = issues.map((issue): ConfigIssue => {
      // The longest overridden prefix of the key: that flag set the offending value.
      const parts = issue.key.split(".");
      let flag: string | undefined;
      for (let n = parts.length; n > 0 && !flag; n--) flag = flags[parts.slice(0, n).join(".")];
      const path = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      return flag ? { ...issue, flag } : { ...issue, file, line: locator?.lineOf(path) };
    });
    // Keep the order of the file so the user can work top to bottom.
    located.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    throw new ConfigError(located, file);
  }
  return finalizeConfig(result.data!);
}

/** Parses YAML text as a config (paths are left as written). `file` is only used in messages. */
export function parseConfig(text: string, file: string, options: ParseConfigOptions = {}): TuneforgeConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        key: "",
        file,
        line: lines.linePos(e.pos[0]).line,
        message: `invalid YAML: ${e.message.split("\n")[0]}`,
      })),
      file,
    );
  }
  const js: unknown = doc.toJS();
  if (js !== null && js !== undefined && (typeof js !== "object" || Array.isArray(js))) {
    throw new TuneforgeError(
      "the config must be a mapping of sections (model, data, lora, training, eval, export)",
      {
        file,
        line: 1,
        hint: "start from `tuneforge init`, which writes a commented example",
      },
    );
  }
  const raw = applyOverrides((js ?? {}) as Raw, options.overrides ?? emptyOverrides());
  return validate(raw, file, new Locator(doc, lines), options.overrides?.flags ?? {});
}

/** Validates a config given as an object (e.g. built in code); errors name keys but no lines. */
export function configFromObject(raw: Raw, options: ParseConfigOptions = {}): TuneforgeConfig {
  const merged = applyOverrides(raw, options.overrides ?? emptyOverrides());
  return validate(merged, undefined, undefined, options.overrides?.flags ?? {});
}

/** A hub id such as `Qwen/Qwen2.5-0.5B` stays as is; `./x`, `../x`, `/x` or an existing folder is a path. */
function looksLikeLocalPath(p: string, dir: string): boolean {
  return p.startsWith(".") || isAbsolute(p) || existsSync(resolve(dir, p));
}

/** Makes the config's relative paths absolute against `dir` (the config file's folder). */
export function resolveConfigPaths(config: TuneforgeConfig, dir: string): TuneforgeConfig {
  const abs = (p: string) => resolve(dir, p);
  return {
    ...config,
    model: {
      ...config.model,
      name_or_path: looksLikeLocalPath(config.model.name_or_path, dir)
        ? abs(config.model.name_or_path)
        : config.model.name_or_path,
      tokenizer: config.model.tokenizer && abs(config.model.tokenizer),
    },
    data: {
      ...config.data,
      inputs: config.data.inputs.map((input) => ({ ...input, path: abs(input.path) })),
      output_dir: abs(config.data.output_dir),
      augment: {
        ...config.data.augment,
        synonyms: config.data.augment.synonyms && abs(config.data.augment.synonyms),
      },
    },
    training: { ...config.training, output_dir: abs(config.training.output_dir) },
  };
}

/**
 * Loads `tuneforge.yaml`: parse, apply overrides, validate, and resolve relative paths (inputs,
 * output folders, local model/tokenizer folders, synonym file) against the config file's folder.
 */
export function loadConfig(file: string, options: ParseConfigOptions = {}): LoadedConfig {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new TuneforgeError("config file not found", {
      file,
      hint: "run `tuneforge init --template translation` to create one, or pass --config <file>",
    });
  }
  const config = parseConfig(readFileSync(path, "utf8"), file, options);
  const dir = dirname(path);
  return { config: resolveConfigPaths(config, dir), file: path, dir };
}
