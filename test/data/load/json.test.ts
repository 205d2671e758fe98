import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRows, type LoadReject } from "../../../src/data/load/index.js";
import { JsonRowScanner } from "../../../src/data/load/json.js";
import { TuneforgeError } from "../../../src/errors.js";
import type { Example, LoadedRow } from "../../../src/data/types.js";
import { collect, tempDir, writeTemp } from "./helpers.js";

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

test("JSONL: every row format is recognised by its keys", async () => {
  const dir = tempDir();
  const file = writeTemp(
    dir,
    "mixed.jsonl",
    jsonl([
      {
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello" },
        ],
      },
      { instruction: "Translate to Arabic", input: "Thank you", output: "شكرا" },
      { instruction: "Say hi", output: "hi" },
      {
        natural_language: "Order 3 pens",
        json_data: { items: [{ sku: "pen", qty: 3 }], zeta: 1, alpha: "é" },
      },
      { text: "Plain language-model text." },
      { id: "seg-7", text: "واش نتا بخير؟", translation: "Are you well?" },
      { input_ids: [1, 2, 3], labels: [-100, 2, 3] },
      { input_ids: [5, 6] },
      { english: "Water", arabic: "ماء" },
      { Prompt: "2+2?", Response: "4" },
    ]),
  );
  const rows = await collect(loadRows({ path: file, domain: "ops" }));
  const src = (line: number) => ({ file, line });
  assert.deepEqual(rows, [
    {
      kind: "example",
      domain: "ops",
      source: src(1),
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello" },
      ],
    },
    {
      kind: "example",
      domain: "ops",
      source: src(2),
      instruction: "Translate to Arabic",
      messages: [
        { role: "user", content: "Thank you" },
        { role: "assistant", content: "شكرا" },
      ],
    },
    {
      kind: "example",
      domain: "ops",
      source: src(3),
      instruction: "Say hi",
      messages: [
        { role: "user", content: "" },
        { role: "assistant", content: "hi" },
      ],
    },
    {
      kind: "example",
      domain: "ops",
      source: src(4),
      messages: [
        { role: "user", content: "Order 3 pens" },
        { role: "assistant", content: '{"items":[{"sku":"pen","qty":3}],"zeta":1,"alpha":"é"}' },
      ],
    },
    { kind: "example", domain: "ops", source: src(5), messages: [], text: "Plain language-model text." },
    {
      kind: "example",
      domain: "ops",
      source: src(6),
      id: "seg-7",
      messages: [
        { role: "user", content: "واش نتا بخير؟" },
        { role: "assistant", content: "Are you well?" },
      ],
    },
    { kind: "tokenized", domain: "ops", source: src(7), input_ids: [1, 2, 3], labels: [-100, 2, 3] },
    { kind: "tokenized", domain: "ops", source: src(8), input_ids: [5, 6] },
    {
      kind: "example",
      domain: "ops",
      source: src(9),
      messages: [
        { role: "user", content: "Water" },
        { role: "assistant", content: "ماء" },
      ],
    },
    {
      kind: "example",
      domain: "ops",
      source: src(10),
      messages: [
        { role: "user", content: "2+2?" },
        { role: "assistant", content: "4" },
      ],
    },
  ]);
});

test("JSONL: blank lines are skipped but counted; CRLF and a BOM are handled; configured keys are used", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "c.jsonl", '\ufeff{"q": "a", "r": "b"}\r\n\r\n   \r\n{"q": "c", "r": "d"}');
  const rows = (await collect(
    loadRows({ path: file, columns: { question: "q", answer: "r" } }),
  )) as Example[];
  assert.deepEqual(
    rows.map((r) => [r.source.line, r.messages[0].content, r.messages[1].content]),
    [
      [1, "a", "b"],
      [4, "c", "d"],
    ],
  );
  // With columns configured, a row without those keys is an error naming the config key.
  const other = writeTemp(dir, "o.jsonl", '{"text": "x"}\n');
  await assert.rejects(
    collect(loadRows({ path: other, columns: { source: "q", target: "r" } })),
    (e: TuneforgeError) => {
      assert.match(e.message, /o\.jsonl:1: key "q" \(data\.columns\.source\) is missing; keys found: text/);
      return true;
    },
  );
});

test("JSONL: an invalid line names file:line and the parser's message; skipInvalid passes it to onReject", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "bad.jsonl", '{"text": "ok"}\n{"text": "broken\n{"text": "fine"}\n');
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.equal(e.location.line, 2);
    assert.match(e.message, /bad\.jsonl:2: invalid JSON: .*(Unterminated|JSON)/);
    return true;
  });
  const rejects: LoadReject[] = [];
  const rows = await collect(loadRows({ path: file, skipInvalid: true, onReject: (r) => rejects.push(r) }));
  assert.deepEqual(
    rows.map((r) => (r as Example).text),
    ["ok", "fine"],
  );
  assert.equal(rejects.length, 1);
  assert.deepEqual(rejects[0].source, { file, line: 2 });
  assert.equal(rejects[0].raw, '{"text": "broken');
  assert.match(rejects[0].reason, /^invalid JSON/);
});

test("JSONL: a pretty-printed JSON array in a .jsonl file gets a hint to rename it", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "arr.jsonl", '[\n  {"text": "x"}\n]\n');
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) =>
    /name the file \.json/.test(e.hint ?? ""),
  );
  // ...and the format override reads it as JSON.
  const rows = await collect(loadRows({ path: file, format: "json" }));
  assert.equal((rows[0] as Example).text, "x");
});

test("rows that are not valid for their format are rejected with a reason", async () => {
  const dir = tempDir();
  const bad: [unknown, RegExp][] = [
    [{ foo: 1, bar: 2 }, /unrecognised row format; keys found: foo, bar/],
    [{ text: "x", label: "spam" }, /keys found: text, label/],
    [
      { messages: [{ role: "human", content: "hi" }] },
      /messages\[0\]\.role is "human"; expected one of system, user, assistant/,
    ],
    [{ messages: [{ role: "user", content: null }] }, /messages\[0\]\.content must be a string/],
    [{ messages: [] }, /non-empty array/],
    [{ input_ids: [1, 2.5] }, /input_ids\[1\] is 2\.5/],
    [{ input_ids: [1, -3] }, /input_ids\[1\] is -3/],
    [{ input_ids: [1, 2], labels: [1] }, /labels must be an array as long as input_ids \(2\), got length 1/],
    [{ input_ids: [1, 2], labels: [1, -5] }, /labels\[1\] is -5/],
    [{ natural_language: "x", json_data: 5 }, /json_data must be a JSON object/],
    [{ english: { nested: true }, arabic: "x" }, /"english" must be a string, got an object/],
    [[1, 2], /a row must be a JSON object, got an array/],
  ];
  const file = writeTemp(dir, "bad.jsonl", jsonl(bad.map(([row]) => row)));
  const rejects: LoadReject[] = [];
  await assert.rejects(
    collect(loadRows({ path: file, skipInvalid: true, onReject: (r) => rejects.push(r) })),
    /all 12 rows/,
  );
  assert.equal(rejects.length, bad.length);
  bad.forEach(([row, reason], i) => {
    assert.match(rejects[i].reason, reason);
    assert.equal(rejects[i].source.line, i + 1);
    assert.deepEqual(JSON.parse(rejects[i].raw), row);
  });
  // Without skipInvalid the first bad row stops the load, listing the formats accepted.
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.match(e.message, /bad\.jsonl:1: unrecognised row format/);
    assert.match(e.hint ?? "", /"messages".*"instruction".*"natural_language".*"input_ids"/);
    return true;
  });
});

test("JSON: an array of rows; source.line is the index in the array", async () => {
  const dir = tempDir();
  const file = writeTemp(
    dir,
    "arr.json",
    JSON.stringify(
      [
        { english: "a]b,c", arabic: '"}{' },
        {
          messages: [
            { role: "user", content: "x" },
            { role: "assistant", content: "y" },
          ],
        },
      ],
      null,
      2,
    ),
  );
  const rows = (await collect(loadRows({ path: file }))) as Example[];
  assert.deepEqual(
    rows.map((r) => [r.source.line, r.messages.map((m) => m.content)]),
    [
      [1, ["a]b,c", '"}{']],
      [2, ["x", "y"]],
    ],
  );
});

test("JSON: the Darija shape {segments: [{id, text, translation}]} keeps ids; other top-level keys are ignored", async () => {
  const dir = tempDir();
  const doc = {
    name: "darija",
    langs: ["ary", "en"],
    empty: [],
    meta: { langs: ["ary", "en"], note: "[not rows]" },
    segments: [
      { id: "1", text: "لاباس عليك؟", translation: "Are you fine?" },
      { id: 2, text: "بزاف", translation: "a lot" },
    ],
    version: 3,
  };
  const file = writeTemp(dir, "Darija Segments.json", JSON.stringify(doc));
  const rows = (await collect(loadRows({ path: file }))) as Example[];
  assert.deepEqual(
    rows.map((r) => [r.domain, r.id, r.source.line, r.messages[0].content, r.messages[1].content]),
    [
      ["darija_segments", "1", 1, "لاباس عليك؟", "Are you fine?"],
      ["darija_segments", "2", 2, "بزاف", "a lot"],
    ],
  );
});

test("JSON scanner: elements split across arbitrary chunk boundaries come out whole, with escapes intact", () => {
  const doc = JSON.stringify(
    { a: 'x"[{', rows: [{ t: 'q\\"]},' }, [1, { u: "\n" }], "s", 7, null] },
    null,
    1,
  );
  const expected = [{ t: 'q\\"]},' }, [1, { u: "\n" }], "s", 7, null];
  for (const size of [1, 2, 3, 7, 1000]) {
    const scanner = new JsonRowScanner("f.json");
    const els = [];
    for (let i = 0; i < doc.length; i += size) els.push(...scanner.push(doc.slice(i, i + size)));
    scanner.end();
    assert.deepEqual(
      els.map((e) => JSON.parse(e.raw)),
      expected,
      `chunk size ${size}`,
    );
    assert.deepEqual(
      els.map((e) => e.index),
      [1, 2, 3, 4, 5],
    );
    assert.equal(scanner.rowsKey, "rows");
  }
});

test("JSON: structural errors name the file and line", async () => {
  const dir = tempDir();
  const cases: [string, RegExp, number?][] = [
    ['[\n {"text": "a"},\n {"text": "b"}\n', /ends before the JSON document does/],
    ['[\n {"text": "a"},\n]', /trailing comma/, 3],
    ['{"text": "a"}\n{"text": "b"}\n', /after the end of the JSON document/, 2],
    ['{"a": [{"x": 1}], "b": [{"y": 2}]}', /more than one array of objects \("a" and "b"\)/],
    ['{"a": [1], "b": ["x"]}', /no array of rows; keys found: a, b/],
    ['{"name": "x", "count": 2}', /no array of rows; keys found: name, count/],
    ['{"messages": [{"role": "user", "content": "x"}]}', /single chat conversation/],
    ["", /file is empty/],
    ["hello", /expected a JSON array/],
  ];
  for (const [i, [text, pattern, line]] of cases.entries()) {
    const file = writeTemp(dir, `s${i}.json`, text);
    await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
      assert.ok(e instanceof TuneforgeError, text);
      assert.match(e.message, pattern);
      assert.equal(e.location.file, file);
      if (line !== undefined) assert.equal(e.location.line, line, text);
      return true;
    });
  }
  // The hint for concatenated objects points at JSONL.
  await assert.rejects(collect(loadRows({ path: `${dir}/s2.json` })), (e: TuneforgeError) =>
    /\.jsonl/.test(e.hint ?? ""),
  );
});

test("JSON: a row with invalid JSON inside is rejected by index and the load goes on with skipInvalid", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "r.json", '[{"text": "a"},\n {"text": tru},\n {"text": "c"}]');
  const rejects: LoadReject[] = [];
  const rows = await collect(loadRows({ path: file, skipInvalid: true, onReject: (r) => rejects.push(r) }));
  assert.deepEqual(
    rows.map((r: LoadedRow) => [(r as Example).text, r.source.line]),
    [
      ["a", 1],
      ["c", 3],
    ],
  );
  assert.deepEqual(rejects[0].source, { file, line: 2 });
  assert.equal(rejects[0].raw, '{"text": tru}');
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.match(e.message, /r\.json:2: row 2: invalid JSON/); // text line 2 of the file
    return true;
  });
});

test("JSON: an empty rows array is an empty dataset error", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "e.json", '{"segments": []}');
  await assert.rejects(collect(loadRows({ path: file })), /holds no rows/);
});
