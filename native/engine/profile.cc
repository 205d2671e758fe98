#include "engine/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

#ifdef TUNEFORGE_CUDA
#include "cuda/bandwidth.h"
#endif

namespace tf {

namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
  int64_t calls = 0;
  double seconds = 0, flops = 0, bytes = 0;
};

// Engine calls come from one JS thread at a time, so plain globals are enough; the region is per thread because
// the CPU backend may run a model's pieces of work on its own threads (Backend::concurrently: only while not
// profiling, since the profiler's backend runs them in order on the caller).
std::map<std::string, Stat> g_stats;
thread_local const char* g_region = "other";
int g_depth = 0;
std::vector<ProfileReport> g_reports;  // kept for take_profile_reports()
int g_enabled = -1;                    // -1: not decided yet (read TUNEFORGE_PROFILE)

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Waits for the GPU's queue, so a host timer brackets exactly one kernel (CUDA launches return at once).
void device_sync(Device device) {
#ifdef TUNEFORGE_CUDA
  if (device == Device::CUDA) cuda::synchronize();
#else
  (void)device;
#endif
}

// Times one kernel call: the kernels are synchronous on the CPU; on CUDA the queue is drained before the start
// (earlier work, e.g. the allocator's memsets, counts as outside kernels) and after the call.
// The closing sync may report an asynchronous fault, so the destructor may throw, but never while the timed call
// is itself unwinding (a second exception in flight would std::terminate the whole Node process): then the
// kernel's own error wins and the sync's is dropped (the CUDA context is broken either way).
class Timed {
 public:
  Timed(Device device, const char* kernel, double flops, double bytes)
      : device_(device), kernel_(kernel), flops_(flops), bytes_(bytes), unwinding_(std::uncaught_exceptions()) {
    device_sync(device_);
    t0_ = Clock::now();
  }
  ~Timed() noexcept(false) {
    if (std::uncaught_exceptions() > unwinding_) {
      try {
        device_sync(device_);
      } catch (...) {
      }
      return;
    }
    device_sync(device_);
    Stat& s = g_stats[std::string(g_region) + "/" + kernel_];
    s.calls++;
    s.seconds += since(t0_);
    s.flops += flops_;
    s.bytes += bytes_;
  }

 private:
  Device device_;
  const char* kernel_;
  double flops_, bytes_;
  int unwinding_;  // exceptions in flight when the call began
  Clock::time_point t0_;
};

// The bytes a call's interface reads and writes, each tensor once (what no implementation can avoid moving): with the
// call's time, the bandwidth it reached, next to the device's copy bandwidth in bench:gpu. Integer arrays, the rotary
// table and per-row statistics are small beside the rest and counted only where a kernel is all about them.
double total(const int64_t* ns, int count) {
  double n = 0;
  for (int i = 0; i < count; i++) n += (double)ns[i];
  return n;
}

// What a reader adds for LoraUps over N rows of its projections' outputs (widths outs[k]): per projection with LoRA,
// 2 r multiply-adds per value, and xa and B read; each bias read.
template <size_t K>
double ups_flops(const LoraUps& ups, int N, const int (&outs)[K]) {
  double f = 0;
  for (size_t k = 0; k < K; k++)
    if (ups.p[k].xa) f += 2.0 * N * outs[k] * ups.r;
  return f;
}
template <size_t K>
double ups_bytes(const LoraUps& ups, int N, const int (&outs)[K]) {
  double b = 0;
  for (size_t k = 0; k < K; k++) {
    if (ups.p[k].xa) b += 4.0 * ups.r * ((double)N + outs[k]);
    if (ups.p[k].bias) b += 4.0 * outs[k];
  }
  return b;
}

// Attention: q, the keys and values it can see (a decoding step's cache up to its slot), lse; in backward also the
// output, its gradient and dq, dk, dv (fp32). The output of a forward is counted by the caller (fp32 or bf16).
double attention_bytes(const AttnDims& d, double q_bytes, double kv_bytes, bool backward) {
  const double qn = (double)d.B * d.Tq * d.H * d.hd;
  const double kn = (double)d.B * std::min(d.Tk, d.q_off + d.Tq) * d.KV * d.hd;
  double bytes = q_bytes * qn + 2.0 * kv_bytes * kn + 4.0 * d.B * d.Tq * d.H;
  if (backward) bytes += (q_bytes + 4.0 + 4.0) * qn + 8.0 * kn;  // out and dout read, dq written; dk, dv written
  return bytes;
}

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : in_(std::move(inner)), dev_(in_->device()) {}
  Device device() const override { return in_->device(); }
  void set_threads(int threads) override { in_->set_threads(threads); }
  void set_weights_dtype(DType dt) override { in_->set_weights_dtype(dt); }
  std::vector<std::string> attention_paths() const override { return in_->attention_paths(); }
  void set_attention_path(const std::string& path) override { in_->set_attention_path(path); }
  void matmul(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc) override {
    Timed t(dev_, "matmul", 2.0 * M * N * K, 4.0 * ((double)M * K + (double)K * N + (double)M * N * (beta != 0 ? 2 : 1)));
    in_->matmul(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void matmul_bf16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                    float beta, float* C, int ldc) override {
    Timed t(dev_, "matmul_bf16w", 2.0 * M * N * K, 4.0 * M * K + 2.0 * N * K + 4.0 * M * N * (beta != 0 ? 2 : 1));
    in_->matmul_bf16w(tw, M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  }
  void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    Timed t(dev_, "embedding_fwd_bf16", 0, 6.0 * N * C + 4.0 * N);
    in_->embedding_fwd_bf16(table, ids, N, C, out);
  }
  void widen_bf16(const uint16_t* x, float* y, int64_t n) override {
    Timed t(dev_, "widen_bf16", 0, 6.0 * n);
    in_->widen_bf16(x, y, n);
  }
  void matmul_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                   int ldb, float beta, float* C, uint16_t* C16, int ldc) override {
    Timed t(dev_, "matmul_bf16", 2.0 * M * N * K,
            2.0 * M * K + 2.0 * N * K + (C16 ? 2.0 : 4.0) * M * N * (beta != 0 ? 2 : 1));
    in_->matmul_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, C16, ldc);
  }
  void matmul_f16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                   float beta, float* C, int ldc) override {
    Timed t(dev_, "matmul_f16w", 2.0 * M * N * K, 4.0 * M * K + 2.0 * N * K + 4.0 * M * N * (beta != 0 ? 2 : 1));
    in_->matmul_f16w(tw, M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  }
  void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    Timed t(dev_, "embedding_fwd_f16", 0, 6.0 * N * C + 4.0 * N);
    in_->embedding_fwd_f16(table, ids, N, C, out);
  }
  void widen_f16(const uint16_t* x, float* y, int64_t n) override {
    Timed t(dev_, "widen_f16", 0, 6.0 * n);
    in_->widen_f16(x, y, n);
  }
  void rmsnorm_fwd_bf16(const float* x, const float* w, int N, int C, float eps, uint16_t* out, float* rstd) override {
    Timed t(dev_, "rmsnorm_fwd_bf16", 0, 6.0 * N * C + 4.0 * (N + C));
    in_->rmsnorm_fwd_bf16(x, w, N, C, eps, out, rstd);
  }
  void swiglu_fwd_bf16(const float* g, const float* u, int64_t n, uint16_t* out, uint16_t* g16,
                       uint16_t* u16) override {
    Timed t(dev_, "swiglu_fwd_bf16", 0, (10.0 + (g16 ? 2 : 0) + (u16 ? 2 : 0)) * n);
    in_->swiglu_fwd_bf16(g, u, n, out, g16, u16);
  }
  void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs, int N,
                    int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                    const QkCopies& copies) override {
    // q and k read (fp32, or bf16 from the q_pre, k_pre copies) and written (fp32 where asked, bf16 copies)
    const double qn = (double)N * H * hd, kn = (double)N * KV * hd;
    const bool pre_in = copies.pre_is_input;
    const double copied = (copies.q_pre && !pre_in ? qn : 0) + (copies.k_pre && !pre_in ? kn : 0) +
                          (copies.q ? qn : 0) + (copies.k ? kn : 0);
    const double written = (q ? qn : 0) + (k ? kn : 0);
    Timed t(dev_, "qk_norm_rope", 0, (pre_in ? 2.0 : 4.0) * (qn + kn) + 4.0 * written + 2.0 * copied + 4.0 * N * hd);
    in_->qk_norm_rope(q_in, k_in, q_w, k_w, cs, N, H, KV, hd, eps, q, k, rstd_q, rstd_k, copies);
  }
  void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum, float* out,
                   uint16_t* out16, float* rstd, const LoraUps& ups) override {
    const int outs[] = {C};
    Timed t(dev_, "add_rmsnorm", ups_flops(ups, N, outs),
            (12.0 + (out16 ? 2 : 4)) * N * C + 4.0 * (N + C) + ups_bytes(ups, N, outs));
    in_->add_rmsnorm(a, b, w, N, C, eps, sum, out, out16, rstd, ups);
  }
  void swiglu_fwd_h(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* out) override {
    Timed t(dev_, "swiglu_fwd_h", 0, 6.0 * n);
    in_->swiglu_fwd_h(g, u, n, out);
  }
  void swiglu_bwd_h(const uint16_t* g, const uint16_t* u, const float* dout, int64_t n, uint16_t* dg,
                    uint16_t* du) override {
    Timed t(dev_, "swiglu_bwd_h", 0, 12.0 * n);
    in_->swiglu_bwd_h(g, u, dout, n, dg, du);
  }
  void attention_bwd_h(const AttnDims& d, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                       const int32_t* key_valid, const int32_t* seg, const uint16_t* out, const float* lse,
                       const float* dout, float* dq, float* dk, float* dv, float* scratch) override {
    Timed t(dev_, "attention_bwd_h", 0, attention_bytes(d, 2, 2, true));
    in_->attention_bwd_h(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch);
  }
  void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                        const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                        const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre,
                        float* dk_pre, float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16) override {
    const double rows = (double)N * (H + KV) * hd;
    // dq, dk read; the rotated ones (no norm) or the norm's inputs read and its results written, in fp32 or bf16
    const double result = dq16 ? 2.0 : 4.0;
    const double rest = q_w ? (q_pre16 ? 2.0 : 4.0) + result : result;
    Timed t(dev_, "qk_norm_rope_bwd", 0, (4.0 + rest) * rows + 4.0 * N * hd);
    in_->qk_norm_rope_bwd(dq, dk, q_pre, k_pre, q_pre16, k_pre16, q_w, k_w, rstd_q, rstd_k, cs, N, H, KV, hd, dq_pre,
                          dk_pre, dq_w, dk_w, dq16, dk16);
  }
  void narrow_bf16_many(const NarrowJobs& jobs) override {
    int64_t n = 0;
    for (int k = 0; k < jobs.count; k++) n += jobs.n[k];
    Timed t(dev_, "narrow_bf16_many", 0, 6.0 * n);
    in_->narrow_bf16_many(jobs);
  }
  void narrow_bf16(const float* x, uint16_t* y, int64_t n) override {
    Timed t(dev_, "narrow_bf16", 0, 6.0 * n);
    in_->narrow_bf16(x, y, n);
  }
  void zero(float* x, int64_t n) override {
    Timed t(dev_, "zero", 0, 4.0 * n);
    in_->zero(x, n);
  }
  void zero_many(float* const* xs, const int64_t* ns, int count) override {
    double n = 0;
    for (int i = 0; i < count; i++) n += (double)ns[i];
    Timed t(dev_, "zero_many", 0, 4.0 * n);
    in_->zero_many(xs, ns, count);
  }
  void copy(float* dst, const float* src, int64_t n) override {
    Timed t(dev_, "copy", 0, 8.0 * n);
    in_->copy(dst, src, n);
  }
  void add(float* y, const float* x, int64_t n) override {
    Timed t(dev_, "add", 0, 12.0 * n);
    in_->add(y, x, n);
  }
  void add_out(float* out, const float* a, const float* b, int64_t n) override {
    Timed t(dev_, "add_out", 0, 12.0 * n);
    in_->add_out(out, a, b, n);
  }
  void scale(float* x, float s, int64_t n) override {
    Timed t(dev_, "scale", 0, 8.0 * n);
    in_->scale(x, s, n);
  }
  void mul(float* y, const float* x, int64_t n) override {
    Timed t(dev_, "mul", 0, 12.0 * n);
    in_->mul(y, x, n);
  }
  void add_bias(float* y, const float* bias, int N, int C) override {
    Timed t(dev_, "add_bias", 0, 8.0 * N * C + 4.0 * C);
    in_->add_bias(y, bias, N, C);
  }
  void bias_grad(float* gb, const float* dy, int N, int C) override {
    Timed t(dev_, "bias_grad", 0, 4.0 * N * C + 8.0 * C);
    in_->bias_grad(gb, dy, N, C);
  }
  double sum_squares(const float* x, int64_t n) override {
    Timed t(dev_, "sum_squares", 0, 4.0 * n);
    return in_->sum_squares(x, n);
  }
  double sum_squares_many(const float* const* xs, const int64_t* ns, int count) override {
    Timed t(dev_, "sum_squares_many", 0, 4.0 * total(ns, count));
    return in_->sum_squares_many(xs, ns, count);
  }
  void argmax_rows(const float* x, int N, int V, int32_t* out) override {
    Timed t(dev_, "argmax_rows", 0, 4.0 * N * V + 4.0 * N);
    in_->argmax_rows(x, N, V, out);
  }
  void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) override {
    Timed t(dev_, "embedding_fwd", 0, 8.0 * N * C + 4.0 * N);
    in_->embedding_fwd(table, ids, N, C, out);
  }
  void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src) override {
    Timed t(dev_, "scatter_add_rows", 0, 12.0 * N * C + 4.0 * N);
    in_->scatter_add_rows(dst, rows, N, C, src);
  }
  void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) override {
    Timed t(dev_, "embedding_bwd", 0, 12.0 * N * C + 4.0 * N);
    in_->embedding_bwd(table_grad, ids, N, C, d);
  }
  void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd) override {
    Timed t(dev_, "rmsnorm_fwd", 0, 8.0 * N * C + 4.0 * (N + C));
    in_->rmsnorm_fwd(x, w, N, C, eps, out, rstd);
  }
  void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                   bool accumulate_dx, float* dw, uint16_t* dx16) override {
    Timed t(dev_, "rmsnorm_bwd", 0,
            (accumulate_dx ? 16.0 : 12.0) * N * C + 4.0 * (N + C) + (dw ? 8.0 * C : 0) + (dx16 ? 2.0 * N * C : 0));
    in_->rmsnorm_bwd(x, w, rstd, dy, N, C, dx, accumulate_dx, dw, dx16);
  }
  void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) override {
    Timed t(dev_, "rope_table", 0, 4.0 * N + 4.0 * N * hd);
    in_->rope_table(pos, inv_freq, N, hd, cs);
  }
  void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) override {
    Timed t(dev_, "rope", 0, 8.0 * N * heads * hd + 4.0 * N * hd);
    in_->rope(x, cs, N, heads, hd, inverse);
  }
  void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, float* out, float* lse, uint16_t* out16) override {
    Timed t(dev_, "attention_fwd", 0, attention_bytes(d, 4, 4, false) + (out16 ? 2.0 : 4.0) * d.B * d.Tq * d.H * d.hd);
    in_->attention_fwd(d, q, k, v, key_valid, seg, out, lse, out16);
  }
  void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                     float* dv, float* scratch) override {
    Timed t(dev_, "attention_bwd", 0, attention_bytes(d, 4, 4, true));
    in_->attention_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch);
  }
  void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) override {
    Timed t(dev_, "swiglu_fwd", 0, 12.0 * n);
    in_->swiglu_fwd(g, u, n, out);
  }
  void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) override {
    Timed t(dev_, "swiglu_bwd", 0, 20.0 * n);
    in_->swiglu_bwd(g, u, dout, n, dg, du);
  }
  double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    Timed t(dev_, "cross_entropy", 0, 8.0 * N * V + 4.0 * N);
    return in_->cross_entropy(logits, targets, N, V, grad_scale);
  }
  void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) override {
    Timed t(dev_, "adamw", 0, 28.0 * n);
    in_->adamw(p, g, m, v, n, h);
  }
  void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs, const int64_t* ns,
                  int count, const AdamWHyper& h) override {
    Timed t(dev_, "adamw_many", 0, 28.0 * total(ns, count));
    in_->adamw_many(ps, gs, ms, vs, ns, count, h);
  }
  void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) override {
    Timed t(dev_, "dropout", 0, (mask ? 12.0 : 8.0) * n);
    in_->dropout(x, mask, x_out, n, p, seed);
  }
  void lora_down(const float* x, const uint16_t* x16, int N, int in, const float* A, int r, float p, uint64_t seed,
                 float* xa) override {
    Timed t(dev_, "lora_down", 2.0 * N * in * r, (x16 ? 2.0 : 4.0) * N * in + 4.0 * r * in + 4.0 * N * r);
    in_->lora_down(x, x16, N, in, A, r, p, seed, xa);
  }
  void lora_down_grad(const float* x, const uint16_t* x16, int N, int in, const float* dxa, int r, float p,
                      uint64_t seed, float* gA) override {
    Timed t(dev_, "lora_down_grad", 2.0 * N * in * r, (x16 ? 2.0 : 4.0) * N * in + 4.0 * N * r + 8.0 * r * in);
    in_->lora_down_grad(x, x16, N, in, dxa, r, p, seed, gA);
  }
  void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count) override {
    Timed t(dev_, "lora_dx", 2.0 * N * in * r * count, 8.0 * N * in + count * 4.0 * ((double)r * in + (double)N * r));
    in_->lora_dx(dx, N, in, r, p, terms, count);
  }
  void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A, int count,
                       float* xa) override {
    // x read once, each A once, xa written
    Timed t(dev_, "lora_apply_down", 2.0 * N * in * r * count,
            (x16 ? 2.0 : 4.0) * N * in + count * 4.0 * ((double)r * in + (double)N * r));
    in_->lora_apply_down(x, x16, N, in, r, A, count, xa);
  }
  bool fused_lora() const override { return in_->fused_lora(); }
  void lora_up(float* y, uint16_t* y16, int N, int out, const float* xa, const float* B, int r, float scale,
               const float* bias, bool accumulate) override {
    const double ys = (double)N * out;
    Timed t(dev_, "lora_up", 2.0 * ys * r,
            (y16 ? 2.0 : 4.0) * (accumulate ? 2.0 : 1.0) * ys + 4.0 * r * ((double)N + out) + (bias ? 4.0 * out : 0));
    in_->lora_up(y, y16, N, out, xa, B, r, scale, bias, accumulate);
  }
  void cache_write(float* dk, float* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                   const int32_t* off_dev, int C) override {
    Timed t(dev_, "cache_write", 0, 16.0 * B * Tq * C);
    in_->cache_write(dk, dv, k, v, B, Tq, Tk, off, off_dev, C);
  }
  void cache_write_bf16(uint16_t* dk, uint16_t* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                        const int32_t* off_dev, int C) override {
    Timed t(dev_, "cache_write_bf16", 0, 12.0 * B * Tq * C);
    in_->cache_write_bf16(dk, dv, k, v, B, Tq, Tk, off, off_dev, C);
  }
  void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B, int Tq, int H,
                    int KV, int hd, float eps, float* q, float* kc, float* vc, uint16_t* kc16, uint16_t* vc16, int Tk,
                    int off, const int32_t* off_dev, const LoraUps& ups) override {
    // q, k, v read in fp32; q written in fp32, k and v into the cache (fp32 or bf16)
    const int N = B * Tq;
    const double qs = (double)N * H * hd, kvs = (double)N * KV * hd;
    const int outs[] = {H * hd, KV * hd, KV * hd};
    Timed t(dev_, "qkv_to_cache", ups_flops(ups, N, outs),
            8.0 * qs + (4.0 + (kc16 ? 2.0 : 4.0)) * 2 * kvs + ups_bytes(ups, N, outs));
    in_->qkv_to_cache(qkv, ld, q_w, k_w, cs, B, Tq, H, KV, hd, eps, q, kc, vc, kc16, vc16, Tk, off, off_dev, ups);
  }
  void swiglu_fwd_stacked(const float* gu, int N, int inter, float* out, uint16_t* out16, const LoraUps& ups) override {
    const int outs[] = {inter, inter};
    Timed t(dev_, "swiglu_fwd_stacked", ups_flops(ups, N, outs),
            (out16 ? 10.0 : 12.0) * N * inter + ups_bytes(ups, N, outs));
    in_->swiglu_fwd_stacked(gu, N, inter, out, out16, ups);
  }
  void attention_fwd_kv16(const AttnDims& d, const float* q, const uint16_t* k, const uint16_t* v,
                          const int32_t* key_valid, const int32_t* seg, float* out, float* lse,
                          uint16_t* out16) override {
    Timed t(dev_, "attention_fwd_kv16", 0, attention_bytes(d, 4, 2, false) + (out16 ? 2.0 : 4.0) * d.B * d.Tq * d.H * d.hd);
    in_->attention_fwd_kv16(d, q, k, v, key_valid, seg, out, lse, out16);
  }

 private:
  std::unique_ptr<Backend> in_;
  Device dev_;
};

void print_report(const char* name, double total) {
  std::vector<std::pair<std::string, Stat>> rows(g_stats.begin(), g_stats.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.seconds > b.second.seconds; });
  ProfileReport rep;
  rep.call = name;
  rep.seconds = total;
  for (auto& [key, st] : rows) {
    const size_t slash = key.find('/');
    rep.rows.push_back({key.substr(0, slash), key.substr(slash + 1), st.calls, st.seconds, st.flops, st.bytes});
  }
  if (g_reports.size() >= 64) g_reports.erase(g_reports.begin());
  g_reports.push_back(std::move(rep));
  double kernels = 0;
  for (auto& r : rows) kernels += r.second.seconds;
  std::fprintf(stderr, "[tuneforge profile] %s: %.2f ms, kernels %.2f ms, outside kernels %.2f ms\n", name,
               total * 1e3, kernels * 1e3, (total - kernels) * 1e3);
  for (auto& [key, s] : rows) {
    std::fprintf(stderr, "  %-28s %6lld calls %10.3f ms %5.1f%%", key.c_str(), (long long)s.calls, s.seconds * 1e3,
                 total > 0 ? 100 * s.seconds / total : 0.0);
    if (s.flops > 0) std::fprintf(stderr, " %8.1f GFLOP/s", s.flops / s.seconds / 1e9);
    if (s.bytes > 0) std::fprintf(stderr, " %8.1f GB/s", s.bytes / s.seconds / 1e9);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace

bool profiling_enabled() {
  if (g_enabled < 0) {
    const char* v = std::getenv("TUNEFORGE_PROFILE");
    g_enabled = v && *v && std::strcmp(v, "0") != 0;
  }
  return g_enabled == 1;
}

void set_profiling(bool on) { g_enabled = on ? 1 : 0; }

std::vector<ProfileReport> take_profile_reports() {
  std::vector<ProfileReport> out;
  out.swap(g_reports);
  return out;
}

std::unique_ptr<Backend> profiled(std::unique_ptr<Backend> inner) {
  if (!profiling_enabled()) return inner;
  return std::make_unique<ProfilingBackend>(std::move(inner));
}

ProfileRegion::ProfileRegion(const char* name) : prev_(g_region) { g_region = name; }
ProfileRegion::~ProfileRegion() { g_region = prev_; }

ProfileCall::ProfileCall(const char* name) : name_(name) {
  on_ = profiling_enabled();
  if (!on_) return;
  outermost_ = g_depth++ == 0;
  start_ = Clock::now();
}

ProfileCall::~ProfileCall() {
  if (!on_) return;
  g_depth--;
  if (!outermost_) return;
  print_report(name_, since(start_));
  g_stats.clear();
}

}  // namespace tf
