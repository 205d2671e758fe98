import { test } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { ConfigError } from "../../src/config/errors.js";
import { parseConfig } from "../../src/config/load.js";
import {
  acceptConfigOverrides,
  overridesFromCommand,
  parseOverrides,
  resolveFlag,
} from "../../src/config/overrides.js";

function overrideErrors(args: string[]): ConfigError {
  try {
    parseOverrides(args);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e;
  }
  assert.fail("the flags were accepted");
}

test("every flag spelling resolves to the same key", () => {
  for (const args of [["--lora-r", "32"], ["--lora_r", "32"], ["--lora-r=32"], ["--set", "lora.r=32"]]) {
    assert.deepEqual(parseOverrides(args).values, { lora: { r: 32 } }, args.join(" "));
  }
  assert.deepEqual(parseOverrides(["--num_train_epochs", "2"]).values, { training: { num_train_epochs: 2 } });
  assert.deepEqual(parseOverrides(["--per_device_train_batch_size", "2"]).values, {
    training: { per_device_train_batch_size: 2 },
  });
  assert.deepEqual(parseOverrides(["--max_seq_length", "256"]).values, { training: { max_seq_length: 256 } });
  assert.deepEqual(parseOverrides(["--learning-rate", "1e-4"]).values, { training: { learning_rate: 1e-4 } });
  assert.deepEqual(parseOverrides(["--data-template", "alpaca"]).values, { data: { template: "alpaca" } });
  assert.deepEqual(parseOverrides(["--set", "training.seed=7"]).values, { training: { seed: 7 } });
  // Nested keys: full path, path without section, or a unique leaf.
  for (const flag of ["--data_clean_urls", "--clean-urls", "--urls"]) {
    assert.deepEqual(parseOverrides([flag, "true"]).values, { data: { clean: { urls: true } } }, flag);
  }
});

test("values are parsed by the key's type", () => {
  const o = parseOverrides([
    "--packing",
    "--no-group-by-length",
    "--use_rslora=false",
    "--target_modules",
    "q_proj, v_proj",
    "--max_chars",
    "null",
    "--bf16",
    "false",
    "--dtype",
    "bfloat16",
    "--run_name",
    "123",
    "--set",
    "data.system_prompts.technology=Translate = carefully",
  ]);
  assert.deepEqual(o.values, {
    data: {
      packing: true,
      clean: { max_chars: null },
      system_prompts: { technology: "Translate = carefully" },
    },
    training: { group_by_length: false, bf16: false, run_name: "123" },
    lora: { use_rslora: false, target_modules: ["q_proj", "v_proj"] },
    model: { dtype: "bfloat16" },
  });
  assert.equal(o.flags["lora.target_modules"], "--target_modules");
  assert.deepEqual(parseOverrides(["--bf16", "auto"]).values, { training: { bf16: "auto" } });
});

test("ambiguous and unknown flags are errors that name the valid spelling", () => {
  const e = overrideErrors(["--seed", "3", "--lora-rr", "8", "--lr", "1e-4", "stray"]);
  assert.equal(e.issues.length, 4);
  assert.match(
    e.issues[0].message,
    /ambiguous.*data\.split\.seed or training\.seed.*--data_split_seed or --training_seed/,
  );
  assert.equal(e.issues[1].suggestion, "--lora_r");
  assert.equal(e.issues[2].suggestion, "--learning_rate");
  assert.match(e.issues[3].message, /unexpected argument/);
  const r = resolveFlag("output-dir");
  assert.ok("error" in r && /data\.output_dir or training\.output_dir/.test(r.error));
});

test("bad --set paths and missing values are errors", () => {
  assert.match(overrideErrors(["--set", "training.sed=1"]).message, /did you mean `training\.seed`/);
  assert.match(overrideErrors(["--set", "lora=1"]).message, /is a section/);
  assert.match(overrideErrors(["--set", "lora.r"]).message, /expects key=value/);
  assert.match(overrideErrors(["--lora-r"]).message, /needs a value/);
  assert.match(overrideErrors(["--lora-r", "--packing"]).message, /needs a value/);
});

test("overrides win over the file, and a bad value names the flag instead of a line", () => {
  const text = "lora:\n  r: 4\n  alpha: 8\ntraining:\n  seed: 1\n";
  const c = parseConfig(text, "tf.yaml", {
    overrides: parseOverrides(["--lora-r", "32", "--set", "training.seed=7"]),
  });
  assert.equal(c.lora.r, 32);
  assert.equal(c.lora.alpha, 8, "other keys of the section are kept");
  assert.equal(c.training.seed, 7);
  assert.equal(c.data.split.seed, 7);
  try {
    parseConfig(text, "tf.yaml", { overrides: parseOverrides(["--lora_r", "many"]) });
    assert.fail("accepted");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.issues[0].flag, "--lora_r");
    assert.equal(e.issues[0].line, undefined);
    assert.match(e.message, /--lora_r \(command line\) lora\.r: expected an integer, found "many"/);
  }
});

test("a commander command accepts override flags next to its own options", async () => {
  let seen: ReturnType<typeof overridesFromCommand> | undefined;
  let configPath = "";
  const program = new Command().exitOverride();
  acceptConfigOverrides(program.command("train").argument("[name]")).action((_name, opts, cmd: Command) => {
    configPath = opts.config;
    seen = overridesFromCommand(cmd);
  });
  await program.parseAsync(
    ["train", "run1", "--lora-r", "16", "--config", "x.yaml", "--set", "training.seed=3", "--packing"],
    { from: "user" },
  );
  assert.equal(configPath, "x.yaml");
  assert.deepEqual(seen?.values, { lora: { r: 16 }, training: { seed: 3 }, data: { packing: true } });
});

test("keys that take true/false among other values: bare flag, --no- form, and their other values", () => {
  const training = (args: string[]) => parseOverrides(args).values.training;
  assert.deepEqual(training(["--bf16"]), { bf16: true });
  assert.deepEqual(training(["--no-bf16"]), { bf16: false });
  assert.deepEqual(training(["--bf16", "auto"]), { bf16: "auto" });
  assert.deepEqual(training(["--bf16=false", "--lora-r", "8"]), { bf16: false });
  assert.deepEqual(training(["--gradient-checkpointing", "--lora-r", "8"]), { gradient_checkpointing: true });
  assert.deepEqual(training(["--no-gradient-checkpointing"]), { gradient_checkpointing: false });
  assert.deepEqual(training(["--gradient-checkpointing", "auto"]), { gradient_checkpointing: "auto" });
  // A number is a layer count, "1" included (one layer), not a boolean word.
  assert.deepEqual(training(["--gradient-checkpointing", "1"]), { gradient_checkpointing: 1 });
  assert.deepEqual(training(["--gradient-checkpointing=9"]), { gradient_checkpointing: 9 });
  // Boolean-only keys keep reading "1" as true.
  assert.deepEqual(parseOverrides(["--packing", "1"]).values, { data: { packing: true } });
  assert.match(overrideErrors(["--no-bf16=yes"]).message, /takes no value/);
});
