// The bundled examples are what `tuneforge init` copies: they must parse and have the promised shape.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { examplesDir } from "../../src/config/init.js";
import { loadConfig } from "../../src/config/load.js";
import { generatePurchaseOrders } from "../../src/synth/purchaseOrders.js";

const EXAMPLES = examplesDir();
const ARABIC = /[\u0600-\u06FF]/;

test("every example config validates and names files that exist", () => {
  for (const name of readdirSync(EXAMPLES)) {
    const { config } = loadConfig(join(EXAMPLES, name, "tuneforge.yaml"));
    assert.ok(config.data.inputs.length > 0, name);
    for (const input of config.data.inputs) readFileSync(input.path); // throws if missing
  }
});

test("translation CSVs: english,arabic header, two fields per record, >= 30 rows, quoting cases", () => {
  const { config } = loadConfig(join(EXAMPLES, "translation", "tuneforge.yaml"));
  assert.deepEqual(
    config.data.inputs.map((i) => [i.path.split("/").pop(), i.domain]),
    [
      ["technology.csv", "technology"],
      ["economic v1.csv", "economic"],
      ["Education_Research.csv", "education"],
    ],
  );
  assert.deepEqual(Object.keys(config.data.system_prompts).sort(), ["economic", "education", "technology"]);
  let multiline = 0;
  let quoted = 0;
  let withComma = 0;
  for (const input of config.data.inputs) {
    const text = readFileSync(input.path, "utf8");
    const records: string[][] = parse(text, { relax_column_count: true });
    assert.deepEqual(records[0], ["english", "arabic"], input.path);
    const rows = records.slice(1);
    assert.ok(rows.length >= 30, `${input.path}: ${rows.length} rows`);
    for (const [i, row] of rows.entries()) {
      assert.equal(row.length, 2, `${input.path} record ${i + 1}`);
      assert.ok(row[0].trim().length > 0 && !ARABIC.test(row[0]), `${input.path} record ${i + 1}: english`);
      assert.ok(ARABIC.test(row[1]), `${input.path} record ${i + 1}: arabic`);
      if (row[0].includes("\n")) multiline++;
      if (row[0].includes('"')) quoted++;
      if (row[0].includes(",")) withComma++;
    }
  }
  assert.ok(multiline >= 1 && quoted >= 2 && withComma >= 2, `${multiline} ${quoted} ${withComma}`);
});

test("darija chat: >= 40 segments {id, text, translation}, in Arabic and Latin script with 3/7/9", () => {
  const { segments } = JSON.parse(readFileSync(join(EXAMPLES, "darija-chat", "messages.json"), "utf8")) as {
    segments: { id: string; text: string; translation: string }[];
  };
  assert.ok(segments.length >= 40);
  assert.equal(new Set(segments.map((s) => s.id)).size, segments.length, "ids are unique");
  for (const s of segments) {
    assert.deepEqual(Object.keys(s).sort(), ["id", "text", "translation"]);
    assert.ok(s.text.length > 0 && s.translation.length > 0);
    assert.ok(!ARABIC.test(s.translation), s.translation);
  }
  assert.ok(segments.filter((s) => ARABIC.test(s.text)).length >= 10);
  assert.ok(segments.filter((s) => /[a-z][379]|[379][a-z]/i.test(s.text)).length >= 10);
});

test("purchase orders: the committed JSONL is the generator's output", () => {
  const read = (name: string) =>
    readFileSync(join(EXAMPLES, "purchase-orders", name), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
  const train = read("orders.jsonl");
  assert.ok(train.length >= 40);
  const strip = (o: { natural_language: string; json_data: unknown }) => ({
    natural_language: o.natural_language,
    json_data: o.json_data,
  });
  assert.deepEqual(
    train,
    generatePurchaseOrders({ count: train.length, seed: 7, phrasings: "train" }).map(strip),
  );
  const heldout = read("orders_heldout.jsonl");
  assert.deepEqual(
    heldout,
    generatePurchaseOrders({ count: heldout.length, seed: 8, phrasings: "heldout" }).map(strip),
  );
});

test("documents: short plain-text files", () => {
  const files = readdirSync(join(EXAMPLES, "documents")).filter((f) => f.endsWith(".txt"));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const text = readFileSync(join(EXAMPLES, "documents", f), "utf8");
    assert.ok(text.length > 500 && text.length < 20_000, f);
  }
});
