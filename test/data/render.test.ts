import { test, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "../../src/data/tokenizer.js";
import {
  IGNORE_INDEX,
  promptTokenCount,
  tokenizeExample,
  truncateTokenizedRow,
} from "../../src/data/render.js";
import type { Example, Message, TokenizedRow } from "../../src/data/types.js";
import { TuneforgeError } from "../../src/errors.js";
import { FIXTURES, HAVE_FIXTURES } from "../helpers/fixtures.js";

interface ChatCase {
  messages: Message[];
  rendered_ids: number[];
  prompt_no_thinking: string;
}

let tok: Tokenizer;
before(async () => {
  tok = await Tokenizer.fromModelDir();
});

function example(messages: Message[], extra: Partial<Example> = {}): Example {
  return { kind: "example", domain: "d", source: { file: "rows.jsonl", line: 3 }, messages, ...extra };
}

const qa: Message[] = [
  { role: "user", content: "Translate to Arabic: The market grew by 5%." },
  { role: "assistant", content: "نما السوق بنسبة 5%." },
];

test("chat rows: ids are HF's, labels mask exactly the prompt tokens", { skip: !HAVE_FIXTURES }, () => {
  const fx = JSON.parse(
    readFileSync(join(FIXTURES, "tokenizer", "qwen3_tokenizer_expected.json"), "utf8"),
  ) as {
    chat: Record<string, ChatCase>;
  };
  for (const [name, c] of Object.entries(fx.chat)) {
    const r = tokenizeExample(example(c.messages), {
      tokenizer: tok,
      template: "chat",
      maxSeqLength: 4096,
      lossOn: "completion",
    });
    assert.deepEqual(r.input_ids, c.rendered_ids, name);
    const promptLength = tok.encode(c.prompt_no_thinking).length;
    assert.deepEqual(r.input_ids.slice(0, promptLength), tok.encode(c.prompt_no_thinking), name);
    assert.deepEqual(r.labels.slice(0, promptLength), new Array(promptLength).fill(IGNORE_INDEX), name);
    assert.deepEqual(r.labels.slice(promptLength), r.input_ids.slice(promptLength), name);
    // The answer's tokens end with <|im_end|> "\n": the model learns to stop.
    assert.deepEqual(r.labels.slice(-2), [tok.eosTokenId, 198], name);
    assert.equal(tok.decode(r.input_ids.slice(promptLength)), r.completion, name);
    assert.equal(r.truncated, false);
    assert.equal(r.dropReason, undefined);
  }
});

test('lossOn "all" trains on every token; plain-text rows always do', () => {
  const all = tokenizeExample(example(qa), {
    tokenizer: tok,
    template: "chat",
    maxSeqLength: 512,
    lossOn: "all",
  });
  assert.deepEqual(all.labels, all.input_ids);
  const plain = tokenizeExample(example([], { text: "Cloud costs fell." }), {
    tokenizer: tok,
    template: "chat",
    maxSeqLength: 512,
    lossOn: "completion",
  });
  assert.equal(plain.prompt, "");
  assert.deepEqual(plain.input_ids, [...tok.encode("Cloud costs fell."), tok.eosTokenId]);
  assert.deepEqual(plain.labels, plain.input_ids);
});

test("truncation keeps the start; a row whose answer is cut away is flagged", () => {
  const opts = { tokenizer: tok, template: "chat" as const, lossOn: "completion" as const };
  const full = tokenizeExample(example(qa), { ...opts, maxSeqLength: 512 });
  const promptLength = full.labels.findIndex((l) => l !== IGNORE_INDEX);
  assert.ok(promptLength > 0);

  const cut = tokenizeExample(example(qa), { ...opts, maxSeqLength: promptLength + 2 });
  assert.equal(cut.truncated, true);
  assert.deepEqual(cut.input_ids, full.input_ids.slice(0, promptLength + 2));
  assert.deepEqual(cut.labels, full.labels.slice(0, promptLength + 2));
  assert.equal(cut.dropReason, undefined);

  const gone = tokenizeExample(example(qa), { ...opts, maxSeqLength: promptLength });
  assert.equal(gone.truncated, true);
  assert.equal(gone.input_ids.length, promptLength);
  assert.match(gone.dropReason ?? "", /truncated away/);

  const exact = tokenizeExample(example(qa), { ...opts, maxSeqLength: full.input_ids.length });
  assert.equal(exact.truncated, false);

  assert.throws(() => tokenizeExample(example(qa), { ...opts, maxSeqLength: 0 }), TuneforgeError);
});

test("a prompt ending in a space: the boundary falls before the merged token, by characters", () => {
  const template = { custom: "Question: {input} Answer: {output}" };
  const row = example([
    { role: "user", content: "capital of France?" },
    { role: "assistant", content: "Paris" },
  ]);
  const r = tokenizeExample(row, { tokenizer: tok, template, maxSeqLength: 512, lossOn: "completion" });
  assert.equal(r.prompt, "Question: capital of France? Answer: ");
  // BPE makes " Paris" one token, so the prompt's own ids (ending in " ") are not a prefix of the full ids.
  const promptIds = tok.encode(r.prompt);
  assert.notDeepEqual(r.input_ids.slice(0, promptIds.length), promptIds);
  const before = tok.encode("Question: capital of France? Answer:");
  assert.deepEqual(r.input_ids.slice(0, before.length), before);
  assert.deepEqual(r.labels.slice(0, before.length), new Array(before.length).fill(IGNORE_INDEX));
  assert.deepEqual(r.labels.slice(before.length), r.input_ids.slice(before.length));
  assert.equal(tok.decode(r.input_ids.slice(before.length)), " Paris<|im_end|>");
});

test("promptTokenCount: a token straddling the boundary inside a character, and NFC reordering", () => {
  // BPE merges the last bytes of 🏽 with 数 into one token: the boundary cannot fall inside 🏽, so the whole
  // character goes to the answer (a token that holds answer bytes is always trained on).
  const straddle = tok.encode("🏽数 ok");
  assert.notDeepEqual(straddle.slice(0, tok.encode("🏽").length), tok.encode("🏽"), "the fallback path runs");
  assert.ok(tok.decode(straddle.slice(0, 1)).includes("\uFFFD"), "first token is half a character");
  assert.equal(promptTokenCount("🏽", straddle, tok), 0);
  // NFC puts fathatan (U+064B) before fatha (U+064E): "اَ" + "ً" tokenizes as ا ً َ, only ا is prompt.
  const nfc = tok.encode("اَ" + "ً");
  assert.equal(nfc.length, 3);
  assert.equal(promptTokenCount("اَ", nfc, tok), 1);
});

test("pre-tokenized rows: labels default to the ids, truncation, mismatch and all-masked rows", () => {
  const row: TokenizedRow = {
    kind: "tokenized",
    domain: "d",
    source: { file: "t.jsonl", line: 2 },
    input_ids: [5, 6, 7, 8],
  };
  assert.deepEqual(truncateTokenizedRow(row, 3), {
    input_ids: [5, 6, 7],
    labels: [5, 6, 7],
    truncated: true,
  });
  const masked = truncateTokenizedRow({ ...row, labels: [-100, -100, -100, 8] }, 3);
  assert.match(masked.dropReason ?? "", /every label is -100/);
  assert.throws(
    () => truncateTokenizedRow({ ...row, labels: [1] }, 8),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === "t.jsonl" && e.location.line === 2,
  );
});
