// `tuneforge score`: score any outputs against references, one segment per line, like the sacrebleu CLI.
import { Option, type Command } from "commander";
import { METRIC_NAMES, scoreFiles, type MetricName, type ScoreReport } from "../../eval/score.js";
import type { CliContext } from "../main.js";

export function registerScore(program: Command, ctx: CliContext): void {
  program
    .command("score")
    .description(
      "Score hypotheses against references (BLEU, chrF, chrF++ as sacreBLEU 2.x; JSON field F1; exact match)",
    )
    .requiredOption("--hyp <file>", "model outputs, one segment per line")
    .requiredOption(
      "--ref <files...>",
      "references, one segment per line (several files: several references)",
    )
    .addOption(
      new Option("-m, --metrics <names>", `comma-separated: ${METRIC_NAMES.join(", ")}`).default("bleu,chrf"),
    )
    .option("--json", "print one JSON object {bleu, chrf, chrfpp, json_f1, exact, signature}", false)
    .addHelpText(
      "after",
      `
Scores: bleu, chrf, chrf++ are 0-100 (sacreBLEU defaults: 13a tokenization, exp smoothing; chrF order 6,
beta 2; chrF++ word order 2); json-f1 and exact are 0-1 (json-f1 micro-averages key/value pairs of the first
JSON object in each output; unparseable outputs are counted separately).

Examples:
  $ tuneforge score --hyp outputs.txt --ref reference.txt
  $ tuneforge score --hyp outputs.txt --ref ref1.txt ref2.txt --metrics bleu,chrf,chrf++ --json
  $ tuneforge score --hyp predictions.jsonl --ref gold.jsonl --metrics json-f1,exact`,
    )
    .action((opts: { hyp: string; ref: string[]; metrics: string; json: boolean }) => {
      const metrics = opts.metrics.split(",").map((m) => m.trim()) as MetricName[];
      const report = scoreFiles({ hyp: opts.hyp, ref: opts.ref, metrics });
      if (opts.json) ctx.out(JSON.stringify(scoreSummary(report)));
      else for (const line of scoreLines(report)) ctx.out(line);
    });
}

/** The headline number of each metric computed, with the signatures: what `--json` prints. */
export function scoreSummary(r: ScoreReport): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.bleu) out.bleu = r.bleu.score;
  if (r.chrf) out.chrf = r.chrf.score;
  if (r.chrfpp) out.chrfpp = r.chrfpp.score;
  if (r.json_f1) out.json_f1 = r.json_f1.f1;
  if (r.exact) out.exact = r.exact.accuracy;
  out.signature = r.signature;
  return out;
}

function scoreLines(r: ScoreReport): string[] {
  const lines: string[] = [];
  const fmt = (x: number, d = 2) => x.toFixed(d);
  if (r.bleu) {
    const b = r.bleu;
    lines.push(
      `BLEU = ${fmt(b.score)} ${b.precisions.map((p) => fmt(p, 1)).join("/")} (BP = ${fmt(b.bp, 3)} ratio = ${fmt(b.ratio, 3)} hyp_len = ${b.sys_len} ref_len = ${b.ref_len})  ${b.signature}`,
    );
  }
  if (r.chrf) lines.push(`chrF2 = ${fmt(r.chrf.score)}  ${r.chrf.signature}`);
  if (r.chrfpp) lines.push(`chrF2++ = ${fmt(r.chrfpp.score)}  ${r.chrfpp.signature}`);
  if (r.json_f1) {
    const j = r.json_f1;
    lines.push(
      `JSON field F1 = ${fmt(j.f1, 4)} (P ${fmt(j.precision, 4)} R ${fmt(j.recall, 4)}; unparseable ${j.unparseable}/${j.examples})`,
    );
  }
  if (r.exact) lines.push(`exact match = ${fmt(r.exact.accuracy, 4)} (${r.exact.matches}/${r.exact.total})`);
  lines.push(`${r.segments} segments`);
  return lines;
}
