// `tuneforge train` from the command line: Ctrl-C saves a checkpoint and exits 130 (the SIGINT convention),
// a finished run exits 0 and names why it stopped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, type CliContext } from "../../src/cli/main.js";
import { tinyTask } from "./helpers.js";

async function cli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliContext = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await run(["node", "tuneforge", ...args], io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

test("Ctrl-C stops after the step with a checkpoint and exit code 130; a time-limited run exits 0", async () => {
  const task = await tinyTask();
  const config = join(task.dir, "tuneforge.yaml");
  // JSON is YAML: the tiny task's settings, with a run far longer than the test.
  writeFileSync(
    config,
    JSON.stringify({
      model: { name_or_path: task.modelDir },
      data: { inputs: [{ path: "upper.csv", domain: "upper" }], system_prompt: "Up.", packing: false },
      lora: { r: 8, alpha: 16, dropout: 0 },
      training: {
        learning_rate: 1e-2,
        per_device_train_batch_size: 8,
        gradient_accumulation_steps: 1,
        max_seq_length: 64,
        max_steps: 100_000,
        save_steps: 100_000,
      },
    }),
  );
  // Press Ctrl-C once the command's own SIGINT handler is installed (calling it, as a signal would).
  const before = process.listeners("SIGINT");
  const presser = setInterval(() => {
    const added = process.listeners("SIGINT").filter((l) => !before.includes(l));
    if (added.length > 0) {
      clearInterval(presser);
      (added[0] as (signal: NodeJS.Signals) => void)("SIGINT");
    }
  }, 1);
  const stopped = await cli(["train", "--config", config, "--threads", "2"]);
  clearInterval(presser);
  assert.equal(stopped.code, 130, stopped.err);
  const m = /upper: stopped at step (\d+)\/100000; checkpoint (\S+)\. Resume with --resume\./.exec(
    stopped.out,
  );
  assert.ok(m, stopped.out);
  assert.ok(existsSync(join(m[2], "trainer_state.json")), "the checkpoint is saved");
  assert.deepEqual(process.listeners("SIGINT"), before, "the handler is removed");

  const timed = await cli(["train", "--config", config, "--threads", "2", "--max_train_minutes", "0.000001"]);
  assert.equal(timed.code, 0, timed.err);
  assert.match(
    timed.out,
    /upper: 1 steps, loss \d\.\d+, val loss \d\.\d+ \(time limit: training\.max_train_minutes\)/,
  );
});
