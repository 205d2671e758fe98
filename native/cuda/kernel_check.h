// Self-test of a backend against the CPU reference: runs every tf::Backend op on the same random inputs
// (odd sizes, several attention shapes with padding, segments, GQA and a KV-cache offset) on both and
// reports the largest differences. Plain C++: the device side is reached through Tensor and the host copy
// helpers, so it also runs CPU against CPU (a check of the harness itself where there is no GPU).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace tf {

struct KernelCheckResult {
  std::string op;       // the Backend method
  std::string output;   // which output (e.g. "dq"), or "result" for a returned scalar
  std::string shape;    // the case, e.g. "B2 T37 H4 KV2 hd64 leftpad"
  double max_abs = 0;   // max |test - ref|
  double max_rel = 0;   // max_abs / max |ref| (normwise: elementwise ratios explode near zero)
  double ref_max = 0;   // max |ref|, > 0 shows the output was not trivially zero
  int64_t count = 0;    // elements compared
};

// `test` computes on memory of `test_device`; `ref` on host memory. Deterministic for a given seed.
std::vector<KernelCheckResult> kernel_check(Backend& ref, Backend& test, Device test_device, uint64_t seed);

}  // namespace tf
