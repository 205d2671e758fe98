// One measured prepare run (a separate process, so its peak RSS is its own): prints JSON.
import { configFromObject } from "../../src/config/load.js";
import { prepare } from "../../src/data/prepare.js";
import { Tokenizer } from "../../src/data/tokenizer.js";

const [csv, outDir, tokenize] = process.argv.slice(2);
const config = configFromObject({
  data: { inputs: [{ path: csv, domain: "bench" }], output_dir: outDir },
  training: { max_seq_length: 256 },
});
const tokenizer = await Tokenizer.fromModelDir();
const start = process.hrtime.bigint();
const result = await prepare({ config, tokenizer, tokenize: tokenize === "true", force: true });
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(
  JSON.stringify({
    seconds,
    rows: result.stats.rows_in,
    kept: result.stats.kept,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  }),
);
