// The `13a` tokenizer of sacreBLEU (equivalent to mteval-v13a.pl, the WMT standard), ported rule for rule
// so BLEU scores match sacreBLEU exactly. `none` leaves the text as it is (already tokenized input).
import { pySplit } from "./pyText.js";

export type BleuTokenizer = "13a" | "none";

// Applied in order, each over the whole line, like sacreBLEU's TokenizerRegexp. The `u` flag makes `[^0-9]`
// take a whole code point, as Python does.
const POST_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  // Split off symbols and ASCII punctuation except . , - and ' (ranges { to ~, [ to `, space to &, ( to +,
  // : to @, and /).
  [/([\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f])/gu, " $1 "],
  // Period and comma unless preceded by a digit...
  [/([^0-9])([.,])/gu, "$1 $2 "],
  // ...and unless followed by a digit, so 3.5 and 1,200 stay whole.
  [/([.,])([^0-9])/gu, " $1 $2"],
  // A dash after a digit (ranges like 1990-2000).
  [/([0-9])(-)/gu, "$1 $2 "],
];

/** sacreBLEU's `re` tokenizer: the language-dependent rules of 13a, then single spaces between tokens. */
function tokenizeRegexp(line: string): string {
  for (const [re, repl] of POST_RULES) line = line.replace(re, repl);
  return pySplit(line).join(" ");
}

/** Tokenize one segment exactly as sacreBLEU's `Tokenizer13a`. */
export function tokenize13a(line: string): string {
  line = line.replaceAll("<skipped>", "");
  line = line.replaceAll("-\n", "");
  line = line.replaceAll("\n", " ");
  if (line.includes("&")) {
    // mteval unescapes the few XML entities that survive in WMT data; &amp; goes after &quot; on purpose
    // (so "&amp;quot;" becomes "&quot;", not a quote), as in the original.
    line = line.replaceAll("&quot;", '"');
    line = line.replaceAll("&amp;", "&");
    line = line.replaceAll("&lt;", "<");
    line = line.replaceAll("&gt;", ">");
  }
  return tokenizeRegexp(` ${line} `);
}

export function tokenizeForBleu(line: string, tokenizer: BleuTokenizer): string {
  return tokenizer === "13a" ? tokenize13a(line) : line;
}
