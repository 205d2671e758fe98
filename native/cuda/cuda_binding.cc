#include "cuda/cuda_binding.h"

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cuda/block_cache.h"
#include "cuda/kernel_check.h"
#include "engine/backend.h"
#ifdef TUNEFORGE_CUDA
#include "cuda/memory.h"
#endif

namespace tf::cuda {

namespace {

// cudaInfo() -> {built, available, reason, name, computeCapability, smCount, totalBytes, freeBytes,
//                inUseBytes, peakBytes, cachedBytes, heldBytes, heldPeakBytes, hostMappedBytes}. Never throws: "no
//                GPU" is an answer, not an error.
Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("built", cuda_built());
#ifdef TUNEFORGE_CUDA
  const DeviceInfo d = device_info();
  out.Set("available", d.available);
  out.Set("reason", d.reason);
  out.Set("name", d.name);
  out.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
  out.Set("smCount", d.sm_count);
  out.Set("totalBytes", (double)d.total_bytes);
  out.Set("freeBytes", (double)d.free_bytes);
  out.Set("inUseBytes", (double)allocator().in_use());
  out.Set("peakBytes", (double)allocator().peak());
  out.Set("cachedBytes", (double)cached_bytes());
  out.Set("heldBytes", (double)held_bytes());
  out.Set("heldPeakBytes", (double)held_peak_bytes());
  out.Set("hostMappedBytes", (double)host_mapped_allocator().in_use());
#else
  out.Set("available", false);
  out.Set("reason", "this build of the engine has no CUDA backend (no CUDA toolkit with cuBLAS was found when "
                    "it was compiled)");
  out.Set("name", "");
  out.Set("computeCapability", "");
  out.Set("smCount", 0);
  out.Set("totalBytes", 0.0);
  out.Set("freeBytes", 0.0);
  out.Set("inUseBytes", 0.0);
  out.Set("peakBytes", 0.0);
  out.Set("cachedBytes", 0.0);
  out.Set("heldBytes", 0.0);
  out.Set("heldPeakBytes", 0.0);
  out.Set("hostMappedBytes", 0.0);
#endif
  return out;
}

// kernelCheck(device: "cuda" | "cpu", seed) -> [{op, output, shape, maxAbs, maxRel, refMax, count}]: every
// Backend op on the CPU backend and on `device` (a second CPU backend checks the harness without a GPU).
Napi::Value KernelCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const std::string device = info[0].As<Napi::String>();
    const uint64_t seed = (uint64_t)info[1].As<Napi::Number>().Int64Value();
    std::unique_ptr<Backend> ref = make_cpu_backend(), test;
    Device dev = Device::CPU;
    if (device == "cpu") {
      test = make_cpu_backend();
    } else if (device == "cuda") {
#ifdef TUNEFORGE_CUDA
      test = make_cuda_backend();
      dev = Device::CUDA;
#else
      throw std::runtime_error("kernelCheck(\"cuda\"): this build of the engine has no CUDA backend");
#endif
    } else {
      throw std::runtime_error("kernelCheck: device must be \"cuda\" or \"cpu\", got \"" + device + "\"");
    }
    const std::vector<KernelCheckResult> results = kernel_check(*ref, *test, dev, seed);
    Napi::Array arr = Napi::Array::New(env, results.size());
    for (size_t i = 0; i < results.size(); i++) {
      const KernelCheckResult& r = results[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("op", r.op);
      o.Set("output", r.output);
      o.Set("shape", r.shape);
      o.Set("maxAbs", r.max_abs);
      o.Set("maxRel", r.max_rel);
      o.Set("refMax", r.ref_max);
      o.Set("count", (double)r.count);
      arr.Set((uint32_t)i, o);
    }
    return arr;
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// blockCacheTrace(ops: number[]) -> [{block, blockBytes, reused, cachedBytes}]: replays a request trace through the
// device pool's reuse policy (BlockCache, as memory.cu's raw_alloc/raw_free use it) with fake pointers, so the
// policy is tested without a GPU. ops[i] >= 0 allocates that many bytes; ops[i] = -1 - j frees what op j
// allocated. block numbers the cudaMalloc each request ended up on (a fresh one on a miss).
Napi::Value BlockCacheTrace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!info[0].IsArray()) throw std::runtime_error("blockCacheTrace: expected an array of numbers");
    Napi::Array ops = info[0].As<Napi::Array>();
    BlockCache cache;
    std::vector<BlockCache::Block> got(ops.Length());  // what each alloc op holds (ptr null once freed)
    size_t blocks = 0;
    Napi::Array out = Napi::Array::New(env, ops.Length());
    for (uint32_t i = 0; i < ops.Length(); i++) {
      const int64_t op = ops.Get(i).As<Napi::Number>().Int64Value();
      Napi::Object r = Napi::Object::New(env);
      if (op >= 0) {
        const size_t size = BlockCache::round((size_t)op);
        BlockCache::Block b = cache.take(size);
        r.Set("reused", b.ptr != nullptr);
        if (!b.ptr) b = {reinterpret_cast<void*>(++blocks), size};  // a "cudaMalloc": block ids 1, 2, ...
        got[i] = b;
        r.Set("block", (double)reinterpret_cast<uintptr_t>(b.ptr));
        r.Set("blockBytes", (double)b.bytes);
      } else {
        const int64_t j = -1 - op;
        if (j >= (int64_t)i || !got[j].ptr) throw std::runtime_error("blockCacheTrace: op " + std::to_string(i) +
                                                                      " frees nothing live (op " + std::to_string(j) + ")");
        cache.put(got[j]);
        got[j] = {};
      }
      r.Set("cachedBytes", (double)cache.cached_bytes());
      out.Set(i, r);
    }
    return out;
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

}  // namespace

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("kernelCheck", Napi::Function::New(env, KernelCheck, "kernelCheck"));
  exports.Set("blockCacheTrace", Napi::Function::New(env, BlockCacheTrace, "blockCacheTrace"));
}

}  // namespace tf::cuda
