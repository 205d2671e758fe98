// Exact match with and without normalisation, and perplexity from the mean loss.
import { test } from "node:test";
import assert from "node:assert/strict";
import { exactMatch, isExactMatch, normalizeForExact } from "../../src/eval/metrics/exact.js";
import { meanLossOverBatches, perplexity } from "../../src/eval/metrics/perplexity.js";
import { TuneforgeError } from "../../src/errors.js";

test("exact match trims but is otherwise strict by default", () => {
  assert.equal(isExactMatch("  Paris\n", "Paris"), true);
  assert.equal(isExactMatch("paris", "Paris"), false);
  assert.equal(isExactMatch("Paris.", "Paris"), false);
  assert.equal(isExactMatch("New  York", "New York"), false);
});

test("normalisation: case, whitespace runs, Unicode punctuation (Arabic too) and NFC", () => {
  assert.equal(normalizeForExact("  Hello,   WORLD! ", { normalize: true }), "hello world");
  assert.equal(isExactMatch("نعم؟", "نعم", { normalize: true }), true);
  assert.equal(isExactMatch("café", "cafe\u0301", { normalize: true }), true);
  assert.equal(isExactMatch("café", "cafe\u0301"), false);
  assert.equal(isExactMatch("PARIS", "paris", { lowercase: true }), true);
  assert.equal(isExactMatch("Paris.", "paris", { lowercase: true }), false);
});

test("corpus exact match: accuracy over segments, any reference may match", () => {
  const { score, matched } = exactMatch(
    ["yes", "No", "maybe"],
    [
      ["yes", "no", "perhaps"],
      [null, "No", "maybe"],
    ],
  );
  assert.deepEqual(matched, [true, true, true]);
  assert.equal(score.accuracy, 1);
  const single = exactMatch(["yes", "No", "maybe"], ["yes", "no", "perhaps"]);
  assert.deepEqual(single.matched, [true, false, false]);
  assert.equal(single.score.matches, 1);
  assert.equal(single.score.total, 3);
  assert.equal(single.score.accuracy, 1 / 3);
  assert.equal(single.score.signature, "nrefs:1|trim:yes|case:mixed|space:keep|punct:keep|nfc:no");
});

test("perplexity is exp(mean loss); the mean loss is token-weighted", () => {
  assert.ok(Math.abs(perplexity(Math.log(7)) - 7) < 1e-12);
  assert.equal(perplexity(0), 1);
  assert.equal(
    meanLossOverBatches([
      { loss: 1, tokens: 1 },
      { loss: 4, tokens: 3 },
    ]),
    13 / 4,
  );
  assert.throws(() => perplexity(Number.NaN), TuneforgeError);
  assert.throws(() => perplexity(-1), TuneforgeError);
  assert.throws(() => meanLossOverBatches([{ loss: 2, tokens: 0 }]), TuneforgeError);
});
