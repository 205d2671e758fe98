import { test, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer, defaultTokenizerDir } from "../../src/data/tokenizer.js";
import { renderExample, renderPrompt, type TemplateSpec } from "../../src/data/template.js";
import type { Example, Message } from "../../src/data/types.js";
import { TuneforgeError } from "../../src/errors.js";
import { FIXTURES, HAVE_FIXTURES } from "../helpers/fixtures.js";

interface ChatCase {
  messages: Message[];
  rendered: string;
  rendered_ids: number[];
  prompt_no_thinking: string;
}

let qwen: Tokenizer;
/** Same vocabulary, but configured like a base model: no chat template, eos <|endoftext|>, and a bos added to
 *  plain text (<|box_start|> stands in for Llama's <s>). */
let base: Tokenizer;

before(async () => {
  qwen = await Tokenizer.fromModelDir();
  const dir = mkdtempSync(join(tmpdir(), "tf-tpl-"));
  symlinkSync(join(defaultTokenizerDir(), "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ eos_token: "<|endoftext|>", bos_token: "<|box_start|>", add_bos_token: true }),
  );
  base = await Tokenizer.fromModelDir(dir);
});

function example(messages: Message[], extra: Partial<Example> = {}): Example {
  return { kind: "example", domain: "d", source: { file: "data/rows.jsonl", line: 7 }, messages, ...extra };
}

const qa: Message[] = [
  { role: "user", content: "wach rak khoya" },
  { role: "assistant", content: "How are you, brother?" },
];

test(
  "chat: renders exactly what HF's apply_chat_template made, strings and ids",
  { skip: !HAVE_FIXTURES },
  () => {
    const fx = JSON.parse(
      readFileSync(join(FIXTURES, "tokenizer", "qwen3_tokenizer_expected.json"), "utf8"),
    ) as {
      chat: Record<string, ChatCase>;
    };
    for (const [name, c] of Object.entries(fx.chat)) {
      const r = renderExample(example(c.messages), { tokenizer: qwen, template: "chat" });
      assert.equal(r.prompt, c.prompt_no_thinking, name);
      assert.equal(r.prompt + r.completion, c.rendered, name);
      assert.deepEqual(qwen.encode(r.prompt + r.completion), c.rendered_ids, name);
      const prompt = renderPrompt(
        { messages: c.messages.slice(0, -1) },
        { tokenizer: qwen, template: "chat" },
      );
      assert.equal(prompt, c.prompt_no_thinking, name);
    }
  },
);

test("chat: system prompt leads, instruction goes before the first user message", () => {
  const r = renderExample(example(qa, { instruction: "Translate Darija to English." }), {
    tokenizer: qwen,
    template: "chat",
    systemPrompt: "You are a translator.",
  });
  assert.equal(
    r.prompt,
    "<|im_start|>system\nYou are a translator.<|im_end|>\n<|im_start|>user\nTranslate Darija to English.\n\n" +
      "wach rak khoya<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
  );
  assert.equal(
    r.completion,
    "How are you, brother?<|im_end|>\n",
    "eos already ends the turn: not added twice",
  );
});

test("chat: the row's own system message wins over the configured one", () => {
  const r = renderExample(example([{ role: "system", content: "Row system." }, ...qa]), {
    tokenizer: qwen,
    template: "chat",
    systemPrompt: "Config system.",
  });
  assert.ok(
    r.prompt.startsWith("<|im_start|>system\nRow system.<|im_end|>\n<|im_start|>user\nwach rak khoya"),
  );
  assert.ok(!r.prompt.includes("Config system."));
});

test("chatml: exact turns, bos and eos where the tokenizer needs them", () => {
  const q = renderExample(example(qa), { tokenizer: qwen, template: "chatml", systemPrompt: "S" });
  assert.equal(
    q.prompt,
    "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nwach rak khoya<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(q.completion, "How are you, brother?<|im_end|>\n");
  const b = renderExample(example(qa), { tokenizer: base, template: "chatml" });
  assert.equal(b.prompt, "<|box_start|><|im_start|>user\nwach rak khoya<|im_end|>\n<|im_start|>assistant\n");
  assert.equal(b.completion, "How are you, brother?<|im_end|>\n<|endoftext|>");
  const noEos = renderExample(example(qa), { tokenizer: base, template: "chatml", addEos: false });
  assert.equal(noEos.completion, "How are you, brother?<|im_end|>\n");
});

test("alpaca: with input, without input, and with a system prompt replacing the preamble", () => {
  const withInput = renderExample(example(qa, { instruction: "Translate to English." }), {
    tokenizer: qwen,
    template: "alpaca",
  });
  assert.equal(
    withInput.prompt,
    "Below is an instruction that describes a task, paired with an input that provides further context. " +
      "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate to English.\n\n" +
      "### Input:\nwach rak khoya\n\n### Response:\n",
  );
  assert.equal(withInput.completion, "How are you, brother?<|im_end|>");

  const noInput = renderExample(example(qa), { tokenizer: qwen, template: "alpaca" });
  assert.equal(
    noInput.prompt,
    "Below is an instruction that describes a task. Write a response that appropriately completes the request." +
      "\n\n### Instruction:\nwach rak khoya\n\n### Response:\n",
  );

  const sys = renderExample(example(qa, { instruction: "Translate." }), {
    tokenizer: base,
    template: "alpaca",
    systemPrompt: "You translate Darija.",
  });
  assert.equal(
    sys.prompt,
    "<|box_start|>You translate Darija.\n\n### Instruction:\nTranslate.\n\n### Input:\nwach rak khoya\n\n### Response:\n",
  );
  assert.equal(sys.completion, "How are you, brother?<|endoftext|>");
});

test("custom: placeholders filled once, other braces literal, prompt is everything before {output}", () => {
  const template: TemplateSpec = {
    custom: '{system}|{instruction}|{"k": 1}\nIN: {input}\nOUT:\n{output}\n---',
  };
  const r = renderExample(example(qa, { instruction: "say {input}" }), {
    tokenizer: qwen,
    template,
    systemPrompt: "SYS",
  });
  assert.equal(r.prompt, 'SYS|say {input}|{"k": 1}\nIN: wach rak khoya\nOUT:\n');
  assert.equal(r.completion, "How are you, brother?\n---<|im_end|>");
  assert.equal(
    renderPrompt(
      { messages: qa.slice(0, 1), instruction: "say {input}" },
      { tokenizer: qwen, template, systemPrompt: "SYS" },
    ),
    r.prompt,
  );
  const empty = renderExample(example(qa), { tokenizer: qwen, template });
  assert.equal(empty.prompt, '||{"k": 1}\nIN: wach rak khoya\nOUT:\n');
});

test("custom: a template without exactly one {output}, or with a placeholder after it, is refused", () => {
  for (const custom of ["Q: {input}", "{output} and {output}", "{output} {input}"]) {
    assert.throws(
      () => renderExample(example(qa), { tokenizer: qwen, template: { custom } }),
      (e: unknown) => e instanceof TuneforgeError && e.location.key === "template.custom",
      custom,
    );
  }
});

test("plain-text rows render as the text plus eos, with no prompt", () => {
  const row = example([], { text: "Cloud computing cuts costs." });
  for (const template of ["chat", "chatml", "alpaca"] as const) {
    assert.deepEqual(renderExample(row, { tokenizer: qwen, template }), {
      prompt: "",
      completion: "Cloud computing cuts costs.<|im_end|>",
    });
  }
  assert.deepEqual(renderExample(row, { tokenizer: base, template: "chatml" }), {
    prompt: "<|box_start|>",
    completion: "Cloud computing cuts costs.<|endoftext|>",
  });
});

test("a prompt that is not a prefix of the full render is an error naming the row", () => {
  // The answer carries its own reasoning, which Qwen3's template renders inside <think>: the thinking-off
  // prompt ("<think>\n\n</think>\n\n") is then not how the full conversation starts.
  const row = example([
    qa[0],
    { role: "assistant", content: "<think>greeting</think>How are you, brother?" },
  ]);
  assert.throws(
    () => renderExample(row, { tokenizer: qwen, template: "chat" }),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      e.message.startsWith("data/rows.jsonl:7: ") &&
      /differently from the start of the full conversation/.test(e.message) &&
      e.location.line === 7 &&
      e.hint !== undefined,
  );
});

test("conversations the template cannot train on are errors naming the row", () => {
  const cases: [Example, TemplateSpec, RegExp][] = [
    [example([qa[0]]), "chat", /ends with a user message/],
    [example([...qa, ...qa]), "alpaca", /single user message/],
    [example([...qa, ...qa]), { custom: "{input}{output}" }, /single user message/],
    [example([]), "chatml", /neither messages nor text/],
  ];
  for (const [row, template, pattern] of cases) {
    assert.throws(
      () => renderExample(row, { tokenizer: qwen, template }),
      (e: unknown) =>
        e instanceof TuneforgeError && e.location.file === "data/rows.jsonl" && pattern.test(e.message),
    );
  }
  assert.throws(
    () => renderExample(example(qa), { tokenizer: base, template: "chat" }),
    (e: unknown) => e instanceof TuneforgeError && /has no chat template/.test(e.message),
  );
});

test("a chat template's raise_exception becomes an error naming the row", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-tpl-"));
  symlinkSync(join(defaultTokenizerDir(), "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|im_end|>" }));
  writeFileSync(
    join(dir, "chat_template.jinja"),
    "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}" +
      "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}" +
      "[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
  );
  const strict = await Tokenizer.fromModelDir(dir);
  const ok = renderExample(example(qa), { tokenizer: strict, template: "chat" });
  assert.deepEqual(ok, {
    prompt: "[user]wach rak khoya<|im_end|>[assistant]",
    completion: "How are you, brother?<|im_end|>",
  });
  assert.throws(
    () => renderExample(example([qa[0], ...qa]), { tokenizer: strict, template: "chat" }),
    (e: unknown) =>
      e instanceof TuneforgeError &&
      e.location.file === "data/rows.jsonl" &&
      e.location.line === 7 &&
      /roles must alternate/.test(e.message),
  );
});
