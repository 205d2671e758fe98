// Writes what `check_hf.py` verifies wherever torch + transformers run (the GPU machine, or the Debian sid chroot
// of scripts/dev/hf-check-sid.sh): that HF and PEFT load what tuneforge writes and compute what our engine computes.
//   <out>/tiny/     the built-in tiny model (config.json, safetensors, tokenizer.json, chat template)
//   <out>/adapter/  a PEFT adapter written by tuneforge's writer (random non-zero A and B on all 7 projections)
//   <out>/merged/   `tuneforge merge` of the two
//   <out>/expected.json  token ids, chat renders and their ids from our tokenizer, and our engine's logits for base,
//                        base + adapter (unmerged) and merged.
// Usage: tsx scripts/device/make-hf-check.ts <out>
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { renderPrompt } from "../../src/data/template.js";
import { Tokenizer } from "../../src/data/tokenizer.js";
import { EngineModel } from "../../src/engine/index.js";
import type { LoraPair } from "../../src/engine/types.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { mergeAdapter } from "../../src/model/merge.js";
import { initLoraWeights, writeAdapter } from "../../src/model/peft.js";
import { bundledCorpus } from "../../src/model/resolve.js";
import { ensureTinyModel } from "../../src/model/tiny.js";
import { writeJsonAtomic } from "../../src/store/atomic.js";
import { createRng } from "../../src/data/random.js";
import type { Role } from "../../src/data/types.js";

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

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? "hf-check");
  mkdirSync(out, { recursive: true });
  const tiny = ensureTinyModel({ corpus: await bundledCorpus(), seed: 0, dir: join(out, "tiny") });
  const tokenizer = await Tokenizer.fromModelDir(tiny.dir);

  const ids = TEXTS.map((t) => tokenizer.encode(t));
  // Chat cases: a system message, and none (the template's default system prompt) with an earlier assistant turn.
  const chats = CHATS.map((turns) => {
    const messages = turns.map(([role, content]) => ({ role, content }));
    const rendered = renderPrompt({ messages }, { tokenizer, template: "chat" });
    return { messages: turns, rendered, ids: tokenizer.encode(rendered) };
  });

  // Random non-zero B as well as A, so the adapter changes every projection's output measurably.
  const r = 8;
  const adapter = initLoraWeights(tiny.config, { r, alpha: 16, targets: ALL_PROJECTIONS, seed: 7 });
  const rng = createRng(11);
  for (const w of adapter.weights.values()) {
    for (let i = 0; i < w.B.length; i++) w.B[i] = (2 * rng.next() - 1) * 0.05;
  }
  const adapterDir = join(out, "adapter");
  writeAdapter(adapterDir, { ...adapter, baseModel: tiny.dir });
  mergeAdapter({ modelDir: tiny.dir, adapterDir, outDir: join(out, "merged") });

  const logitsOf = (model: EngineModel) =>
    ids.map((row) => Array.from(model.forward({ rows: 1, inputIds: Int32Array.from(row) })));
  const base = EngineModel.load(tiny.dir);
  const baseLogits = logitsOf(base);
  const pairs = new Map<string, LoraPair>();
  for (const [module, w] of adapter.weights) pairs.set(module, { A: w.A, B: w.B });
  base.setLora({ r, alpha: 16, targets: [...ALL_PROJECTIONS], weights: pairs });
  const adapterLogits = logitsOf(base);
  base.dispose();
  const merged = EngineModel.load(join(out, "merged"));
  const mergedLogits = logitsOf(merged);
  merged.dispose();

  writeJsonAtomic(join(out, "expected.json"), {
    texts: TEXTS,
    ids,
    chats,
    vocab: tiny.config.vocabSize,
    logits: { base: baseLogits, adapter: adapterLogits, merged: mergedLogits },
  });
  console.log(`wrote ${out}`);
}

await main();
