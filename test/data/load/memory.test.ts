import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadRows } from "../../../src/data/load/index.js";
import type { Example } from "../../../src/data/types.js";
import { tempDir } from "./helpers.js";

// A forced GC makes heap readings measure what is retained, not garbage not yet collected.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const ROWS = 200_000;

test("a ~200k-row CSV streams with memory far below the file size", async () => {
  const file = join(tempDir(), "big.csv");
  const fd = openSync(file, "w");
  writeSync(fd, "id,english,arabic\n");
  let batch = "";
  for (let i = 1; i <= ROWS; i++) {
    batch += `${i},"Row ${i}: the quick brown fox, once more",مرحبا ${i} بكم في الاختبار\n`;
    if (i % 10_000 === 0) {
      writeSync(fd, batch);
      batch = "";
    }
  }
  closeSync(fd);
  const fileSize = statSync(file).size;
  assert.ok(fileSize > 18_000_000, `file is only ${fileSize} bytes`);

  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers; // a Buffer holding the file would show in arrayBuffers
  };
  gc();
  const baseline = used();
  const samples: number[] = [];
  let count = 0;
  let last: Example | undefined;
  for await (const row of loadRows({ path: file })) {
    count++;
    last = row as Example;
    if (count % 40_000 === 0) {
      gc();
      samples.push(used() - baseline);
    }
  }
  assert.equal(count, ROWS);
  assert.equal(last!.source.line, ROWS + 1);
  assert.equal(last!.messages[0].content, `Row ${ROWS}: the quick brown fox, once more`);
  assert.equal(last!.messages[1].content, `مرحبا ${ROWS} بكم في الاختبار`);
  // Holding the file (as text or bytes) would retain more than the file size; a few MB of read-ahead,
  // batches and compiled code is what streaming costs.
  const peak = Math.max(...samples);
  assert.ok(peak < fileSize / 4, `retained ${peak} bytes while streaming a ${fileSize}-byte file`);
  // And nothing accumulates row by row: late readings are no higher than early ones.
  const growth = Math.max(...samples.slice(1)) - samples[0];
  assert.ok(
    growth < fileSize / 10,
    `retained memory grew by ${growth} bytes while streaming (${samples.join(", ")})`,
  );
});
