// Runs the CLI from the TypeScript sources (no build step): `npx tsx scripts/dev.ts <command> ...`.
import { main } from "../src/cli/main.js";

await main(process.argv);
