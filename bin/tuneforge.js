#!/usr/bin/env node
// The installed CLI runs the compiled output; `npm install` builds it (the "prepare" script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
if (!existsSync(compiled)) {
  console.error(
    "tuneforge: the compiled CLI is missing (dist/). Run `npm install` or `npm run build` first.",
  );
  process.exit(1);
}
const { main } = await import(compiled);
await main(process.argv);
