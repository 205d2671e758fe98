// Node-API exports of the CUDA backend: cudaInfo() and kernelCheck(device, seed). Always compiled; without
// TUNEFORGE_CUDA cudaInfo reports {built: false} and kernelCheck accepts only "cpu".
#pragma once
#include <napi.h>

namespace tf::cuda {

void RegisterCuda(Napi::Env env, Napi::Object exports);

}  // namespace tf::cuda
