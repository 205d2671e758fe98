// The public API of tuneforge: everything the CLI does is available as a function here.
export * from "./model/config.js";
export * from "./model/safetensors.js";
export { writeFileAtomic, writeJsonAtomic } from "./store/atomic.js";
export * from "./model/layout.js";
export { createRng, deriveSeed, type Rng } from "./data/random.js";
export { TuneforgeError } from "./errors.js";
export type * from "./data/types.js";
