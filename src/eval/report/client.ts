// The report page's own CSS and scripts, inlined as text. Plain ES5-style JavaScript: it runs in whatever
// browser opens the file, with no build step.

/** Runs first, before Chart.js: collects every error and blocked request so the page can report them. */
export const ERROR_CAPTURE_SCRIPT = `
window.__tfErrors = [];
window.__tfBlocked = [];
window.addEventListener("error", function (e) {
  var where = e.target && e.target !== window && e.target.tagName ? " (" + e.target.tagName + ")" : "";
  window.__tfErrors.push(String(e.message || e.type) + where);
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__tfErrors.push("unhandled rejection: " + String(e.reason));
});
document.addEventListener("securitypolicyviolation", function (e) {
  window.__tfBlocked.push(e.violatedDirective + " " + e.blockedURI);
});
`;

/**
 * Draws every chart from the JSON data block, then checks that each one really drew: for every series that
 * should be visible it counts pixels of the series' colour inside the plot area (legend and axes excluded).
 * The outcome goes, as JSON, into #render-status (read by the headless-browser test) and any problem is
 * shown in a banner at the top for the reader.
 */
export const DRAW_SCRIPT = `
(function () {
  "use strict";
  var errors = window.__tfErrors;
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = [];

  function lineConfig(spec) {
    return {
      type: "line",
      data: {
        datasets: spec.datasets.map(function (d) {
          return {
            label: d.label,
            data: d.points,
            borderColor: d.color,
            backgroundColor: d.color,
            borderDash: d.dashed ? [6, 4] : [],
            borderWidth: 2,
            pointRadius: d.points.length > 40 ? 0 : 2.5,
            spanGaps: false
          };
        })
      },
      options: {
        scales: {
          x: { type: "linear", title: { display: true, text: spec.xLabel } },
          y: { title: { display: true, text: spec.yLabel } }
        }
      }
    };
  }

  function barConfig(spec) {
    return {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d) {
          return { label: d.label, data: d.values, backgroundColor: d.color, borderColor: d.color };
        })
      },
      options: {
        scales: {
          x: { title: { display: true, text: spec.xLabel } },
          y: { beginAtZero: true, title: { display: true, text: spec.yLabel } }
        }
      }
    };
  }

  data.charts.forEach(function (spec) {
    var canvas = document.getElementById(spec.id);
    try {
      var config = spec.type === "bar" ? barConfig(spec) : lineConfig(spec);
      config.options.animation = false;
      config.options.responsive = true;
      config.options.maintainAspectRatio = false;
      config.options.plugins = { legend: { position: "bottom" } };
      drawn.push({ spec: spec, chart: new Chart(canvas, config) });
    } catch (e) {
      errors.push(spec.id + ": " + (e && e.message ? e.message : String(e)));
    }
  });

  function rgb(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  function checkChart(entry) {
    var chart = entry.chart;
    var canvas = chart.canvas;
    var ratio = chart.currentDevicePixelRatio || 1;
    var area = chart.chartArea;
    var x0 = Math.max(0, Math.floor(area.left * ratio));
    var y0 = Math.max(0, Math.floor(area.top * ratio));
    var w = Math.min(canvas.width, Math.ceil(area.right * ratio)) - x0;
    var h = Math.min(canvas.height, Math.ceil(area.bottom * ratio)) - y0;
    var colors = entry.spec.datasets.map(function (d) { return rgb(d.color); });
    var counts = colors.map(function () { return 0; });
    var painted = 0;
    if (w > 0 && h > 0) {
      var px = canvas.getContext("2d").getImageData(x0, y0, w, h).data;
      for (var i = 0; i < px.length; i += 4) {
        if (px[i + 3] === 0) continue;
        painted++;
        if (px[i + 3] < 128) continue;
        for (var k = 0; k < colors.length; k++) {
          var c = colors[k];
          if (Math.abs(px[i] - c[0]) <= 6 && Math.abs(px[i + 1] - c[1]) <= 6 && Math.abs(px[i + 2] - c[2]) <= 6) {
            counts[k]++;
            break;
          }
        }
      }
    }
    var missing = [];
    entry.spec.datasets.forEach(function (d, k) {
      if (d.expectVisible && counts[k] === 0) missing.push(d.label);
    });
    return {
      id: entry.spec.id,
      width: canvas.width,
      height: canvas.height,
      painted: painted,
      series: entry.spec.datasets.map(function (d, k) { return { label: d.label, pixels: counts[k] }; }),
      ok: painted > 0 && missing.length === 0,
      missing: missing
    };
  }

  function report() {
    var charts = [];
    drawn.forEach(function (entry) {
      try {
        charts.push(checkChart(entry));
      } catch (e) {
        errors.push(entry.spec.id + " check: " + (e && e.message ? e.message : String(e)));
      }
    });
    var resources = performance.getEntriesByType ? performance.getEntriesByType("resource").length : -1;
    var status = {
      expected: data.charts.length,
      drawn: charts.filter(function (c) { return c.ok; }).length,
      charts: charts,
      errors: errors.slice(),
      blocked: window.__tfBlocked.slice(),
      resources: resources
    };
    document.getElementById("render-status").textContent = JSON.stringify(status);
    var problems = status.errors.concat(status.blocked);
    charts.forEach(function (c) {
      if (!c.ok) problems.push("chart " + c.id + " did not draw" + (c.missing.length ? ": " + c.missing.join(", ") : ""));
    });
    if (status.drawn !== status.expected && problems.length === 0) problems.push("not every chart was drawn");
    if (problems.length > 0) {
      var banner = document.getElementById("render-problems");
      banner.textContent = "This report did not render fully: " + problems.join("; ");
      banner.hidden = false;
    }
    document.documentElement.setAttribute("data-render", problems.length === 0 ? "ok" : "problems");
  }

  // After this task: Chart.js has drawn synchronously (animation off); layout-driven redraws are done too.
  window.setTimeout(report, 50);
})();
`;

export const REPORT_CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #dde1e8; --bg: #f6f7f9; --card: #fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", sans-serif;
  color: var(--fg); background: var(--bg); }
header { padding: 20px 28px 12px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
main { padding: 8px 28px 40px; max-width: 1400px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.banner { margin: 12px 0; padding: 10px 14px; border-radius: 6px; background: #fdecea; border: 1px solid #f5c2bd; }
.notes { margin: 12px 0; padding: 10px 14px 10px 30px; border-radius: 6px; background: #fff8e1; border: 1px solid #f3e1a6; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card h3 { margin: 0 0 6px; }
.chart-box { position: relative; height: 300px; }
.muted { color: var(--muted); }
.table-wrap { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: start; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; white-space: nowrap; }
td.num { text-align: end; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; min-width: 12em; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
`;
