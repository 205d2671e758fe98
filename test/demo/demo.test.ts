import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDemo, type DemoStage } from "../../src/demo/demo.js";
import { run, type CliContext } from "../../src/cli/main.js";
import { comparisonTable } from "../../src/cli/commands/demo.js";
import { corpusJsonF1 } from "../../src/eval/metrics/jsonF1.js";

// A small demo: a much smaller tiny model, few orders and steps, so it runs in seconds on two cores. It still
// goes through every stage for real: generation, prepare, base evaluation, training, evaluation, report.
const SMALL = {
  trainOrders: 200,
  heldoutOrders: 16,
  minutes: 10,
  corpusOrders: 60,
  tinySizes: {
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 32,
    intermediateSize: 128,
    tokenizerVocabSize: 1024,
    initStd: 0.02,
  },
  training: { maxSteps: 300, batchSize: 4, learningRate: 5e-3, warmupRatio: 0.05, maxSeqLength: 384 },
  // One thread: the test runner runs two test files at once on a two-core machine.
  threads: 1,
  // The whole-message templates: in 300 steps a model this small learns their few layouts well enough to raise
  // F1, not the demo's default rich variety (which needs thousands of steps; measured in src/demo/settings.ts).
  variety: "templates" as const,
};

test("the small demo runs end to end, writes its outputs, and training raises held-out F1", async () => {
  const root = mkdtempSync(join(tmpdir(), "tf-demo-"));
  const stages: DemoStage[] = [];
  const r = await runDemo({
    ...SMALL,
    dir: join(root, "demo"),
    cacheDir: join(root, "cache"),
    onStage: (s) => stages.push(s),
  });
  assert.deepEqual(stages, [
    "generate",
    "model",
    "prepare",
    "eval-before",
    "calibrate",
    "train",
    "eval-after",
  ]);

  // Data: the held-out file holds only held-out phrasings' orders, all of them prepared.
  assert.equal(readFileSync(join(r.dir, "data/orders_train.jsonl"), "utf8").trim().split("\n").length, 200);
  assert.equal(r.heldoutRows, 16);
  assert.ok(r.trainRows > 180 && r.trainRows <= 200, `train rows ${r.trainRows} (5% go to validation)`);
  assert.equal(r.steps, 300);

  // Outputs: the trained model, both results files and the report.
  assert.ok(existsSync(join(r.runDir, "model.safetensors")));
  assert.ok(existsSync(join(r.runDir, "metrics.jsonl")));
  const before = JSON.parse(readFileSync(r.before.resultsFile, "utf8"));
  const after = JSON.parse(readFileSync(r.after.resultsFile, "utf8"));
  assert.equal(after.scores.json_f1, r.after.jsonF1);
  assert.equal(before.scores.json_f1, r.before.jsonF1);
  assert.equal(after.examples.length, 16, "every output is kept");
  const html = readFileSync(r.reportPath, "utf8");
  assert.match(html, /<html/i);
  assert.match(html, /demo_before/);

  // The scores are the metric's own on the outputs that were written.
  const recomputed = corpusJsonF1(
    after.examples.map((e: { output: string }) => e.output),
    after.examples.map((e: { reference: string }) => e.reference),
  );
  assert.ok(Math.abs(recomputed.score.f1 - r.after.jsonF1) < 1e-9);
  assert.equal(recomputed.score.unparseable_rate, r.after.unparseable);

  // Learning: the trained model beats the random one it started from.
  assert.ok(
    r.after.jsonF1 > r.before.jsonF1,
    `F1 after ${r.after.jsonF1} must beat before ${r.before.jsonF1} (${JSON.stringify(r.seconds)})`,
  );
  assert.ok(r.after.unparseable < 1, "some outputs parse as JSON after training");
  assert.ok(r.finalLoss !== null && r.finalLoss < 2, `final loss ${r.finalLoss}`);

  const table = comparisonTable(r).join("\n");
  assert.match(
    table,
    new RegExp(`JSON field F1\\s+${r.before.jsonF1.toFixed(3)}\\s+${r.after.jsonF1.toFixed(3)}`),
  );
});

function capture(): CliContext & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

test("`tuneforge demo --help` lists the options; a bad --train-orders is refused", async () => {
  const io = capture();
  assert.equal(await run(["node", "tuneforge", "demo", "--help"], io), 0);
  const help = io.stdout.join("\n");
  for (const flag of ["--model", "--dir", "--train-orders", "--minutes"])
    assert.match(help, new RegExp(flag));
  assert.match(help, /held-out/);

  const bad = capture();
  assert.notEqual(await run(["node", "tuneforge", "demo", "--train-orders", "0"], bad), 0);
  assert.match(bad.stderr.join("\n"), /--train-orders must be a positive whole number/);
});
