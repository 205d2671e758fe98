// Turning rows into engine batches: the seeded order of an epoch (optionally length-grouped, as HF's
// LengthGroupedSampler) and the collation of a micro-batch (right padding, packed rows as segments).
import type { Batch } from "../engine/types.js";
import type { Rng } from "../data/random.js";
import { IGNORE_INDEX } from "../data/render.js";
import type { TrainRow } from "./data.js";

/** HF's LengthGroupedSampler groups 50 batches' worth of rows at a time (mega_batch_mult). */
export const MEGABATCH_MULT = 50;

/**
 * The row order of one epoch, drawn from `rng`. With `groupBatch`, HF's length grouping: a random permutation
 * cut into megabatches of 50 x groupBatch rows, each sorted longest first (so a batch holds rows of similar
 * length and little padding), with the longest row of all moved to the front so memory peaks on step one.
 */
export function epochOrder(lengths: readonly number[], rng: Rng, groupBatch: number | null): number[] {
  const perm = rng.shuffle(lengths.map((_, i) => i));
  if (!groupBatch) return perm;
  const size = MEGABATCH_MULT * groupBatch;
  const megas: number[][] = [];
  for (let i = 0; i < perm.length; i += size) {
    // Stable sort: ties keep their random order.
    megas.push(perm.slice(i, i + size).sort((a, b) => lengths[b] - lengths[a]));
  }
  let maxMega = 0;
  for (let m = 1; m < megas.length; m++) if (lengths[megas[m][0]] > lengths[megas[maxMega][0]]) maxMega = m;
  [megas[0][0], megas[maxMega][0]] = [megas[maxMega][0], megas[0][0]];
  return megas.flat();
}

/** Consecutive chunks of `size` (the last may be shorter, as a DataLoader without drop_last gives). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Shifted target tokens of a row: label t+1 counts when it is not -100 (packing masks example starts). */
export function targetTokens(row: TrainRow): number {
  let n = 0;
  for (let t = 1; t < row.labels.length; t++) if (row.labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * One engine batch from rows: right-padded to the longest with `padId` (mask 0, label -100); a packed row's
 * examples become segments, so attention stays inside each and positions restart at each.
 */
export function collate(rows: readonly TrainRow[], padId: number): Batch {
  const T = Math.max(...rows.map((r) => r.ids.length));
  const n = rows.length * T;
  const inputIds = new Int32Array(n).fill(padId);
  const attentionMask = new Int32Array(n);
  const labels = new Int32Array(n).fill(IGNORE_INDEX);
  const packed = rows.some((r) => r.boundaries && r.boundaries.length > 1);
  const segmentIds = packed ? new Int32Array(n).fill(-1) : undefined;
  rows.forEach((row, r) => {
    const at = r * T;
    inputIds.set(row.ids, at);
    labels.set(row.labels, at);
    attentionMask.fill(1, at, at + row.ids.length);
    if (segmentIds) {
      const starts = row.boundaries ?? [0];
      starts.forEach((start, s) => {
        const end = s + 1 < starts.length ? starts[s + 1] : row.ids.length;
        segmentIds.fill(s, at + start, at + end);
      });
    }
  });
  return { rows: rows.length, inputIds, attentionMask, labels, segmentIds };
}
