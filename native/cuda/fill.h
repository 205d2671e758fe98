// Random fills of device memory (Model::randomize on CUDA), as plain C++ so g++-compiled files can call them.
// Defined in fill.cu; only linked in builds with the CUDA backend (TUNEFORGE_CUDA).
#pragma once
#include <cstdint>

namespace tf::cuda {

// p[i] = std * random_normal(key, i) for i < n (engine/random_fill.h), queued on the engine's stream.
void fill_normal(float* p, int64_t n, uint64_t key, float std);
// The same values rounded to bf16 (nearest, ties to even: engine/bf16.h's f32_to_bf16), as raw bit patterns.
void fill_normal_bf16(uint16_t* p, int64_t n, uint64_t key, float std);
// ... and rounded to fp16 (fp16 mode).
void fill_normal_f16(uint16_t* p, int64_t n, uint64_t key, float std);

}  // namespace tf::cuda
