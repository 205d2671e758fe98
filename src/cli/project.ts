// What most commands start with: the config (with command-line overrides) and the tokenizer it implies.
import type { Command } from "commander";
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { overridesFromCommand } from "../config/overrides.js";
import { Tokenizer } from "../data/tokenizer.js";
import { resolveTokenizerDir } from "../model/resolve.js";
import type { CliContext } from "./main.js";

export function loadProjectConfig(cmd: Command): LoadedConfig {
  return loadConfig(cmd.opts().config as string, { overrides: overridesFromCommand(cmd) });
}

export async function projectTokenizer(loaded: LoadedConfig, ctx: CliContext): Promise<Tokenizer> {
  const { dir, note } = await resolveTokenizerDir(loaded.config.model);
  if (note) ctx.err(`note: ${note}`);
  return Tokenizer.fromModelDir(dir);
}
