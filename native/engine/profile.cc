#include "engine/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tf {

namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
  int64_t calls = 0;
  double seconds = 0, flops = 0;
};

// Engine calls come from one JS thread at a time, so plain globals are enough.
std::map<std::string, Stat> g_stats;
const char* g_region = "other";
int g_depth = 0;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Times one kernel call: the kernels are synchronous on the CPU (a CUDA backend would need a sync here).
class Timed {
 public:
  Timed(const char* kernel, double flops = 0) : kernel_(kernel), flops_(flops), t0_(Clock::now()) {}
  ~Timed() {
    Stat& s = g_stats[std::string(g_region) + "/" + kernel_];
    s.calls++;
    s.seconds += since(t0_);
    s.flops += flops_;
  }

 private:
  const char* kernel_;
  double flops_;
  Clock::time_point t0_;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)) {}
  Device device() const override { return in_->device(); }
  void set_threads(int threads) override { in_->set_threads(threads); }
  void matmul(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc) override {
    Timed t("matmul", 2.0 * M * N * K);
    in_->matmul(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void zero(float* x, int64_t n) override {
    Timed t("zero");
    in_->zero(x, n);
  }
  void copy(float* dst, const float* src, int64_t n) override {
    Timed t("copy");
    in_->copy(dst, src, n);
  }
  void add(float* y, const float* x, int64_t n) override {
    Timed t("add");
    in_->add(y, x, n);
  }
  void scale(float* x, float s, int64_t n) override {
    Timed t("scale");
    in_->scale(x, s, n);
  }
  void mul(float* y, const float* x, int64_t n) override {
    Timed t("mul");
    in_->mul(y, x, n);
  }
  void add_bias(float* y, const float* bias, int N, int C) override {
    Timed t("add_bias");
    in_->add_bias(y, bias, N, C);
  }
  void bias_grad(float* gb, const float* dy, int N, int C) override {
    Timed t("bias_grad");
    in_->bias_grad(gb, dy, N, C);
  }
  double sum_squares(const float* x, int64_t n) override {
    Timed t("sum_squares");
    return in_->sum_squares(x, n);
  }
  void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) override {
    Timed t("embedding_fwd");
    in_->embedding_fwd(table, ids, N, C, out);
  }
  void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) override {
    Timed t("embedding_bwd");
    in_->embedding_bwd(table_grad, ids, N, C, d);
  }
  void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd) override {
    Timed t("rmsnorm_fwd");
    in_->rmsnorm_fwd(x, w, N, C, eps, out, rstd);
  }
  void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                   bool accumulate_dx, float* dw) override {
    Timed t("rmsnorm_bwd");
    in_->rmsnorm_bwd(x, w, rstd, dy, N, C, dx, accumulate_dx, dw);
  }
  void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) override {
    Timed t("rope_table");
    in_->rope_table(pos, inv_freq, N, hd, cs);
  }
  void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) override {
    Timed t("rope");
    in_->rope(x, cs, N, heads, hd, inverse);
  }
  void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, float* out, float* lse) override {
    Timed t("attention_fwd");
    in_->attention_fwd(d, q, k, v, key_valid, seg, out, lse);
  }
  void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                     float* dv, float* scratch) override {
    Timed t("attention_bwd");
    in_->attention_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch);
  }
  void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) override {
    Timed t("swiglu_fwd");
    in_->swiglu_fwd(g, u, n, out);
  }
  void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) override {
    Timed t("swiglu_bwd");
    in_->swiglu_bwd(g, u, dout, n, dg, du);
  }
  double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    Timed t("cross_entropy");
    return in_->cross_entropy(logits, targets, N, V, grad_scale);
  }
  void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) override {
    Timed t("adamw");
    in_->adamw(p, g, m, v, n, h);
  }
  void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) override {
    Timed t("dropout");
    in_->dropout(x, mask, x_out, n, p, seed);
  }
  void cache_write(float* dst, const float* src, int B, int Tq, int Tk, int off, int C) override {
    Timed t("cache_write");
    in_->cache_write(dst, src, B, Tq, Tk, off, C);
  }

 private:
  std::unique_ptr<Backend> in_;
};

void print_report(const char* name, double total) {
  std::vector<std::pair<std::string, Stat>> rows(g_stats.begin(), g_stats.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
  double kernels = 0;
  for (auto& r : rows) kernels += r.second.seconds;
  std::fprintf(stderr, "[tuneforge profile] %s: %.2f ms, kernels %.2f ms, outside kernels %.2f ms\n", name,
               total * 1e3, kernels * 1e3, (total - kernels) * 1e3);
  for (auto& [key, s] : rows) {
    std::fprintf(stderr, "  %-28s %6lld calls %10.3f ms %5.1f%%", key.c_str(), (long long)s.calls, s.seconds * 1e3,
                 total > 0 ? 100 * s.seconds / total : 0.0);
    if (s.flops > 0) std::fprintf(stderr, " %8.1f GFLOP/s", s.flops / s.seconds / 1e9);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace

bool profiling_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("TUNEFORGE_PROFILE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

std::unique_ptr<Backend> profiled(std::unique_ptr<Backend> inner) {
  if (!profiling_enabled()) return inner;
  return std::make_unique<ProfilingBackend>(std::move(inner));
}

ProfileRegion::ProfileRegion(const char* name) : prev_(g_region) { g_region = name; }
ProfileRegion::~ProfileRegion() { g_region = prev_; }

ProfileCall::ProfileCall(const char* name) : name_(name) {
  if (!profiling_enabled()) return;
  outermost_ = g_depth++ == 0;
  start_ = Clock::now();
}

ProfileCall::~ProfileCall() {
  if (!profiling_enabled()) return;
  g_depth--;
  if (!outermost_) return;
  print_report(name_, since(start_));
  g_stats.clear();
}

}  // namespace tf
