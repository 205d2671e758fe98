// `tuneforge translate`: raw texts -> the model's answers. Each text becomes a one-user-message conversation
// rendered with renderPrompt, the function training used, with the template / system prompt / instruction the
// adapter was trained with when its folder records them (else the options given).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DeviceChoice } from "../engine/index.js";
import { TuneforgeError } from "../errors.js";
import { renderPrompt, type TemplateSpec } from "../data/template.js";
import {
  applyAdapter,
  generateText,
  loadModel,
  readAdapterFor,
  type GenerationOptions,
  type LoadedModel,
} from "./generate.js";

/** Files the trainer may save beside an adapter with the settings it trained with. */
export const TRAINING_CONFIG_FILES = ["tuneforge.json", "training_config.json"] as const;

export interface PromptSettings {
  /** Default "chat" (the model's own chat template), as data.template defaults to. */
  template?: TemplateSpec;
  systemPrompt?: string;
  /** A task instruction put before each text (as data.instruction at prepare time). */
  instruction?: string;
}

export interface TranslateOptions extends PromptSettings, GenerationOptions {
  modelDir: string;
  adapterDir?: string;
  texts: readonly string[];
  threads?: number;
  /** Where the engine runs: "cpu" (default), "cuda" or "auto" (the GPU when there is one). */
  device?: DeviceChoice;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function templateFrom(value: unknown, customText: unknown, file: string): TemplateSpec | undefined {
  if (value === undefined || value === null) return undefined;
  if (isObject(value) && typeof value.custom === "string") return { custom: value.custom };
  if (value === "chat" || value === "chatml" || value === "alpaca") return value;
  if (value === "custom" && typeof customText === "string") return { custom: customText };
  throw new TuneforgeError(`template ${JSON.stringify(value)} is not one tuneforge knows`, {
    file,
    key: "template",
    hint: 'the saved template must be "chat", "chatml", "alpaca" or "custom" with custom_template',
  });
}

/**
 * The prompt settings saved beside an adapter (`tuneforge.json` / `training_config.json` in the adapter folder or
 * its parent, the run folder), or null when there is none. Reads the resolved config's `data.*` keys (with the
 * domain's own system prompt from `data.system_prompts`) as well as flat top-level keys.
 */
export function readSavedPromptSettings(adapterDir: string): (PromptSettings & { file: string }) | null {
  for (const dir of [adapterDir, dirname(adapterDir)]) {
    for (const name of TRAINING_CONFIG_FILES) {
      const file = join(dir, name);
      if (!existsSync(file)) continue;
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, "utf8"));
      } catch (e) {
        throw new TuneforgeError(`not valid JSON: ${(e as Error).message}`, {
          file,
          hint: "the saved training config is damaged; re-train, or delete it and pass --template",
          cause: e,
        });
      }
      if (!isObject(raw))
        throw new TuneforgeError("the saved training config is not a JSON object", { file });
      const cfg = (isObject(raw.config) ? raw.config : raw) as Json;
      const data = isObject(cfg.data) ? cfg.data : {};
      const domain = str(raw.domain) ?? str(cfg.domain);
      const perDomain =
        isObject(data.system_prompts) && domain ? str(data.system_prompts[domain]) : undefined;
      const out: PromptSettings & { file: string } = { file };
      const template = templateFrom(
        data.template ?? cfg.template,
        data.custom_template ?? cfg.custom_template,
        file,
      );
      if (template !== undefined) out.template = template;
      const systemPrompt =
        perDomain ?? str(data.system_prompt) ?? str(cfg.system_prompt) ?? str(cfg.systemPrompt);
      if (systemPrompt !== undefined) out.systemPrompt = systemPrompt;
      const instruction = str(data.instruction) ?? str(cfg.instruction);
      if (instruction !== undefined) out.instruction = instruction;
      return out;
    }
  }
  return null;
}

/** The prompt for one raw text, as training rendered a one-user-message row. */
export function buildPrompts(
  loaded: LoadedModel,
  texts: readonly string[],
  settings: PromptSettings,
): string[] {
  return texts.map((content) =>
    renderPrompt(
      { messages: [{ role: "user", content }], instruction: settings.instruction },
      {
        tokenizer: loaded.tokenizer,
        template: settings.template ?? "chat",
        systemPrompt: settings.systemPrompt,
      },
    ),
  );
}

/** Saved settings (when the adapter has them) win: the prompt must be the one the adapter was trained on. */
export function promptSettingsFor(adapterDir: string | undefined, given: PromptSettings): PromptSettings {
  const saved = adapterDir !== undefined ? readSavedPromptSettings(adapterDir) : null;
  return {
    template: saved?.template ?? given.template,
    systemPrompt: saved?.systemPrompt ?? given.systemPrompt,
    instruction: saved?.instruction ?? given.instruction,
  };
}

/** Answers for `texts` from a loaded model whose adapter (if any) is already applied. */
export function translateLoaded(
  loaded: LoadedModel,
  adapterDir: string | undefined,
  texts: readonly string[],
  options: PromptSettings & GenerationOptions,
): string[] {
  const prompts = buildPrompts(loaded, texts, promptSettingsFor(adapterDir, options));
  return generateText(loaded.model, loaded.tokenizer, prompts, options).map((o) => o.trim());
}

export async function translate(options: TranslateOptions): Promise<string[]> {
  if (options.texts.length === 0) return [];
  const loaded = await loadModel(options.modelDir, { threads: options.threads, device: options.device });
  try {
    if (options.adapterDir !== undefined)
      applyAdapter(loaded.model, readAdapterFor(options.adapterDir, loaded.model));
    return translateLoaded(loaded, options.adapterDir, options.texts, options);
  } finally {
    loaded.model.dispose();
  }
}
