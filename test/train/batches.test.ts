// Batching: HF's step count, seeded epoch orders with length grouping, collation with right padding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/data/random.js";
import { chunk, collate, epochOrder, MEGABATCH_MULT, targetTokens } from "../../src/train/batches.js";
import { totalStepsFor } from "../../src/train/index.js";
import { makeConfig } from "./helpers.js";

test("total steps: ceil(micro-batches / accumulation) per epoch times epochs; max_steps wins", () => {
  const t = (training: Record<string, unknown>) => makeConfig({ training }).training;
  // 10 rows, batch 3 -> 4 micro-batches, accumulation 3 -> 2 steps per epoch
  assert.equal(
    totalStepsFor(
      10,
      t({ per_device_train_batch_size: 3, gradient_accumulation_steps: 3, num_train_epochs: 3 }),
    ),
    6,
  );
  assert.equal(
    totalStepsFor(
      10,
      t({ per_device_train_batch_size: 3, gradient_accumulation_steps: 3, num_train_epochs: 1.5 }),
    ),
    3,
  );
  assert.equal(totalStepsFor(10, t({ per_device_train_batch_size: 3, max_steps: 7 })), 7);
});

test("epoch orders are seeded permutations; length grouping sorts megabatches, longest row first", () => {
  const rng = createRng(5);
  const lengths = Array.from({ length: 2 * MEGABATCH_MULT * 2 + 7 }, () => 1 + rng.int(100));
  const plain = epochOrder(lengths, createRng(1), null);
  assert.deepEqual(epochOrder(lengths, createRng(1), null), plain);
  assert.notDeepEqual(epochOrder(lengths, createRng(2), null), plain);
  assert.deepEqual(
    [...plain].sort((a, b) => a - b),
    lengths.map((_, i) => i),
  );

  const grouped = epochOrder(lengths, createRng(1), 2);
  assert.deepEqual(
    [...grouped].sort((a, b) => a - b),
    lengths.map((_, i) => i),
  );
  assert.equal(lengths[grouped[0]], Math.max(...lengths));
  const mega = 2 * MEGABATCH_MULT;
  for (let m = 0; m < grouped.length; m += mega) {
    const part = grouped.slice(m, m + mega).slice(1); // the first may have been swapped with the longest
    for (let i = 1; i < part.length; i++) assert.ok(lengths[part[i - 1]] >= lengths[part[i]]);
  }
  // Same rows per megabatch as the plain permutation (grouping only reorders within each).
  const first = new Set(plain.slice(0, mega));
  const groupedFirst = grouped.slice(1, mega).filter((i) => first.has(i)).length;
  assert.ok(groupedFirst >= mega - 2);
  assert.deepEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
});

test("collate pads right with the pad id, masks padding and counts shifted targets", () => {
  const rows = [
    { ids: Int32Array.from([5, 6, 7, 8]), labels: Int32Array.from([-100, -100, 7, 8]) },
    { ids: Int32Array.from([9, 10]), labels: Int32Array.from([-100, 10]) },
  ];
  const b = collate(rows, 3);
  assert.equal(b.rows, 2);
  assert.deepEqual([...b.inputIds], [5, 6, 7, 8, 9, 10, 3, 3]);
  assert.deepEqual([...b.attentionMask!], [1, 1, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual([...b.labels!], [-100, -100, 7, 8, -100, 10, -100, -100]);
  assert.equal(b.segmentIds, undefined);
  assert.equal(targetTokens(rows[0]) + targetTokens(rows[1]), 3);
});
