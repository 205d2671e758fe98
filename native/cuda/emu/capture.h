// Between the emulated runtime (runtime.cc) and the emulated cuBLAS (cublas.cc): how stream work joins a
// capture. Not a CUDA header, so it lives beside the sources rather than in include/.
#pragma once
#include <functional>

#include "cuda_runtime.h"

namespace emu {

// Appends op to the capture of stream s as one graph node (after issue(s, ...) said to record); a replay runs
// op, and its error is the replay's.
void record(cudaStream_t s, cudaGraphNodeType type, const char* what, std::function<cudaError_t()> op);

// Invalidates the capture of stream s, if it is capturing, because `what` failed with e; returns e as the last
// error. A failed call during a capture leaves its graph incomplete, so the capture cannot end with one.
cudaError_t fail_in_capture(cudaStream_t s, cudaError_t e, const char* what);

}  // namespace emu
