// Train/val/test assignment in one pass: each row's split is a pure function of (seed, normalised example),
// so it is the same on every machine, in any row order, and duplicates (same normalised form) always share
// a split — no leakage of a training row into val/test through a near-copy.
import { TuneforgeError } from "../errors.js";
import { normalizedKey } from "./dedup.js";
import { unitHash } from "./hash.js";
import type { Example, Split } from "./types.js";

export interface SplitRatios {
  train: number;
  val: number;
  test: number;
}

export const DEFAULT_SPLIT_RATIOS: Readonly<SplitRatios> = Object.freeze({ train: 0.8, val: 0.1, test: 0.1 });

const SPLITS: readonly Split[] = ["train", "val", "test"];

/** Checks that every ratio is in [0, 1] and they sum to 1 (within 1e-9); returns them. */
export function validateSplitRatios(r: SplitRatios): SplitRatios {
  for (const s of SPLITS) {
    const v = r[s];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1) {
      throw new TuneforgeError(`split ratio ${s} must be a number between 0 and 1, got ${String(v)}`, {
        key: `data.split`,
        hint: `set data.split.${s} to a value in [0, 1], e.g. train: 0.8, val: 0.1, test: 0.1`,
      });
    }
  }
  const sum = r.train + r.val + r.test;
  if (Math.abs(sum - 1) > 1e-9) {
    throw new TuneforgeError(
      `split ratios must sum to 1, got train ${r.train} + val ${r.val} + test ${r.test} = ${sum}`,
      { key: "data.split", hint: "adjust data.split.train/val/test so they add up to 1 (e.g. 0.8/0.1/0.1)" },
    );
  }
  return { train: r.train, val: r.val, test: r.test };
}

/** The row's point in [0, 1): SHA-256 of `${seed}\0${normalised example}`. */
export function splitPoint(ex: Example, seed: number): number {
  return unitHash(`${seed}\u0000${normalizedKey(ex)}`);
}

/** The split that owns `point` for these ratios; a split with ratio 0 never gets a row. */
export function splitForPoint(point: number, r: SplitRatios): Split {
  let upTo = 0;
  let last: Split = "train";
  for (const s of SPLITS) {
    if (r[s] <= 0) continue;
    upTo += r[s];
    last = s;
    if (point < upTo) return s;
  }
  // Only reachable when the ratios sum to a hair under 1 in floating point.
  return last;
}

/**
 * Assigns splits with validated ratios and a fixed seed. Ratios apply within each domain by construction:
 * each row's split is an independent, uniform draw, so every domain gets ~train/val/test of its own rows.
 */
export class Splitter {
  readonly ratios: SplitRatios;

  constructor(
    readonly seed: number,
    ratios: SplitRatios = DEFAULT_SPLIT_RATIOS,
  ) {
    this.ratios = validateSplitRatios(ratios);
  }

  assign(ex: Example): Split {
    return splitForPoint(splitPoint(ex, this.seed), this.ratios);
  }
}
