// Deduplication in one streaming pass: only 8-byte digests of the rows seen are kept, never the rows.
// The normalised form defined here is also what `split.ts` hashes, so duplicates never straddle splits.
import { ARABIC_DIACRITICS_RE } from "./clean.js";
import { DigestSet, DigestTagMap, digest64 } from "./hash.js";
import type { Example } from "./types.js";

export type DedupMode = "exact" | "normalized" | "none";
export type DedupScope = "domain" | "global";

export interface DedupOptions {
  /** "normalized" (default) drops exact AND normalised duplicates; "exact" only exact ones. */
  mode: DedupMode;
  /** "domain" (default): a row repeated in another domain is kept there; "global": kept once overall. */
  scope: DedupScope;
}

// Punctuation, whitespace (incl. NBSP and other separators) and invisible format/control characters.
const NOISE_RE = /[\p{P}\p{Z}\p{Cc}\p{Cf}\s]+/gu;

/**
 * Text folded for matching: NFKC (full-width forms, ligatures, Arabic presentation forms), lower-cased,
 * Arabic diacritics and tatweel removed, punctuation and whitespace removed. Digits and symbols are kept:
 * "10 kg" and "100 kg" must stay different rows.
 */
export function normalizeForMatch(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(ARABIC_DIACRITICS_RE, "").replace(NOISE_RE, "");
}

// Field separators that survive normalisation (\p{Cc} is removed from field text, so these never collide).
const FIELD = "\u0000";
const ROLE = "\u0001";

function keyOf(ex: Example, fold: (s: string) => string): string {
  const parts: string[] = [];
  if (ex.instruction !== undefined) parts.push(`instruction${ROLE}${fold(ex.instruction)}`);
  for (const m of ex.messages) parts.push(`${m.role}${ROLE}${fold(m.content)}`);
  if (ex.text !== undefined) parts.push(`text${ROLE}${fold(ex.text)}`);
  return parts.join(FIELD);
}

/** The whole example (instruction, every message with its role, text) as one string, byte for byte. */
export function exactKey(ex: Example): string {
  return keyOf(ex, (s) => s);
}

/** The whole example with every field passed through `normalizeForMatch`. */
export function normalizedKey(ex: Example): string {
  return keyOf(ex, normalizeForMatch);
}

/**
 * Remembers the examples seen and says whether a new one repeats one of them.
 * Memory: mode "exact" keeps one 8-byte digest per distinct row (<= 16 bytes with the table's free slots);
 * mode "normalized" keeps one per distinct normalised row, tagged with 32 bits of its exact text's digest
 * (<= 24 bytes), ~24 MB for a million rows. The tag tells an exact repeat of the kept row ("duplicate") from
 * another spelling of it ("near_duplicate"). A 64-bit digest collision (two different rows judged equal)
 * has probability ~n^2/2^65: about 3e-8 for a million rows.
 */
export class Deduplicator {
  private readonly opts: DedupOptions;
  private readonly exact = new DigestSet();
  private readonly normalized = new DigestTagMap();

  constructor(opts: Partial<DedupOptions> = {}) {
    this.opts = { mode: "normalized", scope: "domain", ...opts };
  }

  /** Digests remembered (for the stats and the memory estimate). */
  get size(): number {
    return this.exact.size + this.normalized.size;
  }

  /** Returns the drop reason if `ex` repeats an earlier row, else null (and remembers `ex`). */
  check(ex: Example): "duplicate" | "near_duplicate" | null {
    if (this.opts.mode === "none") return null;
    const scope = this.opts.scope === "domain" ? `${ex.domain}${FIELD}` : "";
    const exact = digest64(scope + exactKey(ex));
    if (this.opts.mode === "exact") return this.exact.add(exact) ? null : "duplicate";
    const kept = this.normalized.getOrAdd(digest64(scope + normalizedKey(ex)), Number(exact & 0xffffffffn));
    if (kept === undefined) return null;
    return kept === Number(exact & 0xffffffffn) ? "duplicate" : "near_duplicate";
  }
}
