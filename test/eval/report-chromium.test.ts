// The report in a real headless Chromium: every chart draws (the page counts each series' own pixels inside
// the plot area and writes the outcome into the DOM), no script error, no request leaves the page; a sabotaged
// copy proves that check does catch a chart that did not draw and a blocked fetch. Plus a PNG screenshot.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findRunDirs, jsonForScript, writeReport, type ChartSpec } from "../../src/eval/report/index.js";
import { CHROMIUM_MISSING, dumpDom, findChromium, screenshot } from "../helpers/chromium.js";

const chromium = findChromium();
const dir = mkdtempSync(join(tmpdir(), "tuneforge-report-chromium-"));
// Set TUNEFORGE_KEEP_REPORT=1 to keep the report and screenshot for a look.
after(() => {
  if (!process.env.TUNEFORGE_KEEP_REPORT) rmSync(dir, { recursive: true, force: true });
});

interface RenderStatus {
  expected: number;
  drawn: number;
  charts: {
    id: string;
    ok: boolean;
    painted: number;
    missing: string[];
    series: { label: string; pixels: number }[];
  }[];
  errors: string[];
  blocked: string[];
  resources: number;
}

/** A project with two runs (one still running: no finished_at, no eval lines) and results for two domains. */
function makeProject(): string {
  const project = join(dir, "project");
  const runs: [string, number, boolean][] = [
    ["med-ft", 120, true],
    ["legal-ft", 60, false],
  ];
  for (const [name, steps, finished] of runs) {
    const runDir = join(project, "runs", name);
    mkdirSync(runDir, { recursive: true });
    const lines: string[] = [];
    for (let step = 5; step <= steps; step += 5) {
      const loss = 0.9 + 2 * Math.exp(-step / 40) + 0.05 * Math.sin(step);
      const lr = 2e-4 * Math.min(1, step / 20) * (1 - step / (steps + 10));
      lines.push(
        JSON.stringify({ step, epoch: step / 40, loss, lr, grad_norm: 1, tokens_per_s: 800, memory_mb: 512 }),
      );
      if (step % 20 === 0) lines.push(JSON.stringify({ step, val_loss: loss + 0.2 }));
      if (finished && step % 40 === 0)
        lines.push(JSON.stringify({ step, eval: { metric: "chrf", value: 30 + step / 10 } }));
    }
    // A run killed mid-write leaves a partial line.
    writeFileSync(join(runDir, "metrics.jsonl"), lines.join("\n") + (finished ? "\n" : '\n{"step":65,"lo'));
    const info = {
      name,
      domain: name.startsWith("med") ? "medical" : "legal",
      base_model: "Qwen/Qwen2.5-0.5B-Instruct",
      config: { training: { learning_rate: 2e-4, epochs: 3 }, lora: { r: 16, alpha: 32 } },
      started_at: "2025-03-01T10:00:00Z",
      ...(finished ? { finished_at: "2025-03-01T10:40:00Z" } : {}),
    };
    writeFileSync(join(runDir, "run.json"), JSON.stringify(info));
  }
  mkdirSync(join(project, "results"));
  const examples = [
    {
      source: "The patient has a fever.",
      reference: "المريض يعاني من الحمى.",
      output: "<script>document.title='pwned'</script>",
      score: 12.5,
    },
    {
      source: "Take two tablets daily.",
      reference: "تناول قرصين يوميا.",
      output: "خذ قرصين كل يوم.",
      score: 48.2,
    },
  ];
  const write = (name: string, extra: object, bleu: number, chrf: number): void =>
    writeFileSync(
      join(project, "results", `${name}_results.json`),
      JSON.stringify({
        name,
        base_model: "Qwen/Qwen2.5-0.5B-Instruct",
        task: "translation",
        scores: { bleu, chrf },
        settings: { max_new_tokens: 128 },
        examples,
        ...extra,
      }),
    );
  write("med-ft_medical", { run: "med-ft", domain: "medical", adapter: "runs/med-ft/adapter" }, 31.2, 58.1);
  write("med-ft_legal", { run: "med-ft", domain: "legal", adapter: "runs/med-ft/adapter" }, 18.4, 45.3);
  write("legal-ft_legal", { run: "legal-ft", domain: "legal", adapter: "runs/legal-ft/adapter" }, 27.9, 52.6);
  write("base_medical", { domain: "medical" }, 21.0, 46.0);
  write("base_legal", { domain: "legal" }, 15.5, 41.0);
  return project;
}

function unescapeText(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&nbsp;/g, "\u00a0")
    .replace(/&amp;/g, "&");
}

function renderStatus(dom: string): RenderStatus {
  const m = /<output id="render-status"[^>]*>([^<]*)<\/output>/.exec(dom);
  assert.ok(m && m[1] !== "", "the page wrote its render status");
  return JSON.parse(unescapeText(m[1])) as RenderStatus;
}

function chartSpecs(html: string): ChartSpec[] {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m);
  return (JSON.parse(m[1]) as { charts: ChartSpec[] }).charts;
}

/** A copy of the report with an external image and a chart whose series has nothing left to draw. */
function sabotage(html: string): string {
  const charts = chartSpecs(html);
  const lr = charts.find((c) => c.id === "chart-lr")!;
  lr.datasets[0].points = lr.datasets[0].points!.map((p) => ({ x: p.x, y: null }));
  return html
    .replace(
      /(<script type="application\/json" id="report-data">)[\s\S]*?(<\/script>)/,
      `$1${jsonForScript({ charts })}$2`,
    )
    .replace("<main>", '<main><img src="http://127.0.0.1:9/tracker.png" alt="">');
}

test(
  "the report renders in headless Chromium: every chart draws, no error, no request",
  { timeout: 180_000 }, // a guard against a hung browser (each run has its own 60 s limit), not a time budget
  async (t) => {
    if (!chromium) {
      t.skip(CHROMIUM_MISSING);
      return;
    }
    const project = makeProject();
    const out = join(dir, "report.html");
    writeReport({ runDirs: findRunDirs(join(project, "runs")), out });
    const html = readFileSync(out, "utf8");
    const bad = join(dir, "sabotaged.html");
    writeFileSync(bad, sabotage(html));
    const png = join(dir, "report.png");

    const [dom, badDom] = await Promise.all([
      dumpDom(chromium, out),
      dumpDom(chromium, bad),
      screenshot(chromium, out, png, 1280, 2400),
    ]);

    // The good report: every chart, every series visible, nothing went wrong, nothing fetched.
    const specs = chartSpecs(html);
    assert.deepEqual(
      specs.map((s) => s.id),
      ["chart-loss", "chart-lr", "chart-task", "chart-score-0", "chart-score-1"],
    );
    const status = renderStatus(dom);
    assert.deepEqual(status.errors, []);
    assert.deepEqual(status.blocked, []);
    assert.equal(status.resources, 0);
    assert.equal(status.expected, specs.length);
    assert.equal(status.drawn, specs.length, JSON.stringify(status.charts));
    for (const spec of specs) {
      const chart = status.charts.find((c) => c.id === spec.id)!;
      assert.ok(chart.ok && chart.painted > 500, `${spec.id} drew: ${JSON.stringify(chart)}`);
      assert.deepEqual(
        chart.series.map((s) => s.label),
        spec.datasets.map((d) => d.label),
      );
      for (const s of chart.series) assert.ok(s.pixels > 20, `${spec.id} / ${s.label} has its own pixels`);
    }
    assert.match(dom, /<html[^>]* data-render="ok"/);
    assert.match(dom, /<div id="render-problems" class="banner" role="alert" hidden="">/);
    // The output holding a <script> stayed text: still only our four script elements, title untouched.
    assert.equal(dom.match(/<script\b/gi)?.length, 4);
    assert.match(dom, /<title>tuneforge report: legal-ft, med-ft<\/title>/);
    assert.ok(dom.includes("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));

    // The sabotaged copy: the check sees the undrawn series and the blocked image, and says so on the page.
    const badStatus = renderStatus(badDom);
    assert.equal(badStatus.drawn, specs.length - 1);
    const lr = badStatus.charts.find((c) => c.id === "chart-lr")!;
    assert.equal(lr.ok, false);
    assert.deepEqual(lr.missing, ["legal-ft"]);
    assert.ok(lr.series[1].label === "med-ft" && lr.series[1].pixels > 20, "the untouched series still drew");
    assert.ok(
      badStatus.blocked.some((b) => b.includes("127.0.0.1:9")),
      `CSP blocked the image: ${JSON.stringify(badStatus)}`,
    );
    assert.match(badDom, /<html[^>]* data-render="problems"/);
    assert.match(
      badDom,
      /<div id="render-problems" class="banner" role="alert">This report did not render fully: /,
    );

    // A real screenshot: a PNG of the window size, far bigger than a blank page compresses to.
    const bytes = readFileSync(png);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(bytes.subarray(12, 16).toString("ascii"), "IHDR");
    assert.equal(bytes.readUInt32BE(16), 1280);
    assert.equal(bytes.readUInt32BE(20), 2400);
    assert.ok(statSync(png).size > 60_000, `screenshot has content (${statSync(png).size} bytes)`);
  },
);
