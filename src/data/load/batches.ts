// Reads a stream's objects in batches (all that is buffered), so the per-object work stays synchronous:
// a promise per row is what dominates loading time otherwise (and far more so under async hooks).
import type { Readable } from "node:stream";

const MAX_BATCH = 1024;

/** Yields the stream's objects in arrays, in order; a stream error is thrown after the objects before it. */
export async function* batches<T>(stream: Readable): AsyncGenerator<T[]> {
  let queue: T[] = [];
  let ended = false;
  let failed = false;
  let failure: unknown;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  stream.on("data", (item: T) => {
    queue.push(item);
    if (queue.length >= MAX_BATCH) stream.pause(); // backpressure until the batch is taken
    notify();
  });
  stream.on("end", () => {
    ended = true;
    notify();
  });
  stream.on("error", (e) => {
    failed = true;
    failure = e;
    notify();
  });
  stream.on("close", () => {
    if (!ended && !failed) {
      failed = true;
      failure = new Error("the stream closed before its end");
    }
    notify();
  });
  try {
    for (;;) {
      if (queue.length > 0) {
        const batch = queue;
        queue = [];
        if (stream.isPaused()) stream.resume();
        yield batch;
        continue;
      }
      if (failed) throw failure;
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.destroy();
  }
}
