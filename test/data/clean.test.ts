import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanExample, cleanText, DEFAULT_CLEAN_OPTIONS } from "../../src/data/clean.js";
import type { Example } from "../../src/data/types.js";

function pair(user: string, assistant: string, extra: Partial<Example> = {}): Example {
  return {
    kind: "example",
    domain: "d",
    source: { file: "f.csv", line: 2 },
    messages: [
      { role: "user", content: user },
      { role: "assistant", content: assistant },
    ],
    ...extra,
  };
}

const ALL_OFF = {
  nfc: false,
  stripUrls: false,
  stripEmails: false,
  stripEmojis: false,
  controlChars: false,
  whitespace: false,
  arabicDiacritics: false,
};

test("defaults: NFC, control chars and whitespace on; stripping and diacritics off", () => {
  assert.deepEqual(
    { ...DEFAULT_CLEAN_OPTIONS },
    {
      nfc: true,
      stripUrls: false,
      stripEmails: false,
      stripEmojis: false,
      controlChars: true,
      whitespace: true,
      arabicDiacritics: false,
      dropEmpty: true,
      minChars: 1,
      maxChars: null,
    },
  );
  const messy = "  Cafe\u0301\u0007 at https://x.org, mail a@b.com 😀  ";
  assert.equal(cleanText(messy), "Café at https://x.org, mail a@b.com 😀");
});

test("NFC on composes accents; off leaves the decomposed form", () => {
  const decomposed = "e\u0301te\u0301";
  assert.equal(cleanText(decomposed), "\u00e9t\u00e9");
  assert.equal(cleanText(decomposed, { nfc: false }), decomposed);
});

test("control characters are removed except \\n and \\t; CR/CRLF become \\n; off keeps them", () => {
  const raw = "a\u0000b\u001bc\u007f\u0085d\ufeff\te\r\nf\rg";
  assert.equal(cleanText(raw, { ...ALL_OFF, controlChars: true }), "abcd\te\nf\ng");
  assert.equal(cleanText(raw, ALL_OFF), raw);
});

test("whitespace: runs of spaces/tabs collapse, lines and text trimmed, newline runs squeezed", () => {
  const raw = "  one \t two\u00a0\u00a0three  \n\n\n   four  \t\n five ";
  assert.equal(cleanText(raw, { ...ALL_OFF, whitespace: true }), "one two three\nfour\nfive");
  assert.equal(cleanText(raw, ALL_OFF), raw);
});

test("URL stripping keeps the sentence's punctuation; off by default", () => {
  const raw = "See https://example.com/a?b=1. Or www.test.org/x, or ftp://h/f!";
  assert.equal(cleanText(raw, { stripUrls: true }), "See . Or , or !");
  assert.equal(cleanText(raw), raw);
});

test("email stripping, including Unicode local parts; URLs with @ are handled by the URL step first", () => {
  const raw = "Write to jo.doe+tag@mail.example.co.uk or قسم@مثال.com today";
  assert.equal(cleanText(raw, { stripEmails: true }), "Write to or today");
  assert.equal(cleanText(raw), raw);
  assert.equal(cleanText("at http://u@h.com/p now", { stripUrls: true, stripEmails: true }), "at now");
});

test("emoji stripping removes ZWJ sequences, skin tones, flags, keycaps and VS16 emoji but keeps ©/™ and digits", () => {
  const raw = "Hi 👋🏽 team 👨‍👩‍👧 ❤️ 🇩🇿 1️⃣ ok © ™ 42";
  assert.equal(cleanText(raw, { stripEmojis: true }), "Hi team ok © ™ 42");
  assert.equal(cleanText(raw), raw);
});

test("Arabic diacritics and tatweel are kept by default and removed when asked", () => {
  const voweled = "ذَهَبَ الوَلَدُ إِلَى المَدْرَسَةِ ــ مُسْرِعًا";
  assert.equal(cleanText(voweled), voweled);
  assert.equal(cleanText(voweled, { arabicDiacritics: true }), "ذهب الولد إلى المدرسة مسرعا");
  // Hamza is part of the letter: a decomposed alef + hamza-above composes under NFC and survives.
  assert.equal(cleanText("\u0627\u0654\u064e", { arabicDiacritics: true }), "\u0623");
});

test("cleanExample cleans the instruction, every message and text, without mutating its input", () => {
  const ex = pair("  hello\u0007  world ", "  salut ", { instruction: " Translate  this " });
  const before = structuredClone(ex);
  const r = cleanExample(ex);
  assert.equal(r.ok, true);
  assert.ok(r.ok);
  assert.equal(r.example.instruction, "Translate this");
  assert.deepEqual(
    r.example.messages.map((m) => m.content),
    ["hello world", "salut"],
  );
  assert.deepEqual(ex, before);
  const t = cleanExample({
    kind: "example",
    domain: "d",
    source: { file: "f", line: 1 },
    messages: [],
    text: " a  b ",
  });
  assert.ok(t.ok);
  assert.equal(t.example.text, "a b");
});

test("rows empty after cleaning are dropped with reason 'empty'; switchable off", () => {
  assert.deepEqual(cleanExample(pair("hello", "   \u0007")), { ok: false, reason: "empty" });
  assert.deepEqual(cleanExample(pair(" \t ", "x")), { ok: false, reason: "empty" });
  assert.deepEqual(cleanExample(pair(" https://a.b/c ", "x"), { stripUrls: true }), {
    ok: false,
    reason: "empty",
  });
  const kept = cleanExample(pair("hello", "  "), { dropEmpty: false });
  assert.ok(kept.ok);
  assert.equal(kept.example.messages[1].content, "");
  const noText = {
    kind: "example" as const,
    domain: "d",
    source: { file: "f", line: 1 },
    messages: [],
    text: "  ",
  };
  assert.deepEqual(cleanExample(noText), { ok: false, reason: "empty" });
});

test("empty system messages and instructions are removed, and an instruction makes an empty input fine", () => {
  const ex: Example = {
    ...pair("", "answer", { instruction: "Name a colour" }),
    messages: [
      { role: "system", content: "  " },
      { role: "user", content: "" },
      { role: "assistant", content: "Blue" },
    ],
  };
  const r = cleanExample(ex);
  assert.ok(r.ok);
  assert.deepEqual(
    r.example.messages.map((m) => m.role),
    ["user", "assistant"],
  );
  const noInstr = cleanExample(pair("q", "a", { instruction: "   " }));
  assert.ok(noInstr.ok);
  assert.equal("instruction" in noInstr.example, false);
});

test("maxChars drops over-long rows (off by default); minChars drops too-short ones", () => {
  const long = pair("x".repeat(60), "y".repeat(50));
  assert.ok(cleanExample(long).ok);
  assert.ok(cleanExample(long, { maxChars: 110 }).ok);
  assert.deepEqual(cleanExample(long, { maxChars: 109 }), { ok: false, reason: "too_long" });
  assert.deepEqual(cleanExample(pair("ab", "abcdef"), { minChars: 3 }), { ok: false, reason: "too_short" });
  assert.ok(cleanExample(pair("abc", "abcdef"), { minChars: 3 }).ok);
});
