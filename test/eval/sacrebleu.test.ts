// BLEU, chrF and chrF++ against numbers computed by sacreBLEU 2.6.0: the shared fixture (Arabic, English,
// Spanish, empty and one-word hypotheses, heavy punctuation) and test/eval/fixtures/sacrebleu_extra.json
// (random tricky corpora, several references, non-default options; see make_sacrebleu_extra.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { corpusBleu, sentenceBleu, type BleuOptions } from "../../src/eval/metrics/bleu.js";
import {
  corpusChrf,
  corpusChrfPlusPlus,
  sentenceChrf,
  sentenceChrfPlusPlus,
  type ChrfOptions,
} from "../../src/eval/metrics/chrf.js";
import { FIXTURES } from "../helpers/fixtures.js";

const TOL = 0.01;

function close(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= TOL, `${what}: got ${got}, sacreBLEU ${want}`);
}

interface SharedCase {
  name: string;
  hyp: string[];
  ref: string[];
}
interface SharedExpected {
  bleu: number;
  bleu_sig: string;
  bleu_bp: number;
  bleu_precisions: number[];
  chrf: number;
  chrfpp: number;
  sentence_bleu: number[];
  sentence_chrf: number[];
}

const shared = JSON.parse(readFileSync(resolve(FIXTURES, "metrics/cases.json"), "utf8")) as {
  cases: SharedCase[];
};
const sharedExpected = JSON.parse(
  readFileSync(resolve(FIXTURES, "metrics/sacrebleu_expected.json"), "utf8"),
) as {
  cases: Record<string, SharedExpected>;
};

for (const c of shared.cases) {
  const want = sharedExpected.cases[c.name];
  test(`shared fixture ${c.name}: corpus BLEU, chrF, chrF++ and signatures`, () => {
    const bleu = corpusBleu(c.hyp, c.ref);
    close(bleu.score, want.bleu, "BLEU");
    close(bleu.bp, want.bleu_bp, "BP");
    assert.equal(bleu.precisions.length, 4);
    bleu.precisions.forEach((p, i) => close(p, want.bleu_precisions[i], `precision ${i + 1}`));
    assert.equal(bleu.signature, want.bleu_sig);
    const chrf = corpusChrf(c.hyp, c.ref);
    close(chrf.score, want.chrf, "chrF");
    assert.equal(chrf.signature, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
    assert.equal(chrf.name, "chrF2");
    const chrfpp = corpusChrfPlusPlus(c.hyp, c.ref);
    close(chrfpp.score, want.chrfpp, "chrF++");
    assert.equal(chrfpp.signature, "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0");
    assert.equal(chrfpp.name, "chrF2++");
  });
  test(`shared fixture ${c.name}: sentence BLEU and chrF`, () => {
    c.hyp.forEach((h, i) => {
      const b = sentenceBleu(h, c.ref[i]);
      close(b.score, want.sentence_bleu[i], `sentence BLEU ${i}`);
      assert.equal(b.signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
      close(sentenceChrf(h, [c.ref[i]]).score, want.sentence_chrf[i], `sentence chrF ${i}`);
    });
  });
}

interface ExtraCase {
  hyps: string[];
  refs: (string | null)[][];
  bleu_opts: Record<string, unknown>;
  chrf_opts: Record<string, unknown>;
  bleu: {
    score: number;
    counts: number[];
    totals: number[];
    precisions: number[];
    bp: number;
    sys_len: number;
    ref_len: number;
    sig: string;
  };
  sentence_bleu: number[];
  chrf: number;
  chrf_sig: string;
  sentence_chrf: number[];
  chrfpp: number;
  chrfpp_sig: string;
  sentence_chrfpp: number[];
}

const extra = JSON.parse(
  readFileSync(resolve(import.meta.dirname, "fixtures/sacrebleu_extra.json"), "utf8"),
) as {
  cases: ExtraCase[];
};

// sacreBLEU's keyword arguments (smooth_method) as our option names (smoothMethod).
function camel<T>(o: Record<string, unknown>): T {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k.replace(/_(\w)/g, (_, ch: string) => ch.toUpperCase()), v]),
  ) as T;
}

test("extra sacreBLEU cases: corpus BLEU statistics, options and multi-reference signatures", () => {
  assert.equal(extra.cases.length, 40);
  extra.cases.forEach((c, ci) => {
    const got = corpusBleu(c.hyps, c.refs, camel<BleuOptions>(c.bleu_opts));
    const at = `case ${ci} ${JSON.stringify(c.bleu_opts)}`;
    close(got.score, c.bleu.score, `${at} BLEU`);
    close(got.bp, c.bleu.bp, `${at} BP`);
    assert.equal(got.sys_len, c.bleu.sys_len, at);
    assert.equal(got.ref_len, c.bleu.ref_len, at);
    assert.deepEqual(got.counts, c.bleu.counts, at);
    assert.deepEqual(got.totals, c.bleu.totals, at);
    got.precisions.forEach((p, i) => close(p, c.bleu.precisions[i], `${at} precision ${i + 1}`));
    assert.equal(got.signature, c.bleu.sig, at);
  });
});

test("extra sacreBLEU cases: sentence BLEU with several references", () => {
  extra.cases.forEach((c, ci) => {
    c.hyps.forEach((h, i) => {
      const refs = c.refs.map((s) => s[i]).filter((r): r is string => r !== null);
      close(
        sentenceBleu(h, refs, camel<BleuOptions>(c.bleu_opts)).score,
        c.sentence_bleu[i],
        `case ${ci} seg ${i}`,
      );
    });
  });
});

test("extra sacreBLEU cases: corpus and sentence chrF / chrF++ with options", () => {
  extra.cases.forEach((c, ci) => {
    const opts = camel<ChrfOptions>(c.chrf_opts);
    const at = `case ${ci} ${JSON.stringify(c.chrf_opts)}`;
    const chrf = corpusChrf(c.hyps, c.refs, opts);
    close(chrf.score, c.chrf, `${at} chrF`);
    assert.equal(chrf.signature, c.chrf_sig, at);
    const pp = corpusChrfPlusPlus(c.hyps, c.refs, opts);
    close(pp.score, c.chrfpp, `${at} chrF++`);
    assert.equal(pp.signature, c.chrfpp_sig, at);
    c.hyps.forEach((h, i) => {
      const refs = c.refs.map((s) => s[i]).filter((r): r is string => r !== null);
      close(sentenceChrf(h, refs, opts).score, c.sentence_chrf[i], `${at} sentence chrF ${i}`);
      close(sentenceChrfPlusPlus(h, refs, opts).score, c.sentence_chrfpp[i], `${at} sentence chrF++ ${i}`);
    });
  });
});
