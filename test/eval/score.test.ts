// The file-based scorer: sacrebleu-CLI line reading, all metrics at once, several reference files, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readSegments, scoreFiles, scoreSegments } from "../../src/eval/score.js";
import { corpusBleu } from "../../src/eval/metrics/bleu.js";
import { TuneforgeError } from "../../src/errors.js";
import { FIXTURES } from "../helpers/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "tuneforge-score-"));
function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const cases = JSON.parse(readFileSync(resolve(FIXTURES, "metrics/cases.json"), "utf8")) as {
  cases: { name: string; hyp: string[]; ref: string[] }[];
};
const expected = JSON.parse(readFileSync(resolve(FIXTURES, "metrics/sacrebleu_expected.json"), "utf8")) as {
  cases: Record<
    string,
    { bleu: number; chrf: number; chrfpp: number; sentence_bleu: number[]; bleu_sig: string }
  >;
};

test("reads lines like the sacrebleu CLI: split on \\n, trailing whitespace and \\r stripped", () => {
  assert.deepEqual(readSegments(file("a.txt", "a\n\nb")), ["a", "", "b"]);
  assert.deepEqual(readSegments(file("b.txt", "a\r\n  b \t\n")), ["a", "  b"]);
  assert.deepEqual(readSegments(file("c.txt", "")), []);
  assert.deepEqual(readSegments(file("d.txt", "\n")), [""]);
});

test("scores files with every metric, matching sacreBLEU on the fixture (CRLF references)", () => {
  const c = cases.cases.find((x) => x.name === "ar_economic")!;
  const want = expected.cases[c.name];
  const hyp = file("ar.hyp", c.hyp.join("\n") + "\n");
  const ref = file("ar.ref", c.ref.join("\r\n") + "\r\n");
  const r = scoreFiles({ hyp, ref, metrics: ["bleu", "chrf", "chrf++", "exact"], perSegment: true });
  assert.equal(r.segments, 3);
  assert.ok(Math.abs(r.bleu!.score - want.bleu) <= 0.01);
  assert.ok(Math.abs(r.chrf!.score - want.chrf) <= 0.01);
  assert.ok(Math.abs(r.chrfpp!.score - want.chrfpp) <= 0.01);
  assert.equal(r.exact!.matches, 0);
  assert.equal(r.signature.bleu, want.bleu_sig);
  assert.equal(r.signature.chrf, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
  assert.equal(r.signature["chrf++"], "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0");
  assert.equal(r.json_f1, undefined);
  r.perSegment!.forEach((s, i) => assert.ok(Math.abs(s.bleu! - want.sentence_bleu[i]) <= 0.01));
});

test("several reference files are reference streams", () => {
  const hyp = file("m.hyp", "the cat sat\na dog\n");
  const r1 = file("m.ref1", "the cat sat down\nthe dog\n");
  const r2 = file("m.ref2", "a cat sat\na dog barked\n");
  const r = scoreFiles({ hyp, ref: [r1, r2], metrics: ["bleu"] });
  const direct = corpusBleu(
    ["the cat sat", "a dog"],
    [
      ["the cat sat down", "the dog"],
      ["a cat sat", "a dog barked"],
    ],
  );
  assert.equal(r.bleu!.score, direct.score);
  assert.deepEqual(r.bleu!.counts, direct.counts);
  assert.match(r.signature.bleu!, /^nrefs:2\|/);
});

test("JSON F1 and exact match from files, per segment", () => {
  const hyp = file("j.hyp", 'Result: ```json {"a": 1}``` done\noops\n');
  const ref = file("j.ref", '{"a": 1.0}\n{"b": 2}\n');
  const r = scoreFiles({ hyp, ref, metrics: ["json-f1", "exact"], perSegment: true });
  assert.equal(r.json_f1!.tp, 1);
  assert.equal(r.json_f1!.expected, 2);
  assert.equal(r.json_f1!.unparseable, 1);
  assert.deepEqual(
    r.perSegment!.map((s) => s.json_f1),
    [1, 0],
  );
  assert.deepEqual(
    r.perSegment!.map((s) => s.exact),
    [false, false],
  );
});

test("a line-count mismatch names both files and both counts", () => {
  const hyp = file("x.hyp", "one\ntwo\nthree\n");
  const ref = file("x.ref", "one\ntwo\n");
  assert.throws(
    () => scoreFiles({ hyp, ref, metrics: ["bleu"] }),
    (e: unknown) => {
      assert.ok(e instanceof TuneforgeError);
      assert.ok(e.message.includes(hyp), e.message);
      assert.ok(e.message.includes(ref), e.message);
      assert.match(e.message, /has 3 lines but the reference file .* has 2 lines/);
      assert.ok(e.hint);
      return true;
    },
  );
});

test("bad input: invalid UTF-8 names the line, unknown metric names the key, empty and missing files", () => {
  const bad = file("bad.hyp", Buffer.concat([Buffer.from("ok\n"), Buffer.from([0x61, 0xff, 0x62, 0x0a])]));
  assert.throws(
    () => readSegments(bad),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === bad && e.location.line === 2,
  );
  assert.throws(
    () => scoreSegments({ hyps: ["a"], refs: ["a"], metrics: ["rouge" as "bleu"] }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "metrics",
  );
  const empty = file("empty.hyp", "");
  assert.throws(() => scoreFiles({ hyp: empty, ref: empty, metrics: ["bleu"] }), /hypothesis file is empty/);
  assert.throws(
    () => scoreFiles({ hyp: join(dir, "nope.txt"), ref: empty, metrics: ["bleu"] }),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === join(dir, "nope.txt"),
  );
});

test("scoreSegments works on arrays in memory", () => {
  const r = scoreSegments({ hyps: ["a b c d"], refs: ["a b c d"], metrics: ["bleu", "exact"] });
  assert.ok(Math.abs(r.bleu!.score - 100) < 1e-9);
  assert.equal(r.exact!.accuracy, 1);
  assert.throws(() => scoreSegments({ hyps: ["a", "b"], refs: ["a"], metrics: ["exact"] }), TuneforgeError);
});
