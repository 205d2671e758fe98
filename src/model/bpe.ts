// A byte-level BPE tokenizer trainer, producing a `tokenizer.json` in the same shape as Qwen's (NFC
// normaliser, Qwen's pre-tokenizer regex + ByteLevel, BPE model, ByteLevel decoder), so HF tokenizers
// (Rust, Python and @huggingface/tokenizers in JS) load it.
// Written by hand because the JS tokenizer libraries can only encode/decode, not train, and the Rust
// trainer would mean a native or Python dependency for a few hundred lines of well-known algorithm.

/** Qwen2/2.5/3's pre-tokenizer split pattern, as written in their tokenizer.json (Oniguruma syntax). */
export const QWEN_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The same pattern for JavaScript: `(?i:...)` spelt out because Node 20's RegExp has no inline flags.
const QWEN_SPLIT_JS =
  /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

let byteChars: string[] | null = null;

/**
 * GPT-2's byte -> printable character table used by ByteLevel: printable Latin-1 bytes map to themselves,
 * the rest to U+0100 onwards. Index = byte value.
 */
export function byteToUnicode(): string[] {
  if (byteChars) return byteChars;
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCharCode(cs[i])));
  byteChars = table;
  return table;
}

/** The 256 byte tokens in the order GPT-2/Qwen vocabularies list them (printable bytes first). */
function initialAlphabet(): string[] {
  const table = byteToUnicode();
  return [...table].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
}

/** Splits text into pre-tokens the way the tokenizer.json's normaliser + Split pre-tokenizer will. */
export function pretokenize(text: string): string[] {
  return text.normalize("NFC").match(QWEN_SPLIT_JS) ?? [];
}

/** A pre-token's UTF-8 bytes as ByteLevel characters (what the BPE model sees). */
export function toByteLevel(piece: string): string {
  const table = byteToUnicode();
  let out = "";
  for (const b of Buffer.from(piece, "utf8")) out += table[b];
  return out;
}

export interface BpeTrainOptions {
  /** Final vocabulary size, including the 256 byte tokens (not the special tokens). Default 2048. */
  vocabSize?: number;
  /** Stop when the most frequent pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
}

export interface BpeModel {
  /** Token -> id; ids 0..255 are the byte tokens, then one per merge in the order learnt. */
  vocab: Record<string, number>;
  /** The merges in priority order (first learnt = applied first). */
  merges: [string, string][];
}

interface HeapEntry {
  count: number;
  a: number;
  b: number;
}

/**
 * Learns BPE merges on `corpus`: count the pre-tokens, then repeatedly merge the most frequent adjacent
 * pair. Ties are broken by the pair's token strings (then their ids), so the result depends only on the
 * corpus and options, never on hash or insertion order.
 */
export function trainByteLevelBpe(corpus: readonly string[], options: BpeTrainOptions = {}): BpeModel {
  const vocabSize = options.vocabSize ?? 2048;
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 256) {
    throw new RangeError(`BPE vocabSize ${vocabSize} must be an integer >= 256 (the byte tokens)`);
  }

  const tokens: string[] = initialAlphabet();
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));

  // Distinct pre-tokens with their counts, each as a list of token ids.
  const wordCounts = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of pretokenize(text)) {
      const w = toByteLevel(piece);
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    }
  }
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push([...w].map((ch) => idOf.get(ch)!));
    freq.push(c);
  }

  // Pair statistics, updated incrementally as merges rewrite the words that contain them.
  const PAIR = 1 << 20; // ids stay far below 2^20, so a*PAIR+b is an exact, unique number key
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1, changed: Set<number>) => {
    const sym = words[wi];
    for (let j = 0; j + 1 < sym.length; j++) {
      const key = sym[j] * PAIR + sym[j + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[wi]);
      changed.add(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };

  const better = (x: HeapEntry, y: HeapEntry): boolean => {
    if (x.count !== y.count) return x.count > y.count;
    const xa = tokens[x.a];
    const ya = tokens[y.a];
    if (xa !== ya) return xa < ya;
    const xb = tokens[x.b];
    const yb = tokens[y.b];
    if (xb !== yb) return xb < yb;
    return x.a !== y.a ? x.a < y.a : x.b < y.b;
  };
  const heap: HeapEntry[] = [];
  const push = (e: HeapEntry) => {
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!better(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = (): HeapEntry | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && better(heap[l], heap[m])) m = l;
        if (r < heap.length && better(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  const pushChanged = (changed: Set<number>) => {
    for (const key of changed) {
      const count = pairCount.get(key)!;
      if (count > 0) push({ count, a: Math.floor(key / PAIR), b: key % PAIR });
    }
  };

  const initial = new Set<number>();
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, initial);
  pushChanged(initial);

  const merges: [string, string][] = [];
  while (tokens.length < vocabSize) {
    const best = pop();
    if (!best) break;
    const key = best.a * PAIR + best.b;
    if (pairCount.get(key) !== best.count) continue; // stale entry: the pair's count changed since
    if (best.count < minFrequency) break;
    const merged = tokens[best.a] + tokens[best.b];
    let newId = idOf.get(merged);
    // Two different splits can spell the same string (e.g. "ab"+"c" and "a"+"bc"); keep one token for it.
    if (newId === undefined) {
      newId = tokens.length;
      tokens.push(merged);
      idOf.set(merged, newId);
    }
    merges.push([tokens[best.a], tokens[best.b]]);

    const changed = new Set<number>();
    for (const wi of pairWords.get(key) ?? []) {
      const sym = words[wi];
      let has = false;
      for (let j = 0; j + 1 < sym.length; j++) {
        if (sym[j] === best.a && sym[j + 1] === best.b) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      addPairs(wi, -1, changed);
      const next: number[] = [];
      for (let j = 0; j < sym.length; j++) {
        if (j + 1 < sym.length && sym[j] === best.a && sym[j + 1] === best.b) {
          next.push(newId);
          j++;
        } else next.push(sym[j]);
      }
      words[wi] = next;
      addPairs(wi, 1, changed);
    }
    pairWords.delete(key);
    pushChanged(changed);
  }
  return { vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges };
}

/** ByteLevel settings as Qwen's tokenizer.json has them (regex splitting is done by the Split step). */
const BYTE_LEVEL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };

/**
 * A tokenizer.json for `model`, with `specialTokens` added after the vocabulary (ids vocab size, +1, ...).
 * Same structure as Qwen2/3's file so every HF tokenizer implementation reads it.
 */
export function tokenizerJson(model: BpeModel, specialTokens: readonly string[]): Record<string, unknown> {
  const base = Object.keys(model.vocab).length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content, i) => ({
      id: base + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: "NFC" },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN_SPLIT_PATTERN }, behavior: "Isolated", invert: false },
        BYTE_LEVEL,
      ],
    },
    post_processor: BYTE_LEVEL,
    decoder: BYTE_LEVEL,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: model.vocab,
      merges: model.merges,
    },
  };
}
