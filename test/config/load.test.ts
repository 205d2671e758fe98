import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import { TuneforgeError } from "../../src/errors.js";

function configError(text: string): ConfigError {
  try {
    parseConfig(text, "tf.yaml");
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail("the config was accepted");
}

test("an unknown key names file, line and the nearest valid key", () => {
  const e = configError("lora:\n  alpha: 16\n  rank: 8\n");
  assert.equal(e.issues.length, 1);
  assert.equal(e.issues[0].key, "lora.rank");
  assert.equal(e.issues[0].line, 3);
  assert.equal(e.issues[0].suggestion, "lora.r");
  assert.match(e.message, /^tf\.yaml:3 lora\.rank: unknown key; did you mean `lora\.r`\?/);
  assert.match(e.message, /fix: rename it to `lora\.r`/);
});

test("a misspelt key is matched by edit distance, a key in the wrong section by name", () => {
  const e = configError("training:\n  learnig_rate: 1e-4\nlora:\n  num_train_epochs: 2\n");
  const byKey = Object.fromEntries(e.issues.map((i) => [i.key, i]));
  assert.equal(byKey["training.learnig_rate"].suggestion, "training.learning_rate");
  assert.equal(byKey["training.learnig_rate"].line, 2);
  assert.equal(byKey["lora.num_train_epochs"].suggestion, "training.num_train_epochs");
  assert.match(byKey["lora.num_train_epochs"].message, /belongs in `training`/);
});

test("unknown keys inside list entries are found too", () => {
  const e = configError("data:\n  inputs:\n    - path: a.csv\n      colums: { source: en, target: ar }\n");
  assert.equal(e.issues[0].key, "data.inputs.0.colums");
  assert.equal(e.issues[0].suggestion, "data.inputs.0.columns");
  assert.equal(e.issues[0].line, 4);
});

test("an unrelated unknown key lists the valid keys instead of guessing", () => {
  const e = configError("export:\n  zzzzzz: 1\n");
  assert.equal(e.issues[0].suggestion, undefined);
  assert.match(e.issues[0].message, /valid keys here: merged, gguf, gguf_quantization/);
});

test("a wrong type names the expected and the found value", () => {
  const e = configError("training:\n  seed: 1\n  learning_rate: fast\n");
  const issue = e.issues[0];
  assert.equal(issue.key, "training.learning_rate");
  assert.equal(issue.line, 3);
  assert.equal(issue.expected, "a number");
  assert.equal(issue.found, '"fast"');
  assert.match(e.message, /tf\.yaml:3 training\.learning_rate: expected a number, found "fast"/);
});

test("enum values are listed and a near miss is suggested; ranges are explained", () => {
  const e = configError("training:\n  lr_scheduler_type: cosin\n  warmup_ratio: 1.5\n");
  assert.match(
    e.issues[0].message,
    /expected one of cosine, linear, constant, found "cosin"; did you mean "cosine"\?/,
  );
  assert.equal(e.issues[1].key, "training.warmup_ratio");
  assert.match(e.issues[1].message, /must be < 1, found 1\.5/);
});

test("every problem is reported at once, in file order", () => {
  const e = configError(
    [
      "model:",
      "  dtype: float8", // 2
      "data:",
      "  inputs:",
      "    - a.csv",
      "    - path: 3", // 6
      "lora:",
      "  r: 2.5", // 8
      "eval:",
      "  temprature: 0", // 10
    ].join("\n"),
  );
  assert.deepEqual(
    e.issues.map((i) => [i.key, i.line]),
    [
      ["model.dtype", 2],
      ["data.inputs.1.path", 6],
      ["lora.r", 8],
      ["eval.temprature", 10],
    ],
  );
  assert.match(e.message, /4 problems/);
  assert.equal(e.issues[2].expected, "an integer");
});

test("split ratios must sum to 1 (checked even when other keys are wrong)", () => {
  const e = configError("data:\n  split:\n    train: 0.7\n    val: 0.2\n    test: 0.2\nlora:\n  r: x\n");
  const split = e.issues.find((i) => i.key === "data.split");
  assert.ok(split, "the split sum is reported");
  assert.equal(split.line, 2);
  assert.match(split.message, /must sum to 1, found 0\.7 \+ 0\.2 \+ 0\.2 = 1\.1/);
  assert.ok(e.issues.some((i) => i.key === "lora.r"));
  // The defaults fill in missing ratios.
  assert.ok(configError("data:\n  split: { train: 0.9 }\n").issues[0].message.includes("0.9 + 0.1 + 0.1"));
  assert.equal(
    parseConfig("data:\n  split: { train: 0.9, val: 0.05, test: 0.05 }\n", "x").data.split.train,
    0.9,
  );
});

test("cross-field rules: custom template, chunk overlap, system prompts for unknown domains", () => {
  assert.match(configError("data:\n  template: custom\n").message, /needs `data.custom_template`/);
  assert.match(configError("data:\n  custom_template: '{{x}}'\n").message, /set `data.template: custom`/);
  assert.match(
    configError("data:\n  chunking: { chunk_size: 100, chunk_overlap: 100 }\n").message,
    /below chunk_size/,
  );
  const e = configError(
    "data:\n  inputs:\n    - { path: a.csv, domain: technology }\n  system_prompts:\n    tehcnology: hi\n",
  );
  assert.equal(e.issues[0].key, "data.system_prompts.tehcnology");
  assert.equal(e.issues[0].suggestion, "technology");
  assert.equal(e.issues[0].line, 5);
});

test("YAML syntax errors and duplicate keys name the line", () => {
  const dup = configError("lora:\n  r: 4\n  r: 8\n");
  assert.equal(dup.issues[0].line, 3);
  assert.match(dup.message, /invalid YAML/);
  const bad = configError("lora:\n  r: [1, 2\n");
  assert.match(bad.message, /invalid YAML/);
  assert.throws(() => parseConfig("- a\n- b\n", "tf.yaml"), /must be a mapping of sections/);
});

test("loadConfig resolves relative paths against the config folder and reports a missing file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-config-"));
  const file = join(dir, "tuneforge.yaml");
  writeFileSync(
    file,
    "model:\n  name_or_path: Qwen/Qwen2.5-0.5B\n  tokenizer: tok\ndata:\n  inputs: [my data.csv]\n",
  );
  const { config, dir: configDir } = loadConfig(file);
  assert.equal(configDir, dir);
  assert.equal(config.data.inputs[0].path, join(dir, "my data.csv"));
  assert.equal(config.data.output_dir, join(dir, "data/prepared"));
  assert.equal(config.training.output_dir, join(dir, "models"));
  assert.equal(config.model.tokenizer, join(dir, "tok"));
  assert.equal(config.model.name_or_path, "Qwen/Qwen2.5-0.5B", "a hub id is not a path");
  assert.throws(
    () => loadConfig(join(dir, "nope.yaml")),
    (e: unknown) =>
      e instanceof TuneforgeError && /not found/.test(e.message) && /tuneforge init/.test(e.message),
  );
});
