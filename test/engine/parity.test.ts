// Parity with HF transformers + PEFT on every fixture (base/ and odd/ shapes; qwen2, qwen3, llama):
// logits, loss, LoRA gradients, one AdamW step, the 10-step loss trajectory, greedy generation (single
// and left-padded batch, with step logits) and merged weights. Tolerances are those in fixtures/README.md.
import { test } from "node:test";
import { ARCHS, HAVE_FIXTURES, SHAPE_SETS } from "../helpers/fixtures.js";
import { printParityReport, runParity } from "../helpers/parity.js";

const report: Record<string, Record<string, number>> = {};

for (const shape of SHAPE_SETS) {
  for (const arch of ARCHS) {
    test(`parity ${shape}/${arch}`, { skip: !HAVE_FIXTURES && "fixtures not found" }, () => {
      runParity(shape, arch, "cpu", report);
    });
  }
}

test("parity summary", { skip: !HAVE_FIXTURES && "fixtures not found" }, () => {
  printParityReport(report);
});
