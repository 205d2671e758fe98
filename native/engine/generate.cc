#include "engine/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

namespace tf {

namespace {

double next_uniform(uint64_t& s) {  // splitmix64 -> [0, 1)
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

int32_t pick_token(float* z, int V, const std::vector<int32_t>& seen, const GenerateOptions& o, uint64_t& rng) {
  const float NEG = -std::numeric_limits<float>::infinity();
  if (o.repetition_penalty != 1.0f) {
    // HF RepetitionPenaltyLogitsProcessor: negative scores are multiplied, positive ones divided.
    for (int32_t t : std::set<int32_t>(seen.begin(), seen.end()))
      z[t] = z[t] < 0 ? z[t] * o.repetition_penalty : z[t] / o.repetition_penalty;
  }
  if (!o.do_sample) return (int32_t)(std::max_element(z, z + V) - z);  // first maximum, like torch.argmax
  if (o.temperature > 0 && o.temperature != 1.0f)
    for (int i = 0; i < V; i++) z[i] /= o.temperature;
  if (o.top_k > 0 && o.top_k < V) {
    std::vector<float> sorted(z, z + V);
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[o.top_k - 1];
    for (int i = 0; i < V; i++)
      if (z[i] < kth) z[i] = NEG;
  }
  const float mx = *std::max_element(z, z + V);
  std::vector<double> p(V);
  double sum = 0;
  for (int i = 0; i < V; i++) sum += (p[i] = z[i] == NEG ? 0.0 : std::exp((double)z[i] - mx));
  for (double& x : p) x /= sum;
  if (o.top_p < 1.0f) {
    // HF TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is <= 1 - top_p
    // (always keeping the most likely one).
    std::vector<int> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return p[a] < p[b]; });
    double cum = 0;
    for (int j = 0; j < V - 1; j++) {
      cum += p[idx[j]];
      if (cum <= 1.0 - o.top_p) p[idx[j]] = 0;
    }
    const double kept = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x /= kept;
  }
  double u = next_uniform(rng), acc = 0;
  int last = 0;
  for (int i = 0; i < V; i++) {
    if (p[i] <= 0) continue;
    last = i;
    acc += p[i];
    if (u < acc) return i;
  }
  return last;
}

GenerateResult generate(Model& model, const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o) {
  const int B = (int)prompts.size();
  const int V = model.config().vocab;
  if (B == 0) return {};
  int P = 0;
  for (const auto& pr : prompts) {
    if (pr.empty()) throw std::runtime_error("every prompt needs at least one token");
    P = std::max(P, (int)pr.size());
  }
  const int S = P + std::max(o.max_new_tokens, 0);
  KVCache cache = model.make_cache(B, S);
  std::vector<int32_t> ids((size_t)B * P, 0), pos((size_t)B * P, 1), next_pos(B);
  for (int b = 0; b < B; b++) {
    const int pad = P - (int)prompts[b].size();
    for (int t = pad; t < P; t++) {
      ids[(size_t)b * P + t] = prompts[b][t - pad];
      pos[(size_t)b * P + t] = t - pad;
      cache.valid_host[(size_t)b * S + t] = 1;
    }
    next_pos[b] = (int)prompts[b].size();
  }
  GenerateResult res;
  res.tokens.resize(B);
  std::vector<std::vector<int32_t>> seen(prompts);
  std::vector<bool> done(B, false);
  // Greedy without a repetition penalty needs only each row's first maximum: the device picks it and B ints come
  // back instead of B x vocab logits (19 MB a step at B 32 and a 152K vocabulary). The same choice as pick_token's
  // std::max_element. Sampling, penalties and callers that keep the logits take them to the host.
  const bool device_greedy = !o.do_sample && o.repetition_penalty == 1.0f && !o.keep_logits;
  std::vector<float> logits(device_greedy ? 0 : (size_t)B * V);
  std::vector<int32_t> greedy(device_greedy ? B : 0);
  float* logits_out = device_greedy ? nullptr : logits.data();
  int32_t* greedy_out = device_greedy ? greedy.data() : nullptr;
  uint64_t rng = o.seed;
  cache.sync_valid();
  model.decode(cache, ids.data(), pos.data(), P, 0, logits_out, greedy_out);
  for (int step = 0; step < o.max_new_tokens; step++) {
    if (o.keep_logits) res.step_logits.insert(res.step_logits.end(), logits.begin(), logits.end());
    res.steps++;
    std::vector<int32_t> tok(B, 0);
    for (int b = 0; b < B; b++) {
      if (done[b]) continue;  // finished rows keep decoding a masked-out pad
      tok[b] = device_greedy ? greedy[b] : pick_token(logits.data() + (size_t)b * V, V, seen[b], o, rng);
      res.tokens[b].push_back(tok[b]);
      seen[b].push_back(tok[b]);
      if (std::find(o.eos.begin(), o.eos.end(), tok[b]) != o.eos.end()) done[b] = true;
    }
    if (step + 1 == o.max_new_tokens || std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    for (int b = 0; b < B; b++) cache.valid_host[(size_t)b * S + P + step] = 1;
    cache.sync_valid();  // a memcpy of B*S ints on the CPU, one small upload on CUDA
    model.decode(cache, tok.data(), next_pos.data(), 1, P + step, logits_out, greedy_out);
    for (int& p : next_pos) p++;
  }
  res.replayed_steps = (int)cache.replayed_steps();
  res.step_launches = cache.step_launches();
  res.step_depth = cache.step_depth();
  if (o.keep_logits) {  // reorder [steps, B, V] -> [B, steps, V]
    std::vector<float> t(res.step_logits.size());
    for (int s = 0; s < res.steps; s++)
      for (int b = 0; b < B; b++)
        std::copy_n(res.step_logits.data() + ((size_t)s * B + b) * V, V, t.data() + ((size_t)b * res.steps + s) * V);
    res.step_logits.swap(t);
  }
  return res;
}

}  // namespace tf
