// HTML reports without a browser: metrics.jsonl parsing, loading runs and results, escaping, the chart data
// and numbers the page shows, and that the file references nothing outside itself.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildReportHtml,
  buildReportModel,
  escapeHtml,
  findRunDirs,
  formatNumber,
  jsonForScript,
  loadResultsFile,
  loadRun,
  parseMetricsJsonl,
  writeReport,
  type ChartSpec,
  type ResultsFile,
} from "../../src/eval/report/index.js";
import { TuneforgeError } from "../../src/errors.js";

const root = mkdtempSync(join(tmpdir(), "tuneforge-report-"));
after(() => rmSync(root, { recursive: true, force: true }));
let projects = 0;

const ARABIC = "المريض يعاني من الحمى.";
const EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)>';

interface RunSpec {
  name: string;
  metrics: string;
  info?: Record<string, unknown>;
}

/** A fresh project folder with runs/<name>/ and results/<file>. */
function project(runs: RunSpec[], results: Record<string, unknown> = {}): string {
  const dir = join(root, `p${projects++}`);
  for (const run of runs) {
    const runDir = join(dir, "runs", run.name);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, "metrics.jsonl"), run.metrics);
    if (run.info) writeFileSync(join(runDir, "run.json"), JSON.stringify(run.info));
  }
  if (Object.keys(results).length > 0) {
    mkdirSync(join(dir, "results"), { recursive: true });
    for (const [file, value] of Object.entries(results)) {
      writeFileSync(join(dir, "results", file), JSON.stringify(value));
    }
  }
  return dir;
}

function jsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

function results(over: Partial<ResultsFile> & { name: string }): ResultsFile {
  return {
    base_model: "Qwen/Qwen2.5-0.5B",
    task: "translation",
    scores: { bleu: 30, chrf: 55 },
    settings: { max_new_tokens: 128 },
    examples: [],
    ...over,
  };
}

const INFO = {
  name: "med",
  domain: "medical",
  base_model: "Qwen/Qwen2.5-0.5B",
  config: {
    training: { learning_rate: 0.0002, epochs: 2 },
    lora: { r: 8, target_modules: ["q_proj", "v_proj"] },
  },
  started_at: "2025-03-01T10:00:00Z",
  finished_at: "2025-03-01T11:02:03Z",
};

const METRICS = jsonl([
  {
    step: 10,
    epoch: 0.5,
    loss: 2.5,
    lr: 0.0001,
    grad_norm: 1.1,
    tokens_per_s: 800,
    memory_mb: 500,
    extra: "x",
  },
  { step: 20, epoch: 1, loss: 2.0, lr: 0.0002, tokens_per_s: 900, memory_mb: 640 },
  { step: 20, val_loss: 2.2 },
  { step: 20, eval: { metric: "chrf", value: 40.5 } },
  { step: 30, epoch: 1.5, loss: null, lr: 0.00015, tokens_per_s: 1000, memory_mb: 600 },
  { step: 40, epoch: 2, loss: 1.5, lr: 0.0001 },
  { step: 40, val_loss: 2.4 },
  { step: 40, eval: { metric: "chrf", value: 44 } },
]);

/** The chart specs embedded in a report, read back the way the page reads them. */
function chartData(html: string): ChartSpec[] {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, "report-data block present");
  return (JSON.parse(m[1]) as { charts: ChartSpec[] }).charts;
}

test("metrics.jsonl: a truncated last line is kept aside, unknown keys pass, blank lines are skipped", () => {
  const text = '{"step":1,"loss":2.5,"mystery":{"a":1}}\n\n{"step":2,"val_loss":2.1}\n{"step":3,"lo';
  const log = parseMetricsJsonl(text, "m.jsonl");
  assert.equal(log.lines.length, 2);
  assert.deepEqual(log.lines[0], { step: 1, loss: 2.5, mystery: { a: 1 } });
  assert.equal(log.lines[1].val_loss, 2.1);
  assert.equal(log.truncatedLastLine, '{"step":3,"lo');
  // A complete log has no truncation marker.
  assert.equal(parseMetricsJsonl('{"step":1}\n', "m.jsonl").truncatedLastLine, undefined);
  // Trailing blank lines after a partial line: it is still the last line with content.
  assert.equal(parseMetricsJsonl('{"step":1}\n{"step":2,\n\n', "m.jsonl").truncatedLastLine, '{"step":2,');
});

test("metrics.jsonl: a bad line before the end is an error naming file and line", () => {
  const cases: [string, number, RegExp][] = [
    ['{"step":1}\n{"step":2,"lo\n{"step":3}\n', 2, /not valid JSON/],
    ['{"step":1}\n{"loss":2}\n', 2, /`step` is missing/],
    ['{"step":1,"loss":"high"}\n{"step":2}\n', 1, /`loss` is "high", not a number/],
    ['[1,2]\n{"step":2}\n', 1, /not a JSON object/],
    ['{"step":1,"eval":{"metric":"chrf"}}\n', 1, /`eval` must look like/],
  ];
  for (const [text, line, message] of cases) {
    assert.throws(
      () => parseMetricsJsonl(text, "runs/a/metrics.jsonl"),
      (e: unknown) =>
        e instanceof TuneforgeError &&
        e.location.file === "runs/a/metrics.jsonl" &&
        e.location.line === line &&
        message.test(e.message) &&
        e.hint !== undefined,
    );
  }
});

test("a run folder without metrics.jsonl is an error naming the folder and what belongs there", () => {
  const dir = join(root, "empty-run");
  mkdirSync(dir, { recursive: true });
  assert.throws(
    () => loadRun(dir),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      e.location.file === dir &&
      /no metrics\.jsonl/.test(e.message) &&
      /one JSON object per line/.test(e.hint ?? ""),
  );
  assert.throws(() => loadRun(join(root, "nowhere")), /run folder not found/);
  assert.throws(() => writeReport({ runDirs: [dir], out: join(root, "x.html") }), /no metrics\.jsonl/);
});

test("run.json and results files are validated, errors name the file and key", () => {
  const dir = project([
    { name: "bad", metrics: '{"step":1}\n', info: { name: "bad", config: {}, started_at: "x" } },
  ]);
  assert.throws(
    () => loadRun(join(dir, "runs", "bad")),
    (e: unknown) =>
      e instanceof TuneforgeError && e.location.key === "base_model" && /run\.json$/.test(e.location.file!),
  );
  const file = join(dir, "bad_results.json");
  writeFileSync(file, JSON.stringify({ ...results({ name: "r" }), task: "poetry" }));
  assert.throws(
    () => loadResultsFile(file),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === file && e.location.key === "task",
  );
  writeFileSync(file, "{not json");
  assert.throws(() => loadResultsFile(file), /cannot read JSON/);
});

test("escapeHtml and jsonForScript keep untrusted text inert", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const value = { s: "</script><!-- & \u2028 " + ARABIC };
  const json = jsonForScript(value);
  assert.ok(!/[<>&\u2028]/.test(json), json);
  assert.deepEqual(JSON.parse(json), value);
});

test("formatNumber shows 4 significant digits, small learning rates in exponent form", () => {
  assert.equal(formatNumber(2.3456789), "2.346");
  assert.equal(formatNumber(0.0002), "0.0002");
  assert.equal(formatNumber(0.00002), "2e-5");
  assert.equal(formatNumber(850), "850");
  assert.equal(formatNumber(null), "n/a");
  assert.equal(formatNumber(undefined), "");
});

test("report data: loss, validation, learning-rate and task-metric curves by step; final numbers", () => {
  const dir = project([{ name: "med", metrics: METRICS + '{"step":50,"loss":1.', info: INFO }]);
  const model = buildReportModel({ runDirs: [join(dir, "runs", "med")] });
  const byId = new Map(model.trainingCharts.map((c) => [c.id, c]));
  assert.deepEqual([...byId.keys()], ["chart-loss", "chart-lr", "chart-task"]);
  const [train, val] = byId.get("chart-loss")!.datasets;
  assert.deepEqual(train.points, [
    { x: 10, y: 2.5 },
    { x: 20, y: 2.0 },
    { x: 30, y: null }, // a NaN loss stays a visible gap
    { x: 40, y: 1.5 },
  ]);
  assert.deepEqual(val.points, [
    { x: 20, y: 2.2 },
    { x: 40, y: 2.4 },
  ]);
  assert.equal(val.dashed, true);
  assert.notEqual(val.color, train.color);
  assert.deepEqual(
    byId.get("chart-lr")!.datasets[0].points!.map((p) => p.y),
    [0.0001, 0.0002, 0.00015, 0.0001],
  );
  assert.deepEqual(byId.get("chart-task")!.datasets[0].points, [
    { x: 20, y: 40.5 },
    { x: 40, y: 44 },
  ]);

  const run = model.runs[0];
  assert.equal(run.lastStep, 40);
  assert.equal(run.lastEpoch, 2);
  assert.equal(run.firstLoss, 2.5);
  assert.equal(run.finalLoss, 1.5);
  assert.deepEqual(run.bestValLoss, { value: 2.2, step: 20 });
  assert.equal(run.finalValLoss, 2.4);
  assert.equal(run.finalLr, 0.0001);
  assert.equal(run.meanTokensPerS, 900);
  assert.equal(run.peakMemoryMb, 640);
  assert.equal(run.durationS, 3723);
  assert.deepEqual(run.taskMetrics, [{ metric: "chrf", last: 44, best: 44, bestStep: 40 }]);
  assert.deepEqual(run.settings, [
    ["lora.r", "8"],
    ["lora.target_modules", '["q_proj","v_proj"]'],
    ["training.epochs", "2"],
    ["training.learning_rate", "0.0002"],
  ]);
  // The skipped partial line is reported, not dropped silently.
  assert.equal(model.notes.length, 1);
  assert.match(model.notes[0], /metrics\.jsonl: the last line is incomplete .*\{"step":50,"loss":1\./);

  const html = buildReportHtml({ runDirs: [join(dir, "runs", "med")] });
  assert.match(html, /<td class="num">1h 2m 3s<\/td>/);
  assert.match(
    html,
    /<td class="mono">training\.learning_rate<\/td><td class="text" dir="auto">0\.0002<\/td>/,
  );
  assert.match(html, /the last line is incomplete/);
});

test("scores by domain: the run's results and its baseline as bars, other runs' results left out", () => {
  const dir = project([{ name: "med", metrics: METRICS, info: INFO }], {
    "med_medical_results.json": results({
      name: "med_medical",
      run: "med",
      domain: "medical",
      adapter: "runs/med/adapter",
      scores: { bleu: 31, chrf: 58 },
    }),
    // Matched by its adapter path inside runs/med, no `run` field.
    "med_legal_results.json": results({
      name: "med_legal",
      domain: "legal",
      adapter: "runs/med/adapter",
      scores: { bleu: 22, chrf: 0 },
    }),
    "base_medical_results.json": results({
      name: "base_medical",
      domain: "medical",
      scores: { bleu: 12, chrf: 40 },
    }),
    "other_medical_results.json": results({
      name: "other_medical",
      run: "other",
      domain: "medical",
      adapter: "runs/other/adapter",
      scores: { bleu: 99, chrf: 99 },
    }),
  });
  const runDir = join(dir, "runs", "med");
  const model = buildReportModel({ runDirs: [runDir] });
  assert.deepEqual(
    model.results.map((r) => [r.label, r.domain]),
    [
      ["base: Qwen/Qwen2.5-0.5B", "medical"],
      ["med", "legal"],
      ["med", "medical"],
    ],
  );
  assert.deepEqual(model.scoreKeys, ["bleu", "chrf"]);
  const [bleu, chrf] = model.scoreCharts;
  assert.equal(bleu.type, "bar");
  assert.deepEqual(bleu.labels, ["legal", "medical"]);
  assert.deepEqual(
    bleu.datasets.map((d) => [d.label, d.values]),
    [
      ["base: Qwen/Qwen2.5-0.5B", [null, 12]],
      ["med", [22, 31]],
    ],
  );
  assert.deepEqual(chrf.datasets[1].values, [0, 58]);
  // The run's bars keep its training-curve colour; the baseline gets another.
  assert.equal(bleu.datasets[1].color, model.trainingCharts[0].datasets[0].color);
  assert.notEqual(bleu.datasets[0].color, bleu.datasets[1].color);
  // An all-zero series has nothing to draw, so the in-page check must not demand pixels from it.
  assert.equal(chrf.datasets[1].expectVisible, true);
  // With every results file asked for, the other run's scores come in under its own name.
  const all = buildReportModel({ runDirs: [runDir], allResults: true });
  assert.ok(all.results.some((r) => r.label === "other_medical" && r.scores.bleu === 99));
  // An explicit results folder that does not exist is an error; a missing default one is "not evaluated yet".
  assert.throws(
    () => buildReportModel({ runDirs: [runDir], resultsDir: join(dir, "nope") }),
    (e: unknown) => e instanceof TuneforgeError && /results folder not found/.test(e.message),
  );
  const bare = project([{ name: "solo", metrics: METRICS }]);
  const soloModel = buildReportModel({ runDirs: [join(bare, "runs", "solo")] });
  assert.equal(soloModel.results.length, 0);
  assert.match(soloModel.notes.join("\n"), /no run\.json/);
});

test("--all: every run folder under runs/, curves overlaid with one colour per run", () => {
  const dir = project([
    {
      name: "b-run",
      metrics: jsonl([
        { step: 1, loss: 3 },
        { step: 2, loss: 2 },
      ]),
    },
    {
      name: "a-run",
      metrics: jsonl([
        { step: 1, loss: 4 },
        { step: 1, val_loss: 4.5 },
      ]),
    },
  ]);
  const runDirs = findRunDirs(join(dir, "runs"));
  assert.deepEqual(runDirs, [join(dir, "runs", "a-run"), join(dir, "runs", "b-run")]);
  const model = buildReportModel({ runDirs });
  const loss = model.trainingCharts.find((c) => c.id === "chart-loss")!;
  assert.deepEqual(
    loss.datasets.map((d) => d.label),
    ["a-run train loss", "a-run validation loss", "b-run train loss"],
  );
  assert.notEqual(loss.datasets[0].color, loss.datasets[2].color);
  // A run folder with no log stops --all with an error naming it (never skipped silently).
  mkdirSync(join(dir, "runs", "c-run"));
  assert.throws(
    () => buildReportModel({ runDirs: findRunDirs(join(dir, "runs")) }),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === join(dir, "runs", "c-run"),
  );
  assert.throws(() => findRunDirs(join(dir, "missing")), /runs folder not found/);
});

test("examples are HTML-escaped, free text gets dir=auto, and the example cap is stated", () => {
  const examples = Array.from({ length: 5 }, (_, i) => ({
    source: `Patient ${i} has a fever.`,
    reference: ARABIC,
    output: i === 0 ? EVIL : `${ARABIC} ${i}`,
    score: 50 + i,
  }));
  const dir = project([{ name: "med", metrics: METRICS, info: INFO }], {
    "med_results.json": results({ name: "med", domain: "medical", adapter: "runs/med/adapter", examples }),
  });
  const html = buildReportHtml({ runDirs: [join(dir, "runs", "med")], maxExamplesPerResults: 3 });
  assert.ok(!html.includes("<script>alert"), "raw script from an output must not appear");
  assert.ok(!html.includes("<img src=x"), "raw tag from an output must not appear");
  assert.ok(
    html.includes(
      '<td class="text" dir="auto">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;</td>',
    ),
  );
  assert.ok(html.includes(`<td class="text" dir="auto">${ARABIC}</td>`));
  assert.ok(html.includes(`<td class="text" dir="auto">${ARABIC} 2</td>`));
  assert.ok(!html.includes(`${ARABIC} 3`), "only the first 3 examples are shown");
  assert.match(html, /Showing the first 3 of 5 examples\./);
  // Only our own four script elements exist: error capture, data, Chart.js, drawing.
  assert.equal(html.match(/<script\b/gi)?.length, 4);
});

test("the report references nothing outside itself", () => {
  const dir = project([{ name: "med", metrics: METRICS, info: INFO }], {
    "med_results.json": results({
      name: "med",
      run: "med",
      examples: [
        {
          source: "see https://example.com/a.png",
          reference: "r",
          output: '<img src="https://evil.test/x">',
        },
      ],
    }),
  });
  const html = buildReportHtml({ runDirs: [join(dir, "runs", "med")] });
  assert.ok(html.length > 150_000, "Chart.js is inlined");
  // Chart.js keeps its license banners; its source-map pointer is gone.
  assert.match(html, /\/\*!\s*\n \* Chart\.js v4[\s\S]*?Released under the MIT License\s*\n \*\//);
  assert.ok(!/sourceMappingURL/.test(html));
  // No element loads anything: no src/href/srcset/action/poster/data attributes, no CSS url() or @import.
  assert.ok(!/<[a-z][^>]*\s(src|href|srcset|action|poster|data|background)\s*=/i.test(html));
  const css = [...html.matchAll(/<style>([\s\S]*?)<\/style>|\sstyle="([^"]*)"/g)].map((m) => m[1] ?? m[2]);
  assert.ok(css.length > 0 && css.every((c) => !/url\s*\(|@import/i.test(c)));
  assert.ok(!/<(link|iframe|object|embed|base|img|video|audio|source)\b/i.test(html));
  // The only "scheme://" text left is inside license comments (/*! ... */) — and the user's own escaped text.
  const withoutLicenses = html.replace(/\/\*![\s\S]*?\*\//g, "");
  const urls = withoutLicenses.match(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]*/gi) ?? [];
  assert.deepEqual(urls, ["https://example.com/a.png", "https://evil.test/x&quot;&gt;"]);
  assert.ok(html.includes("&lt;img src=&quot;https://evil.test/x&quot;&gt;"), "the user's URL is inert text");
  // And the browser is told to refuse any fetch at all.
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;/);
  assert.deepEqual(
    chartData(html).map((c) => c.id),
    ["chart-loss", "chart-lr", "chart-task", "chart-score-0", "chart-score-1"],
  );
});

test("writeReport writes the file atomically and leaves no temp file", () => {
  const dir = project([{ name: "med", metrics: METRICS, info: INFO }]);
  const out = join(dir, "reports", "med.html");
  assert.equal(writeReport({ runDirs: [join(dir, "runs", "med")], out, title: "Med <run>" }), out);
  const html = readFileSync(out, "utf8");
  assert.ok(html.startsWith("<!DOCTYPE html>"));
  assert.match(html, /<title>Med &lt;run&gt;<\/title>/);
  assert.deepEqual(readdirSync(join(dir, "reports")), ["med.html"]);
});
