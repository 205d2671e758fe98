// The report model -> one self-contained HTML document. Every piece of text from the inputs goes through
// escapeHtml (or jsonForScript for the chart data); table cells holding free text get dir="auto" so
// right-to-left outputs (Arabic, Hebrew) read correctly next to left-to-right ones.
import { DRAW_SCRIPT, ERROR_CAPTURE_SCRIPT, REPORT_CSS } from "./client.js";
import { escapeHtml, jsonForScript } from "./html.js";
import {
  scoreTitle,
  type ChartSpec,
  type ReportModel,
  type ResultsSummary,
  type RunSummary,
} from "./model.js";

/**
 * Nothing may be fetched: scripts and styles are inline, everything else is refused by the browser itself
 * (a stray URL in the page fails closed instead of leaking a request).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** Compact display of a number: 4 significant digits, no trailing zeros ("0.0002", "2.31", "850"). */
export function formatNumber(v: number | null | undefined): string {
  if (v === undefined) return "";
  if (v === null || !Number.isFinite(v)) return "n/a";
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}

function formatDuration(s: number | undefined): string {
  if (s === undefined) return "";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h > 0 ? `${h}h ${m}m ${sec}s` : m > 0 ? `${m}m ${sec}s` : `${sec}s`;
}

const e = escapeHtml;
const num = (v: number | null | undefined): string => `<td class="num">${e(formatNumber(v))}</td>`;
const text = (v: string | undefined): string => `<td class="text" dir="auto">${e(v ?? "")}</td>`;

function chartCard(spec: ChartSpec): string {
  const note = spec.note ? ` <span class="muted">(${e(spec.note)})</span>` : "";
  return (
    `<div class="card"><h3>${e(spec.title)}${note}</h3>` +
    `<div class="chart-box"><canvas id="${e(spec.id)}" role="img" aria-label="${e(spec.title)}"></canvas></div></div>`
  );
}

function finalNumbersTable(runs: ReadonlyArray<RunSummary>): string {
  const head = [
    "run",
    "base model",
    "domain",
    "last step",
    "epoch",
    "first loss",
    "final loss",
    "final val loss",
    "best val loss (step)",
    "final lr",
    "task metrics (last / best @ step)",
    "tokens/s (mean)",
    "peak memory MB",
    "duration",
    "status",
  ];
  const rows = runs.map((r) => {
    const best = r.bestValLoss ? `${formatNumber(r.bestValLoss.value)} (${r.bestValLoss.step})` : "";
    const task = r.taskMetrics
      .map((t) => `${t.metric}: ${formatNumber(t.last)} / ${formatNumber(t.best)} @ ${t.bestStep}`)
      .join("\n");
    const status = r.finishedAt ? "finished" : r.startedAt ? "not finished" : "unknown (no run.json)";
    return (
      `<tr>${text(r.name)}${text(r.baseModel)}${text(r.domain)}${num(r.lastStep)}${num(r.lastEpoch)}` +
      `${num(r.firstLoss)}${num(r.finalLoss)}${num(r.finalValLoss)}<td class="num">${e(best)}</td>` +
      `${num(r.finalLr)}${text(task)}${num(r.meanTokensPerS === undefined ? undefined : Math.round(r.meanTokensPerS))}` +
      `${num(r.peakMemoryMb)}<td class="num">${e(formatDuration(r.durationS))}</td>${text(status)}</tr>`
    );
  });
  return table(head, rows);
}

function table(head: string[], rows: string[]): string {
  return (
    `<div class="table-wrap"><table><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table></div>`
  );
}

function settingsBlock(title: string, rows: ReadonlyArray<[string, string]>, open: boolean): string {
  if (rows.length === 0) return "";
  const body = rows.map(([k, v]) => `<tr><td class="mono">${e(k)}</td>${text(v)}</tr>`);
  return `<details${open ? " open" : ""}><summary>${e(title)}</summary>${table(["setting", "value"], body)}</details>`;
}

function scoresTable(results: ReadonlyArray<ResultsSummary>, keys: ReadonlyArray<string>): string {
  const head = ["model", "results", "domain", "task", "adapter", ...keys.map(scoreTitle), "examples"];
  const rows = results.map(
    (r) =>
      `<tr>${text(r.label)}${text(r.file)}${text(r.domain)}${text(r.task)}${text(r.adapter ?? "(base model)")}` +
      keys.map((k) => (k in r.scores ? num(r.scores[k]) : "<td></td>")).join("") +
      `${num(r.examplesTotal)}</tr>`,
  );
  return table(head, rows);
}

function examplesSection(r: ResultsSummary): string {
  const shown =
    r.examples.length < r.examplesTotal
      ? `<p class="muted">Showing the first ${r.examples.length} of ${r.examplesTotal} examples.</p>`
      : "";
  const rows = r.examples.map(
    (x, i) =>
      `<tr>${num(i + 1)}${text(x.source)}${text(x.reference)}${text(x.output)}${num(x.score ?? undefined)}</tr>`,
  );
  const signature = r.signature ? `<p class="muted mono">${e(r.signature)}</p>` : "";
  return (
    `<h3>${e(r.label)}: ${e(r.domain)} <span class="muted">(${e(r.file)})</span></h3>${signature}${shown}` +
    (rows.length > 0
      ? table(["#", "source", "reference", "output", "score"], rows)
      : `<p class="muted">No examples.</p>`) +
    settingsBlock(`evaluation settings: ${r.name}`, r.settings, false)
  );
}

export function renderReportHtml(model: ReportModel, chartJs: string): string {
  const charts = [...model.trainingCharts, ...model.scoreCharts];
  const notes =
    model.notes.length > 0
      ? `<ul class="notes">${model.notes.map((n) => `<li>${e(n)}</li>`).join("")}</ul>`
      : "";
  const training =
    model.trainingCharts.length > 0
      ? `<div class="charts">${model.trainingCharts.map(chartCard).join("")}</div>`
      : `<p class="muted">Nothing logged to chart yet.</p>`;
  const scores =
    model.results.length > 0
      ? `<div class="charts">${model.scoreCharts.map(chartCard).join("")}</div>` +
        `<h3>All scores</h3>${scoresTable(model.results, model.scoreKeys)}`
      : `<p class="muted">No evaluation results found for these runs (run <code>tuneforge eval</code>).</p>`;
  const examples = model.results
    .filter((r) => r.examplesTotal > 0)
    .map(examplesSection)
    .join("");
  const settings = model.runs
    .map((r) => settingsBlock(`run settings: ${r.name}`, r.settings, model.runs.length === 1))
    .join("");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="tuneforge">
<title>${e(model.title)}</title>
<style>${REPORT_CSS}</style>
<script>${ERROR_CAPTURE_SCRIPT}</script>
</head>
<body>
<header><h1>${e(model.title)}</h1><p>Generated ${e(model.generatedAt)}</p></header>
<main>
<div id="render-problems" class="banner" role="alert" hidden></div>
${notes}
<h2>Final numbers</h2>
${finalNumbersTable(model.runs)}
<h2>Training</h2>
${training}
<h2>Scores by domain</h2>
${scores}
${examples ? `<h2>Examples</h2>${examples}` : ""}
${settings ? `<h2>Run settings</h2>${settings}` : ""}
</main>
<output id="render-status" hidden></output>
<script type="application/json" id="report-data">${jsonForScript({ charts })}</script>
<script>${chartJs}</script>
<script>${DRAW_SCRIPT}</script>
</body>
</html>
`;
}
