// Generation options -> the addon's flat arguments, and its flat output -> one token list per prompt.
import { TuneforgeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import type { GenerateOutput, GenerateSettings, NativeModelHandle } from "./types.js";

export function runGenerate(
  native: NativeModelHandle,
  config: ModelConfig,
  prompts: number[][],
  s: GenerateSettings,
  withLogits: boolean,
): GenerateOutput {
  if (prompts.length === 0)
    return {
      tokens: [],
      steps: 0,
      replayedSteps: 0,
      stepLaunches: 0,
      stepDepth: 0,
      stepLogits: withLogits ? new Float32Array(0) : undefined,
    };
  prompts.forEach((p, i) => {
    if (p.length === 0)
      throw new TuneforgeError(`prompt ${i} is empty`, { hint: "give every prompt at least one token" });
    for (const t of p) {
      if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
        throw new TuneforgeError(
          `prompt ${i} has token id ${t}, outside the vocabulary (size ${config.vocabSize})`,
        );
      }
    }
  });
  if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 0) {
    throw new TuneforgeError(`maxNewTokens ${s.maxNewTokens} must be a non-negative integer`, {
      key: "generation.max_new_tokens",
    });
  }
  const doSample = s.doSample ?? false;
  const temperature = s.temperature ?? 1;
  if (doSample && !(temperature > 0)) {
    throw new TuneforgeError(`temperature ${temperature} must be > 0 when sampling`, {
      key: "generation.temperature",
      hint: "use doSample: false for greedy decoding",
    });
  }
  const r = native.generate(Int32Array.from(prompts.flat()), Int32Array.from(prompts.map((p) => p.length)), {
    maxNewTokens: s.maxNewTokens,
    doSample,
    temperature,
    topK: s.topK ?? 0,
    topP: s.topP ?? 1,
    repetitionPenalty: s.repetitionPenalty ?? 1,
    seed: s.seed ?? 0,
    keepLogits: withLogits,
    eos: Int32Array.from(s.eosTokenIds ?? config.eosTokenIds),
  });
  const tokens: number[][] = [];
  let at = 0;
  for (const len of r.lengths) {
    tokens.push(Array.from(r.tokens.subarray(at, at + len)));
    at += len;
  }
  const { steps, replayedSteps, stepLaunches, stepDepth, stepLogits } = r;
  return { tokens, steps, replayedSteps, stepLaunches, stepDepth: stepDepth ?? 0, stepLogits };
}
