// The public API of tuneforge: everything the CLI does is available as a function here.
export * from "./model/config.js";
export * from "./model/safetensors.js";
export { writeFileAtomic, writeJsonAtomic } from "./store/atomic.js";
