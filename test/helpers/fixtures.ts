// Where the parity fixtures live: $TUNEFORGE_FIXTURES on the GPU machine, ../shared/fixtures otherwise.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const FIXTURES = resolve(
  process.env.TUNEFORGE_FIXTURES ?? resolve(import.meta.dirname, "../../../shared/fixtures"),
);
export const HAVE_FIXTURES = existsSync(FIXTURES);
export const SHAPE_SETS = ["base", "odd"] as const;
export const ARCHS = ["qwen2", "qwen3", "llama"] as const;
export function fixtureDir(shape: string, arch: string): string {
  return resolve(FIXTURES, shape, arch);
}
