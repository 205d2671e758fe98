// Writes what `check_hf.py` verifies wherever torch + transformers run (the GPU machine, or the Debian sid chroot
// of scripts/dev/hf-check-sid.sh): that HF and PEFT load what tuneforge writes and compute what our engine computes.
//   <out>/models/<name>/  one folder per model: `tiny` (the built-in tiny model, with tokenizer.json and chat
//       template) and `<set>-<arch>` for every parity fixture model ($TUNEFORGE_FIXTURES/{base,odd}/*/model: qwen2
//       biases, qwen3 q/k norms, llama3 rope, odd head_dim, untied, multi-query), each holding
//     base/     the model folder (fixtures: a copy)
//     adapter/  a PEFT adapter written by tuneforge's writer (random non-zero A and B on all 7 projections;
//               rsLoRA on the odd set)
//     merged/   `tuneforge merge` of the two
//     expected.safetensors  token ids (the tiny model's from our tokenizer; fixed ids for the fixtures, which have
//               no tokenizer) and our engine's logits for base, base + adapter (unmerged) and merged.
//   <out>/expected.json  texts, chat renders and their ids from our tokenizer, and the models map (rows, vocab, LoRA).
// Usage: tsx scripts/device/make-hf-check.ts <out>
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { renderPrompt } from "../../src/data/template.js";
import { Tokenizer } from "../../src/data/tokenizer.js";
import { EngineModel } from "../../src/engine/index.js";
import type { LoraPair } from "../../src/engine/types.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { loadModelConfig } from "../../src/model/config.js";
import { mergeAdapter } from "../../src/model/merge.js";
import { initLoraWeights, writeAdapter } from "../../src/model/peft.js";
import { bundledCorpus } from "../../src/model/resolve.js";
import { ensureTinyModel } from "../../src/model/tiny.js";
import { copyModelSideFiles } from "../../src/model/folder.js";
import { writeSafetensors, type TensorToWrite } from "../../src/model/safetensors.js";
import { writeFileAtomic, writeJsonAtomic } from "../../src/store/atomic.js";
import { createRng } from "../../src/data/random.js";
import type { Role } from "../../src/data/types.js";
import { FIXTURES, SHAPE_SETS } from "../../test/helpers/fixtures.js";

const TEXTS = [
  "Hola, soy María García de Papelería Central S.L. y necesito 12 cajas de bolígrafos azules.",
  "The economy grew by 3% last year.",
  "واش راك؟ لاباس عليك",
];
const CHATS: [Role, string][][] = [
  [
    ["system", "Traduce."],
    ["user", TEXTS[1]],
  ],
  [
    ["user", TEXTS[0]],
    ["assistant", "Claro, ¿para cuándo?"],
    ["user", "Para el lunes."],
  ],
];

interface LoraChoice {
  r: number;
  alpha: number;
  useRslora: boolean;
}
/** expected.json's entry for one model; its folders are models/<name>/{base,adapter,merged}. */
interface ModelCase {
  rows: number;
  vocab: number;
  lora: LoraChoice;
}

/**
 * For the model in `<out>/models/<name>/base`: writes `adapter/` (our writer; random non-zero A and B on all 7
 * projections, so every projection's output changes measurably), `merged/` (our merge), and expected.safetensors
 * with `ids.<i>` (int32 [T]) and our engine's logits `logits.<base|adapter|merged>.<i>` (f32 [T, vocab]: binary,
 * so the folder stays small) on the base, the base + adapter (unmerged) and the merged folder.
 */
function writeModelCase(out: string, name: string, lora: LoraChoice, ids: number[][]): ModelCase {
  const dir = join(out, "models", name);
  const modelDir = join(dir, "base");
  const config = loadModelConfig(modelDir);
  const { r, alpha, useRslora } = lora;
  const adapter = initLoraWeights(config, { r, alpha, useRslora, targets: ALL_PROJECTIONS, seed: 7 });
  const rng = createRng(11);
  for (const w of adapter.weights.values()) {
    for (let i = 0; i < w.B.length; i++) w.B[i] = (2 * rng.next() - 1) * 0.05;
  }
  const adapterDir = join(dir, "adapter");
  writeAdapter(adapterDir, { ...adapter, baseModel: modelDir });
  mergeAdapter({ modelDir, adapterDir, outDir: join(dir, "merged") });

  const tensors: TensorToWrite[] = ids.map((row, i) => ({
    name: `ids.${i}`,
    dtype: "I32",
    shape: [row.length],
    data: Int32Array.from(row),
  }));
  const addLogits = (kind: string, model: EngineModel) => {
    ids.forEach((row, i) => {
      const data = model.forward({ rows: 1, inputIds: Int32Array.from(row) }).slice();
      tensors.push({
        name: `logits.${kind}.${i}`,
        dtype: "F32",
        shape: [row.length, config.vocabSize],
        data,
      });
    });
  };
  const base = EngineModel.load(modelDir);
  addLogits("base", base);
  const pairs = new Map<string, LoraPair>();
  for (const [module, w] of adapter.weights) pairs.set(module, { A: w.A, B: w.B });
  base.setLora({ r, alpha, useRslora, targets: [...ALL_PROJECTIONS], weights: pairs });
  addLogits("adapter", base);
  base.dispose();
  const merged = EngineModel.load(join(dir, "merged"));
  addLogits("merged", merged);
  merged.dispose();
  writeSafetensors(join(dir, "expected.safetensors"), tensors);
  return { rows: ids.length, vocab: config.vocabSize, lora };
}

// Fixture models have no tokenizer: fixed token ids, two rows of different lengths.
const FIXTURE_ROW_LENGTHS = [13, 7];
// rsLoRA (scale alpha / sqrt(r)) on the odd set, with the fixtures' own odd LoRA settings; plain LoRA on base.
const FIXTURE_LORA: Record<string, LoraChoice> = {
  base: { r: 8, alpha: 16, useRslora: false },
  odd: { r: 6, alpha: 9, useRslora: true },
};

/** One case per fixture model folder ($TUNEFORGE_FIXTURES/<set>/<arch>/model), named `<set>-<arch>`. */
function fixtureCases(out: string): Record<string, ModelCase> {
  const cases: Record<string, ModelCase> = {};
  for (const set of SHAPE_SETS) {
    const setDir = join(FIXTURES, set);
    if (!existsSync(setDir)) throw new Error(`no fixture folder ${setDir}; set TUNEFORGE_FIXTURES`);
    for (const arch of readdirSync(setDir).sort()) {
      const src = join(setDir, arch, "model");
      if (!existsSync(join(src, "config.json"))) continue;
      const name = `${set}-${arch}`;
      // A copy, not the fixture path: the check runs where only this folder is (a chroot, the GPU machine).
      const baseDir = join(out, "models", name, "base");
      copyModelSideFiles(src, baseDir);
      writeFileAtomic(join(baseDir, "model.safetensors"), readFileSync(join(src, "model.safetensors")));
      const vocab = loadModelConfig(baseDir).vocabSize;
      const rng = createRng(1000 + Object.keys(cases).length);
      const ids = FIXTURE_ROW_LENGTHS.map((n) => Array.from({ length: n }, () => rng.int(vocab)));
      cases[name] = writeModelCase(out, name, FIXTURE_LORA[set], ids);
    }
  }
  if (Object.keys(cases).length === 0) throw new Error(`no fixture model folders under ${FIXTURES}`);
  return cases;
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? "hf-check");
  mkdirSync(out, { recursive: true });
  const tiny = ensureTinyModel({
    corpus: await bundledCorpus(),
    seed: 0,
    dir: join(out, "models", "tiny", "base"),
  });
  const tokenizer = await Tokenizer.fromModelDir(tiny.dir);

  const ids = TEXTS.map((t) => tokenizer.encode(t));
  // Chat cases: a system message, and none (the template's default system prompt) with an earlier assistant turn.
  const chats = CHATS.map((turns) => {
    const messages = turns.map(([role, content]) => ({ role, content }));
    const rendered = renderPrompt({ messages }, { tokenizer, template: "chat" });
    return { messages: turns, rendered, ids: tokenizer.encode(rendered) };
  });

  const models: Record<string, ModelCase> = {
    tiny: writeModelCase(out, "tiny", { r: 8, alpha: 16, useRslora: false }, ids),
    ...fixtureCases(out),
  };
  writeJsonAtomic(join(out, "expected.json"), { texts: TEXTS, ids, chats, models });
  console.log(`wrote ${out}`);
}

await main();
