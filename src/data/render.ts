// Render + tokenize one row: template text -> input_ids, with labels masking the prompt.
//
// The full text is tokenized once; tokenizing prompt and completion separately and concatenating would give ids
// the model never sees at inference wherever BPE merges across the boundary. The boundary is then found on the
// full ids (see `promptTokenCount`).
import { TuneforgeError } from "../errors.js";
import { renderExample, type RenderOptions } from "./template.js";
import type { Example, TokenizedRow } from "./types.js";

/** The label value the loss ignores (HF's convention). */
export const IGNORE_INDEX = -100;

export interface TokenizeOptions extends RenderOptions {
  maxSeqLength: number;
  /** "completion": loss on the answer only (prompt labels are -100); "all": loss on every token. */
  lossOn: "completion" | "all";
}

export interface TokenizedExample {
  prompt: string;
  completion: string;
  input_ids: number[];
  labels: number[];
  /** The row was longer than maxSeqLength and lost its end. */
  truncated: boolean;
  /** Set when truncation left no token of the answer: the row teaches nothing, drop it and report this reason. */
  dropReason?: string;
}

export function tokenizeExample(example: Example, options: TokenizeOptions): TokenizedExample {
  const { tokenizer, maxSeqLength } = options;
  checkMaxSeqLength(maxSeqLength);
  const { prompt, completion } = renderExample(example, options);
  const fullIds = tokenizer.encode(prompt + completion);
  const promptLength = prompt === "" ? 0 : promptTokenCount(prompt, fullIds, tokenizer);
  const truncated = fullIds.length > maxSeqLength;
  const input_ids = truncated ? fullIds.slice(0, maxSeqLength) : fullIds;
  const labels =
    options.lossOn === "all"
      ? [...input_ids]
      : input_ids.map((id, i) => (i < promptLength ? IGNORE_INDEX : id));
  const result: TokenizedExample = { prompt, completion, input_ids, labels, truncated };
  if (promptLength >= fullIds.length) {
    result.dropReason = "the answer renders to no tokens";
  } else if (promptLength >= input_ids.length) {
    result.dropReason =
      `the prompt is ${promptLength} tokens and maxSeqLength is ${maxSeqLength}: ` +
      `the answer (${fullIds.length - promptLength} tokens) was truncated away`;
  }
  return result;
}

/** A row that arrived tokenized: labels default to the input ids; truncation as for rendered rows. */
export function truncateTokenizedRow(
  row: TokenizedRow,
  maxSeqLength: number,
): { input_ids: number[]; labels: number[]; truncated: boolean; dropReason?: string } {
  checkMaxSeqLength(maxSeqLength);
  const labels = row.labels ?? row.input_ids;
  if (labels.length !== row.input_ids.length) {
    throw new TuneforgeError(
      `labels has ${labels.length} entries but input_ids has ${row.input_ids.length}`,
      {
        file: row.source.file,
        line: row.source.line,
        hint: "give one label per input id (-100 to mask a token)",
      },
    );
  }
  const truncated = row.input_ids.length > maxSeqLength;
  const out = {
    input_ids: row.input_ids.slice(0, maxSeqLength),
    labels: labels.slice(0, maxSeqLength),
    truncated,
  };
  if (!out.labels.some((l) => l !== IGNORE_INDEX)) {
    return { ...out, dropReason: "no token of the row has a label (every label is -100 after truncation)" };
  }
  return out;
}

/**
 * How many leading tokens of `fullIds` belong to the prompt.
 *
 * Usually the prompt's own ids are a prefix of the full ids (always for the chat templates of Qwen & co, whose
 * prompt ends in a special token or a newline that BPE never merges with the next word). When they are not
 * (a prompt ending in a space, "Answer: " + "Paris" -> " Paris"), the boundary is found by character offsets: the
 * prompt is the longest run of leading tokens whose decoded text is still a prefix of the decoded prompt, so the
 * token that straddles the boundary goes to the completion and is trained on. The decoded prompt (not the raw one)
 * is the reference so that normalization (NFC) cannot break the comparison; a run that ends inside a multi-byte
 * character (decoding to U+FFFD) is skipped over rather than ending the scan.
 */
export function promptTokenCount(
  prompt: string,
  fullIds: readonly number[],
  tokenizer: { encode(text: string): number[]; decode(ids: readonly number[]): string },
): number {
  const promptIds = tokenizer.encode(prompt);
  let common = 0;
  while (common < promptIds.length && common < fullIds.length && promptIds[common] === fullIds[common])
    common++;
  if (common === promptIds.length) return common;
  const target = tokenizer.decode(promptIds);
  let boundary = common;
  for (let k = common + 1; k <= fullIds.length; k++) {
    const text = tokenizer.decode(fullIds.slice(0, k));
    const whole = text.replace(/\uFFFD+$/, "");
    if (!target.startsWith(whole)) break;
    if (whole.length === text.length) boundary = k;
  }
  return boundary;
}

function checkMaxSeqLength(maxSeqLength: number): void {
  if (!Number.isInteger(maxSeqLength) || maxSeqLength < 1) {
    throw new TuneforgeError(`maxSeqLength must be a positive integer, got ${maxSeqLength}`, {
      hint: "set it to the longest sequence (in tokens) to train on, e.g. 2048",
    });
  }
}
