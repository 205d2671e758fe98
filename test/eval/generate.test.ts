import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { EngineModel } from "../../src/engine/index.js";
import { cutAtStop, endOfTurnIds, generateText } from "../../src/eval/generate.js";
import { TuneforgeError } from "../../src/errors.js";
import { tinyEval, type TinyEval } from "./evalFixture.js";

let fx: TinyEval;
let model: EngineModel;

const PROMPTS = [
  "<|im_start|>user\nThe meeting is tomorrow at nine.<|im_end|>\n<|im_start|>assistant\n",
  "Where",
  "<|im_start|>user\nPlease send me the invoice, and the report must be ready by Friday.<|im_end|>\n<|im_start|>assistant\n",
  "La oficina abre",
  "I would like a cup of tea",
];

before(async () => {
  fx = await tinyEval();
  model = EngineModel.load(fx.modelDir, { threads: 2 });
});
after(() => model?.dispose());

test("end-of-turn ids of a ChatML model are <|im_end|> and <|endoftext|>", () => {
  const ids = endOfTurnIds(fx.tokenizer, model.config.eosTokenIds);
  assert.deepEqual(
    ids,
    [fx.tokenizer.tokenToId("<|endoftext|>"), fx.tokenizer.tokenToId("<|im_end|>")].sort(),
  );
});

for (const repetitionPenalty of [1, 1.3]) {
  test(`batched greedy generation gives exactly the one-by-one outputs, in the prompts' order (repetition penalty ${repetitionPenalty})`, () => {
    const opts = { maxNewTokens: 12, repetitionPenalty };
    const batched = generateText(model, fx.tokenizer, PROMPTS, { ...opts, batchSize: 3 });
    const eos = endOfTurnIds(fx.tokenizer, model.config.eosTokenIds);
    const alone = PROMPTS.map((p) => {
      const tokens = model.generate([fx.tokenizer.encode(p)], { ...opts, eosTokenIds: eos })[0];
      return fx.tokenizer.decode(tokens, { skipSpecialTokens: true });
    });
    assert.deepEqual(batched, alone);
    // Different outputs per prompt: a mix-up of the order would be visible.
    assert.ok(new Set(alone).size > 1, JSON.stringify(alone));
    assert.deepEqual(
      generateText(model, fx.tokenizer, [...PROMPTS].reverse(), { ...opts, batchSize: 2 }),
      [...alone].reverse(),
    );
  });
}

test("progress reaches the number of prompts", () => {
  const seen: number[] = [];
  generateText(model, fx.tokenizer, PROMPTS, {
    maxNewTokens: 2,
    batchSize: 2,
    onProgress: (p) => {
      assert.equal(p.total, PROMPTS.length);
      seen.push(p.done);
    },
  });
  assert.deepEqual(seen, [2, 4, 5]);
});

test("stop strings cut the decoded output before their first occurrence", () => {
  const opts = { maxNewTokens: 16, repetitionPenalty: 1.5 };
  const [full] = generateText(model, fx.tokenizer, [PROMPTS[0]], opts);
  // A two-character stop string whose first occurrence is not at the start, so the cut keeps some text.
  let k = 1;
  while (k + 2 <= full.length && full.indexOf(full.slice(k, k + 2)) !== k) k++;
  assert.ok(k + 2 <= full.length, `no usable stop string in ${JSON.stringify(full)}`);
  const stop = full.slice(k, k + 2);
  const [cut] = generateText(model, fx.tokenizer, [PROMPTS[0]], { ...opts, stop: ["\u0000never", stop] });
  assert.equal(cut, full.slice(0, k));
  assert.ok(cut.length > 0 && !cut.includes(stop));

  assert.equal(cutAtStop("answer\n###\nmore", ["###", "\n"]), "answer");
  assert.equal(cutAtStop("abc", []), "abc");
  assert.equal(cutAtStop("abc", [""]), "abc");
});

test("sampling is reproducible with a seed; bad settings are errors", () => {
  const a = generateText(model, fx.tokenizer, PROMPTS, { maxNewTokens: 8, temperature: 1.5, seed: 3 });
  const b = generateText(model, fx.tokenizer, PROMPTS, { maxNewTokens: 8, temperature: 1.5, seed: 3 });
  assert.deepEqual(a, b);
  assert.throws(
    () => generateText(model, fx.tokenizer, PROMPTS, { temperature: -1 }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "eval.temperature",
  );
  assert.throws(
    () => generateText(model, fx.tokenizer, ["ok", ""], {}),
    (e: unknown) => e instanceof TuneforgeError && /prompt 2 is empty/.test(e.message),
  );
  assert.throws(
    () => generateText(model, fx.tokenizer, ["ok"], { batchSize: 0 }),
    (e: unknown) => e instanceof TuneforgeError && e.location.key === "eval.batch_size",
  );
});
