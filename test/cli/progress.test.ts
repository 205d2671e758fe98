import { test } from "node:test";
import assert from "node:assert/strict";
import { createProgress, formatDuration } from "../../src/cli/progress.js";

test("formatDuration", () => {
  assert.equal(formatDuration(7), "7s");
  assert.equal(formatDuration(192), "3m12s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(NaN), "?");
});

test("without a TTY, progress prints plain lines with ETA and custom fields", () => {
  const written: string[] = [];
  let clock = 0;
  const p = createProgress({
    total: 100,
    label: "train",
    fields: ["loss", "lr"],
    stream: { isTTY: false, write: (s: string) => written.push(s) },
    logIntervalMs: 60_000,
    now: () => clock,
  });
  for (let step = 1; step <= 100; step++) {
    clock += 1000; // one second per step
    p.update(step, { loss: 2 / step, lr: 2e-4 });
  }
  p.stop();
  const lines = written.join("").trim().split("\n");
  // The first step, then one line per 10 %; no redraw control characters.
  assert.equal(lines.length, 11);
  assert.ok(
    !written.join("").includes("\r") && !written.join("").includes("\u001b"),
    "no control characters",
  );
  assert.equal(lines[0], "train 1/100 (1%) elapsed 1s eta 1m39s loss=2 lr=2.00e-4");
  assert.equal(lines[1], "train 10/100 (10%) elapsed 10s eta 1m30s loss=0.2 lr=2.00e-4");
  assert.equal(lines[10], "train 100/100 (100%) elapsed 1m40s eta 0s loss=0.02 lr=2.00e-4");
});

test("without a TTY, a slow step still logs after the interval and stop() prints the last state", () => {
  const written: string[] = [];
  let clock = 0;
  const p = createProgress({
    total: 1000,
    label: "tokenize",
    stream: { write: (s: string) => written.push(s) },
    logIntervalMs: 5000,
    now: () => clock,
  });
  p.increment(1); // first decile boundary (0 %) logs
  clock = 6000;
  p.increment(1); // interval passed
  clock = 6500;
  p.increment(1); // too soon, same decile
  p.stop();
  const lines = written.join("").trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.split(" ")[1]),
    ["1/1000", "2/1000", "3/1000"],
  );
});
