import { test } from "node:test";
import assert from "node:assert/strict";
import { Deduplicator, exactKey, normalizedKey, normalizeForMatch } from "../../src/data/dedup.js";
import { DigestSet, digest64 } from "../../src/data/hash.js";
import { createRng } from "../../src/data/random.js";
import type { Example } from "../../src/data/types.js";

function pair(user: string, assistant: string, domain = "d", extra: Partial<Example> = {}): Example {
  return {
    kind: "example",
    domain,
    source: { file: `${domain}.csv`, line: 1 },
    messages: [
      { role: "user", content: user },
      { role: "assistant", content: assistant },
    ],
    ...extra,
  };
}

test("normalisation folds case, punctuation, whitespace and Arabic diacritics but keeps digits and symbols", () => {
  assert.equal(normalizeForMatch("  Hello,   World!! "), "helloworld");
  assert.equal(normalizeForMatch("ＡＢＣ\u00a0d"), "abcd"); // full-width forms and NBSP
  assert.equal(normalizeForMatch("ذَهَبَ الوَلَدُ ــ"), normalizeForMatch("ذهب الولد"));
  assert.notEqual(normalizeForMatch("10 kg"), normalizeForMatch("100 kg"));
  assert.notEqual(normalizeForMatch("5 $"), normalizeForMatch("5 €"));
});

test("keys cover every field with its role, so moving text between fields is a different example", () => {
  const a = pair("ab", "c");
  const b = pair("a", "bc");
  assert.notEqual(exactKey(a), exactKey(b));
  assert.notEqual(normalizedKey(a), normalizedKey(b));
  const swapped: Example = {
    ...a,
    messages: a.messages.map((m) => ({ ...m, role: m.role === "user" ? "assistant" : "user" })),
  };
  assert.notEqual(normalizedKey(a), normalizedKey(swapped));
  assert.notEqual(exactKey(a), exactKey({ ...a, instruction: "Translate" }));
  assert.notEqual(
    exactKey({ ...a, messages: [], text: "t" }),
    exactKey({ ...a, messages: [], instruction: "t" }),
  );
});

test("exact duplicates -> 'duplicate', normalised duplicates -> 'near_duplicate', new rows -> null", () => {
  const d = new Deduplicator();
  assert.equal(d.check(pair("Hello, world!", "مرحبا بالعالم")), null);
  assert.equal(d.check(pair("Hello, world!", "مرحبا بالعالم")), "duplicate");
  assert.equal(d.check(pair("hello world", "مَرْحَبًا بالعالم.")), "near_duplicate");
  assert.equal(d.check(pair("Hello, world!", "مرحبا بالعالم 2")), null);
  // The instruction and the target are part of the example.
  assert.equal(d.check(pair("Hello, world!", "مرحبا بالعالم", "d", { instruction: "Translate" })), null);
  assert.equal(d.check(pair("Hello, world!", "Bonjour")), null);
});

test("exact mode keeps normalised duplicates; none keeps everything", () => {
  const exact = new Deduplicator({ mode: "exact" });
  assert.equal(exact.check(pair("A b", "c")), null);
  assert.equal(exact.check(pair("a B!", "c")), null);
  assert.equal(exact.check(pair("a B!", "c")), "duplicate");
  const none = new Deduplicator({ mode: "none" });
  assert.equal(none.check(pair("x", "y")), null);
  assert.equal(none.check(pair("x", "y")), null);
});

test("scope 'domain' (default) keeps a row repeated in another domain; 'global' drops it", () => {
  const perDomain = new Deduplicator();
  assert.equal(perDomain.check(pair("same", "row", "tech")), null);
  assert.equal(perDomain.check(pair("same", "row", "economy")), null);
  assert.equal(perDomain.check(pair("Same.", "row", "economy")), "near_duplicate");
  const global = new Deduplicator({ scope: "global" });
  assert.equal(global.check(pair("same", "row", "tech")), null);
  assert.equal(global.check(pair("same", "row", "economy")), "duplicate");
  assert.equal(global.check(pair("SAME", "row", "education")), "near_duplicate");
});

test("memory: only digests are remembered, one per distinct row", () => {
  for (const mode of ["normalized", "exact"] as const) {
    const d = new Deduplicator({ mode });
    for (let i = 0; i < 1000; i++) d.check(pair(`row ${i}`, "x"));
    for (let i = 0; i < 1000; i++) d.check(pair(`row ${i}`, "x"));
    assert.equal(d.size, 1000, mode);
  }
});

test("DigestTagMap keeps the first tag of each digest through growth, including the digest 0", async () => {
  const { DigestTagMap } = await import("../../src/data/hash.js");
  const map = new DigestTagMap();
  const ref = new Map<bigint, number>();
  for (let i = 0; i < 5000; i++) {
    const d = BigInt(i % 3000) * 0x9e3779b97f4a7c15n;
    const got = map.getOrAdd(d, i);
    assert.equal(got, ref.get(BigInt.asUintN(64, d)));
    if (!ref.has(BigInt.asUintN(64, d))) ref.set(BigInt.asUintN(64, d), i);
  }
  assert.equal(map.size, ref.size);
});

test("DigestSet behaves like a Set<bigint> through growth, including the digest 0", () => {
  const set = new DigestSet();
  const ref = new Set<bigint>();
  const rng = createRng(7);
  // Well-spread digests, plus a cluster sharing their low 32 bits (the same start slot: probing must cope).
  const value = (k: number) =>
    k < 50 ? BigInt(k + 1) << 32n : BigInt.asUintN(64, BigInt(k) * 0x9e3779b97f4a7c15n);
  for (let i = 0; i < 20000; i++) {
    const d = value(rng.int(5000)); // few distinct values: repeats are frequent
    assert.equal(set.add(d), !ref.has(d));
    ref.add(d);
  }
  assert.equal(set.size, ref.size);
  for (let k = 0; k < 6000; k++) assert.equal(set.has(value(k)), ref.has(value(k)));
  assert.equal(set.add(0n), !ref.has(0n));
  assert.equal(set.add(0n), false);
  assert.equal(set.has(0n), true);
  assert.equal(typeof digest64("x"), "bigint");
  assert.equal(digest64("x"), digest64("x"));
  assert.notEqual(digest64("x"), digest64("y"));
  // SHA-1("abc") = a9993e36 4706816a ...
  assert.equal(digest64("abc"), 0xa9993e364706816an);
});
