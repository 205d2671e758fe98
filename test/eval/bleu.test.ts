// BLEU, chrF and the 13a tokenizer on cases small enough to check by hand, plus sacreBLEU's tokenizations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { corpusBleu, formatBleu, sentenceBleu } from "../../src/eval/metrics/bleu.js";
import { corpusChrf, sentenceChrf, splitEdgePunctuation } from "../../src/eval/metrics/chrf.js";
import { tokenize13a } from "../../src/eval/metrics/tokenize13a.js";
import { TuneforgeError } from "../../src/errors.js";

test("13a keeps numbers and hyphenated words whole and splits punctuation", () => {
  assert.equal(
    tokenize13a("Revenue: $3.5bn (up 12%) -- record high!"),
    "Revenue : $ 3.5bn ( up 12 % ) -- record high !",
  );
  assert.equal(tokenize13a("1,200 pesos, 1990-2000."), "1,200 pesos , 1990 - 2000 .");
  assert.equal(
    tokenize13a("e-mail me at info@example.com; thanks."),
    "e-mail me at info @ example . com ; thanks .",
  );
  assert.equal(tokenize13a("didn't"), "didn't");
});

test("13a unescapes XML entities and drops <skipped>, like mteval-v13a", () => {
  assert.equal(tokenize13a("say &quot;hi&quot; &amp; &lt;b&gt;"), 'say " hi " & < b >');
  assert.equal(tokenize13a("&amp;quot;"), "& quot ;");
  assert.equal(tokenize13a("a <skipped> b"), "a b");
});

test("13a tokenizations identical to sacreBLEU's on odd strings (Unicode whitespace, emoji, Arabic)", () => {
  const extra = JSON.parse(
    readFileSync(resolve(import.meta.dirname, "fixtures/sacrebleu_extra.json"), "utf8"),
  ) as {
    tokenize_13a: [string, string][];
  };
  assert.ok(extra.tokenize_13a.length > 100);
  for (const [input, want] of extra.tokenize_13a)
    assert.equal(tokenize13a(input), want, JSON.stringify(input));
});

test("identical sentences score 100; an empty hypothesis scores 0 with BP 0", () => {
  const same = sentenceBleu("the cat sat on the mat", "the cat sat on the mat");
  assert.ok(Math.abs(same.score - 100) < 1e-9);
  assert.deepEqual(same.counts, [6, 5, 4, 3]);
  const empty = corpusBleu([""], ["the cat sat"]);
  assert.equal(empty.score, 0);
  assert.equal(empty.bp, 0);
  assert.equal(empty.sys_len, 0);
  assert.equal(empty.ref_len, 3);
});

test("exp smoothing halves the pseudo-count for each further order without matches (hand computed)", () => {
  // hyp "a b c d" vs ref "a b x d": 1-grams 3/4, 2-grams 1/3, 3-grams 0/2 -> 100/(2*2), 4-grams 0/1 -> 100/(4*1).
  const s = sentenceBleu("a b c d", "a b x d");
  const want = Math.exp((Math.log(75) + Math.log(100 / 3) + Math.log(25) + Math.log(25)) / 4);
  assert.ok(Math.abs(s.score - want) < 1e-9, `${s.score} vs ${want}`);
  assert.deepEqual(s.precisions, [75, 100 / 3, 25, 25]);
});

test("sentence BLEU uses the effective order; corpus BLEU does not", () => {
  // Two tokens: no 3- or 4-grams. With the effective order, the mean is over orders 1 and 2 only.
  const sent = sentenceBleu("a b", "a b c");
  assert.ok(Math.abs(sent.score - 100 * Math.exp(1 - 3 / 2)) < 1e-9);
  assert.equal(corpusBleu(["a b"], ["a b c"]).score, 0);
});

test("several references: clipped by the max count in any one reference, closest length, shorter on ties", () => {
  const s = corpusBleu(["the the the"], [["the cat"], ["the the dog sat"]]);
  assert.equal(s.counts[0], 2);
  assert.equal(s.ref_len, 2); // |3-2| == |3-4|: the shorter wins
  assert.equal(s.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  const v = corpusBleu(
    ["a", "b"],
    [
      ["a", "b"],
      ["a x", null],
    ],
  );
  assert.match(v.signature, /^nrefs:var\|/);
  assert.match(
    formatBleu(v),
    /^BLEU = \d+\.\d\d [\d./]+ \(BP = 1\.000 ratio = 1\.000 hyp_len = 2 ref_len = 2\)$/,
  );
});

test("a reference stream of the wrong length is an error, not a silent truncation", () => {
  assert.throws(
    () => corpusBleu(["a", "b"], ["a"]),
    (e: unknown) => {
      assert.ok(e instanceof TuneforgeError);
      assert.match(e.message, /reference stream 1 has 1 segments but there are 2 hypotheses/);
      return true;
    },
  );
  assert.throws(() => corpusChrf([], []), TuneforgeError);
});

test("chrF++ word splitting moves one edge punctuation mark off each word, as sacreBLEU", () => {
  assert.deepEqual(splitEdgePunctuation("(hi) there, you! ¿qué"), [
    "(hi",
    ")",
    "there",
    ",",
    "you",
    "!",
    "¿qué",
  ]);
  assert.deepEqual(splitEdgePunctuation('"quoted word" .'), ['"', "quoted", "word", '"', "."]);
});

test("chrF ignores whitespace, counts characters as code points, and is 100 for a perfect match", () => {
  assert.equal(sentenceChrf("ab c", "a bc").score, 100);
  assert.equal(sentenceChrf("😀😀", "😀😀").score, 100);
  // hyp "ab" vs ref "abc": unigrams P 1, R 2/3; bigrams P 1, R 1/2; higher orders have no hyp n-grams.
  const P = 1;
  const R = (2 / 3 + 1 / 2) / 2;
  assert.ok(Math.abs(sentenceChrf("ab", "abc").score - (100 * 5 * P * R) / (4 * P + R)) < 1e-9);
  assert.equal(sentenceChrf("", "abc").score, 0);
});
