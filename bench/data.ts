// `npm run bench:data`: CSV -> prepared JSONL throughput (rows/s, MB/s) with and without tokenization, and
// peak RSS at 100k and 1M generated rows. Memory must stay flat: the goal is RSS(1M) <= RSS(100k) + 64 MB.
// Each run is its own process so peak RSS is measured per run. `--sizes 10000,100000` picks other sizes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeBenchCsv } from "./data/make-csv.js";

const sizesArg = process.argv.indexOf("--sizes");
const sizes = sizesArg > 0 ? process.argv[sizesArg + 1].split(",").map(Number) : [100_000, 1_000_000];
const work = mkdtempSync(join(tmpdir(), "tf-bench-data-"));
const runs: Record<string, unknown>[] = [];
try {
  for (const rows of sizes) {
    const csv = join(work, `rows-${rows}.csv`);
    await writeBenchCsv(csv, rows);
    const mb = statSync(csv).size / 1e6;
    for (const tokenize of [false, true]) {
      const out = execFileSync(
        process.execPath,
        [
          "--import",
          "tsx",
          join(import.meta.dirname, "data/run-prepare.ts"),
          csv,
          join(work, `out-${rows}-${tokenize}`),
          String(tokenize),
        ],
        { encoding: "utf8", maxBuffer: 1 << 20 },
      );
      const r = JSON.parse(out.trim().split("\n").at(-1)!) as {
        seconds: number;
        rows: number;
        peak_rss_mb: number;
      };
      runs.push({
        rows,
        tokenize,
        input_mb: Number(mb.toFixed(1)),
        seconds: Number(r.seconds.toFixed(2)),
        rows_per_s: Math.round(r.rows / r.seconds),
        mb_per_s: Number((mb / r.seconds).toFixed(2)),
        peak_rss_mb: Math.round(r.peak_rss_mb),
      });
      rmSync(join(work, `out-${rows}-${tokenize}`), { recursive: true, force: true });
    }
    rmSync(csv, { force: true });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const rss = (rows: number, tokenize: boolean) =>
  (runs.find((r) => r.rows === rows && r.tokenize === tokenize)?.peak_rss_mb as number | undefined) ?? null;
const [small, large] = [Math.min(...sizes), Math.max(...sizes)];
const growth = [false, true].map((t) => {
  const a = rss(small, t);
  const b = rss(large, t);
  return { tokenize: t, rss_growth_mb: a !== null && b !== null ? b - a : null };
});
console.log(
  JSON.stringify(
    {
      benchmark: "data",
      runs,
      rss_growth: growth,
      goal: `peak RSS at ${large} rows <= peak RSS at ${small} rows + 64 MB`,
      goal_met: growth.every((g) => g.rss_growth_mb !== null && g.rss_growth_mb <= 64),
    },
    null,
    2,
  ),
);
