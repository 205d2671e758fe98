import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRows, detectDelimiter, type LoadReject } from "../../../src/data/load/index.js";
import { TuneforgeError } from "../../../src/errors.js";
import type { Example, LoadedRow } from "../../../src/data/types.js";
import { collect, tempDir, writeTemp } from "./helpers.js";

const pairs = (rows: LoadedRow[]) =>
  rows.map((r) => {
    const e = r as Example;
    return [e.messages[0].content, e.messages[1].content, e.source.line];
  });

test("CSV: header pair english/arabic detected case-insensitively; rows become user/assistant messages", async () => {
  const dir = tempDir();
  const file = writeTemp(
    dir,
    "Education_Research.csv",
    "id,English,ARABIC\n1,Hello,مرحبا\n2,Good morning,صباح الخير\n",
  );
  const rows = await collect(loadRows({ path: file }));
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], {
    kind: "example",
    domain: "education_research",
    source: { file, line: 2 },
    messages: [
      { role: "user", content: "Hello" },
      { role: "assistant", content: "مرحبا" },
    ],
  });
  assert.deepEqual(pairs(rows)[1], ["Good morning", "صباح الخير", 3]);
});

test("CSV: every known header pair is detected", async () => {
  const dir = tempDir();
  const known = [
    ["en", "ar"],
    ["Source", "Target"],
    ["input", "output"],
    ["Question", "Answer"],
    ["src", "tgt"],
    ["text", "translation"],
    ["prompt", "response"],
  ];
  for (const [s, t] of known) {
    // The pair's columns are not first, and an unrelated column sits between them.
    const file = writeTemp(dir, `${s}.csv`, `notes,${t},extra,${s}\nn,T1,x,S1\n`);
    const rows = await collect(loadRows({ path: file }));
    assert.deepEqual(pairs(rows), [["S1", "T1", 2]], `${s}/${t}`);
  }
});

test("CSV: configured columns in all three spellings win over detection", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "d.csv", "english,arabic,Q,A\ne,a,the q,the a\n");
  for (const columns of [
    { source: "Q", target: "A" },
    { input: "q", output: "a" }, // case-insensitive
    { question: " Q ", answer: "A" },
  ]) {
    const rows = await collect(loadRows({ path: file, columns }));
    assert.deepEqual(pairs(rows), [["the q", "the a", 2]]);
  }
});

test("CSV: BOM + CRLF + quoted multi-line fields keep exact content and start lines", async () => {
  const dir = tempDir();
  const text =
    "\ufeffsource,target\r\n" +
    'one,"first\r\nsecond line"\r\n' +
    '"a ""quoted"" word, with comma",x\r\n' +
    "\r\n" + // blank line: skipped, but counted
    '"multi\r\n\r\nparagraph",y\r\n' +
    "last,z";
  const file = writeTemp(dir, "bom crlf.csv", text);
  const rows = await collect(loadRows({ path: file }));
  assert.deepEqual(pairs(rows), [
    ["one", "first\r\nsecond line", 2],
    ['a "quoted" word, with comma', "x", 4],
    ["multi\r\n\r\nparagraph", "y", 6],
    ["last", "z", 9],
  ]);
  // The BOM does not leak into the first header name (else "source" would not be detected at all).
  assert.equal((rows[0] as Example).domain, "bom_crlf");
});

test("CSV: semicolon, tab and pipe delimiters are detected; commas inside fields do not fool it", async () => {
  const dir = tempDir();
  const cases: [string, string][] = [
    [";", 'english;arabic\n"Hello, world";مرحبا بالعالم\nYes, sir;نعم\n'],
    ["\t", "english\tarabic\nHello, world\tمرحبا بالعالم\nYes, sir\tنعم\n"],
    ["|", "english|arabic\nHello, world|مرحبا بالعالم\nYes, sir|نعم\n"],
  ];
  for (const [delimiter, text] of cases) {
    assert.equal(detectDelimiter(text), delimiter);
    const rows = await collect(loadRows({ path: writeTemp(dir, "x.csv", text) }));
    assert.deepEqual(pairs(rows), [
      ["Hello, world", "مرحبا بالعالم", 2],
      ["Yes, sir", "نعم", 3],
    ]);
  }
  assert.equal(detectDelimiter('a,b\n"x;y;z",1\n'), ",");
});

test("TSV: always tab-delimited, even when fields contain commas and semicolons", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "t.tsv", "source\ttarget\na, b; c\td; e, f\n");
  assert.deepEqual(pairs(await collect(loadRows({ path: file }))), [["a, b; c", "d; e, f", 2]]);
});

test("CSV: Arabic, accents (NFC and NFD) and emoji survive byte-exactly, also across read chunks", async () => {
  const dir = tempDir();
  const samples = [
    "مرحبًا، كيف حالك؟",
    "café naïve Ærøskøbing",
    "cafe\u0301 (decomposed)",
    "👩🏽‍💻 🇲🇦 ❤️",
    "ﷺ ‎mixed‏ direction",
  ];
  // A 3-byte character straddles the 64 KiB read boundary: 17 ASCII bytes before, then "€" repeated.
  const long = "€".repeat(30000);
  let text = "xy,source,target\n" + long + ",a,b\n";
  for (const s of samples) text += `r,"${s}","${s} ✓"\n`;
  const file = writeTemp(dir, "utf8.csv", text);
  const rows = (await collect(loadRows({ path: file }))) as Example[];
  assert.equal(rows.length, samples.length + 1);
  samples.forEach((s, i) => {
    assert.ok(Buffer.from(rows[i + 1].messages[0].content).equals(Buffer.from(s)), s);
    assert.ok(Buffer.from(rows[i + 1].messages[1].content).equals(Buffer.from(s + " ✓")), s);
  });
});

test("CSV: empty values are loaded as they are (cleaning drops them, not the loader)", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "e.csv", "source,target\n,only target\nonly source,\n");
  assert.deepEqual(pairs(await collect(loadRows({ path: file }))), [
    ["", "only target", 2],
    ["only source", "", 3],
  ]);
});

test("CSV: missing or misnamed columns name the file, the columns found and the config key", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "m.csv", "Englsh,Arabic\nx,y\n");
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.match(e.message, /m\.csv:1/);
    assert.match(e.message, /"Englsh", "Arabic"/);
    assert.match(e.message, /data\.columns\.source/);
    return true;
  });
  await assert.rejects(
    collect(loadRows({ path: file, columns: { source: "English", target: "Arabic" } })),
    (e: Error) => {
      assert.match(e.message, /"English" \(data\.columns\.source\) is not in the header/);
      assert.match(e.message, /"Englsh", "Arabic"/);
      return true;
    },
  );
  await assert.rejects(
    collect(loadRows({ path: file, columns: { source: "Englsh", target: "Arbic" } })),
    /data\.columns\.target/,
  );
  await assert.rejects(
    collect(loadRows({ path: file, columns: { source: "Englsh" } as never })),
    (e: TuneforgeError) => e.location.key === "data.columns.target",
  );
});

test("CSV: a row with the wrong number of fields names file and line; skipInvalid rejects it and goes on", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "bad.csv", 'source,target\na,b\n"multi\nline",c\nthree,fields,here\nd,e\n');
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.equal(e.location.line, 5);
    assert.match(e.message, /bad\.csv:5: expected 2 fields \(as in the header\), found 3/);
    return true;
  });
  const rejects: LoadReject[] = [];
  const rows = await collect(loadRows({ path: file, skipInvalid: true, onReject: (r) => rejects.push(r) }));
  assert.deepEqual(pairs(rows), [
    ["a", "b", 2],
    ["multi\nline", "c", 3],
    ["d", "e", 6],
  ]);
  assert.deepEqual(rejects, [
    {
      source: { file, line: 5 },
      reason: "expected 2 fields (as in the header), found 3",
      raw: "three,fields,here",
    },
  ]);
});

test("CSV: malformed quoting is an error naming the line where the record starts", async () => {
  const dir = tempDir();
  const closing = writeTemp(dir, "q1.csv", 'source,target\r\nok,"fine\r\nstill"\r\nx,"bad"q\r\n');
  await assert.rejects(collect(loadRows({ path: closing })), (e: TuneforgeError) => {
    assert.equal(e.location.line, 4);
    assert.match(e.message, /text follows a closing quote/);
    assert.match(e.hint ?? "", /two quotes/);
    return true;
  });
  const unclosed = writeTemp(dir, "q2.csv", 'source,target\nok,fine\nx,"never closed\ny,z\n');
  await assert.rejects(collect(loadRows({ path: unclosed })), (e: TuneforgeError) => {
    assert.equal(e.location.line, 3);
    assert.match(e.message, /never closed/);
    return true;
  });
});

test("CSV: a header without data rows, or an empty file, is an error", async () => {
  const dir = tempDir();
  for (const [name, text] of [
    ["header.csv", "source,target\n"],
    ["zero.csv", ""],
  ]) {
    const file = writeTemp(dir, name, text);
    await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
      assert.ok(e instanceof TuneforgeError, String(e));
      assert.equal(e.location.file, file);
      assert.match(e.message, /holds no rows/);
      return true;
    });
  }
});

test("CSV: if every row is rejected the load still fails, after reporting each reject", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "all.csv", "source,target\na,b,c\nd\n");
  const rejects: LoadReject[] = [];
  await assert.rejects(
    collect(loadRows({ path: file, skipInvalid: true, onReject: (r) => rejects.push(r) })),
    /all 2 rows were rejected/,
  );
  assert.deepEqual(
    rejects.map((r) => [r.source.line, r.raw]),
    [
      [2, "a,b,c"],
      [3, "d"],
    ],
  );
});

test("skipInvalid without onReject is refused (rejected rows must not vanish)", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "a.csv", "source,target\na,b\n");
  await assert.rejects(collect(loadRows({ path: file, skipInvalid: true })), /onReject/);
});
