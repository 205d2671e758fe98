// The numbers `prepare` reports and writes to stats.json: rows in, kept, dropped by reason, per domain and
// split, and token-length percentiles. Memory is bounded by the number of DISTINCT lengths (<= max_seq_length),
// not by the number of rows: lengths are integers, so a histogram gives exact percentiles.
import type { DropReason } from "./clean.js";
import type { Split } from "./types.js";

/** Exact percentiles of integer lengths from a `Map<length, count>`. */
export class LengthHistogram {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private sum = 0;

  add(length: number): void {
    if (!Number.isInteger(length) || length < 0)
      throw new RangeError(`token length must be an integer >= 0: ${length}`);
    this.counts.set(length, (this.counts.get(length) ?? 0) + 1);
    this.n++;
    this.sum += length;
  }

  get count(): number {
    return this.n;
  }

  /** Nearest-rank percentile: the smallest length L with at least ceil(p/100 * n) lengths <= L. */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (const len of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(len) ?? 0;
      if (seen >= rank) return len;
    }
    return this.max();
  }

  max(): number {
    let m = 0;
    for (const len of this.counts.keys()) if (len > m) m = len;
    return m;
  }

  toJSON(): TokenLengthStats {
    return {
      count: this.n,
      mean: this.n === 0 ? 0 : Math.round((this.sum / this.n) * 100) / 100,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: this.max(),
    };
  }
}

export interface TokenLengthStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export interface SplitStatsJson {
  /** Rows written to this split, augmented variants included. */
  rows: number;
  augmented: number;
  truncated: number;
  tokens: TokenLengthStats;
}

export interface DomainStatsJson {
  rows_in: number;
  /** Input rows that reached a split (augmented variants are not counted here). */
  kept: number;
  dropped: Partial<Record<DropReason, number>>;
  splits: Partial<Record<Split, SplitStatsJson>>;
}

export interface StatsJson {
  rows_in: number;
  kept: number;
  dropped: Partial<Record<DropReason, number>>;
  augmented: number;
  truncated: number;
  tokens: TokenLengthStats;
  domains: Record<string, DomainStatsJson>;
}

interface SplitAcc {
  rows: number;
  augmented: number;
  truncated: number;
  tokens: LengthHistogram;
}

interface DomainAcc {
  rowsIn: number;
  kept: number;
  dropped: Map<DropReason, number>;
  splits: Map<Split, SplitAcc>;
}

export interface KeptRow {
  /** Token count of the written row (after truncation), when it was tokenized. */
  tokens?: number;
  truncated?: boolean;
  /** An augmented variant rather than an input row. */
  augmented?: boolean;
}

/** Counts rows as they stream through the pipeline; one call per event, nothing per row is kept. */
export class PrepareStats {
  private readonly domains = new Map<string, DomainAcc>();
  private readonly allTokens = new LengthHistogram();

  private domain(name: string): DomainAcc {
    let d = this.domains.get(name);
    if (!d) {
      d = { rowsIn: 0, kept: 0, dropped: new Map(), splits: new Map() };
      this.domains.set(name, d);
    }
    return d;
  }

  /** An input row arrived (before cleaning). */
  recordInput(domain: string): void {
    this.domain(domain).rowsIn++;
  }

  /** An input row was dropped, and why. */
  recordDrop(domain: string, reason: DropReason): void {
    const d = this.domain(domain);
    d.dropped.set(reason, (d.dropped.get(reason) ?? 0) + 1);
  }

  /** A row was written to `split`. */
  recordKept(domain: string, split: Split, row: KeptRow = {}): void {
    const d = this.domain(domain);
    if (!row.augmented) d.kept++;
    let s = d.splits.get(split);
    if (!s) {
      s = { rows: 0, augmented: 0, truncated: 0, tokens: new LengthHistogram() };
      d.splits.set(split, s);
    }
    s.rows++;
    if (row.augmented) s.augmented++;
    if (row.truncated) s.truncated++;
    if (row.tokens !== undefined) {
      s.tokens.add(row.tokens);
      this.allTokens.add(row.tokens);
    }
  }

  toJSON(): StatsJson {
    const out: StatsJson = {
      rows_in: 0,
      kept: 0,
      dropped: {},
      augmented: 0,
      truncated: 0,
      tokens: this.allTokens.toJSON(),
      domains: {},
    };
    for (const name of [...this.domains.keys()].sort()) {
      const d = this.domains.get(name)!;
      const dropped = Object.fromEntries([...d.dropped].sort(([a], [b]) => a.localeCompare(b)));
      const splits: DomainStatsJson["splits"] = {};
      for (const split of ["train", "val", "test"] as const) {
        const s = d.splits.get(split);
        if (!s) continue;
        splits[split] = {
          rows: s.rows,
          augmented: s.augmented,
          truncated: s.truncated,
          tokens: s.tokens.toJSON(),
        };
        out.augmented += s.augmented;
        out.truncated += s.truncated;
      }
      out.domains[name] = { rows_in: d.rowsIn, kept: d.kept, dropped, splits };
      out.rows_in += d.rowsIn;
      out.kept += d.kept;
      for (const [reason, n] of d.dropped) out.dropped[reason] = (out.dropped[reason] ?? 0) + n;
    }
    out.dropped = Object.fromEntries(Object.entries(out.dropped).sort(([a], [b]) => a.localeCompare(b)));
    return out;
  }
}
