// The Chart.js bundle, read from node_modules at build time and inlined so the report opens with no network.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { TuneforgeError } from "../../errors.js";

let cached: string | undefined;

/**
 * The UMD build of Chart.js (it registers every chart type and sets `window.Chart`), license comments kept.
 * The trailing sourceMappingURL comment is removed: the map is not shipped inside the report.
 */
export function chartJsSource(): string {
  if (cached !== undefined) return cached;
  let file: string;
  try {
    // The package exports only its entry points, so resolve the CommonJS entry and take its sibling.
    file = join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.js");
  } catch (e) {
    throw new TuneforgeError("the chart.js package is not installed", {
      hint: "run `npm install` in the tuneforge folder (chart.js is a dependency)",
      cause: e,
    });
  }
  const source = readFileSync(file, "utf8").replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n");
  // Inlined verbatim into <script>: either sequence would end or confuse the script element.
  if (/<\/script|<!--/i.test(source)) {
    throw new TuneforgeError("chart.js bundle cannot be inlined safely (it contains </script or <!--)", {
      file,
      hint: "reinstall chart.js (npm install chart.js@4)",
    });
  }
  cached = source;
  return source;
}
