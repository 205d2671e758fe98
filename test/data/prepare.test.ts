import { test, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, existsSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromObject, resolveConfigPaths } from "../../src/config/load.js";
import { prepare } from "../../src/data/prepare.js";
import { Tokenizer } from "../../src/data/tokenizer.js";
import type { PreparedRow } from "../../src/data/types.js";

let tokenizer: Tokenizer;
before(async () => {
  tokenizer = await Tokenizer.fromModelDir();
});

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), "tf-prepare-"));
  const rows = ["english,arabic"];
  for (let i = 0; i < 60; i++)
    rows.push(`"Server ${i} restarted, then synced.",تمت إعادة تشغيل الخادم ${i} ثم المزامنة.`);
  rows.push(`"Server 1 restarted, then synced.",تمت إعادة تشغيل الخادم 1 ثم المزامنة.`); // exact duplicate
  rows.push(`"SERVER 2 restarted then synced",تمت إعادة تشغيل الخادم 2 ثم المزامنة.`); // normalised duplicate
  rows.push(`"   ",فارغ`); // empty source
  writeFileSync(join(dir, "tech data.csv"), rows.join("\n") + "\n");
  writeFileSync(
    join(dir, "orders.jsonl"),
    Array.from({ length: 20 }, (_, i) =>
      JSON.stringify({
        natural_language: `Quiero ${i + 1} sillas`,
        json_data: { cantidad: i + 1, producto: "silla" },
      }),
    ).join("\n") + "\n",
  );
  return dir;
}

function config(dir: string, extra: Record<string, unknown> = {}) {
  const raw = {
    data: {
      inputs: [{ path: "tech data.csv", domain: "technology" }, { path: "orders.jsonl" }],
      system_prompts: { technology: "Translate English to Arabic." },
      ...extra,
    },
    training: { max_seq_length: 128 },
  };
  return resolveConfigPaths(configFromObject(raw), dir);
}

function readRows(path: string): PreparedRow[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as PreparedRow);
}

test("prepares split, masked, tokenized files with stats and a manifest", async () => {
  const dir = workspace();
  const result = await prepare({ config: config(dir), tokenizer });
  assert.equal(result.upToDate, false);
  const out = join(dir, "data/prepared");
  const stats = JSON.parse(readFileSync(join(out, "stats.json"), "utf8"));
  assert.equal(stats.rows_in, 83);
  assert.equal(stats.dropped.duplicate, 1);
  assert.equal(stats.dropped.near_duplicate, 1);
  assert.equal(stats.dropped.empty, 1);
  assert.equal(stats.kept, 80);
  const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
  assert.equal(manifest.tokenizer.hash, tokenizer.hash);
  const total = manifest.files.reduce((n: number, f: { rows: number }) => n + f.rows, 0);
  assert.equal(total, 80);
  assert.ok(manifest.files.some((f: { file: string }) => f.file === "technology_train.jsonl"));
  assert.ok(manifest.files.some((f: { file: string }) => f.file.startsWith("orders_")));

  const rows = readRows(join(out, "technology_train.jsonl"));
  const row = rows[0];
  assert.equal(row.domain, "technology");
  assert.ok(row.source.file.endsWith("tech data.csv"));
  assert.ok(row.prompt.includes("Translate English to Arabic."));
  assert.ok(row.completion.includes("الخادم"));
  assert.equal(row.input_ids.length, row.labels.length);
  const firstLabel = row.labels.findIndex((l) => l !== -100);
  assert.deepEqual(tokenizer.decode(row.input_ids.slice(0, firstLabel)), row.prompt);
  assert.deepEqual(row.labels.slice(firstLabel), row.input_ids.slice(firstLabel));

  const order = readRows(
    join(out, manifest.files.find((f: { file: string }) => f.file.startsWith("orders_")).file),
  )[0];
  assert.match(order.completion, /\{"cantidad":\d+,"producto":"silla"\}/);
});

test("re-running on unchanged inputs does nothing; a changed input rebuilds", async () => {
  const dir = workspace();
  await prepare({ config: config(dir), tokenizer });
  const file = join(dir, "data/prepared/technology_train.jsonl");
  const before = statSync(file).mtimeMs;
  const again = await prepare({ config: config(dir), tokenizer });
  assert.equal(again.upToDate, true);
  assert.equal(statSync(file).mtimeMs, before);
  const csv = join(dir, "tech data.csv");
  writeFileSync(csv, readFileSync(csv, "utf8") + `"New row here.",صف جديد هنا.\n`);
  utimesSync(csv, new Date(), new Date(Date.now() + 5000));
  const rebuilt = await prepare({ config: config(dir), tokenizer });
  assert.equal(rebuilt.upToDate, false);
  assert.equal(rebuilt.stats.rows_in, 84);
});

test("the split is the same across runs and packing keeps boundaries", async () => {
  const a = workspace();
  const b = workspace();
  await prepare({ config: config(a), tokenizer });
  await prepare({ config: config(b), tokenizer });
  const read = (d: string) => readFileSync(join(d, "data/prepared/technology_test.jsonl"), "utf8");
  assert.equal(read(a).replaceAll(a, ""), read(b).replaceAll(b, ""));

  const c = workspace();
  const packed = await prepare({ config: config(c, { packing: true }), tokenizer });
  const rows = readRows(join(c, "data/prepared/technology_train.jsonl"));
  assert.ok(rows.length < packed.stats.domains.technology.splits.train!.rows);
  for (const r of rows) {
    assert.ok(r.input_ids.length <= 128);
    assert.equal(r.boundaries![0], 0);
    assert.equal(r.boundaries!.length, r.sources!.length);
  }
});

test("bad rows stop the run naming file and line, or go to rejects.jsonl with skip_invalid", async () => {
  const dir = workspace();
  writeFileSync(join(dir, "orders.jsonl"), `{"natural_language": "x", "json_data": {"a": 1}}\n{not json\n`);
  await assert.rejects(prepare({ config: config(dir), tokenizer }), /orders\.jsonl:2/);
  assert.equal(existsSync(join(dir, "data/prepared/manifest.json")), false);
  const result = await prepare({ config: config(dir, { skip_invalid: true }), tokenizer });
  assert.equal(result.manifest.rejects, 1);
  const rejects = readFileSync(join(dir, "data/prepared/rejects.jsonl"), "utf8").trim().split("\n");
  assert.equal(rejects.length, 1);
  assert.equal(JSON.parse(rejects[0]).source.line, 2);
});
