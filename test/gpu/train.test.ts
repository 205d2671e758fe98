// Issue 4's end-to-end check: a 200-step LoRA run of the trainer on a generated task (upper-casing word pairs
// on a tiny model) reaches the same final validation loss on the GPU, in its default bf16 mode, as on the CPU
// in fp32, within 2%. Skipped with the reason where no CUDA device answers.
//
// The learning rate is 2e-3 because the comparison must measure the backend, not chaos: at 1e-2 the loss sits on
// a plateau and then drops suddenly, and when it drops moves with any 2^-9 perturbation (bf16 base weights alone
// put the CPU's final loss 14.5% away from fp32, and the CUDA emulator's bf16 run 4.3%). At 2e-3 the descent is
// smooth; the CPU test below keeps that true.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cudaInfo } from "../../src/engine/native.js";
import { train } from "../../src/train/index.js";
import { tinyTask, type TinyTask } from "../train/helpers.js";

const info = cudaInfo();
const noGpu = info.available ? false : `no CUDA device for the engine: ${info.reason}`;

async function finalValLoss(task: TinyTask, device: "cpu" | "cuda", bf16: "auto" | boolean): Promise<number> {
  const result = await train({
    config: task.config({ max_steps: 200, eval_steps: 50, device, bf16, learning_rate: 2e-3 }),
    modelDir: task.modelDir,
    preparedDir: task.preparedDir,
    domain: "upper",
    outputDir: join(task.dir, `${device}-${bf16}`),
  });
  assert.equal(result.steps, 200);
  assert.ok(result.finalValLoss !== null && Number.isFinite(result.finalValLoss));
  return result.finalValLoss!;
}

/** The run must have learned something (ln 300 = 5.7 untrained), or agreeing would prove nothing. */
function assertLearned(loss: number): void {
  assert.ok(loss < 1.5, `the run did not learn (val loss ${loss})`);
}

test("the 200-step comparison is stable: on the CPU, bf16 base weights end within 0.5% of fp32", async () => {
  const task = await tinyTask();
  const f32 = await finalValLoss(task, "cpu", false);
  const bf16 = await finalValLoss(task, "cpu", true);
  console.log(`# final validation loss on the cpu: fp32 ${f32.toFixed(5)}, bf16 weights ${bf16.toFixed(5)}`);
  assertLearned(f32);
  assert.ok(Math.abs(bf16 - f32) / f32 <= 0.005, `bf16 ${bf16} vs fp32 ${f32}: the task became chaotic`);
});

test(
  "200 steps on the GPU (bf16 base) end at the CPU's validation loss within 2%",
  { skip: noGpu },
  async () => {
    const task = await tinyTask();
    const cpu = await finalValLoss(task, "cpu", false);
    const gpu = await finalValLoss(task, "cuda", "auto");
    console.log(`# final validation loss: cpu ${cpu.toFixed(5)}, cuda ${gpu.toFixed(5)}`);
    assertLearned(cpu);
    assert.ok(Math.abs(gpu - cpu) / cpu <= 0.02, `cuda ${gpu} vs cpu ${cpu}: more than 2% apart`);
  },
);
