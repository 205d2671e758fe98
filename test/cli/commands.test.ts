import { test, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, type CliContext } from "../../src/cli/main.js";
import { SafetensorsFile } from "../../src/model/safetensors.js";
import { fixtureDir } from "../helpers/fixtures.js";

function capture(): CliContext & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}
const cli = async (...args: string[]) => {
  const io = capture();
  const code = await run(["node", "tuneforge", ...args], io);
  return { code, out: io.stdout.join("\n"), err: io.stderr.join("\n") };
};

let project: string;
before(async () => {
  process.env.TUNEFORGE_HOME = mkdtempSync(join(tmpdir(), "tf-home-"));
  project = join(mkdtempSync(join(tmpdir(), "tf-cli-")), "p");
  assert.equal((await cli("init", "--template", "translation", "--dir", project)).code, 0);
});

test("validate reads every input and reports the rows; a broken file is named with its line", async () => {
  const ok = await cli("validate", "--config", join(project, "tuneforge.yaml"));
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /technology\.csv: 32 rows \(domain technology\)/);
  assert.match(ok.out, /all 3 inputs are valid \(96 rows\)/);
  writeFileSync(join(project, "technology.csv"), 'english,arabic\n"ok",نعم\n"unterminated,\n');
  const bad = await cli("validate", "--config", join(project, "tuneforge.yaml"));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /technology\.csv/);
});

test("prepare writes the prepared files, then reports up to date; inspect shows them", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "tf-cli-")), "p");
  await cli("init", "--template", "json-extraction", "--dir", dir);
  const config = join(dir, "tuneforge.yaml");
  const first = await cli("prepare", "--config", config, "--max_seq_length", "256");
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /wrote \d+ files to/);
  const manifest = JSON.parse(readFileSync(join(dir, "data/prepared/manifest.json"), "utf8"));
  assert.equal(manifest.max_seq_length, 256);
  const again = await cli("prepare", "--config", config, "--max_seq_length", "256");
  assert.match(again.out, /up to date/);
  const overview = await cli("inspect", join(dir, "data/prepared"));
  assert.equal(overview.code, 0, overview.err);
  assert.match(overview.out, /_train\.jsonl/);
  const train = manifest.files.find((f: { split: string }) => f.split === "train").file;
  const rows = await cli("inspect", join(dir, "data/prepared", train), "-n", "1", "--tokens");
  assert.equal(rows.code, 0, rows.err);
  assert.match(rows.out, /\[<\|im_start\|>\]/, "masked prompt tokens are bracketed");
  const raw = await cli("inspect", join(dir, "orders.jsonl"), "-n", "1");
  assert.match(raw.out, /assistant: \{"cliente"/);
});

test("a typo in a flag or key is an error with a suggestion, and nothing is written", async () => {
  const r = await cli("prepare", "--config", join(project, "tuneforge.yaml"), "--lora-rank", "8");
  assert.equal(r.code, 1);
  assert.match(r.err, /lora[-_]r\b/);
});

test("score prints sacreBLEU-style lines and --json one object", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-score-"));
  writeFileSync(join(dir, "hyp.txt"), "the cat sat on the mat\nhello world\n");
  writeFileSync(join(dir, "ref.txt"), "the cat sat on the mat\nhello there world\n");
  const text = await cli("score", "--hyp", join(dir, "hyp.txt"), "--ref", join(dir, "ref.txt"));
  assert.match(text.out, /^BLEU = \d+\.\d\d /m);
  assert.match(text.out, /^chrF2 = /m);
  const json = await cli(
    "score",
    "--hyp",
    join(dir, "hyp.txt"),
    "--ref",
    join(dir, "ref.txt"),
    "-m",
    "bleu,chrf++,exact",
    "--json",
  );
  const obj = JSON.parse(json.out);
  assert.deepEqual(Object.keys(obj).sort(), ["bleu", "chrfpp", "exact", "signature"]);
  assert.equal(obj.exact, 0.5);
  assert.match(obj.signature.bleu, /tok:13a/);
  writeFileSync(join(dir, "short.txt"), "one line\n");
  const bad = await cli("score", "--hyp", join(dir, "short.txt"), "--ref", join(dir, "ref.txt"));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /1 lines but the reference file .* has 2 lines/);
});

test("merge writes a model folder whose weights are W + scale·B·A", async () => {
  const fx = fixtureDir("base", "qwen2");
  const out = join(mkdtempSync(join(tmpdir(), "tf-merge-")), "merged");
  const r = await cli("merge", "--model", join(fx, "model"), "--adapter", join(fx, "adapter"), "--out", out);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /merged 14 projections/);
  const got = SafetensorsFile.open(join(out, "model.safetensors")).readF32(
    "model.layers.0.self_attn.q_proj.weight",
  );
  const want = SafetensorsFile.open(join(fx, "expected.safetensors")).readF32(
    "merged.model.layers.0.self_attn.q_proj.weight",
  );
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  assert.ok(err <= 1e-6, `max abs error ${err}`);
  assert.ok(existsSync(join(out, "config.json")));
});

test("report writes an HTML page for a run folder; a folder without metrics is a clear error", async () => {
  const runDir = join(mkdtempSync(join(tmpdir(), "tf-report-")), "models", "technology");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(runDir, { recursive: true });
  writeFileSync(
    join(runDir, "metrics.jsonl"),
    [1, 2, 3].map((s) => JSON.stringify({ step: s, loss: 3 - s / 2, lr: 1e-4 })).join("\n") + "\n",
  );
  const r = await cli("report", runDir);
  assert.equal(r.code, 0, r.err);
  assert.match(readFileSync(join(runDir, "report.html"), "utf8"), /<canvas/);
  const missing = await cli("report", join(runDir, ".."));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /metrics\.jsonl/);
});

test("every command has --help with examples", async () => {
  for (const cmd of ["init", "validate", "prepare", "inspect", "pull", "merge", "score", "report"]) {
    const r = await cli(cmd, "--help");
    assert.equal(r.code, 0, cmd);
    assert.match(r.out, /Examples:\n\s+\$ tuneforge/, cmd);
  }
});
