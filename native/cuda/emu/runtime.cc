// The emulated CUDA runtime (include/cuda_runtime.h): memory, copies, events, device queries, streams, stream
// capture and graphs, and the kernel scheduler. Each launch runs its blocks one after another
// (TUNEFORGE_CUDA_EMU_ORDER=reverse runs blocks and the threads of a block in reverse order, which exposes code
// that reads what another thread or block writes without a barrier between them). Inside a block every thread is
// a fiber run until it reaches __syncthreads() or a warp shuffle; a barrier opens when every live thread of its
// block (or all 32 lanes of its warp) waits there. Threads that wait at different barriers forever are reported
// as a deadlock naming the kernel. Stream work runs at once, except on a capturing stream, where it becomes a
// graph node that cudaGraphLaunch runs later, and (TUNEFORGE_CUDA_EMU_BRANCHES=late) on a created stream, where it
// waits until something waits for it.
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "capture.h"
#include "cuda_runtime.h"

// Plain globals, not thread_local (which costs a call per access in a shared library): launches are serialised.
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

// ---- errors: sticky like the runtime's last error, cleared by cudaGetLastError ----
thread_local cudaError_t last_error = cudaSuccess;
cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

[[noreturn]] void die(const std::string& msg) {
  // A kernel cannot throw through the fiber switch; the emulator stops the process with the reason instead.
  std::fprintf(stderr, "CUDA emulator: %s\n", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

// ---- memory (cudaMalloc below): host allocations filled with 0xff bytes (NaN floats), as fresh device memory is
// garbage ----
constexpr size_t kTotalBytes = size_t(80) << 30;  // what cudaMemGetInfo reports as the device's size

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::string(v) == value;
}

// The device's size: 80 GiB, or TUNEFORGE_CUDA_EMU_MEMORY bytes (out-of-memory tests).
size_t device_bytes() {
  static const size_t bytes = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_EMU_MEMORY");
    return v ? (size_t)std::strtoull(v, nullptr, 10) : kTotalBytes;
  }();
  return bytes;
}
std::mutex mem_mu;
size_t allocated = 0;

// ---- fibers ----
// On x86-64 a fiber switch is a few instructions (the callee-saved registers and the stack pointer; the FP
// control words are left alone: nothing here changes them, and saving them cost more than all the rest);
// swapcontext would also make a signal-mask system call per switch, and a launch switches once or more per
// thread. Elsewhere ucontext does the same job.
#if defined(__x86_64__)
extern "C" void tf_emu_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl tf_emu_switch
.type tf_emu_switch,@function
tf_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size tf_emu_switch,.-tf_emu_switch
.section .note.GNU-stack,"",@progbits
.text
)");

struct Context {
  void* sp = nullptr;
};
// A fresh fiber: a frame tf_emu_switch can "return" into entry() from, with the callee-saved registers zero.
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;                                    // entry's caller slot (keeps entry's frame 16-byte aligned)
  *--sp = reinterpret_cast<uint64_t>(entry);   // popped by ret
  for (int i = 0; i < 6; i++) *--sp = 0;       // rbp rbx r12 r13 r14 r15
  c.sp = sp;
}
void switch_context(Context& from, Context& to) { tf_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;  // entry() never returns: it switches back to the scheduler
  makecontext(&c.uc, entry, 0);
}
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ---- the scheduler ----
enum class Wait { None, Block, Warp, Done };

struct AsyncCopy {
  void* dst;
  const void* src;
  bool valid;
};

struct FiberState {
  Context ctx;
  Wait wait = Wait::None;
  std::vector<AsyncCopy> open;                     // cp.async copies issued since the last commit
  std::vector<std::vector<AsyncCopy>> committed;   // committed groups, oldest first, not yet landed
};

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kMaxStaticShared = 48 * 1024, kMaxOptinShared = 227 * 1024;

struct BlockRun {
  const char* kernel = nullptr;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  int threads = 0;
  int current = -1;
  Context scheduler;
  std::vector<FiberState> fibers = std::vector<FiberState>(kMaxThreads);
  // Who waits where, kept as the fibers move, so opening a barrier costs no scan of the block.
  std::vector<int> ready, next_ready;
  int at_block = 0, done = 0;
  int warp_waiting[kMaxThreads / 32], warp_done[kMaxThreads / 32];
  uint64_t shfl_slots[kMaxThreads];
  std::vector<char> shared;  // dynamic shared memory of the launch
};

BlockRun* run = nullptr;  // the launch in progress (launches are serialised by launch_mu)
std::mutex launch_mu;
std::unordered_map<const void*, int> shared_optin;  // kernel -> bytes allowed by cudaFuncSetAttribute

// Stacks for kMaxThreads fibers, reserved once; a guard page below each turns an overflow into a fault.
char* fiber_stack(int i) {
  static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static char* base = [] {
    const size_t span = kStackBytes + page;
    void* p = mmap(nullptr, span * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) die("cannot reserve fiber stacks");
    for (int t = 0; t < kMaxThreads; t++) mprotect(static_cast<char*>(p) + t * span, page, PROT_NONE);
    return static_cast<char*>(p);
  }();
  return base + i * (kStackBytes + page) + page;
}

void set_thread_index(int t) {
  threadIdx.x = t % blockDim.x;
  threadIdx.y = (t / blockDim.x) % blockDim.y;
  threadIdx.z = t / (blockDim.x * blockDim.y);
}

std::string block_name() {
  return std::string(run->kernel) + " block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) +
         "," + std::to_string(blockIdx.z) + ")";
}

[[noreturn]] void fiber_main() {
  run->body(run->ctx);
  const int t = run->current;
  const FiberState& f = run->fibers[t];
  if (!f.open.empty() || std::any_of(f.committed.begin(), f.committed.end(), [](const auto& g) { return !g.empty(); }))
    die(block_name() + ": thread " + std::to_string(t) + " ended with cp.async copies in flight");
  run->fibers[t].wait = Wait::Done;
  run->done++;
  run->warp_done[t / 32]++;
  switch_context(run->fibers[t].ctx, run->scheduler);
  die("a finished fiber was resumed");
}

// Suspends the calling thread until its barrier opens.
void wait_at(Wait w) {
  if (!run || run->current < 0) die("__syncthreads or a shuffle outside a kernel");
  const int t = run->current;
  run->fibers[t].wait = w;
  if (w == Wait::Block) run->at_block++;
  else run->warp_waiting[t / 32]++;
  switch_context(run->fibers[t].ctx, run->scheduler);
}

bool reverse_order() {
  static const bool r = env_is("TUNEFORGE_CUDA_EMU_ORDER", "reverse");
  return r;
}

// The order of work on different streams, where nothing orders it (TUNEFORGE_CUDA_EMU_BRANCHES): issue order, or
// one of the two a GPU may also pick that shows a missing event wait (README, "Streams, stream capture and graphs").
enum class Branches { IssueOrder, Late, Early };
Branches branches() {
  static const Branches b = [] {
    const char* v = std::getenv("TUNEFORGE_CUDA_EMU_BRANCHES");
    const std::string s = v ? v : "";
    if (s.empty()) return Branches::IssueOrder;
    if (s == "late") return Branches::Late;
    if (s == "early") return Branches::Early;
    die("TUNEFORGE_CUDA_EMU_BRANCHES is \"" + s + "\": late, early or unset");
  }();
  return b;
}

void run_block() {
  const int n = run->threads, warps = (n + 31) / 32;
  run->ready.clear();
  for (int t = 0; t < n; t++) {
    make_context(run->fibers[t].ctx, fiber_stack(t), kStackBytes, fiber_main);
    run->fibers[t].wait = Wait::None;
    run->fibers[t].open.clear();
    run->fibers[t].committed.clear();
    run->ready.push_back(t);
  }
  run->at_block = run->done = 0;
  for (int w = 0; w < warps; w++) run->warp_waiting[w] = run->warp_done[w] = 0;
  const bool rev = reverse_order();
  for (;;) {
    const std::vector<int>& order = run->ready;
    for (size_t i = 0; i < order.size(); i++) {
      const int t = rev ? order[order.size() - 1 - i] : order[i];
      run->current = t;
      set_thread_index(t);
      switch_context(run->scheduler, run->fibers[t].ctx);
    }
    run->current = -1;
    if (run->done == n) return;
    // Every thread now waits or has finished: open the barriers whose threads are all there.
    run->next_ready.clear();
    for (int w = 0; w < warps; w++) {
      const int lanes = std::min(32, n - w * 32), waiting = run->warp_waiting[w];
      if (waiting == 0 || waiting + run->warp_done[w] < lanes) continue;
      if (waiting < 32)
        die(block_name() + ": a full-warp shuffle in a warp with " +
            (lanes < 32 ? "only " + std::to_string(lanes) + " threads" : std::to_string(run->warp_done[w]) +
                                                                              " exited lanes"));
      for (int t = w * 32; t < w * 32 + 32; t++) {
        run->fibers[t].wait = Wait::None;
        run->next_ready.push_back(t);
      }
      run->warp_waiting[w] = 0;
    }
    if (run->next_ready.empty() && run->at_block > 0 && run->at_block + run->done == n) {
      for (int t = 0; t < n; t++)
        if (run->fibers[t].wait == Wait::Block) {
          run->fibers[t].wait = Wait::None;
          run->next_ready.push_back(t);
        }
      run->at_block = 0;
    }
    if (run->next_ready.empty()) {
      int at_warp = 0;
      for (int w = 0; w < warps; w++) at_warp += run->warp_waiting[w];
      die(block_name() + ": deadlock, " + std::to_string(run->at_block) + " threads at __syncthreads, " +
          std::to_string(at_warp) + " at a warp shuffle, " + std::to_string(run->done) + " finished");
    }
    std::swap(run->ready, run->next_ready);
  }
}

}  // namespace

// ---- streams, events, graphs and the capture ----
// Streams are handles only: their work runs when issued, in issue order, which is one order a GPU may pick. With
// TUNEFORGE_CUDA_EMU_BRANCHES=late, work on a created stream outside a capture waits until something needs it (see
// "branches" below), the order of a GPU whose second stream is slow.
struct CUstream_st {
  unsigned flags;
};
// Events are host timestamps: work is synchronous, so the time between two records is the work between them.
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
  uint64_t captured_by = 0;  // the capture that recorded this event last (0: a real record)
  cudaStream_t stream = nullptr;  // ... on which stream of it,
  uint64_t ops = 0;               // ... after how many of that stream's operations in the capture
  std::vector<size_t> after;      // ... and the graph nodes its stream had reached (what a waiter depends on)
  cudaStream_t late = nullptr;    // a real record on a stream whose work waits (branches late): the stream,
  uint64_t late_at = 0;           // ... and how many of its operations come before the record
};
using GraphOp = std::function<cudaError_t()>;
struct CUgraphNode_st {
  cudaGraphNodeType type;
  std::string what;
  GraphOp op;
  bool side = false;         // issued on a stream that joined the capture, not the capturing one
  std::vector<size_t> deps;  // the nodes it follows: its stream's previous work and the events it waited for
};
struct CUgraph_st {
  std::vector<std::unique_ptr<CUgraphNode_st>> nodes;
};
// An instantiated graph copies the nodes' operations and dependencies, so it outlives cudaGraphDestroy as on a GPU.
struct ExecNode {
  GraphOp op;
  bool side;
  std::vector<size_t> deps;
};
struct CUgraphExec_st {
  std::vector<ExecNode> nodes;
};

namespace {

std::mutex streams_mu;
std::unordered_set<cudaStream_t> streams;  // the live streams cudaStreamCreate made

bool is_legacy(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy; }

// A stream handle the runtime knows: the legacy stream or a live stream (a destroyed one is reported, where a GPU
// would do something undefined).
bool known_stream(cudaStream_t s) {
  if (is_legacy(s)) return true;
  std::lock_guard<std::mutex> lock(streams_mu);
  return streams.count(s) > 0;
}

// The capture in progress: one at a time (the backend never needs two). A graph collects its nodes until
// cudaStreamEndCapture; after an error it is invalidated, and EndCapture returns no graph.
// Other streams join it by waiting for an event it recorded (a fork); each must be joined back (the capturing stream
// waits for an event recorded after its last operation) before the capture ends.
struct Joined {
  uint64_t ops = 0;       // operations it recorded into the capture
  uint64_t joined_at = 0;  // of which the capturing stream has waited for this many
};
struct Capture {
  cudaStream_t stream = nullptr;  // nullptr: no capture
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;  // the thread that began it (thread-local mode, and EndCapture's thread check)
  uint64_t id = 0;
  bool invalidated = false;
  std::string reason;  // what invalidated it
  std::unique_ptr<CUgraph_st> graph;
  std::unordered_map<cudaStream_t, Joined> joined;
  // Per stream of the capture, the nodes its next node depends on: its last node, and what the events it waited for
  // since then had reached.
  std::unordered_map<cudaStream_t, std::vector<size_t>> frontier;
};
std::mutex capture_mu;
Capture cap;
uint64_t captures_begun = 0;

// With capture_mu held: whether s's work goes into the capture (the capturing stream, or one that joined it).
bool captures(cudaStream_t s) { return cap.stream && (s == cap.stream || cap.joined.count(s) > 0); }

// ---- branches late: work issued to a created stream outside a capture waits until something needs it ----
// Until another stream (or the host) waits for an event recorded after it, the stream or the device is synchronised,
// the stream is destroyed or begins a capture, or (a blocking stream's) the legacy stream has work. A GPU may run a
// second stream's work that late, so a reader that does not wait for it reads what was there before.
struct LateWork {
  std::deque<std::function<void()>> ops;
  uint64_t issued = 0, done = 0;
};
std::mutex late_mu;
std::unordered_map<cudaStream_t, LateWork> late_work;

// Runs s's waiting work up to its `upto`-th operation (counted from the stream's first).
void run_late(cudaStream_t s, uint64_t upto = UINT64_MAX) {
  for (;;) {
    std::function<void()> op;
    {
      std::lock_guard<std::mutex> lock(late_mu);
      auto it = late_work.find(s);
      if (it == late_work.end() || it->second.ops.empty() || it->second.done >= upto) return;
      op = std::move(it->second.ops.front());
      it->second.ops.pop_front();
      it->second.done++;
    }
    op();  // without the lock: an op may run another stream's waiting work (an event it waits for)
  }
}

// Every stream's waiting work, or only the blocking streams' (those the legacy stream waits for).
void run_late_all(bool blocking_only) {
  if (branches() != Branches::Late) return;
  std::vector<cudaStream_t> pending;
  {
    std::lock_guard<std::mutex> lock(late_mu);
    for (const auto& [stream, w] : late_work)
      if (!w.ops.empty() && !(blocking_only && (stream->flags & cudaStreamNonBlocking))) pending.push_back(stream);
  }
  for (cudaStream_t stream : pending) run_late(stream);
}

// With capture_mu held. Keeps the first reason: later errors are usually its consequences.
void invalidate(const std::string& why) {
  if (!cap.stream || cap.invalidated) return;
  cap.invalidated = true;
  cap.reason = why;
}

// Calls a global-mode capture forbids anywhere (thread-local mode: in the capturing thread), because they
// allocate or wait for the device, which a graph cannot hold. `always`: a call no mode allows (waiting for the
// capturing stream itself, or the whole device). They fail with cudaErrorStreamCaptureUnsupported and
// invalidate the capture.
cudaError_t unsafe_call(const char* what, bool always) {
  std::lock_guard<std::mutex> lock(capture_mu);
  if (!cap.stream) return cudaSuccess;
  const bool refused = always || cap.mode == cudaStreamCaptureModeGlobal ||
                       (cap.mode == cudaStreamCaptureModeThreadLocal && std::this_thread::get_id() == cap.thread);
  if (!refused) return cudaSuccess;
  invalidate(std::string(what) + " during a stream capture");
  return fail(cudaErrorStreamCaptureUnsupported);
}

}  // namespace

void __syncthreads() { wait_at(Wait::Block); }

namespace emu {

uint64_t shfl_xor(unsigned mask, uint64_t bits, int lane_mask, int width) {
  if (mask != 0xffffffffu) die(std::string(run ? run->kernel : "?") + ": only full-warp shuffles are emulated");
  if (width != 32) die("shuffle widths other than 32 are not emulated");
  const int t = run->current, lane = t % 32, base = t - lane;
  run->shfl_slots[t] = bits;
  wait_at(Wait::Warp);
  const uint64_t got = run->shfl_slots[base + ((lane ^ lane_mask) & 31)];
  wait_at(Wait::Warp);  // every lane has read before any slot is reused
  return got;
}

const uint64_t* warp_publish(const void* p) {
  static_assert(sizeof(void*) <= sizeof(uint64_t), "a pointer fits a shuffle slot");
  const int t = run->current, base = t - t % 32;
  run->shfl_slots[t] = (uint64_t)(uintptr_t)p;
  wait_at(Wait::Warp);
  return &run->shfl_slots[base];
}

void warp_release() { wait_at(Wait::Warp); }

void async_copy16(void* dst, const void* src, bool valid) {
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || (valid && reinterpret_cast<uintptr_t>(src) % 16 != 0))
    die(block_name() + ": cp.async of 16 bytes at an address not 16-byte aligned");
  run->fibers[run->current].open.push_back({dst, src, valid});
  std::memset(dst, 0xff, 16);  // what a read before the wait may see
}

void async_commit() {
  FiberState& f = run->fibers[run->current];
  f.committed.push_back(std::move(f.open));
  f.open.clear();
}

void async_wait(int pending) {
  FiberState& f = run->fibers[run->current];
  const size_t keep = (size_t)std::max(pending, 0);
  size_t landed = 0;
  for (; f.committed.size() - landed > keep; landed++)
    for (const AsyncCopy& c : f.committed[landed]) {
      if (c.valid) std::memcpy(c.dst, c.src, 16);
      else std::memset(c.dst, 0, 16);
    }
  f.committed.erase(f.committed.begin(), f.committed.begin() + (std::ptrdiff_t)landed);
}

void* dynamic_shared() { return run->shared.data(); }

// What a GPU would reject about a launch's configuration (checked when it is issued, captured or not).
cudaError_t launch_error(const LaunchConfig& cfg, const void* kernel, const char* name) {
  const uint64_t threads = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
  const uint64_t blocks = (uint64_t)cfg.grid.x * cfg.grid.y * cfg.grid.z;
  if (threads == 0 || threads > kMaxThreads || cfg.block.z > 64 || blocks == 0 || cfg.grid.y > 65535 ||
      cfg.grid.z > 65535)
    return cudaErrorInvalidConfiguration;
  std::lock_guard<std::mutex> lock(launch_mu);
  size_t allowed = kMaxStaticShared;
  if (auto it = shared_optin.find(kernel); it != shared_optin.end()) allowed = std::max(allowed, (size_t)it->second);
  if (cfg.shared_bytes > allowed) {
    std::fprintf(stderr, "CUDA emulator: %s asks for %zu bytes of dynamic shared memory, %zu allowed\n", name,
                 cfg.shared_bytes, allowed);
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// Checks and runs one launch (issued now, or a graph's kernel node replayed).
cudaError_t run_launch(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*),
                       void* ctx) {
  if (const cudaError_t e = launch_error(cfg, kernel, name)) return fail(e);
  const uint64_t threads = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
  const uint64_t blocks = (uint64_t)cfg.grid.x * cfg.grid.y * cfg.grid.z;
  std::lock_guard<std::mutex> lock(launch_mu);
  static BlockRun* state = new BlockRun();
  run = state;
  run->kernel = name;
  run->body = body;
  run->ctx = ctx;
  run->threads = (int)threads;
  gridDim = cfg.grid;
  blockDim = cfg.block;
  const bool rev = reverse_order();
  for (uint64_t i = 0; i < blocks; i++) {
    const uint64_t b = rev ? blocks - 1 - i : i;
    blockIdx.x = (unsigned)(b % cfg.grid.x);
    blockIdx.y = (unsigned)((b / cfg.grid.x) % cfg.grid.y);
    blockIdx.z = (unsigned)(b / ((uint64_t)cfg.grid.x * cfg.grid.y));
    // Shared memory starts as garbage (NaN floats) in every block, as on a GPU.
    run->shared.assign(cfg.shared_bytes + 16, (char)0xff);
    run_block();
  }
  run = nullptr;
  return cudaSuccess;
}

void run_grid(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*), void* ctx) {
  run_launch(cfg, kernel, name, body, ctx);
}

void record_launch(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*),
                   std::shared_ptr<void> ctx) {
  if (const cudaError_t e = launch_error(cfg, kernel, name)) {
    fail_in_capture(cfg.stream, e, name);
    return;
  }
  record(cfg.stream, cudaGraphNodeTypeKernel, name,
         [cfg, kernel, name, body, ctx] { return run_launch(cfg, kernel, name, body, ctx.get()); });
}

cudaError_t issue(cudaStream_t s, const char* what, bool& record) {
  record = false;
  if (!known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  if (is_legacy(s)) run_late_all(true);  // the legacy stream waits for the blocking streams
  std::lock_guard<std::mutex> lock(capture_mu);
  if (!cap.stream) return cudaSuccess;
  if (captures(s)) {
    // Work after the capture broke is refused too: the graph could not hold what it depends on.
    if (cap.invalidated) return fail(cudaErrorStreamCaptureInvalidated);
    record = true;
    return cudaSuccess;
  }
  if (is_legacy(s)) {
    // The legacy stream waits for every blocking stream, so its work would depend on the capture; on a GPU work
    // beside a non-blocking capturing stream runs at once instead, left out of the graph, which is always a
    // mistake in code that captures its work: refused either way.
    invalidate(std::string(what) + " on the legacy stream during a stream capture");
    return fail(cudaErrorStreamCaptureImplicit);
  }
  return cudaSuccess;
}

bool defers(cudaStream_t s) {
  if (branches() != Branches::Late || is_legacy(s)) return false;
  std::lock_guard<std::mutex> lock(capture_mu);
  return !captures(s);
}

void later(cudaStream_t s, std::function<void()> op) {
  std::lock_guard<std::mutex> lock(late_mu);
  LateWork& w = late_work[s];
  w.ops.push_back(std::move(op));
  w.issued++;
}

void later_launch(const LaunchConfig& cfg, const void* kernel, const char* name, void (*body)(void*),
                  std::shared_ptr<void> ctx) {
  if (const cudaError_t e = launch_error(cfg, kernel, name)) {
    fail(e);
    return;
  }
  later(cfg.stream, [cfg, kernel, name, body, ctx] { run_launch(cfg, kernel, name, body, ctx.get()); });
}

void record(cudaStream_t s, cudaGraphNodeType type, const char* what, std::function<cudaError_t()> op) {
  {
    std::lock_guard<std::mutex> lock(capture_mu);
    if (captures(s)) {
      if (!cap.invalidated) {
        std::vector<size_t>& f = cap.frontier[s];
        cap.graph->nodes.push_back(
            std::make_unique<CUgraphNode_st>(CUgraphNode_st{type, what, std::move(op), s != cap.stream, f}));
        f = {cap.graph->nodes.size() - 1};
      }
      if (s != cap.stream) cap.joined[s].ops++;
      return;
    }
  }
  op();  // the capture ended on another thread since issue(): the work is the stream's again
}

cudaError_t fail_in_capture(cudaStream_t s, cudaError_t e, const char* what) {
  std::lock_guard<std::mutex> lock(capture_mu);
  if (captures(s)) invalidate(std::string(what) + " failed (" + cudaGetErrorName(e) + ") during a stream capture");
  return fail(e);
}

}  // namespace emu

// ---- the runtime API ----
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CUDA emulator (CPU)");
  p->totalGlobalMem = device_bytes();
  p->sharedMemPerBlock = kMaxStaticShared;
  p->sharedMemPerBlockOptin = kMaxOptinShared;
  p->maxThreadsPerBlock = kMaxThreads;
  p->multiProcessorCount = 1;
  p->major = 9;  // reports sm_90, so bf16 paths are taken as on an H100
  p->minor = 0;
  p->warpSize = 32;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice);
  if (attr == cudaDevAttrMultiProcessorCount) {
    *value = 1;  // as cudaGetDeviceProperties says
    return cudaSuccess;
  }
  if (attr != cudaDevAttrMaxSharedMemoryPerBlockOptin) return fail(cudaErrorInvalidValue);
  *value = (int)kMaxOptinShared;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  if (!attr || !func) return fail(cudaErrorInvalidValue);
  *attr = {0, 90, 90};
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > kMaxOptinShared)
    return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(launch_mu);
  shared_optin[func] = value;
  return cudaSuccess;
}

// TUNEFORGE_CUDA_EMU_GUARD=1: every allocation ends exactly against an inaccessible page (so it is aligned only
// to its element size: the kernels that load 16-byte vectors, attention_mma.cu's, check the alignment and load
// single words otherwise) and starts a page after another, so
// a kernel reading or writing one element past the end faults at once. Run with TUNEFORGE_CUDA_CACHE=0, so each
// tensor is its own allocation.
bool guard_pages() {
  static const bool on = env_is("TUNEFORGE_CUDA_EMU_GUARD", "1");
  return on;
}

struct Allocation {
  size_t bytes;
  void* base;  // the mapping (guard pages) or nullptr (aligned_alloc)
  size_t mapped;
  bool host = false;  // cudaHostAlloc's: not device memory
};
std::unordered_map<void*, Allocation> allocations;

// A fault in guard mode is almost always a kernel past an allocation's end: name the kernel, block and thread.
void report_fault(int sig) {
  char msg[512];
  int n;
  if (run && run->current >= 0)
    n = std::snprintf(msg, sizeof msg,
                      "CUDA emulator: memory fault in kernel %s, block (%u,%u,%u), thread (%u,%u,%u): an access "
                      "outside its allocation\n",
                      run->kernel, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  else
    n = std::snprintf(msg, sizeof msg, "CUDA emulator: memory fault outside any kernel (a host copy or cuBLAS)\n");
  if (n > 0) (void)!write(2, msg, (size_t)std::min(n, (int)sizeof msg - 1));
  signal(sig, SIG_DFL);
  raise(sig);
}

void* guarded_alloc(size_t bytes, Allocation& a) {
  static const bool handler = [] {
    signal(SIGSEGV, report_fault);
    signal(SIGBUS, report_fault);
    return true;
  }();
  (void)handler;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t body = (bytes + page - 1) / page * page;
  a.mapped = body + 2 * page;
  void* m = mmap(nullptr, a.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  a.base = m;
  char* c = static_cast<char*>(m);
  mprotect(c, page, PROT_NONE);
  mprotect(c + page + body, page, PROT_NONE);
  return c + page + body - bytes;
}

// Device and pinned host allocations alike: fresh bytes are garbage (0xff, NaN as floats), and with guard pages an
// access past either end faults.
namespace {
cudaError_t emu_alloc(void** p, size_t bytes, bool host) {
  std::lock_guard<std::mutex> lock(mem_mu);
  if (!host && allocated + bytes > device_bytes()) return fail(cudaErrorMemoryAllocation);
  Allocation a{bytes, nullptr, 0, host};
  void* q = guard_pages() ? guarded_alloc(bytes, a) : std::aligned_alloc(256, ((bytes ? bytes : 1) + 255) / 256 * 256);
  if (!q) return fail(cudaErrorMemoryAllocation);
  std::memset(q, 0xff, bytes);
  allocations[q] = a;
  if (!host) allocated += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t emu_free(void* p, bool host) {
  run_late_all(false);  // freeing waits for the device, as CUDA's does
  std::lock_guard<std::mutex> lock(mem_mu);
  auto it = allocations.find(p);
  if (it == allocations.end() || it->second.host != host) return fail(cudaErrorInvalidValue);
  if (!host) allocated -= it->second.bytes;
  if (it->second.base) munmap(it->second.base, it->second.mapped);
  else std::free(p);
  allocations.erase(it);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (const cudaError_t e = unsafe_call("cudaMalloc", false)) return e;
  return emu_alloc(p, bytes, false);
}
cudaError_t cudaFree(void* p) {
  if (const cudaError_t e = unsafe_call("cudaFree", false)) return e;
  return p ? emu_free(p, false) : cudaSuccess;
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int flags) {
  if (const cudaError_t e = unsafe_call("cudaHostAlloc", false)) return e;
  if (flags & ~(unsigned)(cudaHostAllocPortable | cudaHostAllocMapped)) return fail(cudaErrorInvalidValue);
  return emu_alloc(p, bytes, true);
}
cudaError_t cudaFreeHost(void* p) {
  if (const cudaError_t e = unsafe_call("cudaFreeHost", false)) return e;
  return p ? emu_free(p, true) : cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int flags) {
  if (flags != 0 || !device) return fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(mem_mu);
  auto it = allocations.find(host);
  if (it == allocations.end() || !it->second.host) return fail(cudaErrorInvalidValue);
  *device = host;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(mem_mu);
  *total_bytes = device_bytes();
  *free_bytes = *total_bytes - allocated;
  return cudaSuccess;
}

// The copies and fills themselves, shared by the calls that run them now and the graph nodes that run them later.
namespace {
cudaError_t copy_2d(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height) {
  for (size_t r = 0; r < height; r++)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
}  // namespace

// The synchronous copy and fill wait for the device (the legacy stream): no global-mode capture allows them.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (const cudaError_t e = unsafe_call("cudaMemcpy", false)) return e;
  run_late_all(true);  // on the legacy stream
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (const cudaError_t e = unsafe_call("cudaMemset", false)) return e;
  run_late_all(true);
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
// The asynchronous ones run now, or become a node of their stream's capture holding the addresses they were given.
namespace {
cudaError_t run_or_record(cudaStream_t s, cudaGraphNodeType type, const char* what,
                          const std::function<cudaError_t()>& op) {
  bool record = false;
  if (const cudaError_t e = emu::issue(s, what, record)) return e;
  if (record) {
    emu::record(s, type, what, op);
    return cudaSuccess;
  }
  if (emu::defers(s)) {
    emu::later(s, [op] { op(); });
    return cudaSuccess;
  }
  return op();
}
}  // namespace

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t s) {
  return run_or_record(s, cudaGraphNodeTypeMemcpy, "cudaMemcpyAsync", [=] {
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind, cudaStream_t s) {
  if (width > dpitch || width > spitch) {
    bool record = false;  // an invalid copy on a capturing stream breaks its capture
    if (const cudaError_t e = emu::issue(s, "cudaMemcpy2DAsync", record)) return e;
    return emu::fail_in_capture(s, cudaErrorInvalidValue, "cudaMemcpy2DAsync");
  }
  return run_or_record(s, cudaGraphNodeTypeMemcpy, "cudaMemcpy2DAsync",
                       [=] { return copy_2d(dst, dpitch, src, spitch, width, height); });
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  return run_or_record(s, cudaGraphNodeTypeMemset, "cudaMemsetAsync", [=] {
    if (bytes) std::memset(p, value, bytes);
    return cudaSuccess;
  });
}

// Waiting for the whole device includes the capturing stream: refused in every capture mode.
cudaError_t cudaDeviceSynchronize() {
  if (const cudaError_t e = unsafe_call("cudaDeviceSynchronize", true)) return e;
  run_late_all(false);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  if (!s || (flags & ~cudaStreamNonBlocking)) return fail(cudaErrorInvalidValue);
  *s = new CUstream_st{flags};
  std::lock_guard<std::mutex> lock(streams_mu);
  streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (is_legacy(s) || !known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  {
    // The emulator's choice: a capture is ended with cudaStreamEndCapture, not by destroying its stream.
    std::lock_guard<std::mutex> lock(capture_mu);
    if (captures(s)) return fail(cudaErrorIllegalState);
  }
  run_late(s);  // the stream's work still runs, as on a GPU
  {
    std::lock_guard<std::mutex> lock(late_mu);
    late_work.erase(s);
  }
  std::lock_guard<std::mutex> lock(streams_mu);
  streams.erase(s);
  delete s;
  return cudaSuccess;
}
// Waiting for the capturing stream is refused in every mode; for another stream, in a global-mode capture.
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (!known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  bool capturing;
  {
    std::lock_guard<std::mutex> lock(capture_mu);
    capturing = captures(s);
  }
  if (const cudaError_t e = unsafe_call("cudaStreamSynchronize", capturing)) return e;
  run_late(s);
  if (is_legacy(s)) run_late_all(true);
  return cudaSuccess;
}
// Waiting for an event recorded in the capture: a stream outside it joins it (a fork: its work becomes part of the
// graph, after what the event follows); the capturing stream waiting for a joined stream's event joins that stream
// back up to the event. Anything else waits for nothing: work here is done when it is issued.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
  if (!e || !known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  if (flags != 0) return fail(cudaErrorInvalidValue);
  bool in_capture, joins;
  {
    std::lock_guard<std::mutex> lock(capture_mu);
    in_capture = cap.stream && e->captured_by == cap.id;
    joins = in_capture && !captures(s);
  }
  if (!in_capture) {
    // Work here runs when issued, but for a late stream's: what the event follows must run before what s does next.
    if (e->late) {
      const cudaStream_t src = e->late;
      const uint64_t at = e->late_at;
      if (emu::defers(s)) emu::later(s, [src, at] { run_late(src, at); });
      else run_late(src, at);
    }
    return cudaSuccess;
  }
  if (joins) run_late(s);  // s joins the capture: its earlier work comes first
  std::lock_guard<std::mutex> lock(capture_mu);
  if (!cap.stream || e->captured_by != cap.id) return cudaSuccess;
  if (cap.invalidated) return fail(cudaErrorStreamCaptureInvalidated);
  if (is_legacy(s)) {
    invalidate("cudaStreamWaitEvent on the legacy stream during a stream capture");
    return fail(cudaErrorStreamCaptureImplicit);
  }
  if (s == cap.stream) {
    if (auto it = cap.joined.find(e->stream); it != cap.joined.end())
      it->second.joined_at = std::max(it->second.joined_at, e->ops);
  } else {
    cap.joined.emplace(s, Joined{});
  }
  std::vector<size_t>& f = cap.frontier[s];
  for (size_t n : e->after)
    if (std::find(f.begin(), f.end(), n) == f.end()) f.push_back(n);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  if (is_legacy(s)) return fail(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  if (!known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue);
  run_late(s);  // work issued before the capture is not part of it
  std::lock_guard<std::mutex> lock(capture_mu);
  if (cap.stream == s) return fail(cudaErrorIllegalState);
  if (cap.stream) {
    std::fprintf(stderr, "CUDA emulator: a second stream capture while one is in progress (one at a time here)\n");
    return fail(cudaErrorIllegalState);
  }
  cap.stream = s;
  cap.mode = mode;
  cap.thread = std::this_thread::get_id();
  cap.id = ++captures_begun;
  cap.invalidated = false;
  cap.reason.clear();
  cap.graph = std::make_unique<CUgraph_st>();
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  if (!known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(capture_mu);
  if (!cap.stream || cap.stream != s) {
    *graph = nullptr;
    return fail(cudaErrorIllegalState);  // s is not capturing
  }
  if (cap.mode != cudaStreamCaptureModeRelaxed && std::this_thread::get_id() != cap.thread)
    return fail(cudaErrorStreamCaptureWrongThread);  // the capture goes on
  bool unjoined = false;
  for (const auto& [stream, j] : cap.joined) unjoined = unjoined || j.joined_at < j.ops;
  if (unjoined) invalidate("a stream that joined the capture and was not joined back");
  const bool invalidated = cap.invalidated;
  if (invalidated) {
    // Said once per process: the first reason a capture broke is what one needs to fix it.
    static bool told = false;
    if (!told)
      std::fprintf(stderr, "CUDA emulator: stream capture invalidated by %s (said once)\n", cap.reason.c_str());
    told = true;
    *graph = nullptr;
  } else {
    *graph = cap.graph.release();
  }
  cap = Capture();
  if (unjoined) return fail(cudaErrorStreamCaptureUnjoined);
  return invalidated ? fail(cudaErrorStreamCaptureInvalidated) : cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  if (!status) return fail(cudaErrorInvalidValue);
  if (!known_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(capture_mu);
  *status = cudaStreamCaptureStatusNone;
  if (!cap.stream) return cudaSuccess;
  if (captures(s)) {
    *status = cap.invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
  }
  // Asking about the legacy stream asks about every blocking stream, a capturing one included.
  if (is_legacy(s) && !(cap.stream->flags & cudaStreamNonBlocking)) return fail(cudaErrorStreamCaptureImplicit);
  return cudaSuccess;
}

// ---- graphs ----
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  if (!exec || !graph || (flags & ~0xfull)) return fail(cudaErrorInvalidValue);  // CUDA 12's flags: bits 0-3
  auto* x = new CUgraphExec_st();
  for (const auto& node : graph->nodes) x->nodes.push_back({node->op, node->side, node->deps});
  *exec = x;
  return cudaSuccess;
}
namespace {
// A graph's nodes in an order its dependencies allow, stopping at the first error: capture order, or with
// TUNEFORGE_CUDA_EMU_BRANCHES=late the capturing stream's nodes before any side branch's that nothing waits for yet
// (a node that reads a branch's result without a join runs before the branch), with =early a side branch's nodes as
// soon as they may run (a branch that reads the capturing stream's work without a fork runs before that work).
cudaError_t run_ops(const std::vector<ExecNode>& nodes) {
  const Branches order = branches();
  if (order == Branches::IssueOrder) {
    for (const ExecNode& n : nodes)
      if (const cudaError_t e = n.op()) return fail(e);
    return cudaSuccess;
  }
  std::vector<size_t> waiting(nodes.size());
  std::vector<std::vector<size_t>> next(nodes.size());
  for (size_t i = 0; i < nodes.size(); i++) {
    waiting[i] = nodes[i].deps.size();
    for (size_t d : nodes[i].deps) next[d].push_back(i);
  }
  std::set<size_t> ready_main, ready_side;  // in capture order within each
  auto ready = [&](size_t i) { (nodes[i].side ? ready_side : ready_main).insert(i); };
  for (size_t i = 0; i < nodes.size(); i++)
    if (waiting[i] == 0) ready(i);
  const bool late = order == Branches::Late;
  while (!ready_main.empty() || !ready_side.empty()) {
    std::set<size_t>& from = (late ? ready_main.empty() : !ready_side.empty()) ? ready_side : ready_main;
    const size_t i = *from.begin();
    from.erase(from.begin());
    if (const cudaError_t e = nodes[i].op()) return fail(e);
    for (size_t j : next[i])
      if (--waiting[j] == 0) ready(j);
  }
  return cudaSuccess;
}
}  // namespace
// Runs the graph now (or records it as one node of a capture): its kernels with the arguments captured, reading
// device memory as it is now.
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return fail(cudaErrorInvalidValue);
  bool record = false;
  if (const cudaError_t e = emu::issue(s, "cudaGraphLaunch", record)) return e;
  if (record) {
    emu::record(s, cudaGraphNodeTypeGraph, "cudaGraphLaunch", [nodes = exec->nodes] { return run_ops(nodes); });
    return cudaSuccess;
  }
  if (emu::defers(s)) {
    emu::later(s, [nodes = exec->nodes] { run_ops(nodes); });
    return cudaSuccess;
  }
  return run_ops(exec->nodes);
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return fail(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* count) {
  if (!graph || !count) return fail(cudaErrorInvalidValue);
  const size_t n = graph->nodes.size();
  if (!nodes) {
    *count = n;
    return cudaSuccess;
  }
  // As CUDA: up to *count nodes, the slots past the last node set to null, *count = the nodes written.
  for (size_t i = 0; i < *count; i++) nodes[i] = i < n ? graph->nodes[i].get() : nullptr;
  *count = std::min(*count, n);
  return cudaSuccess;
}
cudaError_t cudaGraphGetEdges(cudaGraph_t graph, cudaGraphNode_t* from, cudaGraphNode_t* to,
                              cudaGraphEdgeData* edgeData, size_t* numEdges) {
  if (!graph || !numEdges || (!from != !to) || (edgeData && !from)) return fail(cudaErrorInvalidValue);
  std::vector<std::pair<cudaGraphNode_t, cudaGraphNode_t>> edges;
  for (const auto& node : graph->nodes)
    for (size_t d : node->deps) edges.push_back({graph->nodes[d].get(), node.get()});
  if (!from) {
    *numEdges = edges.size();
    return cudaSuccess;
  }
  // As CUDA: up to *numEdges edges, the slots past the last set to null, *numEdges = the edges written.
  for (size_t i = 0; i < *numEdges; i++) {
    from[i] = i < edges.size() ? edges[i].first : nullptr;
    to[i] = i < edges.size() ? edges[i].second : nullptr;
    if (edgeData) edgeData[i] = cudaGraphEdgeData{};  // stream capture here makes only default edges
  }
  *numEdges = std::min(*numEdges, edges.size());
  return cudaSuccess;
}
cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType* type) {
  if (!node || !type) return fail(cudaErrorInvalidValue);
  *type = node->type;
  return cudaSuccess;
}

// ---- events ----
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int flags) {
  if (flags & ~cudaEventDisableTiming) return fail(cudaErrorInvalidValue);
  return cudaEventCreate(e);
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  // CUDA frees an event once its pending record is reached; here the queued record holds a pointer to it
  if (e && e->late) run_late(e->late, e->late_at);
  delete e;
  return cudaSuccess;
}
// On a capturing stream the record is no node (as CUDA's without cudaEventRecordExternal): it marks the point of the
// stream's work that another stream may wait for (cudaStreamWaitEvent: a fork or a join).
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return fail(cudaErrorInvalidResourceHandle);
  bool record = false;
  if (const cudaError_t err = emu::issue(s, "cudaEventRecord", record)) return err;
  if (record) {
    std::lock_guard<std::mutex> lock(capture_mu);
    e->captured_by = cap.id;
    e->stream = s;
    e->ops = s == cap.stream ? 0 : cap.joined[s].ops;
    e->after = cap.frontier[s];
    e->late = nullptr;
    return cudaSuccess;
  }
  e->captured_by = 0;
  if (emu::defers(s)) {  // the record is reached when the stream's work before it has run
    emu::later(s, [e] { e->t = std::chrono::steady_clock::now(); });
    std::lock_guard<std::mutex> lock(late_mu);
    e->late = s;
    e->late_at = late_work[s].issued;
    return cudaSuccess;
  }
  e->late = nullptr;
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
// Waiting for an event the capture recorded would wait for the capture: refused in every mode.
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return fail(cudaErrorInvalidResourceHandle);
  bool captured;
  {
    std::lock_guard<std::mutex> lock(capture_mu);
    captured = cap.stream && e->captured_by == cap.id;
  }
  if (const cudaError_t err = unsafe_call("cudaEventSynchronize", captured)) return err;
  if (e->late) run_late(e->late, e->late_at);
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  *ms = std::chrono::duration<float, std::milli>(stop->t - start->t).count();
  return cudaSuccess;
}
