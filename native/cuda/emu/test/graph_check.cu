// Stream capture and CUDA graphs on the emulator (test/engine/cuda-emulator-graphs.test.ts builds and runs this):
// prints one JSON object of what the runtime reported and computed, for the test to hold against what a GPU does.
// Device memory is host memory here, so a check may read a device buffer directly (never done on a GPU).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

__global__ void scale_add(float* x, float a, float b, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * a + b;
}

__global__ void copy(float* dst, const float* src, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = src[i];
}

namespace {

constexpr int kN = 40;  // two blocks of 32 threads
constexpr int kThreads = 32, kBlocks = (kN + kThreads - 1) / kThreads;

[[noreturn]] void die(const char* what, int code) {
  std::fprintf(stderr, "graph_check: %s failed with %d\n", what, code);
  std::exit(1);
}
#define CHECK(call)                                  \
  do {                                               \
    const int rc_ = (int)(call);                     \
    if (rc_ != 0) die(#call, rc_);                   \
  } while (0)

// The JSON written at the end: keys in the order they were added.
std::string json = "{";
void put(const std::string& key, const std::string& value) {
  json += (json.size() > 1 ? ",\n\"" : "\n\"") + key + "\":" + value;
}
void put(const std::string& key, long long v) { put(key, std::to_string(v)); }
std::string floats(const float* x, int n) {
  std::string s = "[";
  char buf[32];
  for (int i = 0; i < n; i++) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", x[i]);
    s += buf;
  }
  return s + "]";
}
std::string ints(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

int capture_status(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  const cudaError_t e = cudaStreamIsCapturing(s, &st);
  return e == cudaSuccess ? (int)st : -(int)e;  // an error as its negated code
}

void fill(float* dev, float v, int n) {
  std::vector<float> h(n, v);
  CHECK(cudaMemcpy(dev, h.data(), sizeof(float) * n, cudaMemcpyHostToDevice));
}

// Ends the capture on s; returns {EndCapture's code, 1 if it gave a graph}, destroying any graph it gave.
std::vector<int> end_capture(cudaStream_t s) {
  cudaGraph_t g = reinterpret_cast<cudaGraph_t>(0x1);  // must be overwritten
  const cudaError_t e = cudaStreamEndCapture(s, &g);
  if (g) cudaGraphDestroy(g);
  return {(int)e, g ? 1 : 0};
}

// `graph_check branches`, run with each TUNEFORGE_CUDA_EMU_BRANCHES: what a reader saw of a second stream's work (a
// from 1 to 6) when the two streams were joined properly and when a wait was left out, outside a capture and in a
// replayed graph. b gets the reader's copy of a; the host reads it after synchronising the device.
int branches() {
  float *a, *b, *c;
  for (float** p : {&a, &b, &c}) CHECK(cudaMalloc(p, sizeof(float) * kN));
  cudaStream_t s, side;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  cudaEvent_t fork, join;
  CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
  std::vector<int> seen;
  std::string edges_seen = "[]";
  auto reset = [&] {
    fill(a, 1.0f, kN);
    fill(b, -1.0f, kN);
    fill(c, 1.0f, kN);
  };
  auto read_b = [&] {
    float h = 0;
    CHECK(cudaMemcpy(&h, b, sizeof h, cudaMemcpyDeviceToHost));  // the legacy stream: waits for no non-blocking one
    CHECK(cudaDeviceSynchronize());
    seen.push_back((int)h);
  };
  // Outside a capture, the legacy stream forks the side stream (a = 6 there) and reads a after joining it, or
  // without joining it.
  for (const bool joined : {true, false}) {
    reset();
    CHECK(cudaEventRecord(fork, 0));
    CHECK(cudaStreamWaitEvent(side, fork, 0));
    scale_add<<<kBlocks, kThreads, 0, side>>>(a, 1.0f, 5.0f, kN);
    CHECK(cudaEventRecord(join, side));
    if (joined) CHECK(cudaStreamWaitEvent(0, join, 0));
    copy<<<kBlocks, kThreads>>>(b, a, kN);
    read_b();
    std::vector<float> h(kN);
    CHECK(cudaMemcpy(h.data(), a, sizeof(float) * kN, cudaMemcpyDeviceToHost));
    seen.push_back((int)h[0]);  // the side's work has run by now in every order
  }
  // Captured on s and replayed: the side branch makes a = 6 beside unrelated work (c); the reader copies a after the
  // join, or before it (nothing orders it after the branch), or the branch reads a before the main stream's
  // a = 6 with its fork recorded too early.
  for (int variant = 0; variant < 3; variant++) {
    reset();
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(cudaEventRecord(fork, s));
    if (variant == 2) {
      scale_add<<<kBlocks, kThreads, 0, s>>>(a, 1.0f, 5.0f, kN);  // after the fork: the side does not wait for it
      CHECK(cudaStreamWaitEvent(side, fork, 0));
      copy<<<kBlocks, kThreads, 0, side>>>(b, a, kN);
      CHECK(cudaEventRecord(join, side));
      CHECK(cudaStreamWaitEvent(s, join, 0));
    } else {
      CHECK(cudaStreamWaitEvent(side, fork, 0));
      scale_add<<<kBlocks, kThreads, 0, side>>>(a, 1.0f, 5.0f, kN);
      CHECK(cudaEventRecord(join, side));
      scale_add<<<kBlocks, kThreads, 0, s>>>(c, 2.0f, 0.0f, kN);
      if (variant == 1) copy<<<kBlocks, kThreads, 0, s>>>(b, a, kN);  // before the join
      CHECK(cudaStreamWaitEvent(s, join, 0));
      if (variant == 0) copy<<<kBlocks, kThreads, 0, s>>>(b, a, kN);
    }
    cudaGraph_t g = nullptr;
    CHECK(cudaStreamEndCapture(s, &g));
    if (variant == 0) {  // the reader depends on the branch and on the main stream's own work: 2 edges
      std::vector<cudaGraphNode_t> from(4), to(4), nodes(4);
      size_t n = 4, e = 4;
      CHECK(cudaGraphGetNodes(g, nodes.data(), &n));
      CHECK(cudaGraphGetEdges(g, from.data(), to.data(), nullptr, &e));
      auto at = [&](cudaGraphNode_t p) { return (int)(std::find(nodes.begin(), nodes.end(), p) - nodes.begin()); };
      std::vector<int> edges;
      for (size_t k = 0; k < e; k++) edges.insert(edges.end(), {at(from[k]), at(to[k])});
      edges_seen = ints(edges);
    }
    cudaGraphExec_t x = nullptr;
    CHECK(cudaGraphInstantiate(&x, g, 0));
    CHECK(cudaGraphLaunch(x, 0));
    read_b();
    CHECK(cudaGraphExecDestroy(x));
    CHECK(cudaGraphDestroy(g));
  }
  std::printf("{\"branches\":%s,\"edges\":%s}\n", ints(seen).c_str(), edges_seen.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "branches") return branches();
  cudaStream_t s = nullptr;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t blas = nullptr;
  CHECK(cublasCreate(&blas));
  float *d_in, *d_x, *d_y, *d_out, *d_out2, *d_ones, *d_sum;
  CHECK(cudaMalloc(&d_in, sizeof(float) * kN));
  CHECK(cudaMalloc(&d_x, sizeof(float) * kN));
  CHECK(cudaMalloc(&d_y, sizeof(float) * kN));
  CHECK(cudaMalloc(&d_out, sizeof(float) * kN));
  CHECK(cudaMalloc(&d_out2, sizeof(float) * 6));
  CHECK(cudaMalloc(&d_ones, sizeof(float) * kN));
  CHECK(cudaMalloc(&d_sum, sizeof(float)));
  fill(d_ones, 1.0f, kN);
  for (float* p : {d_x, d_y, d_out}) fill(p, -1.0f, kN);
  fill(d_out2, -1.0f, 6);
  fill(d_sum, -1.0f, 1);
  float h_sum = -1.0f;
  cudaEvent_t ev;
  CHECK(cudaEventCreate(&ev));

  // ---- a capture of eight operations and an event record ----
  put("status_before", capture_status(s));
  put("begin", cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  put("status_during", capture_status(s));
  put("legacy_status_during", capture_status(0));  // a non-blocking capture: the legacy stream is not capturing
  float* target = d_x;
  float a = 2.0f, alpha = 1.0f, beta = 0.0f;
  std::vector<int> issued;
  issued.push_back(cudaMemsetAsync(d_out, 0, sizeof(float) * kN, s));
  issued.push_back(cudaMemcpyAsync(d_x, d_in, sizeof(float) * kN, cudaMemcpyDeviceToDevice, s));
  scale_add<<<kBlocks, kThreads, 0, s>>>(target, a, 1.0f, kN);
  issued.push_back(cudaGetLastError());
  scale_add<<<kBlocks, kThreads, 0, s>>>(d_x, 3.0f, 0.0f, kN);
  issued.push_back(cudaGetLastError());
  // sum = x . ones as a 1x1 product (column-major: A is 1 x kN, B is kN x 1).
  issued.push_back(cublasSetStream(blas, s));
  issued.push_back(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, kN, &alpha, d_x, 1, d_ones, kN, &beta, d_sum, 1));
  issued.push_back(cudaMemcpyAsync(d_out, d_x, sizeof(float) * kN, cudaMemcpyDeviceToDevice, s));
  // Two floats of each of three rows of four: x[0..1], x[4..5], x[8..9].
  issued.push_back(cudaMemcpy2DAsync(d_out2, 2 * sizeof(float), d_x, 4 * sizeof(float), 2 * sizeof(float), 3,
                                     cudaMemcpyDeviceToDevice, s));
  issued.push_back(cudaMemcpyAsync(&h_sum, d_sum, sizeof(float), cudaMemcpyDeviceToHost, s));
  issued.push_back(cudaEventRecord(ev, s));
  put("issued", ints(issued));
  // What the launches were given changes now; the graph keeps what it captured.
  target = d_y;
  a = 100.0f;
  alpha = 7.0f;
  (void)target;
  (void)a;
  // Nothing ran: every output still holds -1 (read directly: a synchronous copy would break the capture).
  put("x_during", floats(d_x, kN));
  put("out_during", floats(d_out, kN));
  put("sum_during", floats(&h_sum, 1));
  cudaGraph_t graph = nullptr;
  put("end", cudaStreamEndCapture(s, &graph));
  put("graph", graph ? 1 : 0);
  if (!graph) die("cudaStreamEndCapture gave no graph", 0);
  put("status_after", capture_status(s));
  size_t count = 0;
  CHECK(cudaGraphGetNodes(graph, nullptr, &count));
  put("node_count", (long long)count);
  std::vector<cudaGraphNode_t> nodes(count + 3, reinterpret_cast<cudaGraphNode_t>(0x1));
  size_t asked = nodes.size();
  CHECK(cudaGraphGetNodes(graph, nodes.data(), &asked));
  put("nodes_written", (long long)asked);
  std::vector<int> types;
  for (size_t i = 0; i < count; i++) {
    cudaGraphNodeType t;
    CHECK(cudaGraphNodeGetType(nodes[i], &t));
    types.push_back((int)t);
  }
  put("node_types", ints(types));
  put("slots_past_end_null", nodes[count] == nullptr && nodes[count + 2] == nullptr ? 1 : 0);
  // After EndCapture the synchronous calls are allowed again; still nothing has run.
  std::vector<float> h(kN);
  CHECK(cudaMemcpy(h.data(), d_out, sizeof(float) * kN, cudaMemcpyDeviceToHost));
  put("out_after_end", floats(h.data(), kN));

  // ---- replays: the instantiated graph outlives its graph, runs on the legacy stream and on s ----
  cudaGraphExec_t exec = nullptr;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphDestroy(graph));
  std::vector<float> in(kN);
  for (int i = 0; i < kN; i++) in[i] = (float)i;
  CHECK(cudaMemcpy(d_in, in.data(), sizeof(float) * kN, cudaMemcpyHostToDevice));
  put("in1", floats(in.data(), kN));
  put("launch1", cudaGraphLaunch(exec, 0));
  CHECK(cudaMemcpy(h.data(), d_out, sizeof(float) * kN, cudaMemcpyDeviceToHost));
  put("out1", floats(h.data(), kN));
  CHECK(cudaMemcpy(h.data(), d_out2, sizeof(float) * 6, cudaMemcpyDeviceToHost));
  put("out2_1", floats(h.data(), 6));
  put("sum1", floats(&h_sum, 1));
  for (int i = 0; i < kN; i++) in[i] = 0.5f * (float)(kN - i);
  CHECK(cudaMemcpy(d_in, in.data(), sizeof(float) * kN, cudaMemcpyHostToDevice));
  put("in2", floats(in.data(), kN));
  put("launch2", cudaGraphLaunch(exec, s));
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaMemcpy(h.data(), d_out, sizeof(float) * kN, cudaMemcpyDeviceToHost));
  put("out2", floats(h.data(), kN));
  put("sum2", floats(&h_sum, 1));
  CHECK(cudaMemcpy(h.data(), d_y, sizeof(float) * kN, cudaMemcpyDeviceToHost));
  put("y_after_replays", floats(h.data(), kN));  // the pointer given after capture was never written
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cublasSetStream(blas, 0));

  // ---- what a global-mode capture refuses; each breaks the capture, which then ends without a graph ----
  {  // cudaMalloc; then work on the broken capture is refused too, and the recorded launch never runs
    fill(d_y, 5.0f, kN);
    const int begin = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    scale_add<<<kBlocks, kThreads, 0, s>>>(d_y, 2.0f, 0.0f, kN);
    const int recorded = cudaGetLastError();
    void* p = nullptr;
    const int malloc_rc = cudaMalloc(&p, 64);
    const int status = capture_status(s);
    scale_add<<<kBlocks, kThreads, 0, s>>>(d_y, 2.0f, 0.0f, kN);
    const int after = cudaGetLastError();
    const std::vector<int> end = end_capture(s);
    put("malloc", ints({begin, recorded, malloc_rc, p == nullptr ? 1 : 0, status, after, end[0], end[1],
                        capture_status(s)}));
    put("y_after_broken_capture", floats(d_y, kN));
  }
  {  // a synchronous copy
    const int begin = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    float v = 9.0f;
    const int rc = cudaMemcpy(d_sum, &v, sizeof v, cudaMemcpyHostToDevice);
    const std::vector<int> end = end_capture(s);
    put("memcpy", ints({begin, rc, end[0], end[1]}));
  }
  {  // a synchronous fill, cudaFree, and waiting for the device or another stream
    std::vector<int> r;
    for (int which = 0; which < 4; which++) {
      cudaStream_t other;
      CHECK(cudaStreamCreate(&other));
      CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
      r.push_back(which == 0   ? cudaMemset(d_y, 0, 4)
                  : which == 1 ? cudaFree(d_ones)
                  : which == 2 ? cudaDeviceSynchronize()
                               : cudaStreamSynchronize(other));
      r.push_back(end_capture(s)[0]);
      CHECK(cudaStreamDestroy(other));
    }
    put("other_unsafe", ints(r));
  }
  {  // a launch on the legacy stream: the launch's error, and it does not run
    fill(d_y, 5.0f, kN);
    const int begin = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    scale_add<<<kBlocks, kThreads>>>(d_y, 2.0f, 0.0f, kN);
    const int launch = cudaGetLastError();
    const int status = capture_status(s);
    const std::vector<int> end = end_capture(s);
    put("legacy_launch", ints({begin, launch, status, end[0], end[1]}));
    put("y_after_legacy_launch", floats(d_y, kN));
  }
  {  // async copy and fill on the legacy stream, and a cuBLAS product on a handle set to it
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const int copy = cudaMemcpyAsync(d_y, d_x, sizeof(float) * kN, cudaMemcpyDeviceToDevice, 0);
    const int end1 = end_capture(s)[0];
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const int set = cudaMemsetAsync(d_y, 0, sizeof(float) * kN);
    const int end2 = end_capture(s)[0];
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const float one = 1.0f, zero = 0.0f;
    const int gemm = cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, kN, &one, d_x, 1, d_ones, kN, &zero, d_sum, 1);
    const int gemm_err = cudaGetLastError();
    const int end3 = end_capture(s)[0];
    put("legacy_async", ints({copy, end1, set, end2, gemm, gemm_err, end3}));
  }
  {  // a launch with a bad configuration on the capturing stream fails at capture time
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    scale_add<<<1, 2048, 0, s>>>(d_y, 2.0f, 0.0f, kN);
    const int launch = cudaGetLastError();
    const std::vector<int> end = end_capture(s);
    put("bad_launch", ints({launch, end[0], end[1]}));
  }
  {  // misuse of the capture calls themselves
    const int legacy = cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal);
    const int not_capturing = end_capture(s)[0];
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const int twice = cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    int other_thread = -1;
    std::thread([&] {
      cudaGraph_t g = nullptr;
      other_thread = cudaStreamEndCapture(s, &g);
    }).join();
    const int still = capture_status(s);
    const std::vector<int> end = end_capture(s);
    cudaGetLastError();
    put("misuse", ints({legacy, not_capturing, twice, other_thread, still, end[0], end[1]}));
  }

  // ---- relaxed mode allows allocation and synchronous copies (run at once), not the legacy stream ----
  {
    fill(d_y, 5.0f, kN);
    const int begin = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
    void* p = nullptr;
    const int malloc_rc = cudaMalloc(&p, 64);
    const int free_rc = cudaFree(p);
    float v = 4.0f;
    const int copy = cudaMemcpy(d_sum, &v, sizeof v, cudaMemcpyHostToDevice);
    scale_add<<<kBlocks, kThreads, 0, s>>>(d_y, 2.0f, 0.0f, kN);
    const int launch = cudaGetLastError();
    const int status = capture_status(s);
    cudaGraph_t g = nullptr;
    const int end = cudaStreamEndCapture(s, &g);
    size_t n = 0;
    if (g) CHECK(cudaGraphGetNodes(g, nullptr, &n));
    float copied = 0;
    std::memcpy(&copied, d_sum, sizeof copied);
    const float y_before = d_y[0];
    cudaGraphExec_t x = nullptr;
    if (g) CHECK(cudaGraphInstantiate(&x, g));
    if (x) CHECK(cudaGraphLaunch(x, 0));
    put("relaxed", ints({begin, malloc_rc, free_rc, copy, (int)copied, launch, status, end,
                         (int)n, (int)y_before, (int)d_y[0]}));
    if (x) cudaGraphExecDestroy(x);
    if (g) cudaGraphDestroy(g);

    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    scale_add<<<kBlocks, kThreads>>>(d_y, 2.0f, 0.0f, kN);
    const int legacy = cudaGetLastError();
    const int device_sync = cudaDeviceSynchronize();
    const int end2 = end_capture(s)[0];
    put("relaxed_refused", ints({legacy, device_sync, end2}));
  }

  // ---- thread-local mode refuses allocation in the capturing thread only ----
  {
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    void* p = nullptr;
    int other_thread = -1;
    std::thread([&] {
      other_thread = cudaMalloc(&p, 64);
      if (other_thread == 0) cudaFree(p);
    }).join();
    const int status = capture_status(s);
    const int here = cudaMalloc(&p, 64);
    const int end = end_capture(s)[0];
    put("thread_local", ints({other_thread, status, here, end}));
  }

  // ---- a fork and a join: a second stream joins by waiting for an event the capture recorded, and is joined back ----
  {
    cudaStream_t side;
    CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
    cudaEvent_t fork, join;
    CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    fill(d_y, 1.0f, kN);
    fill(d_out, 1.0f, kN);
    (void)cudaGetLastError();  // the sections above leave their last error
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    std::vector<int> rc;
    rc.push_back(cudaEventRecord(fork, s));
    rc.push_back(cudaStreamWaitEvent(side, fork, 0));
    rc.push_back(capture_status(side));  // joined: capturing
    scale_add<<<kBlocks, kThreads, 0, side>>>(d_out, 3.0f, 0.0f, kN);  // on the side branch
    rc.push_back(cudaGetLastError());
    scale_add<<<kBlocks, kThreads, 0, s>>>(d_y, 2.0f, 0.0f, kN);  // on the main one
    rc.push_back(cudaEventRecord(join, side));
    rc.push_back(cudaStreamWaitEvent(s, join, 0));
    cudaGraph_t g = nullptr;
    rc.push_back(cudaStreamEndCapture(s, &g));
    rc.push_back(capture_status(side));  // no longer capturing
    size_t n = 0;
    if (g) CHECK(cudaGraphGetNodes(g, nullptr, &n));
    rc.push_back((int)n);               // the two launches; the records are no nodes
    rc.push_back((int)d_out[0]);        // nothing ran yet
    cudaGraphExec_t x = nullptr;
    if (g) CHECK(cudaGraphInstantiate(&x, g, 0));
    if (x) CHECK(cudaGraphLaunch(x, 0));
    rc.push_back((int)d_out[0]);  // 3
    rc.push_back((int)d_y[0]);    // 2
    put("fork_join", ints(rc));
    if (x) cudaGraphExecDestroy(x);
    if (g) cudaGraphDestroy(g);

    // A side branch left unjoined: EndCapture fails and gives no graph.
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(cudaEventRecord(fork, s));
    CHECK(cudaStreamWaitEvent(side, fork, 0));
    scale_add<<<kBlocks, kThreads, 0, side>>>(d_out, 3.0f, 0.0f, kN);
    const std::vector<int> end = end_capture(s);
    put("unjoined", ints({end[0], end[1], capture_status(side)}));
    CHECK(cudaEventDestroy(fork));
    CHECK(cudaEventDestroy(join));
    CHECK(cudaStreamDestroy(side));
  }

  // ---- cublasSetWorkspace's argument checks ----
  put("workspace", ints({cublasSetWorkspace(nullptr, d_x, 256), cublasSetWorkspace(blas, (char*)d_x + 4, 256),
                         cublasSetWorkspace(blas, d_x, 256)}));

  put("error_names", std::string("[\"") + cudaGetErrorName(cudaErrorStreamCaptureUnsupported) + "\",\"" +
                         cudaGetErrorName(cudaErrorStreamCaptureInvalidated) + "\",\"" +
                         cudaGetErrorName(cudaErrorStreamCaptureImplicit) + "\",\"" +
                         cudaGetErrorName(cudaErrorIllegalState) + "\"]");
  CHECK(cudaEventDestroy(ev));
  CHECK(cublasDestroy(blas));
  CHECK(cudaStreamDestroy(s));
  std::printf("%s\n}\n", json.c_str());
  return 0;
}
