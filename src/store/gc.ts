// A full garbage collection on request, for long streaming jobs. V8 lets the old generation grow between its
// own major collections in proportion to the allocation rate, so a million-row `prepare` would reach a higher
// peak RSS than a 100k-row one although what it keeps alive is flat; a collection every N rows keeps the peak
// flat too. Costs tens of milliseconds each time, against tens of seconds of work between two.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (!gc) {
    // The documented way to reach V8's gc() without starting node with --expose-gc.
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  gc();
}
