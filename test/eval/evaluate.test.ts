import { before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { IGNORE_INDEX } from "../../src/data/render.js";
import type { PreparedRow } from "../../src/data/types.js";
import {
  datasetLoss,
  evaluate,
  evaluateAllDomains,
  promptSource,
  referenceText,
} from "../../src/eval/evaluate.js";
import { applyAdapter, generateText, readAdapterFor } from "../../src/eval/generate.js";
import { writeResults } from "../../src/eval/results.js";
import { scoreSegments } from "../../src/eval/score.js";
import { detectTask, resolveMetrics } from "../../src/eval/task.js";
import { TuneforgeError } from "../../src/errors.js";
import {
  JSON_PAIRS,
  PAIRS,
  makeAdapter,
  preparedRows,
  tinyEval,
  writeTestSet,
  type TinyEval,
} from "./evalFixture.js";

let fx: TinyEval;
let adapterDir: string;
let testFile: string;

before(async () => {
  fx = await tinyEval();
  adapterDir = makeAdapter(join(fx.root, "models", "translation"), fx.config, { r: 2, seed: 2 });
  testFile = writeTestSet(
    join(fx.root, "prepared"),
    "translation",
    preparedRows(fx.tokenizer, PAIRS),
    fx.tokenizer.hash,
  );
});

/** Asserts `fn` rejects with a TuneforgeError whose message matches every pattern. */
async function rejectsWith(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<TuneforgeError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TuneforgeError, `expected a TuneforgeError, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

test("task detection: JSON objects, short texts, long answers and prompt-less rows", () => {
  const prompts = ["p", "p", "p"];
  assert.equal(detectTask({ prompts, references: ['{"a":1}', ' {"b": [2]} ', "{}"] }), "json-extraction");
  assert.equal(detectTask({ prompts, references: ['{"a":1}', "[1, 2]", "{}"] }), "translation");
  assert.equal(detectTask({ prompts, references: ["Hola.", "Adiós.", "Gracias."] }), "translation");
  assert.equal(detectTask({ prompts, references: ["a\n\nb", "c\n\nd", "e"] }), "chat");
  assert.equal(
    detectTask({ prompts, references: ["x".repeat(500), "y".repeat(500), "z".repeat(300)] }),
    "chat",
  );
  assert.equal(detectTask({ prompts: ["p", ""], references: ["Hola."] }), "chat");

  assert.deepEqual(resolveMetrics(undefined, "translation"), ["bleu", "chrf"]);
  assert.deepEqual(resolveMetrics("auto", "json-extraction"), ["json-f1", "exact"]);
  assert.deepEqual(resolveMetrics(["auto"], "chat"), ["loss", "perplexity"]);
  assert.deepEqual(resolveMetrics("chrfpp, json_f1,loss", "chat"), ["chrf++", "json-f1", "loss"]);
  assert.throws(() => resolveMetrics(["blue"], "translation"), /unknown metric "blue"/);
});

test("references lose the end-of-turn marker; sources are the user's text", () => {
  assert.equal(referenceText("Hola.<|im_end|>\n", ["<|im_end|>", "<|endoftext|>"]), "Hola.");
  assert.equal(referenceText("Hola. <|im_end|><|endoftext|>", ["<|im_end|>", "<|endoftext|>"]), "Hola.");
  assert.equal(referenceText("Hola.</s>", ["</s>"]), "Hola.");
  assert.equal(referenceText("a <|im_end|> b", ["<|im_end|>"]), "a <|im_end|> b");
  const [row] = preparedRows(fx.tokenizer, PAIRS.slice(0, 1));
  assert.equal(promptSource(row.prompt), PAIRS[0][0]);
  const [alpaca] = preparedRows(fx.tokenizer, PAIRS.slice(0, 1), { template: "alpaca" });
  assert.equal(promptSource(alpaca.prompt), PAIRS[0][0]);
  assert.equal(promptSource("plain prompt\n"), "plain prompt");
});

test("results file: the report's shape, scores equal to scoreSegments on the recorded outputs", async () => {
  const result = await evaluate({
    modelDir: fx.modelDir,
    adapterDir,
    data: testFile,
    maxNewTokens: 10,
    batchSize: 4,
    numExamples: 100,
    threads: 2,
  });
  assert.equal(result.task, "translation");
  assert.equal(result.name, "translation");
  assert.equal(result.domain, "translation");
  assert.equal(result.count, PAIRS.length);
  assert.equal(result.examples.length, PAIRS.length);
  assert.deepEqual(
    result.examples.map((e) => e.reference),
    PAIRS.map((p) => p[1]),
  );
  assert.deepEqual(
    result.examples.map((e) => e.source),
    PAIRS.map((p) => p[0]),
  );

  const dir = join(fx.root, "results");
  const path = writeResults(result, dir);
  assert.equal(path, join(dir, "translation_results.json"));
  const json = JSON.parse(readFileSync(path, "utf8"));
  assert.deepEqual(Object.keys(json).sort(), [
    "adapter",
    "base_model",
    "count",
    "created_at",
    "domain",
    "examples",
    "name",
    "scores",
    "settings",
    "signature",
    "task",
  ]);
  assert.equal(json.adapter, adapterDir);
  assert.equal(json.base_model, fx.modelDir);
  assert.equal(json.settings.max_new_tokens, 10);
  assert.ok(!Number.isNaN(Date.parse(json.created_at)));

  const hyps = json.examples.map((e: { output: string }) => e.output);
  const refs = json.examples.map((e: { reference: string }) => e.reference);
  const expected = scoreSegments({ hyps, refs, metrics: ["bleu", "chrf"], perSegment: true });
  assert.deepEqual(json.scores, { bleu: expected.bleu!.score, chrf: expected.chrf!.score });
  assert.deepEqual(json.signature, expected.signature);
  assert.deepEqual(
    json.examples.map((e: { score: number }) => e.score),
    expected.perSegment!.map((s) => s.bleu),
  );
  // The outputs are the adapter's greedy outputs (trimmed).
  const model = EngineModel.load(fx.modelDir, { threads: 2 });
  try {
    applyAdapter(model, readAdapterFor(adapterDir, model));
    const rows = preparedRows(fx.tokenizer, PAIRS);
    const direct = generateText(
      model,
      fx.tokenizer,
      rows.map((r) => r.prompt),
      { maxNewTokens: 10 },
    );
    assert.deepEqual(
      hyps,
      direct.map((o) => o.trim()),
    );
  } finally {
    model.dispose();
  }
});

test("a model scored against its own outputs gets exact 1 and chrF 100; numExamples is honoured", async () => {
  const model = EngineModel.load(fx.modelDir, { threads: 2 });
  let outputs: string[];
  try {
    applyAdapter(model, readAdapterFor(adapterDir, model));
    const rows = preparedRows(fx.tokenizer, PAIRS);
    outputs = generateText(
      model,
      fx.tokenizer,
      rows.map((r) => r.prompt),
      { maxNewTokens: 6 },
    ).map((o) => o.trim());
  } finally {
    model.dispose();
  }
  const own = PAIRS.map(([src], i) => [src, outputs[i]] as [string, string]).filter(([, o]) => o !== "");
  assert.ok(own.length >= 3, JSON.stringify(outputs));
  const result = await evaluate({
    modelDir: fx.modelDir,
    adapterDir,
    data: preparedRows(fx.tokenizer, own),
    metrics: ["exact", "chrf"],
    task: "translation",
    maxNewTokens: 6,
    numExamples: 2,
    threads: 2,
  });
  assert.equal(result.scores.exact, 1);
  assert.equal(result.scores.chrf, 100);
  assert.equal(result.examples.length, 2);
  assert.equal(result.count, own.length);
  assert.deepEqual(
    result.examples.map((e) => e.score),
    [1, 1],
  );
});

test("JSON targets are detected as json-extraction and scored with json-f1 and exact", async () => {
  const file = writeTestSet(
    join(fx.root, "prepared-json"),
    "orders",
    preparedRows(fx.tokenizer, JSON_PAIRS, { domain: "orders" }),
  );
  const result = await evaluate({
    modelDir: fx.modelDir,
    data: file,
    maxNewTokens: 4,
    numExamples: 1,
    threads: 2,
  });
  assert.equal(result.task, "json-extraction");
  assert.equal(result.name, "base_orders");
  assert.equal(result.adapter, undefined);
  // Four tokens of gibberish parse as no JSON object: nothing predicted, every field missed.
  assert.deepEqual(result.scores, { json_f1: 0, exact: 0 });
  assert.equal(result.examples.length, 1);
  assert.equal(result.examples[0].reference, JSON_PAIRS[0][1]);
  assert.ok(result.signature["json-f1"] && result.signature.exact);
});

/** Mean next-token cross-entropy computed here, one row at a time from unpadded forward logits. */
function handLoss(model: EngineModel, rows: PreparedRow[]): number {
  const V = model.config.vocabSize;
  let sum = 0;
  let n = 0;
  for (const row of rows) {
    const logits = model.forward({ rows: 1, inputIds: Int32Array.from(row.input_ids) });
    for (let t = 0; t + 1 < row.labels.length; t++) {
      const y = row.labels[t + 1];
      if (y === IGNORE_INDEX) continue;
      const z = Array.from(logits.subarray(t * V, (t + 1) * V));
      const max = Math.max(...z);
      const lse = Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
      sum += lse - z[y];
      n++;
    }
  }
  return sum / n;
}

test("loss and perplexity equal a hand computation from model.forward logits (and the engine's own loss)", async () => {
  const rows = preparedRows(fx.tokenizer, PAIRS);
  const result = await evaluate({
    modelDir: fx.modelDir,
    adapterDir,
    data: rows,
    metrics: ["loss", "perplexity"],
    batchSize: 4,
    maxNewTokens: 3,
    numExamples: 2,
    threads: 2,
  });
  const model = EngineModel.load(fx.modelDir, { threads: 2 });
  try {
    applyAdapter(model, readAdapterFor(adapterDir, model));
    const expected = handLoss(model, rows);
    assert.ok(
      Math.abs(result.scores.loss! - expected) < 1e-4 * expected,
      `${result.scores.loss} vs ${expected}`,
    );
    assert.ok(Math.abs(result.scores.perplexity! - Math.exp(expected)) < 1e-3 * Math.exp(expected));
    // Independent check: the engine's fused cross-entropy on one padded batch.
    const T = Math.max(...rows.map((r) => r.input_ids.length));
    const ids = new Int32Array(rows.length * T);
    const mask = new Int32Array(rows.length * T);
    const labels = new Int32Array(rows.length * T).fill(IGNORE_INDEX);
    rows.forEach((r, i) => {
      ids.set(r.input_ids, i * T);
      mask.fill(1, i * T, i * T + r.input_ids.length);
      labels.set(r.labels, i * T);
    });
    const engine = model.forwardBackward({ rows: rows.length, inputIds: ids, attentionMask: mask, labels });
    assert.ok(Math.abs(engine.loss - expected) < 1e-4 * expected, `${engine.loss} vs ${expected}`);

    // Packed rows: the loss of a pack equals that of its rows evaluated apart (no cross-example targets).
    const apart = datasetLoss(model, rows.slice(0, 3), { batchSize: 2 });
    const packedIds = rows.slice(0, 3).flatMap((r) => r.input_ids);
    const packedLabels = rows
      .slice(0, 3)
      .flatMap((r, k) => r.labels.map((l, t) => (t === 0 && k > 0 ? IGNORE_INDEX : l)));
    const lengths = rows.slice(0, 3).map((r) => r.input_ids.length);
    const packed = datasetLoss(model, [
      { input_ids: packedIds, labels: packedLabels, boundaries: [0, lengths[0], lengths[0] + lengths[1]] },
      rows[3],
    ]);
    const both = datasetLoss(model, rows.slice(0, 4));
    assert.equal(packed.tokens, both.tokens);
    assert.ok(Math.abs(packed.loss - both.loss) < 1e-4 * both.loss);
    assert.ok(Math.abs(apart.perRow[1].lossSum / apart.perRow[1].tokens - handLoss(model, [rows[1]])) < 1e-4);
  } finally {
    model.dispose();
  }
  // Chat task: the examples' score is the row's loss.
  assert.equal(result.examples.length, 2);
  for (const e of result.examples) assert.ok(e.score! > 0);
});

test("bad inputs give clear errors", async () => {
  const base = { modelDir: fx.modelDir, threads: 2, maxNewTokens: 2 };
  await rejectsWith(
    () => evaluate({ ...base, adapterDir: join(fx.root, "models", "nope"), data: testFile }),
    /adapter folder not found/,
    /nope/,
  );
  // An adapter trained on a wider base model.
  const other = await tinyEval({ hiddenSize: 96, headDim: 48 }, 9);
  const wrong = makeAdapter(join(fx.root, "models", "other"), other.config, {
    r: 2,
    seed: 3,
    baseModel: "other-base",
  });
  await rejectsWith(
    () => evaluate({ ...base, adapterDir: wrong, data: testFile }),
    /trained for another base model/,
    /other-base/,
    /models\/other/,
  );
  // Raw data instead of prepared rows: name the file and line, say to run prepare.
  const raw = join(fx.root, "raw", "translation_test.jsonl");
  mkdirSync(join(fx.root, "raw"), { recursive: true });
  const good = JSON.stringify(preparedRows(fx.tokenizer, PAIRS.slice(0, 1))[0]);
  writeFileSync(raw, `${good}\n\n${JSON.stringify({ source: "Hello", target: "Hola" })}\n`);
  const e = await rejectsWith(
    () => evaluate({ ...base, data: raw }),
    /tuneforge prepare/,
    /translation_test\.jsonl:3/,
  );
  assert.equal(e.location.line, 3);
  writeFileSync(raw, "not json\n");
  await rejectsWith(() => evaluate({ ...base, data: raw }), /tuneforge prepare/, /:1/);
  await rejectsWith(
    () => evaluate({ ...base, data: join(fx.root, "missing_test.jsonl") }),
    /test file not found/,
  );
  // Prepared with another tokenizer: the manifest beside the test file records its hash.
  const otherTok = writeTestSet(
    join(fx.root, "prepared-other"),
    "translation",
    preparedRows(fx.tokenizer, PAIRS),
    "0".repeat(64),
  );
  await rejectsWith(
    () => evaluate({ ...base, data: otherTok }),
    /prepared with another tokenizer/,
    /manifest\.json/,
  );
  // Token ids the model does not have (no manifest to tell).
  const rows = preparedRows(fx.tokenizer, PAIRS.slice(0, 2));
  rows[1] = { ...rows[1], input_ids: [...rows[1].input_ids.slice(0, -1), fx.config.vocabSize + 5] };
  await rejectsWith(() => evaluate({ ...base, data: rows }), /outside the model's vocabulary/, /\(rows\):2/);
  // Packed rows cannot be generated from.
  const packed: PreparedRow = { ...rows[0], prompt: "", completion: "", boundaries: [0] };
  await rejectsWith(
    () => evaluate({ ...base, data: [packed], metrics: ["bleu"] }),
    /no prompt to generate from/,
    /--metrics loss,perplexity/,
  );
  await rejectsWith(() => evaluate({ ...base, data: testFile, metrics: ["blue"] }), /unknown metric/);
});

test("--all-domains: each domain's adapter on its own test set, results written", async () => {
  const root = join(fx.root, "all");
  const prepared = join(root, "data", "prepared");
  writeTestSet(prepared, "translation", preparedRows(fx.tokenizer, PAIRS.slice(0, 3)));
  writeTestSet(prepared, "orders", preparedRows(fx.tokenizer, JSON_PAIRS, { domain: "orders" }));
  const models = join(root, "models");
  makeAdapter(join(models, "translation"), fx.config, { r: 2, seed: 2 });
  makeAdapter(join(models, "orders"), fx.config, { r: 4, seed: 5 });
  const resultsDir = join(root, "results");
  const results = await evaluateAllDomains({
    modelDir: fx.modelDir,
    adaptersRoot: models,
    preparedDir: prepared,
    resultsDir,
    maxNewTokens: 4,
    threads: 2,
  });
  assert.deepEqual(
    results.map((r) => [r.name, r.task, r.count, r.adapter]),
    [
      ["orders", "json-extraction", JSON_PAIRS.length, join(models, "orders")],
      ["translation", "translation", 3, join(models, "translation")],
    ],
  );
  assert.ok(existsSync(join(resultsDir, "orders_results.json")));
  assert.ok(existsSync(join(resultsDir, "translation_results.json")));
  // Same as evaluating the domain alone.
  const alone = await evaluate({
    modelDir: fx.modelDir,
    adapterDir: join(models, "translation"),
    data: join(prepared, "translation_test.jsonl"),
    maxNewTokens: 4,
    threads: 2,
  });
  assert.deepEqual(alone.scores, results[1].scores);
  assert.deepEqual(alone.examples, results[1].examples);

  await rejectsWith(
    () =>
      evaluateAllDomains({ modelDir: fx.modelDir, adaptersRoot: join(root, "none"), preparedDir: prepared }),
    /no adapter for domain\(s\) orders, translation/,
    /train --all-domains/,
  );
  await rejectsWith(
    () =>
      evaluateAllDomains({ modelDir: fx.modelDir, adaptersRoot: models, preparedDir: join(root, "empty") }),
    /no prepared test set/,
  );
});
