import { before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineModel } from "../../src/engine/index.js";
import { renderPrompt, type TemplateSpec } from "../../src/data/template.js";
import { applyAdapter, generateText, readAdapterFor } from "../../src/eval/generate.js";
import { readSavedPromptSettings, translate } from "../../src/eval/translate.js";
import { TuneforgeError } from "../../src/errors.js";
import { PAIRS, makeAdapter, tinyEval, type TinyEval } from "./evalFixture.js";

let fx: TinyEval;
let adapterDir: string;
const TEXTS = PAIRS.slice(0, 4).map((p) => p[0]);

before(async () => {
  fx = await tinyEval();
  adapterDir = makeAdapter(join(fx.root, "models", "plain"), fx.config, { r: 2, seed: 2 });
});

/** Greedy outputs for prompts rendered here with renderPrompt (what translate must do itself). */
function direct(
  adapter: string | undefined,
  settings: { template: TemplateSpec; systemPrompt?: string; instruction?: string },
): string[] {
  const model = EngineModel.load(fx.modelDir, { threads: 2 });
  try {
    if (adapter) applyAdapter(model, readAdapterFor(adapter, model));
    const prompts = TEXTS.map((content) =>
      renderPrompt(
        { messages: [{ role: "user", content }], instruction: settings.instruction },
        { tokenizer: fx.tokenizer, template: settings.template, systemPrompt: settings.systemPrompt },
      ),
    );
    return generateText(model, fx.tokenizer, prompts, { maxNewTokens: 8 }).map((o) => o.trim());
  } finally {
    model.dispose();
  }
}

test("translate renders each text as a one-user-message conversation with renderPrompt", async () => {
  for (const settings of [
    { template: "chatml" as const, systemPrompt: "Translate to Spanish.", instruction: "Be brief." },
    { template: "alpaca" as const },
  ]) {
    const out = await translate({
      modelDir: fx.modelDir,
      adapterDir,
      texts: TEXTS,
      maxNewTokens: 8,
      threads: 2,
      ...settings,
    });
    assert.equal(out.length, TEXTS.length);
    assert.deepEqual(out, direct(adapterDir, settings));
  }
  const base = await translate({
    modelDir: fx.modelDir,
    texts: TEXTS,
    template: "chat",
    maxNewTokens: 8,
    threads: 2,
  });
  assert.deepEqual(base, direct(undefined, { template: "chat" }));
  assert.deepEqual(await translate({ modelDir: fx.modelDir, texts: [] }), []);
});

test("the adapter's saved training config decides template, system prompt and instruction", async () => {
  const saved = join(fx.root, "runs", "r1", "adapter");
  mkdirSync(saved, { recursive: true });
  cpSync(adapterDir, saved, { recursive: true });
  // In the run folder (the adapter's parent), as the resolved config with a per-domain system prompt.
  writeFileSync(
    join(saved, "..", "tuneforge.json"),
    JSON.stringify({
      domain: "translation",
      data: {
        template: "alpaca",
        system_prompt: "generic",
        system_prompts: { translation: "You translate English to Spanish." },
        instruction: "Translate:",
      },
    }),
  );
  const settings = readSavedPromptSettings(saved);
  assert.deepEqual(settings, {
    file: join(saved, "..", "tuneforge.json"),
    template: "alpaca",
    systemPrompt: "You translate English to Spanish.",
    instruction: "Translate:",
  });
  // The options say chatml, the saved config says alpaca: the adapter is asked in its training format.
  const out = await translate({
    modelDir: fx.modelDir,
    adapterDir: saved,
    texts: TEXTS,
    template: "chatml",
    maxNewTokens: 8,
    threads: 2,
  });
  const expected = direct(adapterDir, {
    template: "alpaca",
    systemPrompt: "You translate English to Spanish.",
    instruction: "Translate:",
  });
  assert.deepEqual(out, expected);
  assert.notDeepEqual(out, direct(adapterDir, { template: "chatml" }));
});

test("saved training configs: flat keys, custom templates, and damaged files", () => {
  const dir = join(fx.root, "saved");
  mkdirSync(dir, { recursive: true });
  assert.equal(readSavedPromptSettings(dir), null);
  writeFileSync(
    join(dir, "training_config.json"),
    JSON.stringify({ template: "custom", custom_template: "Q: {input}\nA: {output}", system_prompt: "S" }),
  );
  assert.deepEqual(readSavedPromptSettings(dir), {
    file: join(dir, "training_config.json"),
    template: { custom: "Q: {input}\nA: {output}" },
    systemPrompt: "S",
  });
  writeFileSync(join(dir, "tuneforge.json"), "{ not json");
  assert.throws(
    () => readSavedPromptSettings(dir),
    (e: unknown) => e instanceof TuneforgeError && e.location.file === join(dir, "tuneforge.json"),
  );
  writeFileSync(join(dir, "tuneforge.json"), JSON.stringify({ data: { template: "vicuna" } }));
  assert.throws(() => readSavedPromptSettings(dir), /template "vicuna" is not one tuneforge knows/);
});
