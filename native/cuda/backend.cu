// The CUDA backend: tf::Backend on device pointers (fp32). Matrix products go through cuBLAS with TF32
// disabled, so fp32 results match the CPU backend and the parity fixtures; products with a frozen bf16 weight
// (bf16 mode) round the activation to bf16 and run on tensor cores with fp32 accumulation and output
// (cublasGemmEx); everything else is our kernels (kernels.cuh). All work is queued on one stream (the legacy default stream for now, so plain cudaMemcpy and
// the allocator's reuse are ordered with it); only sum_squares(_many) and cross_entropy wait, for their results.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/memory.h"
#include "engine/backend.h"

namespace tf {

namespace cuda {

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// TUNEFORGE_CUDA_ATTENTION=mma|gemm|flash (read once; default mma): in bf16 mode our flash kernels on the tensor cores
// (attention_mma.cu; fp32 mode and the calls they do not fit take the GEMM path), cuBLAS products over query chunks
// (attention_gemm.cu), or the scalar flash kernels (attention.cu), to compare them or fall back.
enum class AttentionPath { Mma, Gemm, Flash, Decode };  // Decode: what decoding steps take on the mma and gemm paths

static AttentionPath attention_path_named(const std::string& s) {
  if (s == "mma") return AttentionPath::Mma;
  if (s == "gemm") return AttentionPath::Gemm;
  if (s == "flash") return AttentionPath::Flash;
  throw std::invalid_argument("CUDA attention path must be \"mma\", \"gemm\" or \"flash\", got \"" + s + "\"");
}

static AttentionPath attention_path_default() {
  static const AttentionPath path = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_ATTENTION");
    return attention_path_named(v && *v ? v : "mma");
  }();
  return path;
}

void allow_shared_memory(const void* kernel, size_t bytes, const char* name) {
  if (bytes <= 48 * 1024) return;
  // Raised only when a call needs more than the kernel's limit so far: the launches of a decoding step are recorded
  // (CudaBackend::record), and the attribute call is not stream work a recording could hold.
  // The attribute belongs to the kernel on one device.
  static std::map<std::pair<int, const void*>, size_t> allowed;
  int dev = 0, optin = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  size_t& done = allowed[{dev, kernel}];
  if (done >= bytes) return;
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  cudaFuncAttributes attr{};
  CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));  // its static shared memory counts against the same limit
  if (attr.sharedSizeBytes + bytes > (size_t)optin)
    throw std::runtime_error(std::string("CUDA: ") + name + " needs " + std::to_string(attr.sharedSizeBytes + bytes) +
                             " bytes of shared memory per block, the device allows " + std::to_string(optin) +
                             " (head_dim too large for this kernel's tile sizes)");
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  done = bytes;
}

// Whether the engine switch `var` is set to 0 (read at each call: a process may compare both ways).
static bool switched_off(const char* var) {
  const char* v = std::getenv(var);
  return v && std::string(v) == "0";
}

// common.cuh (launch_chained)
bool chained_launches() {
  static const bool capable = [] {
    int dev = 0;
    cudaDeviceProp prop{};
    return cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess && prop.major >= 9;
  }();
  return capable && !switched_off("TUNEFORGE_CUDA_PDL");
}

// TUNEFORGE_CUDA_SKINNY=0 sends a decoding step's products to cuBLAS (the benchmark's A/B run). Read at every
// product, so a recording holds whichever kind was set when it was made.
static bool skinny_enabled() { return !switched_off("TUNEFORGE_CUDA_SKINNY"); }

// TUNEFORGE_CUDA_GRAPHS=0 turns recording off (every decoding step launches its kernels one by one). Read at each
// recording (once per generation), so a process can compare the two ways.
static bool graphs_enabled() { return !switched_off("TUNEFORGE_CUDA_GRAPHS"); }

}  // namespace cuda

namespace {

// Bumped whenever a DeviceScratch moves: a recording holds the addresses of the buffers it was recorded with.
uint64_t g_scratch_moves = 0;

// A device buffer the backend keeps between calls (reduction partials, per-row losses); it grows on demand
// and is allocated through the engine allocator, so it counts towards peak memory.
class DeviceScratch {
 public:
  ~DeviceScratch() { cuda::allocator().release(ptr_, bytes_); }
  void* get(size_t bytes) {
    if (bytes > bytes_) {
      g_scratch_moves++;
      cuda::allocator().release(ptr_, bytes_);
      ptr_ = nullptr;
      bytes_ = 0;
      ptr_ = cuda::allocator().allocate(bytes);
      bytes_ = bytes;
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// zero_many's table of (buffer, length) items in device memory, uploaded again only when it changes: the gradients are
// the same every step, and a copy from pageable host memory may first wait for the stream's work.
class DeviceTable {
 public:
  const cuda::ZeroItem* get(const std::vector<cuda::ZeroItem>& items, cudaStream_t s) {
    void* p = buf_.get(sizeof(cuda::ZeroItem) * items.size());
    if (p != uploaded_to_ || items != host_) {
      host_ = items;  // kept: the copy reads it
      CUDA_CHECK(cudaMemcpyAsync(p, host_.data(), sizeof(cuda::ZeroItem) * host_.size(), cudaMemcpyHostToDevice, s));
      uploaded_to_ = p;
    }
    return static_cast<const cuda::ZeroItem*>(p);
  }

 private:
  DeviceScratch buf_;
  std::vector<cuda::ZeroItem> host_;
  void* uploaded_to_ = nullptr;
};

// Counters a kernel's last-block reduction counts its finished blocks with (last_block_done: lora_apply_down,
// attention_decode): zeroed when the buffer grows; each launch sets the ones it used back to 0.
class DeviceCounters {
 public:
  unsigned* get(size_t n, cudaStream_t s) {
    auto* p = static_cast<unsigned*>(buf_.get(sizeof(unsigned) * n));
    if (n > zeroed_) {  // a new buffer (or the first): none of it is known to be 0
      CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(unsigned) * n, s));
      zeroed_ = n;
    }
    return p;
  }

 private:
  DeviceScratch buf_;
  size_t zeroed_ = 0;
};

// The most nodes of `graph` on one chain of dependencies (0 where the edges cannot be read): a replay runs those one
// after another, and every other node beside them. CUDA 13 gave cudaGraphGetEdges an edge-data argument.
size_t graph_depth(cudaGraph_t graph) {
  size_t n = 0, e = 0;
  if (cudaGraphGetNodes(graph, nullptr, &n) != cudaSuccess) return 0;
  std::vector<cudaGraphNode_t> nodes(n), from, to;
#if CUDART_VERSION >= 13000
  // With null edge data CUDA answers cudaErrorLossyQuery where an edge is not a plain one (cuBLASLt's kernels on
  // Hopper launch with programmatic dependencies): read the data, and count every edge as a dependency.
  std::vector<cudaGraphEdgeData> data;
  auto edges = [&](cudaGraphNode_t* f, cudaGraphNode_t* t, size_t* count) {
    data.resize(f ? *count : 0);
    return cudaGraphGetEdges(graph, f, t, f ? data.data() : nullptr, count);
  };
#else
  auto edges = [&](cudaGraphNode_t* f, cudaGraphNode_t* t, size_t* count) {
    return cudaGraphGetEdges(graph, f, t, count);
  };
#endif
  if (cudaGraphGetNodes(graph, nodes.data(), &n) != cudaSuccess || edges(nullptr, nullptr, &e) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  from.resize(e);
  to.resize(e);
  if (e > 0 && edges(from.data(), to.data(), &e) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  std::map<cudaGraphNode_t, size_t> index;
  for (size_t i = 0; i < n; i++) index[nodes[i]] = i;
  std::vector<std::vector<size_t>> next(n);
  std::vector<size_t> waiting(n, 0), depth(n, 1), ready;
  for (size_t k = 0; k < e; k++) {
    next[index[from[k]]].push_back(index[to[k]]);
    waiting[index[to[k]]]++;
  }
  for (size_t i = 0; i < n; i++)
    if (waiting[i] == 0) ready.push_back(i);
  size_t deepest = 0;
  while (!ready.empty()) {  // Kahn's order: each node's depth is final when it is taken
    const size_t i = ready.back();
    ready.pop_back();
    deepest = std::max(deepest, depth[i]);
    for (size_t j : next[i]) {
      depth[j] = std::max(depth[j], depth[i] + 1);
      if (--waiting[j] == 0) ready.push_back(j);
    }
  }
  return deepest;
}

// A CUDA graph of recorded work, launched on the legacy stream (ordered with everything else the engine queues).
class CudaRecording final : public Recording {
 public:
  CudaRecording(cudaGraphExec_t exec, size_t launches, size_t depth)
      : exec_(exec), launches_(launches), depth_(depth), moves_(g_scratch_moves) {}
  ~CudaRecording() override { cudaGraphExecDestroy(exec_); }
  bool replay() override {
    if (moves_ != g_scratch_moves) return false;
    CUDA_CHECK(cudaGraphLaunch(exec_, 0));
    if (cuda::sync_after_launch()) CUDA_CHECK(cudaStreamSynchronize(0));
    return true;
  }
  size_t launches() const override { return launches_; }
  size_t depth() const override { return depth_; }

 private:
  cudaGraphExec_t exec_;
  size_t launches_, depth_;
  uint64_t moves_;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend() : attn_path_(cuda::attention_path_default()) {
    // Creates the context first, so a machine without a usable GPU or driver fails here with the runtime's reason
    // instead of inside cuBLAS (which may crash on a context that does not exist).
    CUDA_CHECK(cudaFree(nullptr));
    int dev = 0;
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    mma_capable_ = prop.major >= 8 && cuda::attention_mma_compiled();
    CUBLAS_CHECK(cublasCreate(&blas_));
    try {
      // fp32 mode: no TF32 tensor-core rounding (cuBLAS only uses it when asked; say so explicitly).
      CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
      // A workspace of ours from the start: cuBLAS would otherwise allocate one per captured graph (record()), and
      // every product, recorded or not, runs with the same workspace (the same algorithms).
      blas_workspace_ = cuda::allocator().allocate(kBlasWorkspace);
      use_stream(stream_);
    } catch (...) {
      cuda::allocator().release(blas_workspace_, kBlasWorkspace);
      cublasDestroy(blas_);  // the destructor does not run for a constructor that throws
      throw;
    }
  }
  ~CudaBackend() override {
    if (side_) cudaStreamDestroy(side_);
    if (fork_) cudaEventDestroy(fork_);
    if (join_) cudaEventDestroy(join_);
    cublasDestroy(blas_);
    if (capture_) cudaStreamDestroy(capture_);
    cuda::allocator().release(blas_workspace_, kBlasWorkspace);
  }

  Device device() const override { return Device::CUDA; }
  void set_threads(int) override {}  // host threads play no part
  void set_weights_dtype(DType dt) override { attn_bf16_ = dt == DType::BF16; }
  std::vector<std::string> attention_paths() const override { return {"mma", "gemm", "flash"}; }
  void set_attention_path(const std::string& path) override { attn_path_ = cuda::attention_path_named(path); }
  std::string attention_route(const AttnDims& d) const override {
    switch (route(d, {})) {
      case cuda::AttentionPath::Mma:
        return "mma";
      case cuda::AttentionPath::Gemm:
        return "gemm";
      case cuda::AttentionPath::Decode:
        return "decode";
      case cuda::AttentionPath::Flash:
        break;
    }
    return "flash";
  }

  // Stream capture on a private stream (the legacy stream cannot be captured) in global mode, so anything a graph
  // cannot hold (an allocation, a synchronising copy, work on another stream) fails the capture instead of being
  // silently left out; the pool refuses to allocate meanwhile (cuda/memory.h).
  std::unique_ptr<Recording> record(const std::function<void()>& body) override {
    // TUNEFORGE_CUDA_SYNC=1 wants each launch on its own (its synchronisations could not be recorded anyway)
    if (!cuda::graphs_enabled() || cuda::sync_after_launch()) return nullptr;
    if (!capture_) CUDA_CHECK(cudaStreamCreateWithFlags(&capture_, cudaStreamNonBlocking));
    use_stream(capture_);
    if (cudaStreamBeginCapture(capture_, cudaStreamCaptureModeGlobal) != cudaSuccess) {
      cudaGetLastError();
      use_stream(0);
      return nullptr;
    }
    cuda::set_recording(true);
    std::string why;  // why the step cannot be recorded (empty: it can)
    try {
      body();
    } catch (const std::exception& e) {
      why = e.what();  // the caller runs body itself, where a real error shows up again
    }
    cuda::set_recording(false);
    if (why.empty() && cuda::releases_while_recording() > 0) why = "device memory was freed while recording";
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(capture_, &graph);
    if (why.empty() && (ended != cudaSuccess || !graph)) why = std::string("capture: ") + cudaGetErrorString(ended);
    use_stream(0);
    size_t nodes = 0, depth = 0;
    cudaGraphExec_t exec = nullptr;
    if (why.empty()) {
      depth = graph_depth(graph);
      cudaError_t e = cudaGraphGetNodes(graph, nullptr, &nodes);
      if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
      if (e != cudaSuccess) why = std::string("instantiate: ") + cudaGetErrorString(e);
    }
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // a failed capture leaves its error behind
    if (why.empty()) return std::make_unique<CudaRecording>(exec, nodes, depth);
    // Said once: every step then launches its kernels one by one (right, only slower), and this says why.
    static bool told = false;
    if (!told) std::fprintf(stderr, "tuneforge: decoding steps run without a CUDA graph (%s)\n", why.c_str());
    told = true;
    return nullptr;
  }

  // Row-major C = A B is column-major C^T = B^T A^T: swap the operands (and M with N), keep the flags.
  void matmul(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc) override {
    if (M == 0 || N == 0) return;
    CUBLAS_CHECK(cublasSgemm(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                             B, ldb, A, lda, &beta, C, ldc));
    if (cuda::sync_after_launch()) CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // bf16 / fp16 mode: A is rounded to the weight's type into scratch (cuBLAS needs both inputs in one type), then a
  // half x half product with fp32 accumulation and an fp32 C on tensor cores. Same operand swap as matmul.
  void matmul_bf16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                    float beta, float* C, int ldc) override {
    matmul_halfw(false, tw, M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  }
  void matmul_f16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                   float beta, float* C, int ldc) override {
    matmul_halfw(true, tw, M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  }
  void matmul_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                   int ldb, float beta, float* C, uint16_t* C16, int ldc) override {
    if (M == 0 || N == 0) return;
    if (C16) return gemm_half(CUDA_R_16BF, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C16, CUDA_R_16BF, ldc);
    gemm_half(CUDA_R_16BF, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, CUDA_R_32F, ldc);
  }
  void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    cuda::embedding_fwd_f16(table, ids, N, C, out, stream_);
  }
  void widen_f16(const uint16_t* x, float* y, int64_t n) override { cuda::widen_f16(x, y, n, stream_); }
  void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    cuda::embedding_fwd_bf16(table, ids, N, C, out, stream_);
  }
  void widen_bf16(const uint16_t* x, float* y, int64_t n) override { cuda::widen_bf16(x, y, n, stream_); }
  void narrow_bf16(const float* x, uint16_t* y, int64_t n) override { cuda::narrow_bf16(x, n, y, stream_); }
  void narrow_bf16_many(const NarrowJobs& jobs) override { cuda::narrow_bf16_many(jobs, stream_); }

  void zero(float* x, int64_t n) override {
    if (n > 0) CUDA_CHECK(cudaMemsetAsync(x, 0, sizeof(float) * n, stream_));
  }
  void zero_many(float* const* xs, const int64_t* ns, int count) override {
    if (count <= 0) return;
    std::vector<cuda::ZeroItem> items((size_t)count);
    int64_t longest = 0;
    for (int i = 0; i < count; i++) {
      items[i] = {xs[i], std::max<int64_t>(ns[i], 0)};
      longest = std::max(longest, items[i].n);
    }
    cuda::zero_many(zero_table_.get(items, stream_), count, longest, stream_);
  }
  void copy(float* dst, const float* src, int64_t n) override {
    if (n > 0) CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(float) * n, cudaMemcpyDeviceToDevice, stream_));
  }
  void add(float* y, const float* x, int64_t n) override { cuda::add(y, x, n, stream_); }
  void add_out(float* out, const float* a, const float* b, int64_t n) override {
    cuda::add_out(out, a, b, n, stream_);
  }
  void scale(float* x, float s, int64_t n) override { cuda::scale(x, s, n, stream_); }
  void mul(float* y, const float* x, int64_t n) override { cuda::mul(y, x, n, stream_); }
  void add_bias(float* y, const float* bias, int N, int C) override { cuda::add_bias(y, bias, N, C, stream_); }
  void bias_grad(float* gb, const float* dy, int N, int C) override { cuda::bias_grad(gb, dy, N, C, stream_); }
  double sum_squares(const float* x, int64_t n) override {
    auto* partial = static_cast<double*>(partial_.get(sizeof(double) * cuda::kSumSquaresBlocks));
    return cuda::sum_squares(x, n, partial, stream_);
  }
  double sum_squares_many(const float* const* xs, const int64_t* ns, int count) override {
    if (count <= 0) return 0.0;
    auto* items = static_cast<cuda::SumSquaresItem*>(many_items_.get(sizeof(cuda::SumSquaresItem) * count));
    auto* partial = static_cast<double*>(many_partial_.get(sizeof(double) * cuda::kSumSquaresBlocks * count));
    auto* sums = static_cast<double*>(many_sums_.get(sizeof(double) * count));
    return cuda::sum_squares_many(xs, ns, count, items, partial, sums, stream_);
  }
  void argmax_rows(const float* x, int N, int V, int32_t* out) override { cuda::argmax_rows(x, N, V, out, stream_); }

  void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) override {
    cuda::embedding_fwd(table, ids, N, C, out, stream_);
  }
  void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) override {
    cuda::embedding_bwd(table_grad, ids, N, C, d, stream_);
  }
  void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src) override {
    cuda::scatter_add_rows(dst, rows, N, C, src, stream_);
  }

  void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd) override {
    cuda::rmsnorm_fwd(x, w, N, C, eps, out, rstd, stream_);
  }
  void rmsnorm_fwd_bf16(const float* x, const float* w, int N, int C, float eps, uint16_t* out, float* rstd) override {
    cuda::rmsnorm_fwd(x, w, N, C, eps, out, rstd, stream_);
  }
  void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum, float* out,
                   uint16_t* out16, float* rstd, const LoraUps& ups) override {
    if (out16) cuda::add_rmsnorm(a, b, w, N, C, eps, sum, out16, rstd, ups, stream_);
    else cuda::add_rmsnorm(a, b, w, N, C, eps, sum, out, rstd, ups, stream_);
  }
  void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                   bool accumulate_dx, float* dw, uint16_t* dx16) override {
    cuda::rmsnorm_bwd(x, w, rstd, dy, N, C, dx, accumulate_dx, dw, dx16, stream_);
  }

  void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) override {
    cuda::rope_table(pos, inv_freq, N, hd, cs, stream_);
  }
  void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) override {
    cuda::rope(x, cs, N, heads, hd, inverse, stream_);
  }
  void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                        const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                        const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre,
                        float* dk_pre, float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16) override {
    cuda::qk_norm_rope_bwd(dq, dk, q_pre, k_pre, q_pre16, k_pre16, q_w, k_w, rstd_q, rstd_k, cs, N, H, KV, hd, dq_pre,
                           dk_pre, dq_w, dk_w, dq16, dk16, stream_);
  }
  void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs, int N,
                    int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                    const QkCopies& copies) override {
    cuda::qk_norm_rope(q_in, k_in, q_w, k_w, cs, N, H, KV, hd, eps, q, k, rstd_q, rstd_k, copies, stream_);
  }

  // The kernels a call takes. Decoding steps (fewer than kGemmMinRows query rows per KV head, or the slot read on the
  // device: products that thin would idle the tensor cores) take attention_decode.cu's chunked kernels (the scalar
  // flash kernel on the flash path, in backward, and for shapes those do not fit). Otherwise, in bf16 mode on compute
  // capability 8.0 and up, the mma kernels where they fit; else the GEMM path, unless flash was chosen.
  cuda::AttentionPath route(const AttnDims& d, std::initializer_list<const void*> tensors, bool backward = false) const {
    constexpr int64_t kGemmMinRows = 16;
    const bool wide = !d.q_off_dev && d.KV > 0 && d.H % d.KV == 0 && (int64_t)d.Tq * (d.H / d.KV) >= kGemmMinRows;
    if (attn_path_ == cuda::AttentionPath::Flash) return cuda::AttentionPath::Flash;
    if (!wide)
      return !backward && cuda::attention_decode_fits(d) ? cuda::AttentionPath::Decode : cuda::AttentionPath::Flash;
    if (attn_path_ == cuda::AttentionPath::Mma && attn_bf16_ && mma_capable_ && cuda::attention_mma_fits(d, tensors))
      return cuda::AttentionPath::Mma;
    return cuda::AttentionPath::Gemm;
  }
  void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, float* out, float* lse, uint16_t* out16) override {
    if (out16) attention_forward(d, q, k, v, key_valid, seg, out16, lse);
    else attention_forward(d, q, k, v, key_valid, seg, out, lse);
  }
  void attention_fwd_kv16(const AttnDims& d, const float* q, const uint16_t* k, const uint16_t* v,
                          const int32_t* key_valid, const int32_t* seg, float* out, float* lse,
                          uint16_t* out16) override {
    if (out16) attention_forward(d, q, k, v, key_valid, seg, out16, lse);
    else attention_forward(d, q, k, v, key_valid, seg, out, lse);
  }
  // Either path, K and V fp32 or bf16 (a bf16 cache), the output fp32 or bf16.
  template <typename KV, typename TO>
  void attention_forward(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                         const int32_t* seg, TO* out, float* lse) {
    switch (route(d, {q, k, v, out})) {
      case cuda::AttentionPath::Mma:
        return cuda::attention_mma_fwd(d, q, k, v, key_valid, seg, out, lse, stream_);
      case cuda::AttentionPath::Gemm: {
        void* work = attn_work_.get(cuda::attention_gemm_bytes(d, attn_bf16_, false));
        return cuda::attention_gemm_fwd(d, q, k, v, key_valid, seg, out, lse, blas_, attn_bf16_, work, stream_);
      }
      case cuda::AttentionPath::Decode: {
        void* work = attn_decode_.get(cuda::attention_decode_bytes(d));
        unsigned* arrived = attn_decode_arrived_.get((size_t)d.B * d.KV, stream_);
        return cuda::attention_decode(d, q, k, v, key_valid, seg, out, lse, work, arrived, stream_);
      }
      case cuda::AttentionPath::Flash:
        return cuda::attention_fwd(d, q, k, v, key_valid, seg, out, lse, stream_);
    }
  }
  // The backward on the mma or GEMM path, from fp32 or bf16 (T) values; false where the call takes the flash kernels.
  template <typename T>
  bool attention_backward_tc(const AttnDims& d, const T* q, const T* k, const T* v, const int32_t* key_valid,
                             const int32_t* seg, const T* out, const float* lse, const float* dout, float* dq,
                             float* dk, float* dv, float* scratch) {
    switch (route(d, {q, k, v, out}, true)) {
      case cuda::AttentionPath::Mma:
        cuda::attention_mma_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch,
                                attn_work_.get(cuda::attention_mma_bytes(d, true)), stream_);
        return true;
      case cuda::AttentionPath::Gemm: {
        void* work = attn_work_.get(cuda::attention_gemm_bytes(d, attn_bf16_, true));
        cuda::attention_gemm_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch, blas_, attn_bf16_,
                                 work, stream_);
        return true;
      }
      case cuda::AttentionPath::Flash:
      case cuda::AttentionPath::Decode:  // (never routed in backward)
        break;
    }
    return false;
  }
  void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                     float* dv, float* scratch) override {
    if (!attention_backward_tc(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch))
      cuda::attention_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch, stream_);
  }

  // The mma and GEMM paths read the bf16 values as they are; the flash kernels take fp32, so they get widened copies.
  void attention_bwd_h(const AttnDims& d, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                       const int32_t* key_valid, const int32_t* seg, const uint16_t* out, const float* lse,
                       const float* dout, float* dq, float* dk, float* dv, float* scratch) override {
    if (attention_backward_tc(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch)) return;
    const int64_t nq = (int64_t)d.B * d.Tq * d.H * d.hd, nk = (int64_t)d.B * d.Tk * d.KV * d.hd;
    float* wide = static_cast<float*>(attn_wide_.get(sizeof(float) * (size_t)(2 * nq + 2 * nk)));
    float *qf = wide, *of = wide + nq, *kf = wide + 2 * nq, *vf = kf + nk;
    cuda::widen_bf16(q, qf, nq, stream_);
    cuda::widen_bf16(out, of, nq, stream_);
    cuda::widen_bf16(k, kf, nk, stream_);
    cuda::widen_bf16(v, vf, nk, stream_);
    cuda::attention_bwd(d, qf, kf, vf, key_valid, seg, of, lse, dout, dq, dk, dv, scratch, stream_);
  }

  void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) override {
    cuda::swiglu_fwd(g, u, n, out, stream_);
  }
  void swiglu_fwd_bf16(const float* g, const float* u, int64_t n, uint16_t* out, uint16_t* g16,
                       uint16_t* u16) override {
    cuda::swiglu_fwd(g, u, n, out, stream_, g16, u16);
  }
  void swiglu_fwd_h(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* out) override {
    cuda::swiglu_fwd(g, u, n, out, stream_);
  }
  void swiglu_fwd_stacked(const float* gu, int N, int inter, float* out, uint16_t* out16, const LoraUps& ups) override {
    if (out16) cuda::swiglu_fwd_stacked(gu, N, inter, out16, ups, stream_);
    else cuda::swiglu_fwd_stacked(gu, N, inter, out, ups, stream_);
  }
  void swiglu_bwd_h(const uint16_t* g, const uint16_t* u, const float* dout, int64_t n, uint16_t* dg,
                    uint16_t* du) override {
    cuda::swiglu_bwd(g, u, dout, n, dg, du, stream_);
  }
  void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) override {
    cuda::swiglu_bwd(g, u, dout, n, dg, du, stream_);
  }

  double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    auto* rows = static_cast<double*>(row_loss_.get(sizeof(double) * (N > 0 ? N : 1)));
    return cuda::cross_entropy(logits, targets, N, V, grad_scale, rows, stream_);
  }

  void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) override {
    cuda::adamw(p, g, m, v, n, h, stream_);
  }
  // One launch per tensor on the stream (launches are asynchronous: no per-tensor synchronisation to batch away).
  void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs, const int64_t* ns,
                  int count, const AdamWHyper& h) override {
    for (int i = 0; i < count; i++) cuda::adamw(ps[i], gs[i], ms[i], vs[i], ns[i], h, stream_);
  }

  void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) override {
    cuda::dropout(x, mask, x_out, n, p, seed, stream_);
  }

  void lora_down(const float* x, const uint16_t* x16, int N, int in, const float* A, int r, float p, uint64_t seed,
                 float* xa) override {
    float* work = lora_work(N, in, r);
    if (x16) cuda::lora_down(x16, N, in, A, r, p, seed, xa, work, stream_);
    else cuda::lora_down(x, N, in, A, r, p, seed, xa, work, stream_);
  }
  void lora_down_grad(const float* x, const uint16_t* x16, int N, int in, const float* dxa, int r, float p,
                      uint64_t seed, float* gA) override {
    float* work = lora_work(N, in, r);
    if (x16) cuda::lora_down_grad(x16, N, in, dxa, r, p, seed, gA, work, stream_);
    else cuda::lora_down_grad(x, N, in, dxa, r, p, seed, gA, work, stream_);
  }
  void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count) override {
    cuda::lora_dx(dx, N, in, r, p, terms, count, stream_);
  }
  void run_beside(const std::function<void()>& main, const std::function<void()>& side) override {
    if (!side_) {
      CUDA_CHECK(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
      CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
      CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    }
    const cudaStream_t origin = stream_;
    CUDA_CHECK(cudaEventRecord(fork_, origin));
    CUDA_CHECK(cudaStreamWaitEvent(side_, fork_, 0));
    stream_ = side_;  // side's kernels take stream_; cuBLAS stays on origin (side issues no products)
    try {
      side();
    } catch (...) {
      stream_ = origin;
      throw;
    }
    stream_ = origin;
    CUDA_CHECK(cudaEventRecord(join_, side_));
    main();
    CUDA_CHECK(cudaStreamWaitEvent(origin, join_, 0));
  }
  void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A, int count,
                       float* xa) override {
    const size_t floats = cuda::lora_apply_work_floats(N, in, r, count);
    auto* work = static_cast<float*>(lora_apply_work_.get(sizeof(float) * floats));
    cuda::lora_apply_down(x, x16, N, in, r, A, count, xa, work, lora_arrived_.get(kMaxLoraTerms, stream_), stream_);
  }
  bool fused_lora() const override { return true; }
  void lora_up(float* y, uint16_t* y16, int N, int out, const float* xa, const float* B, int r, float scale,
               const float* bias, bool accumulate) override {
    if (y16) cuda::lora_up(y16, N, out, xa, B, r, scale, bias, accumulate, stream_);
    else cuda::lora_up(y, N, out, xa, B, r, scale, bias, accumulate, stream_);
  }

  // B rows of Tq*C contiguous floats into rows of Tk*C, starting at slot `off`: a strided 2-D copy each, or one kernel
  // for both (reading the slot on the device).
  void cache_write(float* dk, float* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                   const int32_t* off_dev, int C) override {
    if (B <= 0 || Tq <= 0 || C <= 0) return;
    check_slots("cache_write", off, Tq, Tk);
    if (off_dev) return cuda::cache_write(dk, dv, k, v, B, Tq, Tk, off, off_dev, C, stream_);
    const size_t width = sizeof(float) * (size_t)Tq * C;
    for (const auto& [dst, src] : {std::pair<float*, const float*>{dk, k}, {dv, v}})
      CUDA_CHECK(cudaMemcpy2DAsync(dst + (int64_t)off * C, sizeof(float) * (size_t)Tk * C, src, width, width, B,
                                   cudaMemcpyDeviceToDevice, stream_));
  }
  void cache_write_bf16(uint16_t* dk, uint16_t* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                        const int32_t* off_dev, int C) override {
    check_slots("cache_write_bf16", off, Tq, Tk);
    cuda::cache_write(dk, dv, k, v, B, Tq, Tk, off, off_dev, C, stream_);
  }
  void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B, int Tq, int H,
                    int KV, int hd, float eps, float* q, float* kc, float* vc, uint16_t* kc16, uint16_t* vc16, int Tk,
                    int off, const int32_t* off_dev, const LoraUps& ups) override {
    check_slots("qkv_to_cache", off, Tq, Tk);
    if (kc16)
      cuda::qkv_to_cache(qkv, ld, q_w, k_w, cs, B, Tq, H, KV, hd, eps, q, kc16, vc16, Tk, off, off_dev, ups, stream_);
    else cuda::qkv_to_cache(qkv, ld, q_w, k_w, cs, B, Tq, H, KV, hd, eps, q, kc, vc, Tk, off, off_dev, ups, stream_);
  }

 private:
  void matmul_halfw(bool f16, bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W,
                    int ldw, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    auto* a16 = static_cast<uint16_t*>(act16_.get(sizeof(uint16_t) * (size_t)M * (K > 0 ? K : 1)));
    if (f16) cuda::narrow_f16(A, M, K, lda, a16, stream_);
    else cuda::narrow_bf16(A, M, K, lda, a16, stream_);
    gemm_half(f16 ? CUDA_R_16F : CUDA_R_16BF, false, tw, M, N, K, alpha, a16, K > 0 ? K : 1, W, ldw, beta, C,
              CUDA_R_32F, ldc);
  }
  // C[M, N] = alpha op(A) op(B) + beta C with A and B both half (type t), fp32 accumulation, C fp32 or in t (ct): the
  // operand swap of matmul.
  void gemm_half(cudaDataType_t t, bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda,
                 const uint16_t* B, int ldb, float beta, void* C, cudaDataType_t ct, int ldc) {
    // A decoding step's x W^T (a few rows of bf16 activations by a bf16 weight, fp32 out): our streaming kernel
    if (t == CUDA_R_16BF && ct == CUDA_R_32F && !ta && tb && mma_capable_ && cuda::skinny_enabled() &&
        cuda::skinny_gemm_fits(M, N, K, A, lda, B, ldb)) {
      auto* work = static_cast<float*>(skinny_work_.get(sizeof(float) * cuda::skinny_gemm_work_floats(M, N, K)));
      return cuda::skinny_gemm(A, lda, B, ldb, static_cast<float*>(C), ldc, M, N, K, alpha, beta, work,
                               skinny_arrived_.get(cuda::skinny_gemm_counters(N, K), stream_), stream_);
    }
    CUBLAS_CHECK(cublasGemmEx(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                              t, ldb, A, t, lda, &beta, C, ct, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (cuda::sync_after_launch()) CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  float* lora_work(int N, int in, int r) {
    return static_cast<float*>(lora_work_.get(sizeof(float) * cuda::lora_work_floats(N, in, r)));
  }
  // cublasSetStream also puts cuBLAS back on its own workspace pool, so ours is set again with every stream.
  void use_stream(cudaStream_t s) {
    stream_ = s;
    CUBLAS_CHECK(cublasSetStream(blas_, s));
    CUBLAS_CHECK(cublasSetWorkspace(blas_, blas_workspace_, kBlasWorkspace));
  }
  static void check_slots(const char* op, int off, int Tq, int Tk) {
    if (off < 0 || off + Tq > Tk)
      throw std::invalid_argument(std::string("CUDA ") + op + ": slots " + std::to_string(off) + ".." +
                                  std::to_string(off + Tq) + " do not fit a cache of " + std::to_string(Tk));
  }

  cudaStream_t stream_ = 0;   // the legacy stream, or capture_ while recording
  cudaStream_t capture_ = 0;  // created at the first recording
  cudaStream_t side_ = 0;     // run_beside's second stream and its fork and join events, made at its first call
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  static constexpr size_t kBlasWorkspace = size_t{32} << 20;  // cuBLAS's own default on Hopper
  void* blas_workspace_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceScratch partial_, row_loss_, act16_, many_items_, many_partial_, many_sums_;
  DeviceTable zero_table_;  // zero_many's buffers (the gradients: the same every step)
  DeviceScratch attn_work_;  // the GEMM attention's packed operands and one chunk of scores
  DeviceScratch attn_wide_;  // attention_bwd_h on the flash path: q, out, k, v widened to fp32
  DeviceScratch attn_decode_;  // decoding steps' partial outputs (attention_decode.cu)
  DeviceScratch lora_work_;  // split sums of the LoRA kernels
  DeviceScratch lora_apply_work_;  // lora_apply_down's partial sums of x A^T
  DeviceCounters lora_arrived_;  // lora_apply_down's finished blocks, per term
  DeviceScratch skinny_work_;  // skinny_gemm's partial tiles (products run on one stream: one at a time)
  DeviceCounters skinny_arrived_;  // skinny_gemm's finished blocks, per tile
  DeviceCounters attn_decode_arrived_;  // attention_decode's finished chunks, per (sequence, KV head)
  cuda::AttentionPath attn_path_;  // mma (attention_mma.cu), gemm (attention_gemm.cu) or flash (attention.cu)
  bool mma_capable_ = false;        // compute capability 8.0 and up: bf16 mma.sync
  bool attn_bf16_ = false;   // bf16 base weights: attention's GEMMs in bf16 too
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace tf
