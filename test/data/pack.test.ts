import { test } from "node:test";
import assert from "node:assert/strict";
import { Packer, packRows, type PackableRow } from "../../src/data/pack.js";
import { IGNORE_INDEX } from "../../src/data/render.js";
import { createRng } from "../../src/data/random.js";

interface Row extends PackableRow {
  id: number;
}

/** A row whose ids encode its own id and position, so any mix-up shows; prompts masked with -100. */
function row(id: number, length: number, promptLength = 0): Row {
  const input_ids = Array.from({ length }, (_, i) => id * 1000 + i);
  const labels = input_ids.map((v, i) => (i < promptLength ? IGNORE_INDEX : v));
  return { id, input_ids, labels };
}

test("next-fit with one open pack: exact packs and boundaries", () => {
  const rows = [row(1, 6), row(2, 5), row(3, 4), row(4, 3)];
  const packs = packRows(rows, { maxSeqLength: 10, openPacks: 1 });
  assert.deepEqual(
    packs.map((p) => [p.rows.map((r) => r.id), p.boundaries]),
    [
      [[1], [0]],
      [
        [2, 3],
        [0, 5],
      ],
      [[4], [0]],
    ],
  );
  assert.deepEqual(packs[1].input_ids, [...rows[1].input_ids, ...rows[2].input_ids]);
});

test("first-fit over open packs fills gaps; a pack that is exactly full is emitted at once", () => {
  const packer = new Packer<Row>({ maxSeqLength: 10, openPacks: 2 });
  assert.deepEqual(packer.add(row(1, 6)), []);
  assert.deepEqual(packer.add(row(2, 5)), []);
  const full = packer.add(row(3, 4));
  assert.equal(full.length, 1);
  assert.deepEqual(
    full[0].rows.map((r) => r.id),
    [1, 3],
  );
  assert.deepEqual(full[0].boundaries, [0, 6]);
  assert.deepEqual(packer.add(row(4, 3)), []);
  assert.deepEqual(packer.add(row(5, 9)), []);
  // A third pack is needed: the fullest open one (9 of 10) is closed to make room.
  const closed = packer.add(row(6, 9));
  assert.deepEqual(
    closed.map((p) => p.rows.map((r) => r.id)),
    [[5]],
  );
  const rest = packer.flush();
  assert.deepEqual(
    rest.map((p) => p.rows.map((r) => r.id)),
    [[2, 4], [6]],
  );
  assert.deepEqual(packer.flush(), []);
});

test("labels keep their masks, and each example's first token is never a target across examples", () => {
  const rows = [row(1, 4, 2), row(2, 3, 0), row(3, 3, 1)];
  const [pack] = packRows(rows, { maxSeqLength: 16 });
  assert.deepEqual(pack.boundaries, [0, 4, 7]);
  assert.deepEqual(pack.labels, [-100, -100, 1002, 1003, -100, 2001, 2002, -100, 3001, 3002]);
  assert.deepEqual(rows[1].labels, [2000, 2001, 2002], "the input rows are not modified");
});

test("random stream: no pack over the limit, every row once, boundaries match the rows", () => {
  const rng = createRng(7);
  const max = 64;
  const rows = Array.from({ length: 500 }, (_, id) => {
    const length = 1 + Math.floor(rng.next() * max);
    return row(id, length, Math.floor(rng.next() * length));
  });
  const packs = packRows(rows, { maxSeqLength: max });
  const seen: number[] = [];
  let used = 0;
  for (const p of packs) {
    assert.ok(p.input_ids.length <= max);
    assert.equal(p.labels.length, p.input_ids.length);
    assert.equal(p.boundaries.length, p.rows.length);
    used += p.input_ids.length;
    p.rows.forEach((r, k) => {
      seen.push(r.id);
      const start = p.boundaries[k];
      const end = k + 1 < p.rows.length ? p.boundaries[k + 1] : p.input_ids.length;
      assert.deepEqual(p.input_ids.slice(start, end), r.input_ids);
      assert.deepEqual(p.labels.slice(start + 1, end), r.labels.slice(1));
      assert.equal(p.labels[start], IGNORE_INDEX);
    });
  }
  assert.deepEqual(
    seen.sort((a, b) => a - b),
    rows.map((r) => r.id),
  );
  // First-fit over 8 open packs keeps padding low on uniform lengths.
  assert.ok(used / (packs.length * max) > 0.85, `fill ${used / (packs.length * max)}`);
});

test("rows longer than the limit or with mismatched labels are refused; empty rows vanish", () => {
  const packer = new Packer({ maxSeqLength: 4 });
  assert.throws(() => packer.add(row(1, 5)), RangeError);
  assert.throws(() => packer.add({ input_ids: [1, 2], labels: [1] }), RangeError);
  assert.deepEqual(packer.add(row(2, 0)), []);
  assert.deepEqual(packer.flush(), []);
  assert.throws(() => new Packer({ maxSeqLength: 0 }), RangeError);
});
