// Stable hashing for the data stages: short digests for dedup, a [0, 1) point for splits and per-row seeds
// for augmentation. node:crypto hashes are identical on every machine and Node version, unlike Math.random or
// engine-specific string hashes, so a row's fate never depends on where `prepare` ran.
import { createHash } from "node:crypto";

/** The first 8 bytes of the SHA-1 of `text` (UTF-8) as an unsigned 64-bit bigint. */
export function digest64(text: string): bigint {
  return createHash("sha1").update(text, "utf8").digest().readBigUInt64BE(0);
}

/** A uniform number in [0, 1) from the SHA-256 of `text`: 48 bits, exact in a double. */
export function unitHash(text: string): number {
  return createHash("sha256").update(text, "utf8").digest().readUIntBE(0, 6) / 2 ** 48;
}

/** A 32-bit seed for `createRng` from the SHA-256 of `text`. */
export function seed32(text: string): number {
  return createHash("sha256").update(text, "utf8").digest().readUInt32BE(0);
}

/**
 * A set of 64-bit digests in one open-addressing table (linear probing, load <= 1/2). A `Set<bigint>` costs
 * ~50-70 bytes per entry (a heap BigInt plus the hash-table entry); this costs 16 bytes per entry at most
 * (8-byte slots, at least half empty), i.e. ~16 MB per million rows, with a transient x3 while growing.
 */
export class DigestSet {
  private slots = new BigUint64Array(1024);
  private count = 0;
  /** 0 marks an empty slot, so the digest 0 itself is tracked by a flag. */
  private hasZero = false;

  get size(): number {
    return this.count + (this.hasZero ? 1 : 0);
  }

  has(d: bigint): boolean {
    d = BigInt.asUintN(64, d);
    if (d === 0n) return this.hasZero;
    const mask = this.slots.length - 1;
    for (let i = Number(d & BigInt(mask)); ; i = (i + 1) & mask) {
      const s = this.slots[i];
      if (s === 0n) return false;
      if (s === d) return true;
    }
  }

  /** Adds `d`; returns false when it was already there. */
  add(d: bigint): boolean {
    d = BigInt.asUintN(64, d);
    if (d === 0n) {
      const added = !this.hasZero;
      this.hasZero = true;
      return added;
    }
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    if (!insert(this.slots, d)) return false;
    this.count++;
    return true;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new BigUint64Array(old.length * 2);
    for (const d of old) if (d !== 0n) insert(this.slots, d);
  }
}

function insert(slots: BigUint64Array, d: bigint): boolean {
  const mask = slots.length - 1;
  for (let i = Number(d & BigInt(mask)); ; i = (i + 1) & mask) {
    const s = slots[i];
    if (s === d) return false;
    if (s === 0n) {
      slots[i] = d;
      return true;
    }
  }
}

/**
 * A DigestSet that also keeps a 32-bit tag per digest (12 bytes a slot, load <= 1/2): dedup stores each
 * normalised row once, tagged with a short digest of its exact text, instead of keeping two full sets.
 */
export class DigestTagMap {
  private slots = new BigUint64Array(1024);
  private tags = new Uint32Array(1024);
  private count = 0;
  /** 0 marks an empty slot, so the tag of the digest 0 itself is kept aside. */
  private zeroTag: number | undefined;

  get size(): number {
    return this.count + (this.zeroTag === undefined ? 0 : 1);
  }

  /** Returns the tag stored for `d`; the first time `d` is seen, stores `tag` and returns undefined. */
  getOrAdd(d: bigint, tag: number): number | undefined {
    d = BigInt.asUintN(64, d);
    if (d === 0n) {
      const prev = this.zeroTag;
      this.zeroTag ??= tag >>> 0;
      return prev;
    }
    if ((this.count + 1) * 2 > this.slots.length) this.grow();
    const mask = this.slots.length - 1;
    for (let i = Number(d & BigInt(mask)); ; i = (i + 1) & mask) {
      const s = this.slots[i];
      if (s === d) return this.tags[i];
      if (s === 0n) {
        this.slots[i] = d;
        this.tags[i] = tag >>> 0;
        this.count++;
        return undefined;
      }
    }
  }

  private grow(): void {
    const [oldSlots, oldTags] = [this.slots, this.tags];
    this.slots = new BigUint64Array(oldSlots.length * 2);
    this.tags = new Uint32Array(oldSlots.length * 2);
    this.count = 0;
    oldSlots.forEach((d, i) => {
      if (d !== 0n) this.getOrAdd(d, oldTags[i]);
    });
  }
}
