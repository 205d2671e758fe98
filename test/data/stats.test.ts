import { test } from "node:test";
import assert from "node:assert/strict";
import { LengthHistogram, PrepareStats } from "../../src/data/stats.js";
import { createRng } from "../../src/data/random.js";

test("percentiles of 1..100 are the nearest-rank values", () => {
  const h = new LengthHistogram();
  for (const n of createRng(4).shuffle(Array.from({ length: 100 }, (_, i) => i + 1))) h.add(n);
  assert.deepEqual(h.toJSON(), { count: 100, mean: 50.5, p50: 50, p90: 90, p95: 95, p99: 99, max: 100 });
});

test("percentiles with repeated lengths and a long tail match a sorted-array reference", () => {
  const rng = createRng(9);
  const lengths = Array.from({ length: 5000 }, () =>
    rng.next() < 0.98 ? 20 + rng.int(30) : 400 + rng.int(100),
  );
  const h = new LengthHistogram();
  for (const n of lengths) h.add(n);
  const sorted = [...lengths].sort((a, b) => a - b);
  for (const p of [50, 90, 95, 99])
    assert.equal(h.percentile(p), sorted[Math.ceil((p / 100) * sorted.length) - 1]);
  assert.equal(h.max(), sorted[sorted.length - 1]);
  assert.ok(h.percentile(99) >= 400, "the tail shows in p99");
});

test("empty histogram reports zeros; invalid lengths are rejected", () => {
  assert.deepEqual(new LengthHistogram().toJSON(), {
    count: 0,
    mean: 0,
    p50: 0,
    p90: 0,
    p95: 0,
    p99: 0,
    max: 0,
  });
  assert.throws(() => new LengthHistogram().add(-1), RangeError);
  assert.throws(() => new LengthHistogram().add(1.5), RangeError);
});

test("stats count rows in, kept, dropped by reason, per domain and split, augmented and truncated", () => {
  const s = new PrepareStats();
  for (let i = 0; i < 10; i++) s.recordInput("tech");
  for (let i = 0; i < 4; i++) s.recordInput("econ");
  s.recordDrop("tech", "empty");
  s.recordDrop("tech", "duplicate");
  s.recordDrop("tech", "duplicate");
  s.recordDrop("econ", "near_duplicate");
  for (let i = 0; i < 5; i++) s.recordKept("tech", "train", { tokens: 10 + i, truncated: i === 4 });
  s.recordKept("tech", "train", { tokens: 30, augmented: true });
  s.recordKept("tech", "val", { tokens: 8 });
  s.recordKept("tech", "test", { tokens: 9 });
  for (let i = 0; i < 3; i++) s.recordKept("econ", "train");
  const j = s.toJSON();
  assert.equal(j.rows_in, 14);
  assert.equal(j.kept, 10);
  assert.deepEqual(j.dropped, { duplicate: 2, empty: 1, near_duplicate: 1 });
  assert.equal(j.augmented, 1);
  assert.equal(j.truncated, 1);
  assert.equal(j.rows_in, j.kept + Object.values(j.dropped).reduce((a, b) => a + (b ?? 0), 0));
  assert.deepEqual(Object.keys(j.domains), ["econ", "tech"]);
  assert.equal(j.domains.tech.kept, 7);
  assert.deepEqual(j.domains.tech.dropped, { duplicate: 2, empty: 1 });
  assert.deepEqual(j.domains.tech.splits.train, {
    rows: 6,
    augmented: 1,
    truncated: 1,
    tokens: { count: 6, mean: 15, p50: 12, p90: 30, p95: 30, p99: 30, max: 30 },
  });
  assert.equal(j.domains.tech.splits.val?.rows, 1);
  assert.equal(j.domains.econ.splits.train?.tokens.count, 0);
  assert.equal(j.domains.econ.splits.val, undefined);
  assert.deepEqual(j.tokens, { count: 8, mean: 13.38, p50: 11, p90: 30, p95: 30, p99: 30, max: 30 });
  // JSON round trip (what goes into stats.json).
  assert.deepEqual(JSON.parse(JSON.stringify(s)), j);
});
