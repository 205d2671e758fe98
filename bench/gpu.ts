// `npm run bench:gpu`: our LoRA training and generation against HF transformers + PEFT on the same GPU, in one
// command with a wall-clock budget (issue 4, "Fast and lean"). Prints ONE JSON object on stdout (progress goes to
// stderr); --out also writes it to a file, after every case too ("complete": false until the end), so a run
// killed from outside still leaves what it measured. The GPU machine runs a bundle of this file (scripts/device).
// Usage: tsx bench/gpu.ts [--device cuda|cpu] [--smoke] [--budget-s 900] [--no-peers] [--python python3]
//          [--peer-dir .devkit/reference] [--steps 5] [--warmup 2] [--lora-dropout 0.05] [--no-profile]
//          [--weights bf16|f16|f32] [--ckpt off|on|fit|both|all]
//          [--only qwen3-0.6b,qwen2-1.5b,qwen2.5-7b,generate] [--out bench-gpu.json]
//   --smoke: tiny shapes, no peers, seconds (what the CPU test runs); the full shapes need --device cuda.
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { resolveDevice } from "../src/engine/index.js";
import { TuneforgeError } from "../src/errors.js";
import { writeJsonAtomic } from "../src/store/atomic.js";
import { runGpuBench, type CkptOption } from "./gpu-bench.js";
import { fullGenerateCase, fullTrainCases } from "./gpu-cases.js";

function positive(name: string, v: string | undefined, fallback: number | undefined): number | undefined {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new TuneforgeError(`--${name} ${v} is not a number >= 0`, { key: `--${name}` });
  }
  return n;
}

export function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: "string", default: "cuda" },
      smoke: { type: "boolean", default: false },
      "budget-s": { type: "string" },
      "no-peers": { type: "boolean", default: false },
      python: { type: "string" },
      "peer-dir": { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      "lora-dropout": { type: "string" },
      "no-profile": { type: "boolean", default: false },
      weights: { type: "string" },
      ckpt: { type: "string", default: "all" },
      only: { type: "string" },
      out: { type: "string" },
    },
  });
  const device = resolveDevice(values.device!, { key: "--device" });
  if (device === "cpu" && !values.smoke) {
    throw new TuneforgeError("the full benchmark shapes (up to Qwen2.5-7B) need a GPU", {
      key: "--device",
      hint: "run it with --device cuda on the GPU machine, or --smoke for the tiny CPU version",
    });
  }
  const weights = values.weights;
  if (weights !== undefined && weights !== "bf16" && weights !== "f16" && weights !== "f32") {
    throw new TuneforgeError(`--weights ${weights} is not bf16, f16 or f32`, { key: "--weights" });
  }
  const ckpt = values.ckpt as CkptOption;
  if (!["off", "on", "fit", "both", "all"].includes(ckpt)) {
    throw new TuneforgeError(`--ckpt ${ckpt} is not off, on, fit, both or all`, { key: "--ckpt" });
  }
  let only: Set<string> | null = null;
  if (values.only) {
    only = new Set(values.only.split(",").map((s) => s.trim()));
    const known = [...fullTrainCases().map((c) => c.shape), "generate"];
    for (const s of only)
      if (!known.includes(s))
        throw new TuneforgeError(`--only: unknown case "${s}"`, {
          key: "--only",
          hint: `use ${known.join(", ")}`,
        });
  }
  const result = runGpuBench({
    device,
    smoke: values.smoke,
    budgetS: positive("budget-s", values["budget-s"], undefined),
    peers: values["no-peers"] ? false : undefined,
    peer: { python: values.python, dir: values["peer-dir"] },
    steps: positive("steps", values.steps, undefined),
    warmup: positive("warmup", values.warmup, undefined),
    loraDropout: positive("lora-dropout", values["lora-dropout"], undefined),
    profile: !values["no-profile"],
    weights,
    ckpt,
    cases: only && !values.smoke ? fullTrainCases().filter((c) => only.has(c.shape)) : undefined,
    generate: only && !values.smoke ? (only.has("generate") ? fullGenerateCase() : null) : undefined,
    onPartial: values.out ? (partial) => writeJsonAtomic(values.out!, partial) : undefined,
  });
  const text = JSON.stringify(result, null, 2) + "\n";
  if (values.out) writeJsonAtomic(values.out, result);
  process.stdout.write(text);
}

// Run as a program (tsx bench/gpu.ts, or the esbuild bundle), not when a test imports it.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench:gpu: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
