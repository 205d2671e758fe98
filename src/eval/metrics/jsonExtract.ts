// Getting the JSON object out of a model's answer and turning it into comparable (key path, value) fields.
// Models wrap JSON in ```json fences or add a sentence before or after it, so we look for the first `{...}`
// span that parses, with a brace matcher that knows braces inside strings do not count.

export type JsonObject = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Index of the `}` closing the object that opens at `start`, or -1 when it never closes or its brackets do
 * not nest. Braces and brackets inside JSON strings (with their escapes) are skipped.
 */
export function matchObjectEnd(text: string, start: number): number {
  const closers: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{") closers.push("}");
    else if (ch === "[") closers.push("]");
    else if (ch === "}" || ch === "]") {
      if (closers.pop() !== ch) return -1;
      if (closers.length === 0) return i;
    }
  }
  return -1;
}

/**
 * The first complete JSON object in `text` (fences and surrounding prose ignored), or undefined when there is
 * none. A `{` whose span does not parse (prose like "{name}", a truncated object) is skipped.
 */
export function extractJsonObject(text: string): JsonObject | undefined {
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = matchObjectEnd(text, start);
    if (end === -1) continue;
    try {
      const value: unknown = JSON.parse(text.slice(start, end + 1));
      if (isObject(value)) return value;
    } catch {
      // Not JSON after all: try the next opening brace.
    }
  }
  return undefined;
}

// Keys that read unambiguously after a dot; any other key is written as ["quoted"].
const PLAIN_KEY = /^[\p{L}_$][\p{L}\p{N}_$-]*$/u;

function childPath(parent: string, key: string): string {
  if (PLAIN_KEY.test(key)) return parent === "" ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

/**
 * A leaf value in a form where equal means "the same answer": numbers by value (100 == 100.0 == 1e2, but not
 * the string "100"), strings trimmed, booleans and null as themselves. The type prefix keeps 1, "1" and true
 * apart.
 */
export function normaliseLeaf(v: unknown): string {
  if (typeof v === "number") return `num:${String(v)}`;
  if (typeof v === "string") return `str:${v.trim()}`;
  if (typeof v === "boolean") return `bool:${v}`;
  if (v === null) return "null";
  // Only reached for empty containers, which flattenJson keeps as leaves so that `[]` vs a missing key counts.
  return Array.isArray(v) ? "[]" : "{}";
}

/**
 * Flatten an object to `path -> normalised value`: nested keys joined with dots (`customer.name`), list items
 * by index (`items[0].price`), empty lists and objects below the root kept as leaves.
 */
export function flattenJson(obj: JsonObject): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (value: unknown, path: string): void => {
    if (Array.isArray(value) && value.length > 0) {
      value.forEach((item, i) => visit(item, `${path}[${i}]`));
    } else if (isObject(value) && Object.keys(value).length > 0) {
      for (const [k, v] of Object.entries(value)) visit(v, childPath(path, k));
    } else {
      out.set(path, normaliseLeaf(value));
    }
  };
  for (const [k, v] of Object.entries(obj)) visit(v, childPath("", k));
  return out;
}
