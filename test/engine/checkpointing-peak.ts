// Child process of checkpointing.test.ts: the engine allocator's peak is a per-process high-water mark, so each
// measurement runs alone. argv: model dir, "on" | "off". Prints JSON: the bytes one forwardBackward adds above
// what the loaded model (weights, LoRA) holds, and the step's loss and one gradient checksum for a sanity check.
import { EngineModel } from "../../src/engine/index.js";
import { ALL_PROJECTIONS } from "../../src/model/layout.js";
import { PEAK_BATCH, PEAK_LORA } from "./checkpointing-shared.js";

const [dir, mode] = process.argv.slice(2);
const m = EngineModel.load(dir, { threads: 1, gradientCheckpointing: mode === "on" });
m.setLora({ ...PEAK_LORA, targets: [...ALL_PROJECTIONS] });
const base = m.memory();
const out = m.forwardBackward(PEAK_BATCH);
const after = m.memory();
process.stdout.write(
  JSON.stringify({ baseInUse: base.inUse, basePeak: base.peak, peak: after.peak, lossSum: out.lossSum }),
);
m.dispose();
