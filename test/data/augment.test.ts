import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TuneforgeError } from "../../src/errors.js";
import {
  Augmenter,
  loadSynonyms,
  matchCase,
  swapClauses,
  varyCase,
  varyNumbers,
  varyPunctuation,
  varyWhitespace,
} from "../../src/data/augment.js";
import { exactKey } from "../../src/data/dedup.js";
import { createRng } from "../../src/data/random.js";
import type { Example } from "../../src/data/types.js";

function chat(user: string, assistant: string, extra: Partial<Example> = {}): Example {
  return {
    kind: "example",
    domain: "d",
    source: { file: "d.csv", line: 5 },
    messages: [
      { role: "system", content: "You translate." },
      { role: "user", content: user },
      { role: "assistant", content: assistant },
    ],
    ...extra,
  };
}

const ALL_ON = {
  synonyms: { big: ["large", "huge"], "purchase order": ["order"], quickly: ["fast"] },
  clauseOrder: true,
  punctuation: true,
  numbers: true,
  case: true,
  whitespace: true,
};

const ROW = chat(
  "If the big purchase order arrives, we pay 12000 dollars quickly.",
  "إذا وصل الطلب الكبير، ندفع 12000 دولار بسرعة.",
);

test("deterministic by seed: same seed -> same variants (any row order); another seed -> different", () => {
  const rows = Array.from({ length: 20 }, (_, i) =>
    chat(`Ship the big box number ${i} quickly, please.`, `target ${i}`),
  );
  const a = new Augmenter({ ...ALL_ON, factor: 3, seed: 11 });
  const b = new Augmenter({ ...ALL_ON, factor: 3, seed: 11 });
  const first = rows.map((r) => a.variants(r));
  for (const i of [...rows.keys()].reverse()) assert.deepEqual(b.variants(rows[i]), first[i]);
  const c = new Augmenter({ ...ALL_ON, factor: 3, seed: 12 });
  assert.notDeepEqual(
    rows.map((r) => c.variants(r)),
    first,
  );
});

test("targets and system messages never change; variants keep the source ref and mark their origin", () => {
  const aug = new Augmenter({ ...ALL_ON, factor: 5, seed: 1 });
  const original = structuredClone(ROW);
  const vs = aug.variants(ROW);
  assert.equal(vs.length, 5);
  assert.deepEqual(ROW, original, "the input is not modified");
  for (const v of vs) {
    assert.deepEqual(v.messages[0], ROW.messages[0]);
    assert.deepEqual(v.messages[2], ROW.messages[2]);
    assert.notEqual(v.messages[1].content, ROW.messages[1].content);
    assert.deepEqual(v.source, ROW.source);
    assert.equal(v.domain, ROW.domain);
    assert.equal(v.augmentedFrom, 5);
  }
});

test("factor is honoured, variants are distinct and never identical to the original; 0 is off", () => {
  for (const factor of [1, 2, 4]) {
    const vs = new Augmenter({ ...ALL_ON, factor, seed: 3 }).variants(ROW);
    assert.equal(vs.length, factor);
    const keys = new Set([exactKey(ROW), ...vs.map(exactKey)]);
    assert.equal(keys.size, factor + 1);
  }
  assert.deepEqual(new Augmenter({ ...ALL_ON, factor: 0, seed: 3 }).variants(ROW), []);
  // A row that allows only a couple of distinct variants yields fewer than asked, never repeats.
  const few = new Augmenter({ punctuation: true, factor: 5, seed: 3 }).variants(chat("Hello", "Bonjour"));
  assert.deepEqual(
    few.map((v) => v.messages[1].content),
    ["Hello."],
  );
  // Plain-text rows are all target: no variants.
  const text: Example = {
    kind: "example",
    domain: "d",
    source: { file: "t.txt", line: 1 },
    messages: [],
    text: "big",
  };
  assert.deepEqual(new Augmenter({ ...ALL_ON, factor: 3, seed: 3 }).variants(text), []);
});

test("synonyms: whole words only, case preserved, multi-word entries, from a JSON or YAML file", () => {
  const aug = new Augmenter({ synonyms: { big: ["large"], "ice cream": ["gelato"] }, factor: 1, seed: 9 });
  const [v] = aug.variants(chat("BIG Ice cream, big bigger Big", "x"));
  assert.ok(v);
  const text = v.messages[1].content;
  assert.match(text, /^(BIG|LARGE) (Ice cream|Gelato), (big|large) bigger (Big|Large)$/);
  assert.notEqual(text, "BIG Ice cream, big bigger Big");
  assert.equal(matchCase("BIG", "large"), "LARGE");
  assert.equal(matchCase("Big", "large"), "Large");
  assert.equal(matchCase("big", "Large"), "Large");

  const dir = mkdtempSync(join(tmpdir(), "tf-aug-"));
  writeFileSync(join(dir, "s.yaml"), "car:\n  - automobile\n  - vehicle\n");
  writeFileSync(join(dir, "s.json"), '{"car": ["auto"]}');
  writeFileSync(join(dir, "bad.json"), '{"car": "auto"}');
  assert.deepEqual(loadSynonyms(join(dir, "s.yaml")), { car: ["automobile", "vehicle"] });
  assert.deepEqual(loadSynonyms(join(dir, "s.json")), { car: ["auto"] });
  assert.throws(
    () => loadSynonyms(join(dir, "bad.json")),
    (e: unknown) => e instanceof TuneforgeError && e.message.includes("bad.json") && /"car"/.test(e.message),
  );
  assert.throws(() => loadSynonyms(join(dir, "missing.json")), TuneforgeError);
});

test("clause order: swaps around a subordinating conjunction, leaves other sentences alone", () => {
  const rng = createRng(1);
  assert.equal(swapClauses("If it rains, we stay home.", rng), "We stay home if it rains.");
  assert.equal(swapClauses("We stay home, because it rains!", rng), "Because it rains, we stay home!");
  assert.equal(swapClauses("Paris is lovely, when it is sunny.", rng), "When it is sunny, Paris is lovely.");
  assert.equal(
    swapClauses("Hi. When you arrive, call me. Thanks", rng),
    "Hi. Call me when you arrive. Thanks",
  );
  for (const same of ["Apples, pears and plums.", "If so, then go.", "a, b, if c d", "لو سمحت، ترجم هذا."]) {
    assert.equal(swapClauses(same, rng), same);
  }
});

test("number formats: plain <-> comma <-> space grouping; years, decimals, ids and codes untouched", () => {
  const rng = createRng(2);
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add(varyNumbers("Pay 12000 now", rng));
  assert.deepEqual([...seen].sort(), ["Pay 12 000 now", "Pay 12,000 now"]);
  const fromComma = new Set<string>();
  for (let i = 0; i < 40; i++) fromComma.add(varyNumbers("1,234,567 units", rng));
  assert.deepEqual([...fromComma].sort(), ["1 234 567 units", "1234567 units"]);
  const untouched = "In 2024 at 3.14159 or 12345.5, order A12345, code 00123, v1234 and 10:3000";
  assert.equal(varyNumbers(untouched, rng), untouched);
  assert.equal(varyNumbers("only 999 here", rng), "only 999 here");
});

test("punctuation, case and whitespace variations change only what they say", () => {
  const rng = createRng(3);
  const p = new Set<string>();
  for (let i = 0; i < 50; i++) p.add(varyPunctuation('He said "wait..." today.', rng));
  assert.deepEqual([...p].sort(), [
    'He said "wait..." today',
    'He said "wait…" today.',
    "He said “wait...” today.",
  ]);
  assert.equal(varyPunctuation("Really?", rng), "Really?");
  const c = new Set<string>();
  for (let i = 0; i < 30; i++) c.add(varyCase("Hello World", rng));
  assert.deepEqual([...c].sort(), ["hello World", "hello world"]);
  assert.equal(varyCase("مرحبا", rng), "مرحبا");
  for (let i = 0; i < 20; i++) {
    const w = varyWhitespace("a b c", rng);
    assert.ok(["a  b c", "a b  c", "a b c "].includes(w), w);
  }
});

test("instruction variants swap only an instruction of the group, including the default one", () => {
  const group = ["Translate to Arabic.", "Give the Arabic translation.", "Render this in Arabic."];
  const aug = new Augmenter({ instructionVariants: group, factor: 2, seed: 5 });
  const vs = aug.variants(chat("Good morning", "صباح الخير", { instruction: "translate  to arabic." }));
  assert.equal(vs.length, 2);
  assert.deepEqual(vs.map((v) => v.instruction).sort(), [
    "Give the Arabic translation.",
    "Render this in Arabic.",
  ]);
  for (const v of vs) assert.deepEqual(v.messages, chat("Good morning", "صباح الخير").messages);
  // An unrelated instruction (an Alpaca task) is not replaced by a phrasing of another task.
  assert.deepEqual(aug.variants(chat("cats", "poem", { instruction: "Write a poem about the input" })), []);
  // Rows without an instruction use the default one (data.instruction), which may be one of the group.
  const withDefault = new Augmenter({
    instructionVariants: ["Give the Arabic translation."],
    defaultInstruction: "Translate to Arabic.",
    factor: 1,
    seed: 5,
  });
  assert.deepEqual(
    withDefault.variants(chat("Hi", "مرحبا")).map((v) => v.instruction),
    ["Give the Arabic translation."],
  );
});

test("bad settings are TuneforgeErrors naming the config key", () => {
  assert.throws(
    () => new Augmenter({ factor: 2, seed: 1 }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "data.augment",
  );
  assert.throws(
    () => new Augmenter({ factor: -1, seed: 1, case: true }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "data.augment.factor",
  );
  assert.throws(
    () => new Augmenter({ factor: 1, seed: 1, synonyms: { car: [""] } }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "data.augment.synonyms",
  );
});
