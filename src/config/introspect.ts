// Reads the zod schema back as plain data (which keys exist where, what type a leaf takes) so error
// messages, key suggestions and command-line overrides all follow the one schema instead of a copy of it.
import type { z } from "zod";
import { configSchema } from "./schema.js";

type AnySchema = z.ZodType;
type Def = { type: string; [k: string]: unknown };

export type LeafScalar = "number" | "integer" | "boolean" | "string";

export type SchemaNode =
  | { kind: "object"; keys: Record<string, AnySchema> }
  | { kind: "record"; value: AnySchema }
  | { kind: "array"; element: AnySchema }
  | { kind: "leaf"; scalars: Set<LeafScalar>; values?: string[]; nullable: boolean };

function def(s: AnySchema): Def {
  return (s as unknown as { def: Def }).def;
}

/** Strips defaults, optionals, nullables and preprocess steps; reports whether null is accepted. */
function unwrap(schema: AnySchema): { inner: AnySchema; nullable: boolean } {
  let s = schema;
  let nullable = false;
  for (;;) {
    const d = def(s);
    if (d.type === "default" || d.type === "prefault" || d.type === "optional" || d.type === "readonly") {
      s = d.innerType as AnySchema;
    } else if (d.type === "nullable") {
      nullable = true;
      s = d.innerType as AnySchema;
    } else if (d.type === "pipe") {
      // z.preprocess(fn, schema) is a pipe from a transform into the real schema.
      s = d.out as AnySchema;
    } else {
      return { inner: s, nullable };
    }
  }
}

export function describeNode(schema: AnySchema): SchemaNode {
  const { inner, nullable } = unwrap(schema);
  const d = def(inner);
  switch (d.type) {
    case "object":
      return { kind: "object", keys: (inner as unknown as { shape: Record<string, AnySchema> }).shape };
    case "record":
      return { kind: "record", value: d.valueType as AnySchema };
    case "array":
      return { kind: "array", element: d.element as AnySchema };
    case "union": {
      const scalars = new Set<LeafScalar>();
      const values: string[] = [];
      let anyNullable = nullable;
      for (const option of d.options as AnySchema[]) {
        const n = describeNode(option);
        if (n.kind !== "leaf") continue;
        n.scalars.forEach((k) => scalars.add(k));
        if (n.values) values.push(...n.values);
        anyNullable ||= n.nullable;
      }
      return { kind: "leaf", scalars, values: values.length ? values : undefined, nullable: anyNullable };
    }
    case "enum":
      return {
        kind: "leaf",
        scalars: new Set(["string"]),
        values: (inner as unknown as { options: string[] }).options,
        nullable,
      };
    case "literal":
      return { kind: "leaf", scalars: new Set(), values: (d.values as unknown[]).map(String), nullable };
    case "number":
      return {
        kind: "leaf",
        scalars: new Set([(inner as unknown as { isInt: boolean }).isInt ? "integer" : "number"]),
        nullable,
      };
    case "boolean":
      return { kind: "leaf", scalars: new Set(["boolean"]), nullable };
    default:
      return { kind: "leaf", scalars: new Set(["string"]), nullable };
  }
}

/** The schema at a key path (numeric segments index into lists), or undefined if no such key exists. */
export function schemaAt(
  path: readonly (string | number)[],
  root: AnySchema = configSchema,
): AnySchema | undefined {
  let s: AnySchema | undefined = root;
  for (const seg of path) {
    if (!s) return undefined;
    const n = describeNode(s);
    if (n.kind === "object")
      s = typeof seg === "string" && Object.hasOwn(n.keys, seg) ? n.keys[seg] : undefined;
    else if (n.kind === "record") s = n.value;
    else if (n.kind === "array") s = typeof seg === "number" ? n.element : undefined;
    else return undefined;
  }
  return s;
}

/** "an integer", "one of cosine, linear, constant", "true or false", "a list of ...", for error messages. */
export function describeExpected(schema: AnySchema): string {
  const n = describeNode(schema);
  if (n.kind === "object") return `a mapping with keys ${Object.keys(n.keys).join(", ")}`;
  if (n.kind === "record") return `a mapping of names to ${describeExpected(n.value)}`;
  if (n.kind === "array") return `a list of ${describeExpected(n.element).replace(/^an? /, "")}s`;
  const parts: string[] = [];
  if (n.values) parts.push(`one of ${n.values.join(", ")}`);
  else if (n.scalars.has("string")) parts.push("a string");
  if (n.scalars.has("boolean")) parts.push("true or false");
  if (n.scalars.has("integer")) parts.push("an integer");
  if (n.scalars.has("number")) parts.push("a number");
  if (n.nullable) parts.push("null");
  return parts.join(" or ");
}

/** Every leaf key path of the config (records and lists count as leaves), e.g. ["data","clean","urls"]. */
export function leafPaths(root: AnySchema = configSchema, prefix: string[] = []): string[][] {
  const n = describeNode(root);
  if (n.kind !== "object") return [prefix];
  return Object.entries(n.keys).flatMap(([k, s]) => leafPaths(s, [...prefix, k]));
}

/** The valid keys of the mapping at `path` (empty when that is not a fixed-key mapping). */
export function keysAt(path: readonly (string | number)[]): string[] {
  const s = schemaAt(path);
  if (!s) return [];
  const n = describeNode(s);
  return n.kind === "object" ? Object.keys(n.keys) : [];
}
