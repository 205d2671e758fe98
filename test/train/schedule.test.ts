import { test } from "node:test";
import assert from "node:assert/strict";
import { learningRateAt, warmupStepsFor } from "../../src/train/schedule.js";

test("warmup rises linearly from zero, as HF does", () => {
  const s = { type: "cosine" as const, baseLr: 2e-4, warmupSteps: 10, totalSteps: 100 };
  assert.equal(learningRateAt(s, 0), 0);
  assert.equal(learningRateAt(s, 5), 1e-4);
  assert.equal(learningRateAt(s, 10), 2e-4);
});

test("cosine decays to zero through the midpoint at half the base", () => {
  const s = { type: "cosine" as const, baseLr: 1, warmupSteps: 10, totalSteps: 110 };
  assert.ok(Math.abs(learningRateAt(s, 60) - 0.5) < 1e-12);
  assert.ok(Math.abs(learningRateAt(s, 110)) < 1e-12);
  assert.ok(learningRateAt(s, 30) > learningRateAt(s, 31));
});

test("linear and constant schedules", () => {
  const lin = { type: "linear" as const, baseLr: 1, warmupSteps: 0, totalSteps: 4 };
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => learningRateAt(lin, i)),
    [1, 0.75, 0.5, 0.25, 0],
  );
  const c = { type: "constant" as const, baseLr: 3, warmupSteps: 2, totalSteps: 10 };
  assert.deepEqual(
    [0, 1, 2, 9].map((i) => learningRateAt(c, i)),
    [0, 1.5, 3, 3],
  );
});

test("warmup steps round up like HF", () => {
  assert.equal(warmupStepsFor(95, 0.1), 10);
  assert.equal(warmupStepsFor(100, 0.1), 10);
  assert.equal(warmupStepsFor(100, 0), 0);
});
