// The shapes data takes as it moves through `prepare`: loaded -> cleaned -> split -> rendered -> tokenized.

/** Where a row came from, for error messages and for the prepared file's `source` field. */
export interface SourceRef {
  file: string;
  /** 1-based line of the row's start (CSV record, JSONL line) or 1-based index in a JSON array. */
  line: number;
}

export type Role = "system" | "user" | "assistant";

export interface Message {
  role: Role;
  content: string;
}

/**
 * One training example, whatever its input format. Every supervised format becomes a conversation:
 * CSV source/target and {text, translation} -> user/assistant; Alpaca -> `instruction` + user input +
 * assistant output; {natural_language, json_data} -> user text / assistant compact JSON; chat rows as they are.
 * A plain {text} row (language-model text with no prompt) has `text` set and no messages.
 */
export interface Example {
  kind: "example";
  domain: string;
  source: SourceRef;
  /** Task instruction carried by the row itself (Alpaca `instruction`); rendered before the user input. */
  instruction?: string;
  messages: Message[];
  /** Raw text for unsupervised rows (`{text}` rows, document chunks). */
  text?: string;
  /** The row's own id where the input had one (`{id, text, translation}`). */
  id?: string;
  /** Set on augmented variants only: the `source.line` of the row they were made from (data/augment.ts). */
  augmentedFrom?: number;
}

/** A row that arrived already tokenized ({input_ids, labels?}); it passes through untouched. */
export interface TokenizedRow {
  kind: "tokenized";
  domain: string;
  source: SourceRef;
  input_ids: number[];
  /** -100 where the loss is masked; absent means the loss covers every token. */
  labels?: number[];
}

export type LoadedRow = Example | TokenizedRow;

/** A line of `data/prepared/<domain>_<split>.jsonl`. */
export interface PreparedRow {
  domain: string;
  source: SourceRef;
  /** The rendered prompt (everything the model sees before it must answer); "" for plain-text rows. */
  prompt: string;
  /** The rendered answer the loss is computed on. */
  completion: string;
  input_ids: number[];
  labels: number[];
  /** Where several examples were packed into one row: the start offset of each in input_ids. */
  boundaries?: number[];
  /** Where several examples were packed into one row: the source of each, in order. */
  sources?: SourceRef[];
}

export type Split = "train" | "val" | "test";
