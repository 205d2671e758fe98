// "Did you mean ...?" for unknown config keys and command-line flags.

/** Optimal-string-alignment (Damerau–Levenshtein) distance: a swap of two neighbours costs 1. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

// Names other fine-tuning tools (PEFT, axolotl, HF Trainer) use for our keys; edit distance alone
// cannot connect `rank` to `r` or `lr` to `learning_rate`.
const ALIASES: Record<string, string> = {
  rank: "r",
  lora_r: "r",
  lora_rank: "r",
  lora_alpha: "alpha",
  lora_dropout: "dropout",
  lora_target_modules: "target_modules",
  modules: "target_modules",
  lr: "learning_rate",
  epochs: "num_train_epochs",
  num_epochs: "num_train_epochs",
  batch_size: "per_device_train_batch_size",
  micro_batch_size: "per_device_train_batch_size",
  grad_accum: "gradient_accumulation_steps",
  gradient_accumulation: "gradient_accumulation_steps",
  sequence_len: "max_seq_length",
  max_length: "max_seq_length",
  seq_len: "max_seq_length",
  scheduler: "lr_scheduler_type",
  lr_scheduler: "lr_scheduler_type",
  warmup: "warmup_ratio",
  model: "name_or_path",
  model_name: "name_or_path",
  base_model: "name_or_path",
  files: "inputs",
  input: "inputs",
  datasets: "inputs",
  system: "system_prompt",
};

/** The candidate closest to `name`, or undefined when nothing is close enough to be a plausible typo. */
export function nearest(name: string, candidates: readonly string[]): string | undefined {
  const key = name.toLowerCase().replace(/-/g, "_");
  const alias = ALIASES[key];
  if (alias && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(key, c);
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  // Allow about one edit per three characters: catches typos without suggesting unrelated words.
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
