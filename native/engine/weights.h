// Loads a checkpoint tensor straight from its file (positioned read) into an engine tensor, converting
// F32 / F16 / BF16 to the tensor's dtype (fp32, or bf16 / fp16 rounded to nearest even), so large checkpoints never
// pass through the JS heap.
#pragma once
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace tf {

void load_tensor(Tensor& dst, const std::string& file, uint64_t offset, const std::string& dtype);

}  // namespace tf
