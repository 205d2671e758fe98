import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer, defaultTokenizerDir } from "../../src/data/tokenizer.js";
import { TuneforgeError } from "../../src/errors.js";
import { FIXTURES, HAVE_FIXTURES } from "../helpers/fixtures.js";

interface EncodeCase {
  text: string;
  ids: number[];
  decoded: string;
}
interface ChatCase {
  rendered: string;
  rendered_ids: number[];
  prompt_with_generation_prompt: string;
  prompt_ids: number[];
}
interface TokFixture {
  encode: EncodeCase[];
  chat: Record<string, ChatCase>;
  special: { eos: string; eos_id: number; pad: string; pad_id: number; vocab_size_with_added: number };
}

const fixturePath = join(FIXTURES, "tokenizer", "qwen3_tokenizer_expected.json");
const skip = HAVE_FIXTURES ? false : "parity fixtures not found";
let tok: Tokenizer;
let fx: TokFixture;

before(async () => {
  tok = await Tokenizer.fromModelDir();
  if (HAVE_FIXTURES) fx = JSON.parse(readFileSync(fixturePath, "utf8")) as TokFixture;
});

test("encode/decode match HF on every fixture encode case", { skip }, () => {
  assert.equal(fx.encode.length, 16);
  for (const c of fx.encode) {
    assert.deepEqual(tok.encode(c.text), c.ids, `ids of ${JSON.stringify(c.text.slice(0, 40))}`);
    assert.equal(tok.decode(c.ids), c.decoded, `decode of ${JSON.stringify(c.text.slice(0, 40))}`);
  }
});

test("encode matches HF on the rendered chat conversations and prompts", { skip }, () => {
  for (const [name, c] of Object.entries(fx.chat)) {
    assert.deepEqual(tok.encode(c.rendered), c.rendered_ids, name);
    assert.deepEqual(tok.encode(c.prompt_with_generation_prompt), c.prompt_ids, name);
    assert.equal(tok.decode(c.rendered_ids), c.rendered, name);
  }
});

test("special tokens and vocabulary size match HF", { skip }, () => {
  assert.equal(tok.eosToken, fx.special.eos);
  assert.equal(tok.eosTokenId, fx.special.eos_id);
  assert.equal(tok.padToken, fx.special.pad);
  assert.equal(tok.padTokenId, fx.special.pad_id);
  assert.equal(tok.vocabSize, fx.special.vocab_size_with_added);
  assert.equal(tok.bosToken, undefined);
  assert.equal(tok.bosTokenId, undefined);
  assert.equal(tok.addBosToken, false);
  assert.ok(tok.specialTokens.includes("<|im_start|>"));
  assert.ok(tok.specialTokenIds.has(151644));
  // <think> is an added token but not a special one: skip_special_tokens keeps it.
  assert.ok(!tok.specialTokens.includes("<think>"));
  assert.match(tok.chatTemplate ?? "", /enable_thinking/);
});

test("decode round-trips text and skips only special tokens on request", () => {
  const text = "<|im_start|>user\nwach rak? 3lach <think>\nok</think> ﻿نعم 😀<|im_end|>\n";
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  assert.equal(
    tok.decode(ids, { skipSpecialTokens: true }),
    "user\nwach rak? 3lach <think>\nok</think> ﻿نعم 😀\n",
  );
  assert.equal(tok.decode([]), "");
  assert.deepEqual(tok.encode(""), []);
});

test("U+FEFF is not whitespace for the pre-tokenizer (as in HF's Oniguruma regex, unlike JS \\s)", () => {
  // "  \ufeffx": Oniguruma's \s stops at the BOM, so one space stays alone and the other joins the BOM
  // (` ?[^\s\p{L}\p{N}]+`); with JavaScript's \s the two spaces would form one "  " token and the BOM its own.
  const ids = tok.encode("  \ufeffx");
  assert.deepEqual(
    ids.map((id) => tok.idToToken(id)),
    ["Ġ", "Ġï»¿", "x"],
  );
  assert.equal(tok.decode(ids), "  \ufeffx");
});

test("hash is the sha256 of tokenizer.json's bytes", () => {
  const bytes = readFileSync(join(defaultTokenizerDir(), "tokenizer.json"));
  assert.equal(tok.hash, createHash("sha256").update(bytes).digest("hex"));
});

test("reads AddedToken-object specials, pad fallback, bos and chat_template.jinja from a model folder", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-tok-"));
  symlinkSync(join(defaultTokenizerDir(), "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      eos_token: { content: "<|endoftext|>", special: true },
      bos_token: { __type: "AddedToken", content: "<|im_start|>" },
      add_bos_token: true,
      chat_template: "from-config",
    }),
  );
  writeFileSync(join(dir, "chat_template.jinja"), "{{ messages[0].content }}");
  const t = await Tokenizer.fromModelDir(dir);
  assert.equal(t.eosToken, "<|endoftext|>");
  assert.equal(t.eosTokenId, 151643);
  assert.equal(t.padTokenId, 151643, "pad falls back to eos");
  assert.equal(t.bosTokenId, 151644);
  assert.equal(t.addBosToken, true);
  assert.equal(t.chatTemplate, "{{ messages[0].content }}");
  assert.equal(t.hash, tok.hash);
  assert.equal(t.dir, dir);
});

test("user errors name the file and key", async () => {
  const empty = mkdtempSync(join(tmpdir(), "tf-tok-"));
  await assert.rejects(Tokenizer.fromModelDir(empty), (e: unknown) => {
    assert.ok(e instanceof TuneforgeError);
    assert.ok(e.message.includes(join(empty, "tokenizer.json")));
    assert.ok(e.hint);
    return true;
  });

  const dir = mkdtempSync(join(tmpdir(), "tf-tok-"));
  symlinkSync(join(defaultTokenizerDir(), "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|no_such_token|>" }));
  await assert.rejects(Tokenizer.fromModelDir(dir), (e: unknown) => {
    assert.ok(e instanceof TuneforgeError);
    assert.equal(e.location.key, "eos_token");
    assert.equal(e.location.file, join(dir, "tokenizer_config.json"));
    assert.ok(e.message.includes(`"<|no_such_token|>" is not in the tokenizer's vocabulary`));
    return true;
  });

  writeFileSync(join(dir, "tokenizer_config.json"), "{ nope");
  await assert.rejects(Tokenizer.fromModelDir(dir), /tokenizer_config\.json: not valid JSON/);
});
