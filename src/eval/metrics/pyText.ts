// String helpers that behave like Python's str methods. sacreBLEU splits, strips and slices with Python
// semantics, and JS differs in the details: JS `\s` lacks \x1c-\x1f and \x85 but has \ufeff, and JS strings
// index UTF-16 code units where Python indexes code points. Matching sacreBLEU to the last digit needs these.

// Python's str.isspace() set (Unicode White_Space plus the \x1c-\x1f separators).
const PY_WS =
  "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, "u");
const PY_WS_TRAILING = new RegExp(`[${PY_WS}]+$`, "u");
const PY_WS_LEADING = new RegExp(`^[${PY_WS}]+`, "u");

/** Python `s.split()`: split on runs of whitespace, no empty strings. */
export function pySplit(s: string): string[] {
  return s.split(PY_WS_RUN).filter((t) => t.length > 0);
}

/** Python `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(PY_WS_TRAILING, "");
}

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return pyRstrip(s).replace(PY_WS_LEADING, "");
}

/** The string as Python sees it: one entry per code point (so an emoji is one character, not two). */
export function codePoints(s: string): string[] {
  return Array.from(s);
}
