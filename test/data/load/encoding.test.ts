import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRows } from "../../../src/data/load/index.js";
import { findInvalidUtf8, readUtf8Chunks } from "../../../src/data/load/utf8.js";
import { TuneforgeError } from "../../../src/errors.js";
import type { Example } from "../../../src/data/types.js";
import { collect, tempDir, writeTemp } from "./helpers.js";

// "مرحبا" in Windows-1256, the usual encoding of Arabic CSVs saved by Excel on Windows.
const CP1256_MARHABA = Buffer.from([0xe3, 0xd1, 0xcd, 0xc8, 0xc7]);

test("invalid UTF-8 (a Windows-1256 CSV) names the file, line and byte offset, with an iconv hint", async () => {
  const dir = tempDir();
  const head = Buffer.from("english,arabic\nhello,أهلا\nhi,");
  const file = writeTemp(dir, "win 1256.csv", Buffer.concat([head, CP1256_MARHABA, Buffer.from("\n")]));
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.equal(e.location.file, file);
    assert.equal(e.location.line, 3);
    assert.match(
      e.message,
      new RegExp(`invalid UTF-8 at byte offset ${head.length} \\(bytes e3 d1 cd c8\\)`),
    );
    assert.match(
      e.hint ?? "",
      /iconv -f WINDOWS-1256 -t UTF-8 'win 1256\.csv'|iconv -f WINDOWS-1256 -t UTF-8 '.*win 1256\.csv'/,
    );
    return true;
  });
});

test("invalid UTF-8 far into a file (past the first read chunks) reports the exact offset and line", async () => {
  const dir = tempDir();
  const lines: string[] = [];
  for (let i = 0; i < 5000; i++) lines.push(`{"text": "ligne ${i} — café ✓ ${"x".repeat(40)}"}`);
  const good = Buffer.from(lines.join("\n") + "\n");
  assert.ok(good.length > 3 * 64 * 1024, `test file too small: ${good.length}`);
  const file = writeTemp(
    dir,
    "late.jsonl",
    Buffer.concat([good, Buffer.from('{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]),
  );
  let loaded = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of loadRows({ path: file })) loaded++;
    })(),
    (e: TuneforgeError) => {
      assert.equal(e.location.line, 5001);
      assert.match(e.message, new RegExp(`byte offset ${good.length + 13} `));
      return true;
    },
  );
  // Streaming: the valid rows before the bad byte were delivered first (at most the last chunk held back).
  assert.ok(loaded > 4000, `loaded ${loaded}`);
});

test("a file cut off inside a multi-byte character is reported at that character", async () => {
  const dir = tempDir();
  const text = Buffer.from('{"text": "مرحبا"}\n{"text": "ب');
  const file = writeTemp(dir, "cut.jsonl", text.subarray(0, text.length - 1));
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.equal(e.location.line, 2);
    assert.match(e.message, new RegExp(`byte offset ${text.length - 2} `));
    return true;
  });
});

test("UTF-16 files (with a BOM, or NUL bytes without one) are refused with a conversion hint", async () => {
  const dir = tempDir();
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("english,arabic\nhi,أهلا\n", "utf16le")]);
  const be = Buffer.from(le);
  be.swap16();
  const noBom = Buffer.from("english,arabic\nhi,أهلا\n", "utf16le");
  for (const [name, bytes, what] of [
    ["le.csv", le, /UTF-16 LE/],
    ["be.jsonl", be, /UTF-16 BE/],
    ["nobom.txt", noBom, /NUL bytes/],
  ] as const) {
    const file = writeTemp(dir, name, bytes);
    await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
      assert.ok(e instanceof TuneforgeError, String(e));
      assert.match(e.message, what);
      assert.match(e.hint ?? "", /iconv -f UTF-16 -t UTF-8/);
      return true;
    });
  }
});

test("invalid UTF-8 in a .txt document is refused too", async () => {
  const dir = tempDir();
  const file = writeTemp(dir, "doc.txt", Buffer.concat([Buffer.from("line one\nline two "), CP1256_MARHABA]));
  await assert.rejects(collect(loadRows({ path: file })), (e: TuneforgeError) => {
    assert.equal(e.location.line, 2);
    assert.match(e.message, /byte offset 18 /);
    return true;
  });
});

test("JSONL: multi-byte characters split by the read chunks decode exactly", async () => {
  const dir = tempDir();
  // 13 ASCII bytes then 3-byte characters: the 64 KiB boundary falls inside one of them.
  const long = "€".repeat(30000);
  const emoji = "👩🏽‍💻".repeat(20000); // 4-byte code points across the next boundaries
  const file = writeTemp(dir, "split.jsonl", `{"text": "x${long}"}\n{"text": "${emoji}"}\n`);
  const rows = (await collect(loadRows({ path: file }))) as Example[];
  assert.equal(rows[0].text, "x" + long);
  assert.equal(rows[1].text, emoji);
});

test("readUtf8Chunks yields the raw bytes unchanged and the text without the BOM", async () => {
  const dir = tempDir();
  const bytes = Buffer.from("\ufeffa,b\n€");
  const file = writeTemp(dir, "b.csv", bytes);
  const chunks = [];
  for await (const c of readUtf8Chunks(file)) chunks.push(c);
  assert.ok(Buffer.concat(chunks.map((c) => c.bytes)).equals(bytes));
  assert.equal(chunks.map((c) => c.text).join(""), "a,b\n€");
});

test("findInvalidUtf8 finds exactly the first ill-formed sequence", () => {
  const ok = Buffer.from("aé€😀");
  assert.equal(findInvalidUtf8(ok), -1);
  const at = (bytes: number[]) => findInvalidUtf8(Uint8Array.from(bytes));
  assert.equal(at([0x61, 0x80]), 1); // lone continuation byte
  assert.equal(at([0x61, 0xc0, 0xaf]), 1); // overlong "/"
  assert.equal(at([0xe0, 0x80, 0xaf]), 0); // overlong 3-byte
  assert.equal(at([0x61, 0xed, 0xa0, 0x80]), 1); // UTF-16 surrogate
  assert.equal(at([0xf4, 0x90, 0x80, 0x80]), 0); // above U+10FFFF
  assert.equal(at([0x61, 0x62, 0xe2, 0x82]), 2); // cut off
  assert.equal(at([0xc3, 0xa9, 0xff]), 2);
});
