// Turns one JSON/JSONL object into a LoadedRow, recognising the row format by its keys.
import type { Example, LoadedRow, Message, Role, SourceRef, TokenizedRow } from "../types.js";
import { detectColumnPair, findColumn, KNOWN_COLUMN_PAIRS, type ColumnMapping } from "./columns.js";

export const ACCEPTED_ROW_FORMATS =
  `{"messages": [{"role", "content"}, ...]}, {"instruction", "input"?, "output"}, ` +
  `{"natural_language", "json_data"}, {"text"}, {"id"?, "text", "translation"}, {"input_ids", "labels"?}, ` +
  `or a column pair (${KNOWN_COLUMN_PAIRS.map(([s, t]) => `${s}/${t}`).join(", ")}) / the keys set in data.columns`;

const ROLES: readonly Role[] = ["system", "user", "assistant"];

export interface RowProblem {
  reason: string;
  hint?: string;
}

/** The LoadedRow for `value`, or why it cannot be used. */
export function interpretRow(
  value: unknown,
  domain: string,
  source: SourceRef,
  columns: ColumnMapping | undefined,
): LoadedRow | RowProblem {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      reason: `a row must be a JSON object, got ${describe(value)}`,
      hint: `write each row as ${ACCEPTED_ROW_FORMATS}`,
    };
  }
  const row = value as Record<string, unknown>;
  const base = { kind: "example" as const, domain, source };
  const id = idOf(row.id);

  if ("input_ids" in row) return tokenized(row, domain, source);
  if ("messages" in row) return chat(row.messages, base, id);

  if (columns) {
    const keys = Object.keys(row);
    const s = findColumn(keys, columns.source);
    const t = findColumn(keys, columns.target);
    if (s === -1 || t === -1) {
      const key = s === -1 ? "source" : "target";
      return {
        reason: `key ${JSON.stringify(columns[key])} (data.columns.${key}) is missing; keys found: ${keys.join(", ")}`,
        hint: `set data.columns.${key} to one of the keys found`,
      };
    }
    return pair(row[keys[s]], row[keys[t]], base, id, [keys[s], keys[t]]);
  }

  if ("instruction" in row && "output" in row) {
    const instruction = str(row.instruction, "instruction");
    const input = row.input === undefined ? "" : str(row.input, "input");
    const output = str(row.output, "output");
    for (const v of [instruction, input, output]) if (typeof v !== "string") return v;
    return withId(
      {
        ...base,
        instruction: instruction as string,
        messages: [
          { role: "user", content: input as string },
          { role: "assistant", content: output as string },
        ],
      },
      id,
    );
  }

  if ("natural_language" in row && "json_data" in row) {
    const nl = str(row.natural_language, "natural_language");
    if (typeof nl !== "string") return nl;
    let data = row.json_data;
    if (typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch {
        return { reason: `json_data is a string that is not valid JSON` };
      }
    }
    if (typeof data !== "object" || data === null) {
      return { reason: `json_data must be a JSON object, got ${describe(row.json_data)}` };
    }
    return withId(
      {
        ...base,
        messages: [
          { role: "user", content: nl },
          // Compact and in the original key order: exactly the string the model must learn to produce.
          { role: "assistant", content: JSON.stringify(data) },
        ],
      },
      id,
    );
  }

  const keys = Object.keys(row);
  const detected = detectColumnPair(keys);
  if (detected)
    return pair(row[keys[detected.source]], row[keys[detected.target]], base, id, [
      keys[detected.source],
      keys[detected.target],
    ]);

  if ("text" in row && keys.every((k) => k === "text" || k === "id")) {
    const text = str(row.text, "text");
    if (typeof text !== "string") return text;
    return withId({ ...base, messages: [], text }, id);
  }

  return {
    reason: `unrecognised row format; keys found: ${keys.length ? keys.join(", ") : "(none)"}`,
    hint: `rows must look like one of: ${ACCEPTED_ROW_FORMATS}; or set data.columns.source/target to the keys holding the prompt and answer`,
  };
}

function pair(
  sourceValue: unknown,
  targetValue: unknown,
  base: Omit<Example, "messages">,
  id: string | undefined,
  names: [string, string],
): Example | RowProblem {
  const source = str(sourceValue, names[0]);
  if (typeof source !== "string") return source;
  const target = str(targetValue, names[1]);
  if (typeof target !== "string") return target;
  return withId(
    {
      ...base,
      messages: [
        { role: "user", content: source },
        { role: "assistant", content: target },
      ],
    },
    id,
  );
}

function chat(
  messages: unknown,
  base: Omit<Example, "messages">,
  id: string | undefined,
): Example | RowProblem {
  if (!Array.isArray(messages) || messages.length === 0) {
    return { reason: `"messages" must be a non-empty array of {role, content}, got ${describe(messages)}` };
  }
  const out: Message[] = [];
  for (const [i, m] of messages.entries()) {
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      return { reason: `messages[${i}] must be an object {role, content}, got ${describe(m)}` };
    }
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== "string" || !ROLES.includes(role as Role)) {
      return {
        reason: `messages[${i}].role is ${JSON.stringify(role)}; expected one of ${ROLES.join(", ")}`,
        hint: `use the roles ${ROLES.join("/")} (map "human"/"gpt" or "tool" messages before loading)`,
      };
    }
    if (typeof content !== "string") {
      return { reason: `messages[${i}].content must be a string, got ${describe(content)}` };
    }
    out.push({ role: role as Role, content });
  }
  return withId({ ...base, messages: out }, id);
}

function tokenized(
  row: Record<string, unknown>,
  domain: string,
  source: SourceRef,
): TokenizedRow | RowProblem {
  const ids = row.input_ids;
  if (!Array.isArray(ids) || ids.length === 0) {
    return { reason: `input_ids must be a non-empty array of token ids, got ${describe(ids)}` };
  }
  const badId = ids.findIndex((t) => !Number.isSafeInteger(t) || (t as number) < 0);
  if (badId !== -1)
    return { reason: `input_ids[${badId}] is ${JSON.stringify(ids[badId])}; token ids are integers >= 0` };
  const out: TokenizedRow = { kind: "tokenized", domain, source, input_ids: ids as number[] };
  if (row.labels !== undefined && row.labels !== null) {
    const labels = row.labels;
    if (!Array.isArray(labels) || labels.length !== ids.length) {
      return {
        reason: `labels must be an array as long as input_ids (${ids.length}), got ${Array.isArray(labels) ? `length ${labels.length}` : describe(labels)}`,
      };
    }
    const badLabel = labels.findIndex((t) => !Number.isSafeInteger(t) || ((t as number) < 0 && t !== -100));
    if (badLabel !== -1) {
      return {
        reason: `labels[${badLabel}] is ${JSON.stringify(labels[badLabel])}; labels are token ids >= 0 or -100 (masked)`,
      };
    }
    out.labels = labels as number[];
  }
  return out;
}

/** A text field: strings as they are, numbers/booleans as written, null/absent as "" (cleaning drops empties). */
function str(value: unknown, name: string): string | RowProblem {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return { reason: `"${name}" must be a string, got ${describe(value)}` };
}

function idOf(value: unknown): string | undefined {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
}

function withId(example: Example, id: string | undefined): Example {
  return id === undefined ? example : { ...example, id };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value) ?? String(value);
  return `${typeof value} ${text.length > 40 ? text.slice(0, 40) + "…" : text}`;
}

export function isProblem(r: LoadedRow | RowProblem): r is RowProblem {
  return "reason" in r;
}
