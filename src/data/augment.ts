// Augmentation of training rows: seeded variants that change only the prompt side (user messages and the
// instruction). Assistant messages — the targets — and system messages are never touched, and plain-text rows
// (`text`, no messages) get no variants: all of their text is target.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { TuneforgeError } from "../errors.js";
import { exactKey } from "./dedup.js";
import { seed32 } from "./hash.js";
import { createRng, type Rng } from "./random.js";
import type { Example } from "./types.js";

export type SynonymDictionary = Record<string, string[]>;

export interface AugmentOptions {
  /** Variants to make per row (0 = off). Fewer come out when a row allows fewer distinct variants. */
  factor: number;
  seed: number;
  /** `{word: [synonyms]}`: whole-word, case-insensitive matches replaced case-preservingly. */
  synonyms: SynonymDictionary;
  /**
   * Equivalent phrasings of ONE task instruction. A row whose instruction is one of them (ignoring case and
   * spacing) gets another one; other instructions are left alone (an Alpaca row's own instruction is its task).
   */
  instructionVariants: string[];
  /** The instruction rows without one are rendered with (`data.instruction`), so they can be varied too. */
  defaultInstruction?: string;
  /** "If A, B." <-> "B if A." around a subordinating conjunction (English), where meaning is kept. */
  clauseOrder: boolean;
  /** Final period added/removed, "..." <-> "…", straight <-> curly double quotes. */
  punctuation: boolean;
  /** 12000 <-> 12,000 <-> 12 000 (not decimals, ids, or years 1900-2100). */
  numbers: boolean;
  /** All lower case, or the first letter's case flipped. */
  case: boolean;
  /** A doubled space, or a trailing space. */
  whitespace: boolean;
}

export const DEFAULT_AUGMENT_OPTIONS: Readonly<AugmentOptions> = Object.freeze({
  factor: 0,
  seed: 42,
  synonyms: {},
  instructionVariants: [],
  clauseOrder: false,
  punctuation: false,
  numbers: false,
  case: false,
  whitespace: false,
});

/** Attempts per requested variant before giving up on a row that allows few distinct variants. */
const ATTEMPTS_PER_VARIANT = 8;

type TextOp = (text: string, rng: Rng) => string;

/**
 * Makes the variants of one row at a time. Deterministic: a row's variants depend only on the seed and the
 * row itself (not on row order), through a per-row `createRng` stream.
 */
export class Augmenter {
  private readonly opts: AugmentOptions;
  private readonly textOps: TextOp[] = [];
  private readonly instructionGroup: string[];

  constructor(opts: Partial<AugmentOptions>) {
    this.opts = { ...DEFAULT_AUGMENT_OPTIONS, ...opts };
    const o = this.opts;
    if (!Number.isInteger(o.factor) || o.factor < 0) {
      throw new TuneforgeError(`augmentation factor must be a whole number >= 0, got ${o.factor}`, {
        key: "data.augment.factor",
        hint: "set data.augment.factor to 0 (off), 1, 2, ...",
      });
    }
    const synonyms = validateSynonyms(o.synonyms, "data.augment.synonyms");
    if (Object.keys(synonyms).length > 0) this.textOps.push(synonymOp(synonyms));
    if (o.clauseOrder) this.textOps.push(swapClauses);
    if (o.punctuation) this.textOps.push(varyPunctuation);
    if (o.numbers) this.textOps.push(varyNumbers);
    if (o.case) this.textOps.push(varyCase);
    if (o.whitespace) this.textOps.push(varyWhitespace);
    this.instructionGroup = [
      ...new Set([...o.instructionVariants, ...(o.defaultInstruction ? [o.defaultInstruction] : [])]),
    ];
    if (o.factor > 0 && this.textOps.length === 0 && this.instructionGroup.length < 2) {
      throw new TuneforgeError(`augmentation factor is ${o.factor} but no augmentation is switched on`, {
        key: "data.augment",
        hint: "enable at least one of data.augment.case/punctuation/whitespace/numbers/clause_order, give a synonyms file, or list two or more instruction_variants — or set factor: 0",
      });
    }
  }

  /** Up to `factor` distinct variants of `ex`, none identical to `ex`; [] for rows with nothing to vary. */
  variants(ex: Example): Example[] {
    const { factor, seed } = this.opts;
    if (factor === 0 || ex.messages.length === 0) return [];
    const original = exactKey(ex);
    const rng = createRng(seed32(`${seed}\u0000augment\u0000${original}`));
    const seen = new Set([original]);
    const out: Example[] = [];
    for (let attempt = 0; attempt < factor * ATTEMPTS_PER_VARIANT && out.length < factor; attempt++) {
      const variant = this.vary(ex, rng);
      const key = exactKey(variant);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(variant);
    }
    return out;
  }

  private vary(ex: Example, rng: Rng): Example {
    // A random non-empty subset of the enabled operations (the instruction swap counts as one).
    const ops: (TextOp | "instruction")[] = [...this.textOps];
    if (this.instructionGroup.length >= 2) ops.push("instruction");
    const chosen = rng.shuffle(ops).slice(0, 1 + rng.int(ops.length));
    const variant: Example = {
      ...ex,
      messages: ex.messages.map((m) => ({ ...m })),
      augmentedFrom: ex.source.line,
    };
    for (const op of chosen) {
      if (op === "instruction") {
        const swapped = this.swapInstruction(variant.instruction ?? this.opts.defaultInstruction, rng);
        if (swapped !== undefined) variant.instruction = swapped;
        continue;
      }
      for (const m of variant.messages) if (m.role === "user") m.content = op(m.content, rng);
    }
    return variant;
  }

  private swapInstruction(current: string | undefined, rng: Rng): string | undefined {
    if (current === undefined) return undefined;
    const key = foldInstruction(current);
    if (!this.instructionGroup.some((v) => foldInstruction(v) === key)) return undefined;
    const others = this.instructionGroup.filter((v) => foldInstruction(v) !== key);
    return others.length > 0 ? rng.pick(others) : undefined;
  }
}

function foldInstruction(s: string): string {
  return s.trim().replace(/\s+/g, " ").toLowerCase();
}

/** Checks a synonym dictionary's shape; `where` names the file or config key in the error. */
export function validateSynonyms(value: unknown, where: string): SynonymDictionary {
  const bad = (what: string) =>
    new TuneforgeError(`the synonym dictionary ${what}`, {
      ...(where.startsWith("data.") ? { key: where } : { file: where }),
      hint: 'write it as {"word": ["synonym", "other synonym"], ...} (JSON or YAML)',
    });
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("must be an object");
  const out: SynonymDictionary = {};
  for (const [word, syns] of Object.entries(value)) {
    if (word.trim() === "") throw bad("has an empty word as a key");
    if (!Array.isArray(syns) || syns.some((s) => typeof s !== "string" || s.trim() === "")) {
      throw bad(`entry "${word}" must be a list of non-empty strings`);
    }
    out[word] = syns as string[];
  }
  return out;
}

/** Reads a JSON or YAML synonym dictionary file (`data.augment.synonyms`). */
export function loadSynonyms(path: string): SynonymDictionary {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8")); // YAML is a superset of JSON
  } catch (e) {
    throw new TuneforgeError(`cannot read the synonym dictionary: ${(e as Error).message}`, {
      file: path,
      key: "data.augment.synonyms",
      hint: "check the path and that the file is valid JSON or YAML",
      cause: e,
    });
  }
  return validateSynonyms(raw, path);
}

// ---- text operations: each returns its input unchanged when it does not apply ----

const WORD_CHAR = String.raw`[\p{L}\p{N}\p{M}_]`;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Gives `replacement` the casing pattern of `original`: ALL CAPS, Capitalised, or as written. */
export function matchCase(original: string, replacement: string): string {
  const letters = original.replace(/[^\p{L}]/gu, "");
  if (letters.length > 1 && letters === letters.toUpperCase() && letters !== letters.toLowerCase()) {
    return replacement.toUpperCase();
  }
  const first = letters.charAt(0);
  if (first && first === first.toUpperCase() && first !== first.toLowerCase()) {
    return replacement.charAt(0).toUpperCase() + replacement.slice(1);
  }
  return replacement;
}

function synonymOp(dict: SynonymDictionary): TextOp {
  const lookup = new Map<string, string[]>();
  for (const [w, syns] of Object.entries(dict)) {
    const key = w.toLowerCase();
    lookup.set(key, [...(lookup.get(key) ?? []), ...syns]);
  }
  // Longest first, so "ice cream" wins over "ice".
  const words = [...lookup.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const re = new RegExp(`(?<!${WORD_CHAR})(?:${words.join("|")})(?!${WORD_CHAR})`, "giu");
  return (text, rng) => {
    const hits = [...text.matchAll(re)];
    if (hits.length === 0) return text;
    // Each hit replaced with probability 1/2, at least one.
    const replace = hits.map(() => rng.next() < 0.5);
    if (!replace.includes(true)) replace[rng.int(hits.length)] = true;
    let out = "";
    let at = 0;
    hits.forEach((h, i) => {
      if (!replace[i]) return;
      const choices = (lookup.get(h[0].toLowerCase()) ?? []).filter(
        (s) => s.toLowerCase() !== h[0].toLowerCase(),
      );
      if (choices.length === 0) return;
      out += text.slice(at, h.index) + matchCase(h[0], rng.pick(choices));
      at = h.index + h[0].length;
    });
    return out + text.slice(at);
  };
}

const SUBORDINATORS = new Set([
  "if",
  "when",
  "whenever",
  "because",
  "although",
  "though",
  "while",
  "since",
  "unless",
  "after",
  "before",
  "once",
]);
// Words that only start with a capital because they start the sentence (safe to lower-case when moved).
const PLAIN_STARTERS = new Set(
  "we you they he she it the a an this that these those there my our your their his her its please".split(
    " ",
  ),
);
const NOT_A_MAIN_CLAUSE = new Set(["then", "and", "but", "or", "so", "which", "who"]);

function firstWord(s: string): string {
  return (/^[\p{L}']+/u.exec(s)?.[0] ?? "").toLowerCase();
}
function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
function wordCount(s: string): number {
  return s.split(/\s+/).filter(Boolean).length;
}

/** "If it rains, we stay home" <-> "We stay home if it rains" / "We stay, because X" -> "Because X, we stay". */
export const swapClauses: TextOp = (text) =>
  text.replace(/[^.!?؟\n]+/gu, (sentence) => {
    const m = /^(\s*)(.*?)(\s*)$/su.exec(sentence);
    if (!m) return sentence;
    const [, lead, core, trail] = m;
    const parts = core.split(", ");
    if (parts.length !== 2 || core.split(",").length !== 2) return sentence;
    const [a, b] = parts;
    if (wordCount(a) < 2 || wordCount(b) < 2) return sentence;
    if (SUBORDINATORS.has(firstWord(a)) && !NOT_A_MAIN_CLAUSE.has(firstWord(b))) {
      return `${lead}${upperFirst(b)} ${lowerFirst(a)}${trail}`;
    }
    if (SUBORDINATORS.has(firstWord(b)) && !SUBORDINATORS.has(firstWord(a))) {
      const main = PLAIN_STARTERS.has(firstWord(a)) ? lowerFirst(a) : a;
      return `${lead}${upperFirst(b)}, ${main}${trail}`;
    }
    return sentence;
  });

export const varyPunctuation: TextOp = (text, rng) => {
  const options: (() => string)[] = [];
  if (/[^.]\.$/u.test(text)) options.push(() => text.slice(0, -1));
  if (/[\p{L}\p{N}]$/u.test(text)) options.push(() => text + ".");
  if (text.includes("...")) options.push(() => text.replaceAll("...", "…"));
  if (text.includes("…")) options.push(() => text.replaceAll("…", "..."));
  if (/"[^"\n]+"/u.test(text)) options.push(() => text.replace(/"([^"\n]+)"/gu, "“$1”"));
  if (/“[^”\n]+”/u.test(text)) options.push(() => text.replace(/“([^”\n]+)”/gu, '"$1"'));
  return options.length > 0 ? rng.pick(options)() : text;
};

// A whole number: comma-grouped or plain with 4+ digits; not part of a word, id, decimal, time or version.
const NUMBER_RE = /(?<![\p{L}\p{N}_.,:/-])(\d{1,3}(?:,\d{3})+|\d{4,})(?![\p{L}\p{N}_]|[.,:/-]\d)/gu;
const NUMBER_FORMATS = ["plain", "comma", "space"] as const;

function groupDigits(digits: string, sep: string): string {
  return digits.replace(/\B(?=(\d{3})+$)/g, sep);
}

export const varyNumbers: TextOp = (text, rng) =>
  text.replace(NUMBER_RE, (n) => {
    const digits = n.replaceAll(",", "");
    if (digits.startsWith("0")) return n; // codes like 0042
    if (digits.length === 4 && +digits >= 1900 && +digits <= 2100 && !n.includes(",")) return n; // a year
    const current = n.includes(",") ? "comma" : "plain";
    const format = rng.pick(NUMBER_FORMATS.filter((f) => f !== current));
    return format === "plain" ? digits : groupDigits(digits, format === "comma" ? "," : " ");
  });

export const varyCase: TextOp = (text, rng) => {
  const lower = text.toLowerCase();
  const first = text.search(/\p{L}/u);
  const flipped =
    first < 0
      ? text
      : text.slice(0, first) +
        (text[first] === text[first].toUpperCase() ? text[first].toLowerCase() : text[first].toUpperCase()) +
        text.slice(first + 1);
  const options = [lower, flipped].filter((t) => t !== text);
  return options.length > 0 ? rng.pick(options) : text;
};

export const varyWhitespace: TextOp = (text, rng) => {
  const spaces: number[] = [];
  for (let i = text.indexOf(" "); i >= 0; i = text.indexOf(" ", i + 1)) spaces.push(i);
  if (spaces.length > 0 && rng.next() < 0.5) {
    const at = rng.pick(spaces);
    return text.slice(0, at) + " " + text.slice(at);
  }
  return text + " ";
};
