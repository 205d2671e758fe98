// Batched autoregressive generation with a KV cache. Prompts of different lengths are LEFT-padded (pads
// masked out; positions = cumsum(mask) - 1 as HF generate computes them). Decoding: greedy, or sampling
// with temperature / top-k / top-p; repetition penalty and eos set with HF semantics. Stop strings are
// the caller's business (they need decoded text).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/model.h"

namespace tf {

struct GenerateOptions {
  int max_new_tokens = 16;
  bool do_sample = false;
  float temperature = 1.0f;
  int top_k = 0;       // 0: off
  float top_p = 1.0f;  // 1: off
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  std::vector<int32_t> eos;
  bool keep_logits = false;  // return the raw logits of every step (for parity tests)
};

struct GenerateResult {
  // New tokens of each row; a row ends with its eos token if it produced one.
  std::vector<std::vector<int32_t>> tokens;
  int steps = 0;
  std::vector<float> step_logits;  // [B, steps, vocab] when keep_logits
  // Decoding steps replayed from a recording (a CUDA graph) and the launches it holds: 0 where nothing is recorded.
  int replayed_steps = 0;
  size_t step_launches = 0;
  size_t step_depth = 0;
};

GenerateResult generate(Model& model, const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o);

// Picks the next token from one row of raw logits (modified in place). `seen` are the tokens the
// repetition penalty applies to; `rng_state` advances when sampling.
int32_t pick_token(float* logits, int V, const std::vector<int32_t>& seen, const GenerateOptions& o,
                   uint64_t& rng_state);

}  // namespace tf
