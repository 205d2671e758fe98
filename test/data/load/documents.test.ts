import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chunkText,
  extractDocumentText,
  loadRows,
  splitByCharacters,
  splitByTokens,
} from "../../../src/data/load/index.js";
import { TuneforgeError } from "../../../src/errors.js";
import type { Example } from "../../../src/data/types.js";
import { collect, minimalDocx, minimalPdf, tempDir, writeTemp } from "./helpers.js";

const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(" ");

test("TXT: a short document is one {text} example at line 1, byte-exact", async () => {
  const dir = tempDir();
  const text = "Bonjour à tous — مرحبا بكم 👋\nSecond line.";
  const file = writeTemp(dir, "notes v2.txt", text);
  const rows = await collect(loadRows({ path: file }));
  assert.deepEqual(rows, [
    { kind: "example", domain: "notes_v2", source: { file, line: 1 }, messages: [], text },
  ]);
});

test("TXT: a long document becomes overlapping chunks, each with the line where it starts", async () => {
  const dir = tempDir();
  const paragraphs = Array.from({ length: 6 }, (_, p) => words(12, `p${p}w`));
  const text = paragraphs.join("\n\n");
  const file = writeTemp(dir, "long.txt", text);
  const rows = (await collect(loadRows({ path: file, chunking: { size: 100, overlap: 20 } }))) as Example[];
  assert.ok(rows.length >= 6, `only ${rows.length} chunks`);
  for (const r of rows) {
    assert.ok(r.text!.length <= 100, `chunk of ${r.text!.length} chars`);
    assert.deepEqual(r.messages, []);
    // The chunk is really in the document, at (or after the start of) the line it claims.
    const lines = text.split("\n");
    assert.ok(
      lines
        .slice(r.source.line - 1)
        .join("\n")
        .includes(r.text!),
      `chunk not at line ${r.source.line}`,
    );
    assert.ok(lines[r.source.line - 1].includes(r.text!.split("\n")[0]), `line ${r.source.line}`);
  }
  // Paragraph p starts on line 2p+1; each paragraph's first word is in a chunk starting on that line.
  for (let p = 0; p < 6; p++) {
    assert.ok(
      rows.some((r) => r.source.line === 2 * p + 1 && r.text!.startsWith(`p${p}w0`)),
      `paragraph ${p}`,
    );
  }
  // Every word survives chunking.
  for (const w of text.split(/\s+/))
    assert.ok(
      rows.some((r) => r.text!.split(/\s+/).includes(w)),
      w,
    );
});

test("chunking by characters keeps chunks within size and shares text between neighbours", async () => {
  const text = words(200, "w");
  const chunks = await splitByCharacters(text, 120, 40);
  assert.ok(chunks.length > 5);
  for (const c of chunks) assert.ok(c.length <= 120);
  for (let i = 1; i < chunks.length; i++) {
    const prevWords = new Set(chunks[i - 1].split(" "));
    assert.ok(
      chunks[i].split(" ").some((w) => prevWords.has(w)),
      `chunk ${i} shares no words with chunk ${i - 1}`,
    );
  }
  assert.equal(
    chunks
      .join(" ")
      .split(" ")
      .filter((w, i, all) => all.indexOf(w) === i).length,
    200,
  );
});

test("chunking by tokens uses the caller's tokenizer for sizes", async () => {
  // A toy tokenizer: one token per word. A real one is plugged in the same way.
  const countTokens = (t: string) => t.split(/\s+/).filter(Boolean).length;
  const text = words(100, "t");
  const chunks = await splitByTokens(text, 10, 3, countTokens);
  for (const c of chunks) assert.ok(countTokens(c) <= 10, `${countTokens(c)} tokens`);
  assert.ok(chunks.length >= 10 && chunks.length <= 15, `${chunks.length} chunks`);
  assert.ok(
    chunks.some((c) => countTokens(c) === 10),
    "chunks are filled up to the size",
  );
  // Shared tokens between neighbours: the overlap.
  const a = chunks[0].split(" ");
  const b = chunks[1].split(" ");
  assert.ok(b.includes(a[a.length - 1]), "no overlap between the first two chunks");
  // chunkText routes to the token splitter when countTokens is given.
  const viaOptions = await chunkText(text, { size: 10, overlap: 3, countTokens });
  assert.deepEqual(
    viaOptions.map((c) => c.text),
    chunks,
  );
});

test("bad chunk sizes are config errors", async () => {
  await assert.rejects(
    chunkText("abc", { size: 0 }),
    (e: TuneforgeError) => e.location.key === "data.chunking.size",
  );
  await assert.rejects(
    chunkText("abc", { size: 10, overlap: 10 }),
    (e: TuneforgeError) => e.location.key === "data.chunking.overlap",
  );
});

test("PDF: the text layer is extracted and loaded", async () => {
  const dir = tempDir();
  const file = writeTemp(
    dir,
    "Annual Report.pdf",
    minimalPdf(["Revenue grew (strongly) in 2024.", "Costs fell."]),
  );
  assert.equal(await extractDocumentText(file, "pdf"), "Revenue grew (strongly) in 2024.\nCosts fell.");
  const rows = await collect(loadRows({ path: file }));
  assert.deepEqual(rows, [
    {
      kind: "example",
      domain: "annual_report",
      source: { file, line: 1 },
      messages: [],
      text: "Revenue grew (strongly) in 2024.\nCosts fell.",
    },
  ]);
});

test("PDF: no text layer means a scan that needs OCR; a broken PDF is a clear error", async () => {
  const dir = tempDir();
  const scanned = writeTemp(dir, "scan.pdf", minimalPdf([]));
  await assert.rejects(collect(loadRows({ path: scanned })), (e: TuneforgeError) => {
    assert.ok(e instanceof TuneforgeError, String(e));
    assert.equal(e.location.file, scanned);
    assert.match(e.message, /no text layer.*probably scanned/);
    assert.match(e.hint ?? "", /OCR/);
    return true;
  });
  const broken = writeTemp(dir, "broken.pdf", "%PDF-1.4\nthis is not a pdf");
  await assert.rejects(
    collect(loadRows({ path: broken })),
    (e: TuneforgeError) => e instanceof TuneforgeError && /cannot read the PDF/.test(e.message),
  );
});

test("DOCX: paragraphs are extracted (Arabic and accents intact) and loaded", async () => {
  const dir = tempDir();
  const file = writeTemp(
    dir,
    "Policy.docx",
    minimalDocx(["Première règle: <respect> & soin.", "القاعدة الثانية"]),
  );
  const text = "Première règle: <respect> & soin.\n\nالقاعدة الثانية";
  assert.equal((await extractDocumentText(file, "docx")).trim(), text);
  const rows = (await collect(loadRows({ path: file }))) as Example[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].text, text);
  assert.equal(rows[0].domain, "policy");
  const broken = writeTemp(dir, "broken.docx", "not a zip");
  await assert.rejects(
    collect(loadRows({ path: broken })),
    (e: TuneforgeError) => e instanceof TuneforgeError && /cannot read the DOCX/.test(e.message),
  );
});

test("an empty or whitespace-only document is an empty-file error", async () => {
  const dir = tempDir();
  for (const [name, content] of [
    ["empty.txt", ""],
    ["blank.txt", "  \n\n \n"],
    ["empty.docx", minimalDocx([])],
  ] as const) {
    const file = writeTemp(dir, name, content);
    await assert.rejects(
      collect(loadRows({ path: file })),
      (e: TuneforgeError) => e.location.file === file && /holds no rows/.test(e.message),
    );
  }
});
