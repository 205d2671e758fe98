// Prompt templates: turn an Example into the text the model trains on, split into the prompt (what the model is
// given) and the completion (what it must produce, loss on it). Evaluation and serving build their prompts with
// `renderPrompt`, the very function training uses, so a model never sees a prompt format it was not trained on.
//
// Templates:
// - "chat": the model's own Jinja chat template (tokenizer_config.json / chat_template.jinja), rendered with
//   @huggingface/jinja exactly as HF's apply_chat_template does.
// - "chatml": `<|im_start|>role\ncontent<|im_end|>\n` turns, for tokenizers without a chat template.
// - "alpaca": the Stanford Alpaca format ("Below is an instruction..." / ### Instruction / ### Input / ### Response).
// - { custom: "..." }: a user template string. Placeholders are exactly `{system}`, `{instruction}`, `{input}` and
//   `{output}`; everything else is literal text (other braces, e.g. JSON, are left alone). `{output}` must occur
//   once, and nothing but literal text may follow it; the prompt is everything before `{output}`. `{system}` is the
//   system prompt (config or the row's own system message), `{instruction}` the row's instruction, `{input}` the
//   user message; a missing one renders as "". End the prompt part with a newline rather than a space: BPE
//   tokenizers merge a trailing space into the answer's first word, so the prompt would not tokenize the same way
//   alone as inside the full text.
//
// Conversation rules: the row's own leading system message wins over the configured system prompt (never two
// system messages); the row's `instruction` is put before the first user message, separated by "\n\n" (alpaca:
// it is the ### Instruction). Plain-text rows (`text`, no messages) render as the text + eos, all of it trained.
import { Template } from "@huggingface/jinja";
import { TuneforgeError } from "../errors.js";
import type { Example, Message, SourceRef } from "./types.js";
import type { Tokenizer } from "./tokenizer.js";

export type TemplateSpec = "chat" | "chatml" | "alpaca" | { custom: string };

/** What `renderPrompt` needs: the conversation up to (not including) the answer to generate. */
export interface Conversation {
  messages: Message[];
  instruction?: string;
  /** Where the row came from, for error messages. */
  source?: SourceRef;
}

export interface TemplateOptions {
  tokenizer: Tokenizer;
  template: TemplateSpec;
  /** The domain's/task's system prompt from the config; the row's own system message takes precedence. */
  systemPrompt?: string;
}

export interface RenderOptions extends TemplateOptions {
  /** End the completion with the tokenizer's eos token unless it already ends with it (default true). */
  addEos?: boolean;
}

export interface RenderedExample {
  /** Everything the model is given before it must answer ("" or the bos token for plain-text rows). */
  prompt: string;
  /** What the model must produce, ending with the end-of-turn / eos token. */
  completion: string;
}

const ALPACA_PREAMBLE =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.";
const ALPACA_PREAMBLE_NO_INPUT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/** Render a whole example. The prompt is always a prefix of prompt + completion by construction; for "chat" it is
 *  checked (a Jinja template may render earlier turns differently once a later turn exists). */
export function renderExample(example: Example, options: RenderOptions): RenderedExample {
  const { tokenizer } = options;
  const addEos = options.addEos ?? true;
  if (example.messages.length === 0) {
    if (example.text === undefined) {
      throw rowError(
        example.source,
        "the row has neither messages nor text",
        "give the row a conversation or a text",
      );
    }
    return { prompt: bosPrefix(tokenizer), completion: withEos(example.text, tokenizer, addEos) };
  }
  const last = example.messages[example.messages.length - 1];
  if (last.role !== "assistant") {
    throw rowError(
      example.source,
      `the conversation ends with a ${last.role} message, so there is no answer to train on`,
      "end every training conversation with the assistant's answer",
    );
  }
  const conversation: Conversation = {
    messages: example.messages.slice(0, -1),
    instruction: example.instruction,
    source: example.source,
  };
  const prompt = renderPrompt(conversation, options);
  const spec = options.template;
  let full: string;
  if (spec === "chat" || spec === "chatml") {
    const messages = conversationMessages(
      { ...conversation, messages: example.messages },
      options.systemPrompt,
    );
    full =
      spec === "chat"
        ? renderChat(messages, false, options, example.source)
        : bosPrefix(tokenizer) + renderChatml(messages, false);
  } else {
    full = prompt + last.content + (spec === "alpaca" ? "" : customSuffix(spec.custom));
  }
  if (!full.startsWith(prompt)) {
    throw rowError(
      example.source,
      "the chat template renders the conversation without its answer (plus the generation prompt) differently " +
        "from the start of the full conversation, so the prompt/answer boundary is undefined. " +
        `Prompt ends with ${JSON.stringify(prompt.slice(-60))}, the full text has ${JSON.stringify(full.slice(Math.max(0, prompt.length - 60), prompt.length + 20))} there`,
      "answers carrying their own <think>...</think> block do not fit the thinking-off prompt: remove the block, " +
        'or use template "chatml"',
    );
  }
  return { prompt, completion: withEos(full.slice(prompt.length), tokenizer, addEos) };
}

/** The prompt for a conversation whose next turn is the assistant's: what training used before the answer. */
export function renderPrompt(conversation: Conversation, options: TemplateOptions): string {
  const spec = options.template;
  if (spec === "chat" || spec === "chatml") {
    const messages = conversationMessages(conversation, options.systemPrompt);
    return spec === "chat"
      ? renderChat(messages, true, options, conversation.source)
      : bosPrefix(options.tokenizer) + renderChatml(messages, true);
  }
  const { system, instruction, input } = singleTurnFields(conversation, options.systemPrompt);
  const bos = bosPrefix(options.tokenizer);
  if (spec === "alpaca") {
    // Rows without an instruction (CSV source/target, chat rows) use their user message as the instruction.
    const [inst, inp] = instruction === "" ? [input, ""] : [instruction, input];
    const preamble = system !== "" ? system : inp === "" ? ALPACA_PREAMBLE_NO_INPUT : ALPACA_PREAMBLE;
    const inputPart = inp === "" ? "" : `### Input:\n${inp}\n\n`;
    return `${bos}${preamble}\n\n### Instruction:\n${inst}\n\n${inputPart}### Response:\n`;
  }
  const prefix = parseCustom(spec.custom).prefix;
  return bos + fillPlaceholders(prefix, { system, instruction, input });
}

/** Messages with the system prompt and instruction folded in (chat and chatml). */
function conversationMessages(conversation: Conversation, systemPrompt: string | undefined): Message[] {
  const messages = conversation.messages.map((m) => ({ ...m }));
  if (conversation.instruction !== undefined && conversation.instruction !== "") {
    const firstUser = messages.find((m) => m.role === "user");
    if (firstUser) firstUser.content = `${conversation.instruction}\n\n${firstUser.content}`;
    else
      messages.splice(messages[0]?.role === "system" ? 1 : 0, 0, {
        role: "user",
        content: conversation.instruction,
      });
  }
  if (systemPrompt !== undefined && systemPrompt !== "" && messages[0]?.role !== "system") {
    messages.unshift({ role: "system", content: systemPrompt });
  }
  return messages;
}

function renderChat(
  messages: Message[],
  generationPrompt: boolean,
  options: TemplateOptions,
  source: SourceRef | undefined,
): string {
  const { tokenizer } = options;
  if (tokenizer.chatTemplate === undefined) {
    throw new TuneforgeError(`the tokenizer in ${tokenizer.dir} has no chat template`, {
      key: "template",
      hint: 'use template "chatml" or "alpaca", or a model folder whose tokenizer_config.json has a chat_template',
    });
  }
  try {
    return compiledTemplate(tokenizer.chatTemplate).render({
      messages,
      add_generation_prompt: generationPrompt,
      // Thinking off for both renders: the prompt must be a prefix of the full text, and some templates use the
      // switch outside the generation prompt too (e.g. a /no_think flag in the system turn).
      enable_thinking: false,
      // Like HF, only the special tokens the tokenizer has (so `bos_token is defined` tests agree).
      ...(tokenizer.bosToken !== undefined ? { bos_token: tokenizer.bosToken } : {}),
      eos_token: tokenizer.eosToken,
      pad_token: tokenizer.padToken,
      // raise_exception and strftime_now are @huggingface/jinja globals, as in HF. Note strftime_now gives today's
      // date, so Llama 3.x prompts (which print it in the system turn) change with the day, exactly as in HF.
    });
  } catch (e) {
    // Also where the template calls raise_exception to reject a conversation (e.g. roles not alternating).
    throw new TuneforgeError(`the model's chat template failed: ${(e as Error).message}`, {
      file: source?.file,
      line: source?.line,
      key: "template",
      hint: 'fix the conversation (roles, order), or use template "chatml" if this template cannot be rendered',
      cause: e,
    });
  }
}

function renderChatml(messages: Message[], generationPrompt: boolean): string {
  const turns = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("");
  return generationPrompt ? `${turns}<|im_start|>assistant\n` : turns;
}

/** alpaca and custom templates take one system (optional), one user message, then the answer. */
function singleTurnFields(
  conversation: Conversation,
  systemPrompt: string | undefined,
): { system: string; instruction: string; input: string } {
  let messages = conversation.messages;
  let system = systemPrompt ?? "";
  if (messages[0]?.role === "system") {
    system = messages[0].content;
    messages = messages.slice(1);
  }
  if (messages.length > 1 || (messages.length === 1 && messages[0].role !== "user")) {
    throw rowError(
      conversation.source,
      `the alpaca and custom templates take a single user message before the answer, this row has ${messages.length} turns (${messages.map((m) => m.role).join(", ")})`,
      'use template "chat" or "chatml" for multi-turn conversations',
    );
  }
  return { system, instruction: conversation.instruction ?? "", input: messages[0]?.content ?? "" };
}

interface CustomTemplate {
  prefix: string;
  suffix: string;
}

const customCache = new Map<string, CustomTemplate>();

function parseCustom(template: string): CustomTemplate {
  const cached = customCache.get(template);
  if (cached) return cached;
  const parts = template.split("{output}");
  if (parts.length !== 2) {
    throw new TuneforgeError(
      `the custom template must contain {output} exactly once, it has it ${parts.length - 1} times`,
      {
        key: "template.custom",
        hint: 'put "{output}" where the answer goes, e.g. "Q: {input}\\nA: {output}"',
      },
    );
  }
  if (/\{(system|instruction|input)\}/.test(parts[1])) {
    throw new TuneforgeError("the custom template has a placeholder after {output}", {
      key: "template.custom",
      hint: "everything the model is given must come before {output}; only literal text may follow it",
    });
  }
  const parsed = { prefix: parts[0], suffix: parts[1] };
  customCache.set(template, parsed);
  return parsed;
}

function customSuffix(template: string): string {
  return parseCustom(template).suffix;
}

function fillPlaceholders(
  text: string,
  values: { system: string; instruction: string; input: string },
): string {
  // One pass, so a value containing "{input}" is never substituted again.
  return text.replace(
    /\{(system|instruction|input)\}/g,
    (_m, name: "system" | "instruction" | "input") => values[name],
  );
}

const jinjaCache = new Map<string, Template>();

function compiledTemplate(source: string): Template {
  let template = jinjaCache.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (e) {
      throw new TuneforgeError(`the chat template does not parse: ${(e as Error).message}`, {
        key: "template",
        hint: 'use template "chatml", or fix chat_template in tokenizer_config.json',
        cause: e,
      });
    }
    jinjaCache.set(source, template);
  }
  return template;
}

/** The bos token where HF would put it in front of text it tokenizes (add_bos_token: Llama, Mistral). Chat
 *  templates write it themselves ({{ bos_token }}), so this is for the other templates and plain text. */
function bosPrefix(tokenizer: Tokenizer): string {
  return tokenizer.addBosToken && tokenizer.bosToken !== undefined ? tokenizer.bosToken : "";
}

/** Append eos unless the text already ends with it (ignoring the newline chat templates put after a turn). */
function withEos(text: string, tokenizer: Tokenizer, addEos: boolean): string {
  if (!addEos || text.trimEnd().endsWith(tokenizer.eosToken)) return text;
  return text + tokenizer.eosToken;
}

function rowError(source: SourceRef | undefined, message: string, hint: string): TuneforgeError {
  return new TuneforgeError(message, { file: source?.file, line: source?.line, hint });
}
