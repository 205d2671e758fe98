import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { TuneforgeError } from "../../src/errors.js";
import { normalizedKey } from "../../src/data/dedup.js";
import { createRng } from "../../src/data/random.js";
import {
  DEFAULT_SPLIT_RATIOS,
  splitForPoint,
  splitPoint,
  Splitter,
  validateSplitRatios,
} from "../../src/data/split.js";
import type { Example, Split } from "../../src/data/types.js";

function row(i: number, domain = "d"): Example {
  return {
    kind: "example",
    domain,
    source: { file: `${domain}.csv`, line: i + 2 },
    messages: [
      { role: "user", content: `Sentence number ${i} in ${domain}` },
      { role: "assistant", content: `الجملة رقم ${i}` },
    ],
  };
}

function counts(splitter: Splitter, rows: Example[]): Record<Split, number> {
  const c = { train: 0, val: 0, test: 0 };
  for (const r of rows) c[splitter.assign(r)]++;
  return c;
}

test("the split point is sha256(`${seed}\\0${normalised}`) read as a number in [0, 1)", () => {
  const ex = row(3);
  const digest = createHash("sha256")
    .update(`42\u0000${normalizedKey(ex)}`)
    .digest();
  assert.equal(splitPoint(ex, 42), digest.readUIntBE(0, 6) / 2 ** 48);
  assert.notEqual(splitPoint(ex, 42), splitPoint(ex, 43));
});

test("deterministic: same seed -> same splits across runs and in any row order", () => {
  const rows = Array.from({ length: 2000 }, (_, i) => row(i));
  const first = rows.map((r) => new Splitter(7).assign(r));
  const second = new Splitter(7);
  const shuffled = createRng(1).shuffle(rows.map((r, i) => ({ r, i })));
  for (const { r, i } of shuffled) assert.equal(second.assign(r), first[i]);
  const otherSeed = new Splitter(8);
  assert.ok(
    rows.some((r, i) => otherSeed.assign(r) !== first[i]),
    "a different seed gives a different split",
  );
});

test("ratios are honoured within a tolerance on 10k rows, in every domain", () => {
  const splitter = new Splitter(42);
  for (const domain of ["technology", "economic"]) {
    const c = counts(
      splitter,
      Array.from({ length: 10000 }, (_, i) => row(i, domain)),
    );
    assert.ok(Math.abs(c.train / 10000 - 0.8) < 0.015, `train ${c.train}`);
    assert.ok(Math.abs(c.val / 10000 - 0.1) < 0.015, `val ${c.val}`);
    assert.ok(Math.abs(c.test / 10000 - 0.1) < 0.015, `test ${c.test}`);
  }
  const custom = counts(
    new Splitter(42, { train: 0.5, val: 0, test: 0.5 }),
    Array.from({ length: 10000 }, (_, i) => row(i)),
  );
  assert.equal(custom.val, 0);
  assert.ok(Math.abs(custom.train / 10000 - 0.5) < 0.02, `train ${custom.train}`);
});

test("a ratio of 0 never receives a row, and 1 receives all", () => {
  const rows = Array.from({ length: 500 }, (_, i) => row(i));
  assert.deepEqual(counts(new Splitter(1, { train: 1, val: 0, test: 0 }), rows), {
    train: 500,
    val: 0,
    test: 0,
  });
  assert.deepEqual(counts(new Splitter(1, { train: 0, val: 0, test: 1 }), rows), {
    train: 0,
    val: 0,
    test: 500,
  });
  // Ratios that sum to a hair under 1 in floating point: the top of [0, 1) goes to the last non-zero split.
  const r = { train: 0.7, val: 0.3 - 1e-12, test: 0 };
  assert.equal(splitForPoint(0.9999999999999, r), "val");
  assert.equal(splitForPoint(0.69, r), "train");
  assert.equal(splitForPoint(0.7, DEFAULT_SPLIT_RATIOS), "train");
  assert.equal(splitForPoint(0.8, DEFAULT_SPLIT_RATIOS), "val");
  assert.equal(splitForPoint(0.9, DEFAULT_SPLIT_RATIOS), "test");
});

test("no leakage: exact and normalised duplicates always land in the same split", () => {
  const splitter = new Splitter(42);
  for (let i = 0; i < 300; i++) {
    const a = row(i);
    const near: Example = {
      ...a,
      source: { file: "other.csv", line: 9 },
      messages: a.messages.map((m) => ({ ...m, content: `  ${m.content.toUpperCase()}!! ` })),
    };
    assert.equal(splitter.assign(a), splitter.assign(structuredClone(a)));
    assert.equal(splitter.assign(a), splitter.assign(near));
  }
});

test("invalid ratios throw a TuneforgeError naming data.split", () => {
  const bad = [
    { train: 0.8, val: 0.1, test: 0.2 },
    { train: 1.2, val: -0.1, test: -0.1 },
    { train: Number.NaN, val: 0.5, test: 0.5 },
  ];
  for (const r of bad) {
    assert.throws(
      () => new Splitter(1, r),
      (e: unknown) =>
        e instanceof TuneforgeError && e.location.key === "data.split" && /data\.split/.test(e.message),
    );
  }
  assert.deepEqual(validateSplitRatios({ train: 0.7, val: 0.2, test: 0.1 }), {
    train: 0.7,
    val: 0.2,
    test: 0.1,
  });
});
