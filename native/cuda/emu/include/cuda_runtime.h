// CPU emulation of the part of the CUDA runtime native/cuda uses (see ../README.md): device memory is host
// memory, streams and events are synchronous, and a kernel launch runs every block in turn with one fiber per
// thread, switching at barriers and warp shuffles. Stream capture records work into a graph instead of running
// it, and refuses what a GPU refuses during a capture. It checks the kernels' logic, indexing and
// synchronisation without a GPU; it says nothing about their speed.
#pragma once
// The runtime whose signatures these follow where versions differ (cudaGraphGetEdges' edge data: CUDA 13).
#define CUDART_VERSION 13000
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers: device code is plain C++ here ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one at a time, so a function-local static is exactly one block's shared memory. Dynamic shared
// memory (`extern __shared__ T x[];`) is rewritten by translate.mjs into a pointer to the launch's buffer.
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
// 8- and 16-byte vectors, aligned as CUDA's (one load or store of 8 or 16 bytes)
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
// Set by the scheduler before it resumes a thread's fiber; launches run one at a time.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---- runtime types ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorStreamCaptureWrongThread = 908,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
// What cudaFuncGetAttributes reports that the backend reads (the emulator: code for its compute capability, 9.0, and
// no static shared memory counted: kernels' __shared__ arrays are the host's statics).
struct cudaFuncAttributes {
  size_t sharedSizeBytes;
  int ptxVersion;
  int binaryVersion;
};
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
struct CUgraphNode_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphExec_st* cudaGraphExec_t;
typedef CUgraphNode_st* cudaGraphNode_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)  // the legacy default stream, as the null stream
constexpr unsigned int cudaStreamDefault = 0x0;      // a blocking stream: ordered with the legacy stream
constexpr unsigned int cudaStreamNonBlocking = 0x1;  // not ordered with the legacy stream
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaGraphNodeType {
  cudaGraphNodeTypeKernel = 0x00,
  cudaGraphNodeTypeMemcpy = 0x01,
  cudaGraphNodeTypeMemset = 0x02,
  cudaGraphNodeTypeHost = 0x03,
  cudaGraphNodeTypeGraph = 0x04,
  cudaGraphNodeTypeEmpty = 0x05,
  cudaGraphNodeTypeWaitEvent = 0x06,
  cudaGraphNodeTypeEventRecord = 0x07
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major, minor;
  int warpSize;
  int memoryBusWidth;
  int clockRate;
  int memoryClockRate;
};

const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class T>
cudaError_t cudaFuncSetAttribute(T* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
// Pinned host memory: the emulator's device memory is host memory already, so the device pointer is the host one (as
// with unified addressing); these allocations do not count against the device's memory.
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int flags);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count);
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType* type);
struct cudaGraphEdgeData {  // stream capture makes only default (zeroed) edges
  unsigned char from_port, to_port, type, reserved[5];
};
// The dependency edges: to[i] depends on from[i] (both null: only the count; edgeData, when given, all default).
cudaError_t cudaGraphGetEdges(cudaGraph_t graph, cudaGraphNode_t* from, cudaGraphNode_t* to,
                              cudaGraphEdgeData* edgeData, size_t* numEdges);
cudaError_t cudaEventCreate(cudaEvent_t* e);
constexpr unsigned cudaEventDisableTiming = 0x02;
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);

// ---- device intrinsics ----
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __fmul_rn(float a, float b) { return a * b; }  // a product never contracted into an FMA
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }

void __syncthreads();
// Blocks run one at a time, and a fiber switches only at a barrier or shuffle: an atomic is a plain read-modify-write
// and a fence has nothing to order.
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  const unsigned old = *p;
  *p = old + v;
  return old;
}
inline void __threadfence() {}
template <typename T>
inline T __ldcg(const T* p) {  // a load past the L1 cache: there is none here
  return *p;
}
template <typename T>
inline T __ldcs(const T* p) {  // a streaming load (evict first): no cache here either
  return *p;
}

// CUDA's integer and float min/max overloads of device code.
#define TF_EMU_MINMAX(T)                           \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
TF_EMU_MINMAX(int)
TF_EMU_MINMAX(unsigned)
TF_EMU_MINMAX(long)
TF_EMU_MINMAX(unsigned long)
TF_EMU_MINMAX(long long)
TF_EMU_MINMAX(unsigned long long)
#undef TF_EMU_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

namespace emu {

// A warp shuffle exchanges 8-byte slots between the 32 fibers of a warp (two warp barriers).
uint64_t shfl_xor(unsigned mask, uint64_t bits, int lane_mask, int width);
// Warp-collective operations (the tensor cores' mma.sync, cuda/mma.cuh): every lane of the calling warp publishes a
// pointer and gets the warp's 32 back, in lane order, as integers; they stay valid until every lane has called
// warp_release() (two warp barriers in all, as a shuffle).
const uint64_t* warp_publish(const void* p);
void warp_release();
// cp.async (cuda/mma.cuh) as a GPU may run it: a copy of 16 bytes (zeros when !valid) lands only when async_wait
// retires its group; until then the destination holds NaN bytes. Misaligned addresses, and copies still pending when
// the thread ends, stop the process.
void async_copy16(void* dst, const void* src, bool valid);
void async_commit();
void async_wait(int pending);

struct LaunchConfig {
  dim3 grid;
  dim3 block;
  size_t shared_bytes = 0;
  cudaStream_t stream = nullptr;
};

// Runs body(ctx) once per thread of every block (the kernel with its parameters already converted).
void run_grid(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*), void* ctx);
// Where work (`what`) issued to stream s goes: cudaSuccess with record = false runs it now, with record = true
// it belongs to the stream's capture; an error refuses it (already the last error; a capture it broke, such as
// a capture elsewhere when s is the legacy stream, is invalidated).
cudaError_t issue(cudaStream_t s, const char* what, bool& record);
// Whether work issued to s (outside a capture) waits in s's queue instead of running now
// (TUNEFORGE_CUDA_EMU_BRANCHES=late, a created stream), and queues it there.
bool defers(cudaStream_t s);
void later(cudaStream_t s, std::function<void()> op);
// Queues a launch on s after the checks a launch makes (a failed check is the launch's error now).
void later_launch(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*),
                  std::shared_ptr<void> ctx);
// Records a launch into s's capture after the checks a launch makes (a failed check invalidates the capture).
// ctx holds the converted parameters, so every replay runs the kernel with the arguments the capture saw.
void record_launch(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*),
                   std::shared_ptr<void> ctx);
// The launch's dynamic shared memory (for `extern __shared__`).
void* dynamic_shared();

template <class... P>
struct Launcher {
  LaunchConfig cfg;
  void (*kernel)(P...);
  const char* name;
  template <class... A>
  void operator()(A&&... args) const {
    // Kernel parameters are copies converted to the declared types, made once per launch as on a GPU.
    using Params = std::tuple<std::decay_t<P>...>;
    struct Ctx {
      void (*kernel)(P...);
      Params params;
    };
    void (*body)(void*) = [](void* c) {
      auto* x = static_cast<Ctx*>(c);
      std::apply(x->kernel, x->params);  // by value: a kernel cannot change a recorded launch's arguments
    };
    const void* k = reinterpret_cast<const void*>(kernel);
    bool record = false;
    if (issue(cfg.stream, name, record) != cudaSuccess) return;  // refused: the launch error is the last error
    if (record) {
      record_launch(cfg, k, name, body, std::make_shared<Ctx>(Ctx{kernel, Params(std::forward<A>(args)...)}));
      return;
    }
    if (defers(cfg.stream)) {
      later_launch(cfg, k, name, body, std::make_shared<Ctx>(Ctx{kernel, Params(std::forward<A>(args)...)}));
      return;
    }
    Ctx ctx{kernel, Params(std::forward<A>(args)...)};
    run_grid(cfg, k, name, body, &ctx);
  }
};

// translate.mjs turns `k<<<g, b, s, st>>>(args)` into `::emu::launch({g, b, s, st}, k, "k")(args)`.
template <class... P>
Launcher<P...> launch(LaunchConfig cfg, void (*kernel)(P...), const char* name) {
  return {cfg, kernel, name};
}

}  // namespace emu

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of an 8-byte value at most");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  bits = emu::shfl_xor(mask, bits, lane_mask, width);
  T r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}
