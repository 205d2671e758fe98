// Checkpoints: an aborted run saves a checkpoint and stops; resuming continues exactly (the loss sequence
// and the final adapter are bit-identical to an uninterrupted run), across epoch ends, with LoRA dropout,
// gradient accumulation and length grouping on; only the newest two checkpoints are kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { train } from "../../src/train/index.js";
import { tinyTask } from "./helpers.js";

test("abort saves a checkpoint; resume is bit-identical to an uninterrupted run", async () => {
  const task = await tinyTask();
  // 107 train rows, micro-batches of 4, 2 per step: 27 micro-batches, 14 steps per epoch (the last has one).
  const config = task.config(
    {
      max_steps: 30,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      save_steps: 5,
      eval_steps: 10,
    },
    { dropout: 0.1 },
  );
  const base = task.trainOptions(config);
  const whole = await train({ ...base, outputDir: join(task.dir, "whole") });
  assert.equal(whole.losses.length, 30);

  const runDir = join(task.dir, "parts");
  const abortAt = (step: number) => {
    const ac = new AbortController();
    return {
      signal: ac.signal,
      onProgress: (s: number) => {
        if (s === step) ac.abort();
      },
    };
  };
  // Stop exactly at the end of epoch 0 (step 14), then mid-epoch (step 22), then run to the end.
  const first = await train({ ...base, outputDir: runDir, ...abortAt(14) });
  assert.equal(first.interrupted, true);
  assert.equal(first.steps, 14);
  assert.equal(first.checkpoint, join(runDir, "checkpoints", "step-14"));
  for (const f of [
    "adapter_config.json",
    "adapter_model.safetensors",
    "optimizer.safetensors",
    "trainer_state.json",
  ])
    assert.ok(existsSync(join(first.checkpoint!, f)), f);
  assert.deepEqual(readdirSync(join(runDir, "checkpoints")).sort(), ["step-10", "step-14"]);
  assert.ok(
    !existsSync(join(runDir, "adapter_model.safetensors")),
    "no final adapter for an interrupted run",
  );

  const second = await train({ ...base, outputDir: runDir, resume: true, ...abortAt(22) });
  assert.equal(second.interrupted, true);
  const third = await train({ ...base, outputDir: runDir, resume: true });
  assert.equal(third.interrupted, false);
  assert.deepEqual(readdirSync(join(runDir, "checkpoints")).sort(), ["step-22", "step-25"]);

  const pieced = [...first.losses, ...second.losses, ...third.losses];
  assert.deepEqual(
    pieced.map((l) => l.step),
    Array.from({ length: 30 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    pieced.map((l) => l.loss),
    whole.losses.map((l) => l.loss),
  );
  assert.equal(third.finalValLoss, whole.finalValLoss);
  assert.ok(
    readFileSync(join(runDir, "adapter_model.safetensors")).equals(
      readFileSync(join(task.dir, "whole", "adapter_model.safetensors")),
    ),
    "final adapters are byte-identical",
  );
  // metrics.jsonl: the resumed log has each step once, with the same losses as the whole run.
  const lines = (dir: string) =>
    readFileSync(join(dir, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; loss?: number; val_loss?: number });
  const strip = (ls: ReturnType<typeof lines>) => ls.map((l) => [l.step, l.loss ?? null, l.val_loss ?? null]);
  assert.deepEqual(strip(lines(runDir)), strip(lines(join(task.dir, "whole"))));
});

test("dropout makes a difference that resume must reproduce", async () => {
  const task = await tinyTask();
  const run = async (dropout: number, name: string) =>
    train({
      ...task.trainOptions(task.config({ max_steps: 3 }, { dropout })),
      outputDir: join(task.dir, name),
    });
  const [a, b] = [await run(0.1, "a"), await run(0, "b")];
  // Step 1 starts from B = 0, where dropout cannot change the loss; later steps differ.
  assert.notDeepEqual(
    a.losses.slice(1).map((l) => l.loss),
    b.losses.slice(1).map((l) => l.loss),
  );
});
