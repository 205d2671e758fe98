import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describeSource, detectFormat, loadRows, slugifyDomain } from "../../../src/data/load/index.js";
import { TuneforgeError } from "../../../src/errors.js";
import type { Example } from "../../../src/data/types.js";
import { collect, tempDir, writeTemp } from "./helpers.js";

test("domain defaults to the file or directory name, slugified", () => {
  assert.equal(slugifyDomain("data/economic v1.csv"), "economic_v1");
  assert.equal(slugifyDomain("Education_Research.csv"), "education_research");
  assert.equal(slugifyDomain("/x/Purchase-Orders (2024).JSONL"), "purchase_orders_2024");
  assert.equal(slugifyDomain("train/train/"), "train");
  assert.equal(slugifyDomain("قاموس.csv"), "قاموس");
  assert.equal(slugifyDomain("---.csv"), "data");
});

test("formats are detected by extension, case-insensitively; others are refused with a fix", () => {
  const expected = {
    "a.csv": "csv",
    "b.TSV": "tsv",
    "c.json": "json",
    "d.jsonl": "jsonl",
    "e.txt": "txt",
    "f.PDF": "pdf",
    "g.docx": "docx",
  };
  for (const [name, format] of Object.entries(expected)) assert.equal(detectFormat(name), format);
  assert.throws(
    () => detectFormat("sheet.xlsx"),
    (e: TuneforgeError) => {
      assert.ok(e instanceof TuneforgeError, String(e));
      assert.match(e.message, /sheet\.xlsx: unsupported file extension \.xlsx/);
      assert.match(e.hint ?? "", /\.csv .*\.docx.*data\.format/);
      return true;
    },
  );
});

test("a file with spaces in its name loads, with its domain and file path on every row", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "economic v1.csv", "source,target\na,b\n");
  const [row] = (await collect(loadRows({ path: file }))) as Example[];
  assert.equal(row.domain, "economic_v1");
  assert.equal(row.source.file, file);
  // An explicit domain wins.
  const [named] = (await collect(loadRows({ path: file, domain: "econ" }))) as Example[];
  assert.equal(named.domain, "econ");
});

test("a directory loads its data files as one dataset, sorted by name, skipping other entries", async () => {
  const root = tempDir();
  const dir = join(root, "train");
  mkdirSync(dir);
  mkdirSync(join(dir, "nested"));
  writeTemp(dir, "b.json", JSON.stringify([{ text: "b1" }, { text: "b2" }]));
  writeTemp(dir, "a.jsonl", '{"text": "a1"}\n');
  writeTemp(dir, "c 2.csv", "text,translation\nc1,t\n");
  writeTemp(dir, "README.md", "# not data");
  writeTemp(dir, ".DS_Store", "junk");
  const desc = describeSource(dir);
  assert.equal(desc.kind, "directory");
  assert.equal(desc.domain, "train");
  assert.deepEqual(
    desc.files.map((f) => [f.path, f.format]),
    [
      [join(dir, "a.jsonl"), "jsonl"],
      [join(dir, "b.json"), "json"],
      [join(dir, "c 2.csv"), "csv"],
    ],
  );
  assert.deepEqual(desc.ignored, [join(dir, "README.md"), join(dir, "nested")]);
  const rows = (await collect(loadRows({ path: dir }))) as Example[];
  assert.deepEqual(
    rows.map((r) => [r.text ?? r.messages[0].content, r.domain, r.source.file, r.source.line]),
    [
      ["a1", "train", join(dir, "a.jsonl"), 1],
      ["b1", "train", join(dir, "b.json"), 1],
      ["b2", "train", join(dir, "b.json"), 2],
      ["c1", "train", join(dir, "c 2.csv"), 2],
    ],
  );
});

test("a format override reads every file of a directory as that format", async () => {
  const dir = tempDir();
  writeTemp(dir, "rows.txt", '{"text": "really jsonl"}\n');
  const rows = (await collect(loadRows({ path: dir, format: "jsonl" }))) as Example[];
  assert.equal(rows[0].text, "really jsonl");
});

test("a directory with no data files, a missing path, and an empty data file in a directory are errors", async () => {
  const dir = tempDir();
  writeTemp(dir, "notes.md", "x");
  await assert.rejects(collect(loadRows({ path: dir })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.match(e.message, /holds no data files/);
    assert.match(e.hint ?? "", /found only: notes\.md/);
    return true;
  });
  await assert.rejects(collect(loadRows({ path: join(dir, "nope.csv") })), /data path does not exist/);
  writeTemp(dir, "a.jsonl", '{"text": "x"}\n');
  writeTemp(dir, "b.jsonl", "\n\n");
  await assert.rejects(
    collect(loadRows({ path: dir })),
    (e: TuneforgeError) => e.location.file === join(dir, "b.jsonl"),
  );
});

test("an unsupported extension given directly is an error naming the file", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "data.xlsx", "PK");
  await assert.rejects(
    collect(loadRows({ path: file })),
    (e: TuneforgeError) => e.location.file === file && /\.xlsx/.test(e.message),
  );
});

test("bad data.columns config is refused with the config key", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "a.csv", "source,target\na,b\n");
  await assert.rejects(
    collect(loadRows({ path: file, columns: { from: "a", to: "b" } as never })),
    (e: TuneforgeError) => e.location.key === "data.columns",
  );
  await assert.rejects(
    collect(loadRows({ path: file, columns: { source: "", target: "b" } })),
    (e: TuneforgeError) => e.location.key === "data.columns.source",
  );
});
