import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import { loadModelConfig } from "../../src/model/config.js";
import { expectedTensors } from "../../src/model/layout.js";
import { Checkpoint } from "../../src/model/safetensors.js";
import { ensureTinyModel, tinyModelHash, TINY_DEFAULTS } from "../../src/model/tiny.js";
import { TuneforgeError } from "../../src/errors.js";

// A small multilingual corpus like the bundled examples: translation pairs in English, Spanish, Arabic
// and Darija (Arabic and Latin script with 3/7/9).
const EN = [
  "The meeting is tomorrow at nine.",
  "Where is the train station?",
  "I would like a cup of tea, please.",
  "The report must be ready by Friday.",
];
const ES = [
  "La reunión es mañana a las nueve.",
  "¿Dónde está la estación de tren?",
  "Quisiera una taza de té, por favor.",
  "El informe debe estar listo el viernes.",
];
const AR = [
  "الاجتماع غدا في الساعة التاسعة.",
  "أين محطة القطار؟",
  "أريد كوبا من الشاي من فضلك.",
  "يجب أن يكون التقرير جاهزا يوم الجمعة.",
];
const DA = [
  "lijtima3 ghedda f t3ssoud.",
  "fin kayna lagar dyal tran?",
  "bghit kas dyal atay 3afak.",
  "rapport khasso ykoun wajed nhar jem3a.",
];
const DA_AR = [
  "الاجتماع غدا مع التسعود.",
  "فين كاينة لاگار ديال التران؟",
  "بغيت كاس ديال أتاي عافاك.",
  "خاص الرابور يكون واجد نهار الجمعة.",
];
const CORPUS: string[] = [];
for (let i = 0; i < 40; i++) {
  const k = i % 4;
  CORPUS.push(
    `Translate to Spanish: ${EN[k]}\n${ES[k]}`,
    `ترجم إلى العربية: ${EN[k]}\n${AR[k]}`,
    `Darija: ${DA[k]} / ${DA_AR[k]} (#${i})`,
  );
}
const SMALL = {
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 16,
  intermediateSize: 64,
  tokenizerVocabSize: 400,
};

const readTokenizer = (dir: string) =>
  new Tokenizer(
    JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
    JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
  );

test("builds a real Qwen3 folder with exactly the expected tensors, N(0, initStd) weights and unit norms", () => {
  const cacheDir = mkdtempSync(join(tmpdir(), "tf-tiny-"));
  const model = ensureTinyModel({ corpus: CORPUS, seed: 3, cacheDir });
  assert.equal(model.built, true);
  assert.equal(model.dir, join(cacheDir, `tiny-${tinyModelHash(CORPUS, 3)}`));
  const config = loadModelConfig(model.dir);
  assert.deepEqual(config, model.config);
  assert.equal(config.arch, "qwen3");
  assert.equal(config.hiddenSize, 128);
  assert.equal(config.numLayers, 4);
  assert.equal(config.numHeads, 4);
  assert.equal(config.numKvHeads, 2);
  assert.equal(config.headDim, 32);
  assert.equal(config.intermediateSize, 384);
  assert.equal(config.ropeTheta, 10000);
  assert.equal(config.maxPositionEmbeddings, 1024);
  assert.equal(config.tieWordEmbeddings, true);
  const tok = readTokenizer(model.dir);
  const tokSize = Object.keys(
    JSON.parse(readFileSync(join(model.dir, "tokenizer.json"), "utf8")).model.vocab,
  ).length;
  assert.ok(tokSize > 256 && tokSize <= 2048);
  assert.equal(config.vocabSize, tokSize + 3);
  assert.deepEqual(config.eosTokenIds, [tok.token_to_id("<|im_end|>")]);
  assert.equal(config.padTokenId, tok.token_to_id("<|endoftext|>"));
  const gen = JSON.parse(readFileSync(join(model.dir, "generation_config.json"), "utf8"));
  assert.deepEqual(gen.eos_token_id, [tokSize + 2, tokSize]);

  const ck = Checkpoint.open(model.dir);
  const specs = expectedTensors(config);
  assert.deepEqual(ck.names().sort(), specs.map((s) => s.name).sort());
  assert.ok(!ck.has("lm_head.weight"));
  for (const { name, shape } of specs) {
    const info = ck.info(name);
    assert.equal(info.dtype, "F32");
    assert.deepEqual(info.shape, shape, name);
    const w = ck.readF32(name);
    if (name.endsWith("norm.weight")) {
      assert.ok(
        w.every((x) => x === 1),
        name,
      );
      continue;
    }
    let sum = 0;
    let sq = 0;
    for (const x of w) {
      sum += x;
      sq += x * x;
    }
    const mean = sum / w.length;
    const std = Math.sqrt(sq / w.length - mean * mean);
    assert.ok(
      Math.abs(mean) < 0.1 * TINY_DEFAULTS.initStd &&
        Math.abs(std - TINY_DEFAULTS.initStd) < 0.1 * TINY_DEFAULTS.initStd,
      `${name}: mean ${mean}, std ${std}`,
    );
  }
  // Different tensors get different random values (one stream, not a restarted one).
  assert.notDeepEqual(
    ck.readF32("model.layers.0.mlp.up_proj.weight"),
    ck.readF32("model.layers.0.mlp.gate_proj.weight"),
  );
  ck.close();
});

test("its tokenizer loads in HF tokenizers, round-trips Arabic/Spanish/Darija and compresses the corpus", () => {
  const model = ensureTinyModel({
    corpus: CORPUS,
    seed: 3,
    cacheDir: mkdtempSync(join(tmpdir(), "tf-tiny-")),
  });
  const tok = readTokenizer(model.dir);
  const texts = [
    ...ES,
    ...AR,
    ...DA,
    ...DA_AR,
    "¿Cuántos años tienes? ¡Qué bonito día!",
    "كيداير؟ لاباس عليك؟ wach labas 3lik? 9addach hadi?",
    "Texte hors corpus: naïve façade — 😀 中文\n\tindent",
  ];
  for (const text of texts) {
    const { ids } = tok.encode(text);
    assert.ok(ids.every((id: number) => id < model.config.vocabSize));
    assert.equal(tok.decode(ids), text, text);
  }
  let tokens = 0;
  let bytes = 0;
  for (const text of CORPUS) {
    tokens += tok.encode(text).ids.length;
    bytes += Buffer.byteLength(text);
  }
  assert.ok(bytes / tokens > 3, `${(bytes / tokens).toFixed(2)} bytes per token`);
  const chat = tok.encode("<|im_start|>user\nhola<|im_end|>\n").ids;
  assert.equal(chat[0], tok.token_to_id("<|im_start|>"));
  assert.ok(chat.includes(tok.token_to_id("<|im_end|>")!));
});

test("its chat template renders ChatML with a default or given system prompt", () => {
  const model = ensureTinyModel({
    corpus: CORPUS,
    seed: 3,
    ...SMALL,
    cacheDir: mkdtempSync(join(tmpdir(), "tf-tiny-")),
  });
  const tc = JSON.parse(readFileSync(join(model.dir, "tokenizer_config.json"), "utf8"));
  assert.equal(tc.eos_token, "<|im_end|>");
  assert.equal(tc.pad_token, "<|endoftext|>");
  const template = new Template(tc.chat_template);
  const messages = [
    { role: "user", content: "Hola" },
    { role: "assistant", content: "مرحبا" },
  ];
  assert.equal(
    template.render({ messages, add_generation_prompt: false }),
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHola<|im_end|>\n" +
      "<|im_start|>assistant\nمرحبا<|im_end|>\n",
  );
  assert.equal(
    template.render({
      messages: [{ role: "system", content: "Translate." }, messages[0]],
      add_generation_prompt: true,
    }),
    "<|im_start|>system\nTranslate.<|im_end|>\n<|im_start|>user\nHola<|im_end|>\n<|im_start|>assistant\n",
  );
});

test("is cached by content: reused on the second call, identical bytes when rebuilt elsewhere", () => {
  const a = mkdtempSync(join(tmpdir(), "tf-tiny-"));
  const b = mkdtempSync(join(tmpdir(), "tf-tiny-"));
  const first = ensureTinyModel({ corpus: CORPUS, seed: 5, ...SMALL, cacheDir: a });
  const again = ensureTinyModel({ corpus: CORPUS, seed: 5, ...SMALL, cacheDir: a });
  assert.equal(first.built, true);
  assert.equal(again.built, false);
  assert.equal(again.dir, first.dir);
  assert.deepEqual(readdirSync(a), [first.dir.split("/").at(-1)]); // no temp folder left behind
  const other = ensureTinyModel({ corpus: CORPUS, seed: 5, ...SMALL, dir: join(b, "tiny") });
  assert.equal(other.built, true);
  const files = readdirSync(first.dir).sort();
  assert.deepEqual(files, [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
  ]);
  assert.deepEqual(readdirSync(other.dir).sort(), files);
  for (const f of files)
    assert.ok(readFileSync(join(first.dir, f)).equals(readFileSync(join(other.dir, f))), f);
  assert.equal(other.config.hiddenSize, 32);

  // Another seed or corpus is another model.
  assert.notEqual(tinyModelHash(CORPUS, 6, SMALL), tinyModelHash(CORPUS, 5, SMALL));
  assert.notEqual(tinyModelHash(CORPUS.slice(1), 5, SMALL), tinyModelHash(CORPUS, 5, SMALL));
  assert.notEqual(tinyModelHash(["ab", "c"], 5), tinyModelHash(["a", "bc"], 5));
  const reseeded = ensureTinyModel({ corpus: CORPUS, seed: 6, ...SMALL, cacheDir: a });
  assert.notEqual(reseeded.dir, first.dir);
  assert.ok(
    !readFileSync(join(reseeded.dir, "model.safetensors")).equals(
      readFileSync(join(first.dir, "model.safetensors")),
    ),
  );
});

test("rejects bad sizes and an empty corpus", () => {
  const cacheDir = mkdtempSync(join(tmpdir(), "tf-tiny-"));
  assert.throws(
    () => ensureTinyModel({ corpus: CORPUS, seed: 1, numHeads: 4, numKvHeads: 3, cacheDir }),
    TuneforgeError,
  );
  assert.throws(() => ensureTinyModel({ corpus: CORPUS, seed: 1, headDim: 15, cacheDir }), /must be even/);
  assert.throws(() => ensureTinyModel({ corpus: CORPUS, seed: 1, hiddenSize: -1, cacheDir }), /hiddenSize/);
  assert.throws(() => ensureTinyModel({ corpus: [""], seed: 1, cacheDir }), /corpus is empty/);
  assert.deepEqual(readdirSync(cacheDir), []);
});
