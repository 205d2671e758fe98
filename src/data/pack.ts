// Packing: several short tokenized rows in one sequence of at most maxSeqLength tokens, so a batch holds little
// padding. `boundaries` records where each example starts; the trainer uses it to keep attention inside an
// example and to restart positions at each one.
//
// Streaming: `add` takes rows one at a time and returns the packs that are done; `flush` returns the rest.
// Rows go to the first open pack they fit in (first-fit over a few open packs, which fills far better than
// closing a pack at the first row that does not fit, while memory stays bounded and the output deterministic).
import { IGNORE_INDEX } from "./render.js";

export interface PackableRow {
  input_ids: number[];
  labels: number[];
}

export interface Pack<T extends PackableRow = PackableRow> {
  input_ids: number[];
  labels: number[];
  /** Start offset of each example in input_ids; the first is 0. */
  boundaries: number[];
  /** The rows packed, in order (for their source/domain). */
  rows: T[];
}

export interface PackerOptions {
  maxSeqLength: number;
  /** How many partly filled packs are kept open at once (default 8). */
  openPacks?: number;
}

export class Packer<T extends PackableRow = PackableRow> {
  private readonly maxSeqLength: number;
  private readonly openLimit: number;
  private open: Pack<T>[] = [];

  constructor(options: PackerOptions) {
    if (!Number.isInteger(options.maxSeqLength) || options.maxSeqLength < 1) {
      throw new RangeError(`maxSeqLength must be a positive integer, got ${options.maxSeqLength}`);
    }
    this.maxSeqLength = options.maxSeqLength;
    this.openLimit = Math.max(1, options.openPacks ?? 8);
  }

  /** Add a row; returns the packs completed by it (often none). */
  add(row: T): Pack<T>[] {
    const length = row.input_ids.length;
    if (length !== row.labels.length) {
      throw new RangeError(`row has ${length} input ids but ${row.labels.length} labels`);
    }
    // Rows are truncated before packing; a longer one here is a pipeline bug, not something to cut silently.
    if (length > this.maxSeqLength) {
      throw new RangeError(
        `row of ${length} tokens exceeds maxSeqLength ${this.maxSeqLength}; truncate first`,
      );
    }
    if (length === 0) return [];
    const done: Pack<T>[] = [];
    let pack = this.open.find((p) => p.input_ids.length + length <= this.maxSeqLength);
    if (!pack) {
      if (this.open.length >= this.openLimit) {
        // Close the fullest pack to make room: it is the one least likely to take another row.
        const fullest = this.open.reduce((a, b) => (b.input_ids.length > a.input_ids.length ? b : a));
        this.open.splice(this.open.indexOf(fullest), 1);
        done.push(fullest);
      }
      pack = { input_ids: [], labels: [], boundaries: [], rows: [] };
      this.open.push(pack);
    }
    pack.boundaries.push(pack.input_ids.length);
    pack.input_ids.push(...row.input_ids);
    pack.labels.push(...row.labels);
    // The first token of an example must not be a target of the previous example's last position.
    pack.labels[pack.input_ids.length - length] = IGNORE_INDEX;
    pack.rows.push(row);
    if (pack.input_ids.length === this.maxSeqLength) {
      this.open.splice(this.open.indexOf(pack), 1);
      done.push(pack);
    }
    return done;
  }

  /** The packs still open, in the order they were started. */
  flush(): Pack<T>[] {
    const rest = this.open;
    this.open = [];
    return rest;
  }
}

/** Pack a whole list (convenience over Packer). */
export function packRows<T extends PackableRow>(rows: Iterable<T>, options: PackerOptions): Pack<T>[] {
  const packer = new Packer<T>(options);
  const packs: Pack<T>[] = [];
  for (const row of rows) packs.push(...packer.add(row));
  packs.push(...packer.flush());
  return packs;
}
