// Cleaning: text fixes applied to every message, the instruction and `text` of one example at a time, each
// switchable on its own. Rows that end up empty or too long are dropped WITH a reason, never silently.
import type { Example, Message } from "./types.js";

/** Why a row did not reach the prepared files; the stats count each reason. */
export type DropReason =
  | "empty" // a message/target/text is empty after cleaning
  | "too_short" // fewer characters than `minChars` (but not empty)
  | "too_long" // more characters than `maxChars`
  | "duplicate" // the exact same example was seen before (in the dedup scope)
  | "near_duplicate" // the same example up to case, punctuation, whitespace and Arabic diacritics
  | "completion_truncated"; // tokenized: the answer was cut away entirely by max_seq_length

export interface CleanOptions {
  /** Unicode NFC, so composed and decomposed spellings of a letter are one string. */
  nfc: boolean;
  stripUrls: boolean;
  stripEmails: boolean;
  stripEmojis: boolean;
  /** Removes C0/C1 control characters and the BOM; keeps \n and \t; turns \r\n and \r into \n. */
  controlChars: boolean;
  /** Collapses runs of spaces/tabs to one space, trims every line and the text, runs of newlines to one. */
  whitespace: boolean;
  /** Removes Arabic harakat, Quranic marks and tatweel. Off by default: the diacritics are data. */
  arabicDiacritics: boolean;
  /** Drops rows with an empty message, target or text after cleaning. */
  dropEmpty: boolean;
  /** Drops rows whose smallest field has fewer characters than this (1 = only empty ones). */
  minChars: number;
  /** Drops rows with more characters than this in total (all fields, UTF-16 units); null = no limit. */
  maxChars: number | null;
}

export const DEFAULT_CLEAN_OPTIONS: Readonly<CleanOptions> = Object.freeze({
  nfc: true,
  stripUrls: false,
  stripEmails: false,
  stripEmojis: false,
  controlChars: true,
  whitespace: true,
  arabicDiacritics: false,
  dropEmpty: true,
  minChars: 1,
  maxChars: null,
});

export type CleanResult = { ok: true; example: Example } | { ok: false; reason: DropReason };

// Trailing punctuation is usually the sentence's, not the URL's ("see https://x.org.").
const URL_RE = /\b(?:(?:https?|ftp):\/\/|www\.)[^\s<>"'`]+/giu;
const URL_TAIL_RE = /[.,;:!?)\]}'"»]+$/u;
const EMAIL_RE = /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/gu;
// Emoji as displayed: emoji-presentation characters and text-default pictographs followed by VS16 (❤️), with
// their skin-tone modifiers, ZWJ sequences and tag sequences; keycaps (1️⃣); flags are regional-indicator pairs
// (Emoji_Presentation). Text-style symbols such as © ® ™ are kept: they are not emoji in running text.
const EMOJI_RE = new RegExp(
  String.raw`[0-9#*]\uFE0F?\u20E3|(?:\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F)` +
    String.raw`(?:\p{Emoji_Modifier}|\uFE0F|[\u{E0020}-\u{E007F}]|\u200D\p{Extended_Pictographic})*`,
  "gu",
);
// C0 and C1 controls except \t and \n, plus the BOM / zero-width no-break space.
const CONTROL_RE = /[^\P{Cc}\t\n]|\uFEFF/gu;
// Harakat (fathatan .. sukun, and the rarer marks after it) without U+0654/U+0655: hamza above/below is part of
// the letter (NFC composes alef + U+0654 into أ). Plus superscript alef, Quranic annotation marks and tatweel.
export const ARABIC_DIACRITICS_RE =
  /[\u0610-\u061A\u064B-\u0653\u0656-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E4\u06E7\u06E8\u06EA-\u06ED\u0640]/gu;

export function stripArabicDiacritics(text: string): string {
  return text.replace(ARABIC_DIACRITICS_RE, "");
}

export function stripUrls(text: string): string {
  return text.replace(URL_RE, (url) => URL_TAIL_RE.exec(url)?.[0] ?? "");
}

export function stripEmails(text: string): string {
  return text.replace(EMAIL_RE, "");
}

export function stripEmojis(text: string): string {
  return text.replace(EMOJI_RE, "");
}

export function removeControlChars(text: string): string {
  return text.replace(/\r\n?/g, "\n").replace(CONTROL_RE, "");
}

export function normalizeWhitespace(text: string): string {
  return text
    .replace(/[\u2028\u2029]/g, "\n")
    .replace(/[^\S\n]+/gu, " ") // any whitespace but \n (tabs, NBSP, thin spaces...) -> one space
    .replace(/ ?\n[\s]*/g, "\n") // trim around line breaks and squeeze runs of (blank) lines
    .trim();
}

/** Applies the enabled text steps in a fixed order (URLs before emails: a URL can contain an "@"). */
export function cleanText(text: string, opts: Partial<CleanOptions> = {}): string {
  const o = { ...DEFAULT_CLEAN_OPTIONS, ...opts };
  let t = text;
  if (o.nfc) t = t.normalize("NFC");
  if (o.controlChars) t = removeControlChars(t);
  if (o.stripUrls) t = stripUrls(t);
  if (o.stripEmails) t = stripEmails(t);
  if (o.stripEmojis) t = stripEmojis(t);
  if (o.arabicDiacritics) t = stripArabicDiacritics(t);
  if (o.whitespace) t = normalizeWhitespace(t);
  return t;
}

/** Every text field of an example, for length checks and hashing. */
export function exampleFields(ex: Example): string[] {
  const out: string[] = [];
  if (ex.instruction !== undefined) out.push(ex.instruction);
  for (const m of ex.messages) out.push(m.content);
  if (ex.text !== undefined) out.push(ex.text);
  return out;
}

/**
 * Cleans one example and decides whether it is kept. The input is not modified.
 * Empty fields: an empty system message or instruction is removed (nothing is lost); an empty assistant
 * message (a target) or empty `text` drops the row; an empty user message drops it too unless the row has an
 * instruction (an Alpaca row without input: the instruction is the prompt).
 */
export function cleanExample(ex: Example, opts: Partial<CleanOptions> = {}): CleanResult {
  const o = { ...DEFAULT_CLEAN_OPTIONS, ...opts };
  const out: Example = { ...ex };
  const instruction = ex.instruction === undefined ? undefined : cleanText(ex.instruction, o);
  if (instruction) out.instruction = instruction;
  else delete out.instruction;

  const messages: Message[] = [];
  let emptyField = false;
  for (const m of ex.messages) {
    const content = cleanText(m.content, o);
    if (content === "") {
      if (m.role === "system") continue;
      if (m.role === "assistant" || !instruction) emptyField = true;
    }
    messages.push({ ...m, content });
  }
  out.messages = messages;
  if (ex.text !== undefined) {
    out.text = cleanText(ex.text, o);
    if (out.text === "" && messages.length === 0) emptyField = true;
    if (out.text === "") delete out.text;
  }
  if (messages.length === 0 && out.text === undefined) emptyField = true;

  if (o.dropEmpty && emptyField) return { ok: false, reason: "empty" };
  if (o.minChars > 1) {
    // The fields that make the pair: every non-system message and the text (instruction/system are optional).
    const checked = [...messages.filter((m) => m.role !== "system").map((m) => m.content)];
    if (out.text !== undefined) checked.push(out.text);
    if (checked.some((c) => c !== "" && c.length < o.minChars)) return { ok: false, reason: "too_short" };
  }
  if (o.maxChars !== null) {
    let total = 0;
    for (const f of exampleFields(out)) total += f.length;
    if (total > o.maxChars) return { ok: false, reason: "too_long" };
  }
  return { ok: true, example: out };
}
