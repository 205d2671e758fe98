import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, type CliContext } from "../../src/cli/main.js";
import { loadConfig } from "../../src/config/load.js";
import { INIT_TEMPLATES } from "../../src/config/init.js";

function capture(): CliContext & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const tuneforge = (...args: string[]) => ["node", "tuneforge", ...args];

const EXPECTED_DATA: Record<string, string[]> = {
  translation: ["technology.csv", "economic v1.csv", "Education_Research.csv"],
  chat: ["messages.json"],
  "json-extraction": ["orders.jsonl", "orders_heldout.jsonl"],
  "documents-qa": [
    "remote-work-policy.txt",
    "expense-policy.txt",
    "it-security-guidelines.txt",
    "travel-policy.pdf",
    "onboarding-guide.docx",
  ],
};

test("init writes a valid commented config and its data for every template", async () => {
  assert.deepEqual(Object.keys(EXPECTED_DATA).sort(), Object.keys(INIT_TEMPLATES).sort());
  for (const template of Object.keys(INIT_TEMPLATES)) {
    const dir = join(mkdtempSync(join(tmpdir(), "tf-init-")), "project");
    const io = capture();
    assert.equal(
      await run(tuneforge("init", "--template", template, "--dir", dir), io),
      0,
      io.stderr.join("\n"),
    );
    const yaml = readFileSync(join(dir, "tuneforge.yaml"), "utf8");
    assert.match(yaml, /^# /m, "the config is commented");
    const { config } = loadConfig(join(dir, "tuneforge.yaml"));
    for (const name of EXPECTED_DATA[template])
      assert.ok(existsSync(join(dir, name)), `${template}: ${name}`);
    // Every input the config names was written next to it.
    for (const input of config.data.inputs) assert.ok(existsSync(input.path), input.path);
    assert.ok(
      io.stdout.some((l) => l.includes("tuneforge.yaml")),
      "init lists what it wrote",
    );
  }
});

test("init refuses to overwrite existing files unless --force", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-init-"));
  writeFileSync(join(dir, "tuneforge.yaml"), "# mine\n");
  const io = capture();
  assert.equal(await run(tuneforge("init", "--template", "chat", "--dir", dir), io), 1);
  assert.match(io.stderr.join("\n"), /refusing to overwrite 1 existing file\(s\).*tuneforge\.yaml/);
  assert.match(io.stderr.join("\n"), /--force/);
  assert.doesNotMatch(io.stderr.join("\n"), /\n\s+at /, "a user error prints no stack trace");
  assert.equal(readFileSync(join(dir, "tuneforge.yaml"), "utf8"), "# mine\n");
  assert.equal(existsSync(join(dir, "messages.json")), false, "nothing is written when refusing");

  assert.equal(await run(tuneforge("init", "--template", "chat", "--dir", dir, "--force"), capture()), 0);
  assert.match(readFileSync(join(dir, "tuneforge.yaml"), "utf8"), /Darija/);
  assert.ok(existsSync(join(dir, "messages.json")));
});

test("init --help describes the command and shows examples", async () => {
  const io = capture();
  assert.equal(await run(tuneforge("init", "--help"), io), 0);
  const help = io.stdout.join("\n");
  assert.match(help, /Create a commented tuneforge\.yaml/);
  assert.match(help, /Examples:\n\s+\$ tuneforge init --template translation/);
  for (const t of Object.keys(INIT_TEMPLATES)) assert.ok(help.includes(t), t);
});

test("usage errors exit 1; unexpected errors print their stack", async () => {
  const io = capture();
  assert.equal(await run(tuneforge("init", "--template", "poetry"), io), 1);
  assert.match(io.stderr.join("\n"), /poetry/);
  assert.equal(await run(tuneforge("frobnicate"), capture()), 1);
  const top = capture();
  assert.equal(await run(tuneforge("--help"), top), 0);
  assert.match(top.stdout.join("\n"), /init/);
  // A file where a folder is needed is not a TuneforgeError: the stack helps find the bug.
  const file = join(mkdtempSync(join(tmpdir(), "tf-init-")), "plain");
  writeFileSync(file, "x");
  const crash = capture();
  assert.equal(await run(tuneforge("init", "--dir", file), crash), 1);
  assert.match(crash.stderr.join("\n"), /\n\s+at /);
});
