// JSON field F1 on hand-computed cases: extraction from model text, flattening, normalisation, micro-averaging.
import { test } from "node:test";
import assert from "node:assert/strict";
import { extractJsonObject, flattenJson } from "../../src/eval/metrics/jsonExtract.js";
import { corpusJsonF1, jsonFieldF1 } from "../../src/eval/metrics/jsonF1.js";
import { TuneforgeError } from "../../src/errors.js";

const near = (got: number, want: number, what = ""): void =>
  assert.ok(Math.abs(got - want) < 1e-12, `${what} got ${got}, want ${want}`);

const ORDER_REF = '{"customer": {"name": "Ana", "city": "Rabat"}, "total": 100}';
const ORDER_PRED =
  'Here is the order:\n```json\n{"customer": {"name": " Ana ", "city": "Casablanca"}, "total": 100.0, "note": "x"}\n```\nAnything else?';
const ITEMS_REF = '{"items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}';

test("extracts the first complete object from fenced output with prose around it", () => {
  assert.deepEqual(extractJsonObject(ORDER_PRED), {
    customer: { name: " Ana ", city: "Casablanca" },
    total: 100,
    note: "x",
  });
  // A `{` in prose that is not JSON is skipped.
  assert.deepEqual(extractJsonObject('Use the {name} format: {"a": 1} or {"b": 2}'), { a: 1 });
});

test("the brace matcher ignores braces and escaped quotes inside strings", () => {
  const text = 'Sure! {"text": "a } tricky { string \\" with } quote", "n": [1, {"m": 2}]} trailing }';
  assert.deepEqual(extractJsonObject(text), { text: 'a } tricky { string " with } quote', n: [1, { m: 2 }] });
});

test("malformed, truncated, array-only and empty outputs have no object", () => {
  assert.equal(extractJsonObject('{"a": 1, "b": '), undefined);
  assert.equal(extractJsonObject("{'a': 1}"), undefined);
  assert.equal(extractJsonObject("[1, 2]"), undefined);
  assert.equal(extractJsonObject(""), undefined);
});

test("flattens nested keys with dots and list items by index; odd keys are quoted", () => {
  const flat = flattenJson({
    a: { b: 1 },
    "a.b": 2,
    items: [{ p: 1.5 }, "x"],
    tags: [],
    meta: {},
    ok: true,
    z: null,
  });
  assert.deepEqual(
    [...flat.entries()].sort(),
    [
      ["a.b", "num:1"],
      ['["a.b"]', "num:2"],
      ["items[0].p", "num:1.5"],
      ["items[1]", "str:x"],
      ["meta", "{}"],
      ["ok", "bool:true"],
      ["tags", "[]"],
      ["z", "null"],
    ].sort(),
  );
});

test("nested object with a fenced prediction: P 2/4, R 2/3 (hand computed)", () => {
  // name matches after trim, total 100.0 == 100, city differs, note is extra.
  const r = jsonFieldF1(ORDER_PRED, ORDER_REF);
  assert.deepEqual([r.tp, r.predicted, r.expected, r.parsed], [2, 4, 3, true]);
  near(r.precision, 0.5);
  near(r.recall, 2 / 3);
  near(r.f1, 4 / 7);
});

test("list items match by index", () => {
  const swapped = jsonFieldF1('{"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}', ITEMS_REF);
  assert.equal(swapped.tp, 0);
  assert.equal(swapped.f1, 0);
  const partial = jsonFieldF1('{"items": [{"sku": "A", "qty": 2}]}', ITEMS_REF);
  assert.deepEqual([partial.tp, partial.predicted, partial.expected], [2, 2, 4]);
  near(partial.f1, 2 / 3);
});

test("numbers compare by value, never equal to strings; booleans and null as themselves", () => {
  assert.equal(jsonFieldF1('{"n": 1e2}', '{"n": 100}').tp, 1);
  assert.equal(jsonFieldF1('{"n": "100"}', '{"n": 100}').tp, 0);
  assert.equal(jsonFieldF1('{"b": "true"}', '{"b": true}').tp, 0);
  assert.equal(jsonFieldF1('{"b": true, "z": null}', '{"b": true, "z": null}').f1, 1);
  assert.equal(jsonFieldF1('{"z": 0}', '{"z": null}').tp, 0);
});

test("empty containers count as fields; two empty objects agree", () => {
  assert.equal(jsonFieldF1("{}", '{"tags": []}').f1, 0);
  assert.equal(jsonFieldF1('{"tags": []}', '{"tags": []}').f1, 1);
  assert.equal(jsonFieldF1("{}", "{}").f1, 1);
});

test("corpus: micro-averaged over examples, unparseable outputs reported and counted as misses", () => {
  const { score, examples } = corpusJsonF1(
    [ORDER_PRED, '{"a": 1, "b":', "", '{"items": [{"sku": "A", "qty": 2}]}'],
    [ORDER_REF, '{"a": 1, "b": 2}', '{"x": 1}', ITEMS_REF],
  );
  // tp 2+0+0+2, predicted 4+0+0+2, expected 3+2+1+4
  assert.deepEqual([score.tp, score.predicted, score.expected], [4, 6, 10]);
  near(score.precision, 4 / 6);
  near(score.recall, 0.4);
  near(score.f1, 0.5);
  assert.equal(score.examples, 4);
  assert.equal(score.unparseable, 2);
  assert.equal(score.unparseable_rate, 0.5);
  assert.deepEqual(
    examples.map((e) => e.parsed),
    [true, false, false, true],
  );
  assert.equal(examples[1].f1, 0);
});

test("several references: the best-matching one counts", () => {
  const { score } = corpusJsonF1(['{"a": 1}'], [['{"a": 2}'], ['{"a": 1}']]);
  assert.equal(score.f1, 1);
  assert.match(score.signature, /^nrefs:2\|/);
});

test("a reference without JSON is an error naming the file and line", () => {
  assert.throws(
    () => corpusJsonF1(['{"a": 1}', '{"a": 1}'], ['{"a": 1}', "not json"], { refNames: ["gold.jsonl"] }),
    (e: unknown) => {
      assert.ok(e instanceof TuneforgeError);
      assert.equal(e.location.file, "gold.jsonl");
      assert.equal(e.location.line, 2);
      assert.match(e.message, /segment 2 has no JSON object/);
      return true;
    },
  );
});
