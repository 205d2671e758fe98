// Command-line overrides of any config key: `--lora-r 32`, `--lora_r 32`, `--num_train_epochs 2`,
// `--learning-rate=1e-4`, `--no-packing`, `--set training.seed=7`. Flag names are resolved against the
// schema (so a new key is overridable with no extra code) and values are parsed by the key's type.
import type { Command } from "commander";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { describeNode, leafPaths, schemaAt } from "./introspect.js";
import { nearest } from "./suggest.js";

export interface ConfigOverrides {
  /** The overridden values as a nested object, e.g. `{ lora: { r: 32 } }`. */
  values: Record<string, unknown>;
  /** Dotted key path -> the flag that set it (for error messages), e.g. `{ "lora.r": "--lora-r" }`. */
  flags: Record<string, string>;
}

export function emptyOverrides(): ConfigOverrides {
  return { values: {}, flags: {} };
}

interface FlagTable {
  /** `<section>_<key>` (the whole path joined with `_`) -> dotted path. */
  full: Map<string, string>;
  /** Any shorter tail of a path (`num_train_epochs`, `clean_urls`) -> every dotted path it could mean. */
  tails: Map<string, Set<string>>;
}

let table: FlagTable | undefined;

function flagTable(): FlagTable {
  if (table) return table;
  const full = new Map<string, string>();
  const tails = new Map<string, Set<string>>();
  for (const path of leafPaths()) {
    const dotted = path.join(".");
    full.set(path.join("_"), dotted);
    for (let i = 1; i < path.length; i++) {
      const tail = path.slice(i).join("_");
      if (!tails.has(tail)) tails.set(tail, new Set());
      tails.get(tail)!.add(dotted);
    }
  }
  table = { full, tails };
  return table;
}

/** Every flag spelling that names exactly one key (for suggestions and help). */
export function validFlagNames(): string[] {
  const { full, tails } = flagTable();
  return [...full.keys(), ...[...tails].filter(([, paths]) => paths.size === 1).map(([t]) => t)];
}

type Resolution = { path: string } | { error: string; suggestion?: string };

/** Resolves a flag name (without dashes, either spelling) to a dotted config key. */
export function resolveFlag(name: string): Resolution {
  const key = name.replace(/-/g, "_");
  const { full, tails } = flagTable();
  const exact = full.get(key);
  if (exact) return { path: exact };
  const candidates = tails.get(key);
  if (candidates?.size === 1) return { path: [...candidates][0] };
  if (candidates && candidates.size > 1) {
    const options = [...candidates].map((p) => `--${p.replace(/\./g, "_")}`);
    return {
      error: `is ambiguous: it could mean ${[...candidates].join(" or ")}; use ${options.join(" or ")}`,
    };
  }
  const suggestion = nearestInSection(key, full) ?? nearest(key, validFlagNames());
  return {
    error: "is not a tuneforge option" + (suggestion ? `; did you mean --${suggestion}?` : ""),
    suggestion: suggestion && `--${suggestion}`,
  };
}

/** `lora_rank` -> `lora_r`: a flag that starts with a section name is matched against that section's keys. */
function nearestInSection(key: string, full: Map<string, string>): string | undefined {
  const sections = new Set([...full.values()].map((p) => p.split(".")[0]));
  const section = [...sections].find((s) => key.startsWith(`${s}_`));
  if (!section) return undefined;
  const keys = [...full.keys()]
    .filter((k) => k.startsWith(`${section}_`))
    .map((k) => k.slice(section.length + 1));
  const match = nearest(key.slice(section.length + 1), keys);
  return match && `${section}_${match}`;
}

const TRUE_WORDS = new Set(["true", "yes", "on", "1"]);
const FALSE_WORDS = new Set(["false", "no", "off", "0"]);

/**
 * How a key takes true/false: "only" (`--packing` alone means true and a following word is read only if it is
 * a boolean word), "also" (true/false among other values, like `training.bf16: auto | bool`: `--bf16` alone
 * means true, `--bf16 auto` takes the word) or not at all. Either way `--no-<key>` means false.
 */
function booleanKind(dotted: string): "only" | "also" | undefined {
  const s = schemaAt(dotted.split("."));
  if (!s) return undefined;
  const n = describeNode(s);
  if (n.kind !== "leaf" || !n.scalars.has("boolean")) return undefined;
  return n.scalars.size === 1 && !n.values ? "only" : "also";
}

/**
 * Parses a command-line value by the key's type: numbers, booleans, null, comma-separated lists.
 * A value of the wrong type is passed on as a string so the schema reports it like a YAML error.
 */
export function parseOverrideValue(path: readonly string[], text: string): unknown {
  const s = schemaAt(path);
  if (!s) return text;
  const n = describeNode(s);
  if (n.kind === "array") {
    return text
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t.length > 0)
      .map((t) => parseScalar(n.element, t));
  }
  return parseScalar(s, text);
}

function parseScalar(schema: NonNullable<ReturnType<typeof schemaAt>>, text: string): unknown {
  const n = describeNode(schema);
  if (n.kind !== "leaf") return text;
  const word = text.trim().toLowerCase();
  if (n.nullable && word === "null") return null;
  if (n.values?.includes(text)) return text;
  // A key that takes numbers reads "1" as the number (training.gradient_checkpointing: 1 layer, not true).
  if (
    (n.scalars.has("number") || n.scalars.has("integer")) &&
    text.trim() !== "" &&
    Number.isFinite(Number(text))
  ) {
    return Number(text);
  }
  if (n.scalars.has("boolean")) {
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  return text;
}

function setIn(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const seg of path.slice(0, -1)) {
    const next = node[seg];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** Checks a `--set` path: it must name a key (or an entry of a name->value mapping), not a section. */
function checkSetPath(path: string[]): string | undefined {
  const s = schemaAt(path);
  if (!s) {
    // Find the deepest valid prefix to suggest a key at that level.
    let i = path.length - 1;
    while (i > 0 && !schemaAt(path.slice(0, i))) i--;
    const parent = schemaAt(path.slice(0, i));
    const node = parent && describeNode(parent);
    const keys = node?.kind === "object" ? Object.keys(node.keys) : [];
    const guess = nearest(path[i], keys);
    const prefix = path.slice(0, i).join(".");
    return `\`${path.join(".")}\` is not a config key${guess ? `; did you mean \`${prefix ? prefix + "." : ""}${guess}\`?` : ""}`;
  }
  const n = describeNode(s);
  if (n.kind === "object") {
    return `\`${path.join(".")}\` is a section; set one of its keys, e.g. \`${path.join(".")}.${Object.keys(n.keys)[0]}\``;
  }
  if (n.kind === "record") {
    return `\`${path.join(".")}\` is a mapping; set one entry, e.g. \`--set ${path.join(".")}.<name>=<value>\``;
  }
  return undefined;
}

/**
 * Turns argv-style options (the ones commander left unparsed) into config overrides.
 * Throws a ConfigError naming every flag that is unknown, ambiguous or missing its value.
 */
export function parseOverrides(args: readonly string[]): ConfigOverrides {
  const out = emptyOverrides();
  const issues: ConfigIssue[] = [];
  const set = (path: string[], text: string | boolean, flag: string) => {
    const value = typeof text === "boolean" ? text : parseOverrideValue(path, text);
    setIn(out.values, path, value);
    out.flags[path.join(".")] = flag;
  };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--") || arg === "--") {
      issues.push({ key: "", flag: arg, message: "unexpected argument (options start with --)" });
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const flag = `--${name}`;
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) return undefined;
      i++;
      return next;
    };

    if (name === "set") {
      const kv = takeValue();
      const sep = kv?.indexOf("=") ?? -1;
      if (kv === undefined || sep <= 0) {
        issues.push({ key: "", flag, message: "expects key=value, e.g. --set training.seed=7" });
        continue;
      }
      const path = kv.slice(0, sep).trim().split(".");
      const problem = checkSetPath(path);
      if (problem) issues.push({ key: path.join("."), flag: `--set ${kv}`, message: problem });
      else set(path, kv.slice(sep + 1), `--set ${kv}`);
      continue;
    }

    let resolved = resolveFlag(name);
    let negated = false;
    if ("error" in resolved && /^no[-_]/.test(name)) {
      const positive = resolveFlag(name.slice(3));
      if ("path" in positive && booleanKind(positive.path)) [resolved, negated] = [positive, true];
    }
    if ("error" in resolved) {
      issues.push({ key: "", flag, message: resolved.error, suggestion: resolved.suggestion });
      if (inline === undefined && args[i + 1] !== undefined && !args[i + 1].startsWith("--")) i++;
      continue;
    }
    const path = resolved.path.split(".");
    if (negated) {
      if (inline !== undefined) issues.push({ key: resolved.path, flag, message: "takes no value" });
      else set(path, false, flag);
      continue;
    }
    const kind = booleanKind(resolved.path);
    if (kind === "also") {
      set(path, takeValue() ?? true, flag); // `--bf16` alone is true
      continue;
    }
    if (kind === "only") {
      // `--packing` alone is true; `--packing false` / `--packing=no` also work.
      const next = inline ?? args[i + 1];
      const word = next?.toLowerCase();
      if (inline === undefined && (word === undefined || !(TRUE_WORDS.has(word) || FALSE_WORDS.has(word)))) {
        set(path, true, flag);
        continue;
      }
      if (inline === undefined) i++;
      set(path, next!, flag);
      inline = undefined;
      continue;
    }
    const problem = checkSetPath(path);
    if (problem) {
      issues.push({ key: resolved.path, flag, message: problem });
      continue;
    }
    const value = takeValue();
    if (value === undefined) {
      issues.push({ key: resolved.path, flag, message: "needs a value, e.g. " + `${flag} <value>` });
      continue;
    }
    set(path, value, flag);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

/** Deep-merges overrides into a raw (parsed YAML) config; override values replace, mappings merge. */
export function applyOverrides(
  raw: Record<string, unknown>,
  overrides: ConfigOverrides,
): Record<string, unknown> {
  const merge = (base: unknown, over: unknown): unknown => {
    if (
      typeof over !== "object" ||
      over === null ||
      Array.isArray(over) ||
      typeof base !== "object" ||
      base === null ||
      Array.isArray(base)
    ) {
      return over;
    }
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  };
  return merge(raw, overrides.values) as Record<string, unknown>;
}

const OVERRIDE_HELP = `
Config overrides:
  Any key of tuneforge.yaml can be overridden for this run, in either spelling:
    --lora-r 32  --lora_r 32  --num_train_epochs 2  --learning-rate 1e-4  --packing  --no-packing
    --set training.seed=7  --set data.system_prompts.technology="You translate IT texts."
  A flag is <section>_<key> (lora_r, data_template) or a key name found in only one section.
  Lists are comma-separated: --target_modules q_proj,v_proj`;

/**
 * Lets a commander command accept config overrides: adds `--config` and `--set`, keeps unknown `--flags`
 * for `overridesFromCommand` and documents the spellings in `--help`.
 */
export function acceptConfigOverrides(cmd: Command, defaultConfig = "tuneforge.yaml"): Command {
  return cmd
    .option("-c, --config <file>", "the tuneforge.yaml to use", defaultConfig)
    .option(
      "--set <key=value>",
      "override any config key (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText("after", OVERRIDE_HELP);
}

/** The overrides given to a command set up with `acceptConfigOverrides` (call inside its action). */
export function overridesFromCommand(cmd: Command): ConfigOverrides {
  const sets = (cmd.opts().set as string[] | undefined) ?? [];
  // commander lists the command's own operands (e.g. `inspect <file>`) first; the rest are ours.
  const leftovers = cmd.args.slice(cmd.registeredArguments.length);
  return parseOverrides([...sets.flatMap((s) => ["--set", s]), ...leftovers]);
}
