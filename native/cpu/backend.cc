// The CPU backend: forwards the Backend interface to the kernels in this folder and to tf::cpu::sgemm.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "engine/bf16.h"

namespace tf {

namespace {

// Rows of a half table (bf16 or fp16 bits, widened by `widen`), and a whole half buffer, to fp32.
template <float (*widen)(uint16_t)>
void gather_half(const uint16_t* table, const int32_t* ids, int N, int C, float* out) {
  cpu::parallel_for(N, (int64_t)N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const uint16_t* row = table + (int64_t)ids[i] * C;
      float* o = out + i * C;
      for (int c = 0; c < C; c++) o[c] = widen(row[c]);
    }
  });
}
template <float (*widen)(uint16_t)>
void widen_half(const uint16_t* x, float* y, int64_t n) {
  cpu::parallel_for(n, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) y[i] = widen(x[i]);
  });
}

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  void set_threads(int threads) override {
    if (threads > 0) omp_set_num_threads(threads);
  }
  void concurrently(const std::vector<Piece>& pieces) override {
    const int threads = cpu::SpinPool::threads();
    // A piece with a product big enough for every thread runs alone (its GEMMs split across the threads).
    std::vector<const Piece*> small;
    for (const Piece& p : pieces) {
      if (threads < 2 || p.macs >= threads * cpu::kGemmMinMacsPerThread)
        p.run();
      else
        small.push_back(&p);
    }
    if (small.size() < 2) {
      for (const Piece* p : small) p->run();
      return;
    }
    // One thread per piece (SpinPool::threads() is 1 inside a job): which thread takes which piece never shows in
    // the results.
    std::atomic<size_t> next{0};
    cpu::SpinPool::instance().run(std::min(threads, (int)small.size()), [&](int, int) {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < small.size();) small[i]->run();
    });
  }
  void matmul(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
              int ldb, float beta, float* C, int ldc) override {
    if (M == 0 || N == 0) return;
    cpu::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void matmul_bf16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                    float beta, float* C, int ldc) override {
    if (M == 0 || N == 0) return;
    cpu::gemm_bf16b(tw, M, N, K, alpha, A, lda, W, ldw, beta, C, ldc);
  }
  // The GPU's form (both operands in bf16); here the kernel check's reference: op(A) widened into [M, K], then
  // gemm_bf16b.
  void matmul_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                   int ldb, float beta, float* C, uint16_t* C16, int ldc) override {
    if (M == 0 || N == 0) return;
    std::vector<float> a((size_t)M * K);
    for (int i = 0; i < M; i++)
      for (int k = 0; k < K; k++)
        a[(size_t)i * K + k] = bf16_to_f32(ta ? A[(int64_t)k * lda + i] : A[(int64_t)i * lda + k]);
    if (!C16) return cpu::gemm_bf16b(tb, M, N, K, alpha, a.data(), K, B, ldb, beta, C, ldc);
    std::vector<float> c((size_t)M * N);  // C16 widened, multiplied into, rounded back
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) c[(size_t)i * N + j] = bf16_to_f32(C16[(int64_t)i * ldc + j]);
    cpu::gemm_bf16b(tb, M, N, K, alpha, a.data(), K, B, ldb, beta, c.data(), N);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C16[(int64_t)i * ldc + j] = f32_to_bf16(c[(size_t)i * N + j]);
  }
  void embedding_fwd_bf16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    gather_half<bf16_to_f32>(table, ids, N, C, out);
  }
  void widen_bf16(const uint16_t* x, float* y, int64_t n) override { widen_half<bf16_to_f32>(x, y, n); }
  // fp16 weights are a GPU mode (the Model refuses them on the CPU): these are the kernel check's reference, made
  // plainly (the weight widened whole, then the fp32 product).
  void matmul_f16w(bool tw, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* W, int ldw,
                   float beta, float* C, int ldc) override {
    if (M == 0 || N == 0) return;
    const int64_t rows = tw ? N : K;
    std::vector<float> w((size_t)rows * ldw);
    widen_f16(W, w.data(), (int64_t)w.size());
    cpu::sgemm(false, tw, M, N, K, alpha, A, lda, w.data(), ldw, beta, C, ldc);
  }
  void embedding_fwd_f16(const uint16_t* table, const int32_t* ids, int N, int C, float* out) override {
    gather_half<f16_to_f32>(table, ids, N, C, out);
  }
  void widen_f16(const uint16_t* x, float* y, int64_t n) override { widen_half<f16_to_f32>(x, y, n); }
  void narrow_bf16_many(const NarrowJobs& jobs) override {
    for (int k = 0; k < jobs.count; k++) narrow_bf16(jobs.x[k], jobs.y[k], jobs.n[k]);
  }
  void narrow_bf16(const float* x, uint16_t* y, int64_t n) override {
    cpu::parallel_for(n, n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) y[i] = f32_to_bf16(x[i]);
    });
  }
  void zero(float* x, int64_t n) override { cpu::zero(x, n); }
  void zero_many(float* const* xs, const int64_t* ns, int count) override {
    for (int i = 0; i < count; i++) cpu::zero(xs[i], ns[i]);
  }
  void copy(float* dst, const float* src, int64_t n) override { cpu::copy(dst, src, n); }
  void add(float* y, const float* x, int64_t n) override { cpu::add(y, x, n); }
  void add_out(float* out, const float* a, const float* b, int64_t n) override { cpu::add_out(out, a, b, n); }
  void scale(float* x, float s, int64_t n) override { cpu::scale(x, s, n); }
  void mul(float* y, const float* x, int64_t n) override { cpu::mul(y, x, n); }
  void add_bias(float* y, const float* bias, int N, int C) override { cpu::add_bias(y, bias, N, C); }
  void bias_grad(float* gb, const float* dy, int N, int C) override { cpu::bias_grad(gb, dy, N, C); }
  double sum_squares(const float* x, int64_t n) override { return cpu::sum_squares(x, n); }
  double sum_squares_many(const float* const* xs, const int64_t* ns, int count) override {
    double ss = 0;  // the order grad_norm always used: bit-exact resume depends on it
    for (int i = 0; i < count; i++) ss += cpu::sum_squares(xs[i], ns[i]);
    return ss;
  }
  void argmax_rows(const float* x, int N, int V, int32_t* out) override {
    // std::max_element exactly as pick_token's greedy choice (first maximum; its NaN behaviour included).
    cpu::parallel_for(N, (int64_t)N * V, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const float* row = x + i * V;
        out[i] = V > 0 ? (int32_t)(std::max_element(row, row + V) - row) : 0;
      }
    });
  }
  void embedding_fwd(const float* table, const int32_t* ids, int N, int C, float* out) override {
    cpu::embedding_fwd(table, ids, N, C, out);
  }
  void embedding_bwd(float* table_grad, const int32_t* ids, int N, int C, const float* d) override {
    cpu::embedding_bwd(table_grad, ids, N, C, d);
  }
  void scatter_add_rows(float* dst, const int32_t* rows, int N, int C, const float* src) override {
    cpu::embedding_bwd(dst, rows, N, C, src);  // right for distinct rows too, and already parallel over columns
  }
  void rmsnorm_fwd(const float* x, const float* w, int N, int C, float eps, float* out, float* rstd) override {
    cpu::rmsnorm_fwd(x, w, N, C, eps, out, rstd);
  }
  void rmsnorm_bwd(const float* x, const float* w, const float* rstd, const float* dy, int N, int C, float* dx,
                   bool accumulate_dx, float* dw, uint16_t* dx16) override {
    cpu::rmsnorm_bwd(x, w, rstd, dy, N, C, dx, accumulate_dx, dw);
    if (dx16) narrow_bf16(dx, dx16, (int64_t)N * C);
  }
  void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) override {
    cpu::rope_table(pos, inv_freq, N, hd, cs);
  }
  void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse) override {
    cpu::rope(x, cs, N, heads, hd, inverse);
  }
  void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, float* out, float* lse, uint16_t* out16) override {
    // Device memory is host memory here: a slot given as a device int is read now.
    AttnDims dd = d;
    if (d.q_off_dev) dd.q_off = *d.q_off_dev;
    const int64_t n = (int64_t)d.B * d.Tq * d.H * d.hd;
    std::vector<float> tmp(out16 ? n : 0);
    cpu::attention_fwd(dd, q, k, v, key_valid, seg, out16 ? tmp.data() : out, lse);
    if (out16) narrow_bf16(tmp.data(), out16, n);
  }
  void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                     const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                     float* dv, float* scratch) override {
    cpu::attention_bwd(d, q, k, v, key_valid, seg, out, lse, dout, dq, dk, dv, scratch);
  }
  void swiglu_fwd(const float* g, const float* u, int64_t n, float* out) override { cpu::swiglu_fwd(g, u, n, out); }
  // The norms, then the rotations: the kernels the GPU's one-pass form is checked against.
  void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs, int N,
                    int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                    const QkCopies& copies) override {
    const int64_t nq = (int64_t)N * H * hd, nk = (int64_t)N * KV * hd;
    // bf16 inputs (pre_is_input) are widened first; missing fp32 outputs are made in buffers of their own
    std::vector<float> qi(copies.pre_is_input ? nq : 0), ki(copies.pre_is_input ? nk : 0);
    if (copies.pre_is_input) {
      widen_bf16(copies.q_pre, qi.data(), nq);
      widen_bf16(copies.k_pre, ki.data(), nk);
      q_in = qi.data();
      k_in = ki.data();
    } else {
      if (copies.q_pre) narrow_bf16(q_in, copies.q_pre, nq);
      if (copies.k_pre) narrow_bf16(k_in, copies.k_pre, nk);
    }
    std::vector<float> qo(q ? 0 : nq), ko(k ? 0 : nk);
    if (!q) q = qo.data();
    if (!k) k = ko.data();
    if (q_w) rmsnorm_fwd(q_in, q_w, N * H, hd, eps, q, rstd_q);
    else if (q != q_in) std::copy(q_in, q_in + nq, q);
    if (k_w) rmsnorm_fwd(k_in, k_w, N * KV, hd, eps, k, rstd_k);
    else if (k != k_in) std::copy(k_in, k_in + nk, k);
    rope(q, cs, N, H, hd, false);
    rope(k, cs, N, KV, hd, false);
    if (copies.q) narrow_bf16(q, copies.q, nq);
    if (copies.k) narrow_bf16(k, copies.k, nk);
  }
  // The GPU's decoding form, composed here (the reference): q, k and v taken out of the stacked rows, qk_norm_rope, then
  // the cache write.
  void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B, int Tq, int H,
                    int KV, int hd, float eps, float* q, float* kc, float* vc, uint16_t* kc16, uint16_t* vc16, int Tk,
                    int off, const int32_t* off_dev, const LoraUps& ups) override {
    const int N = B * Tq, qd = H * hd, kd = KV * hd;
    const std::vector<float> qi = with_up(qkv, N, ld, 0, qd, ups, 0), ki = with_up(qkv, N, ld, qd, kd, ups, 1),
                             vi = with_up(qkv, N, ld, qd + kd, kd, ups, 2);
    std::vector<float> ko((size_t)N * kd), rq(N * H), rk(N * KV);
    qk_norm_rope(qi.data(), ki.data(), q_w, k_w, cs, N, H, KV, hd, eps, q, ko.data(), rq.data(), rk.data(), {});
    if (kc16) cache_write_bf16(kc16, vc16, ko.data(), vi.data(), B, Tq, Tk, off, off_dev, kd);
    else cache_write(kc, vc, ko.data(), vi.data(), B, Tq, Tk, off, off_dev, kd);
  }
  void add_rmsnorm(const float* a, const float* b, const float* w, int N, int C, float eps, float* sum, float* out,
                   uint16_t* out16, float* rstd, const LoraUps& ups) override {
    std::vector<float> bu;  // only a decoding step's reference has anything to add
    if (ups.p[0].xa || ups.p[0].bias) b = (bu = with_up(b, N, C, 0, C, ups, 0)).data();
    add_out(sum, a, b, (int64_t)N * C);
    if (out16) rmsnorm_fwd_bf16(sum, w, N, C, eps, out16, rstd);
    else rmsnorm_fwd(sum, w, N, C, eps, out, rstd);
  }
  void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                        const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                        const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre,
                        float* dk_pre, float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16) override {
    rope(dq, cs, N, H, hd, true);
    rope(dk, cs, N, KV, hd, true);
    const int64_t nq = (int64_t)N * H * hd, nk = (int64_t)N * KV * hd;
    if (q_w) {
      std::vector<float> qf(q_pre16 ? nq : 0), kf(k_pre16 ? nk : 0);
      if (q_pre16) widen_bf16(q_pre16, qf.data(), nq);
      if (k_pre16) widen_bf16(k_pre16, kf.data(), nk);
      // the bf16 results are rounded from fp32 ones made here (the reference: dq_pre, dk_pre may be null then)
      std::vector<float> rq(dq16 ? nq : 0), rk(dk16 ? nk : 0);
      if (dq16) dq_pre = rq.data();
      if (dk16) dk_pre = rk.data();
      rmsnorm_bwd(q_pre16 ? qf.data() : q_pre, q_w, rstd_q, dq, N * H, hd, dq_pre, false, dq_w, nullptr);
      rmsnorm_bwd(k_pre16 ? kf.data() : k_pre, k_w, rstd_k, dk, N * KV, hd, dk_pre, false, dk_w, nullptr);
      if (dq16) narrow_bf16(dq_pre, dq16, nq);
      if (dk16) narrow_bf16(dk_pre, dk16, nk);
      return;
    }
    if (dq16) narrow_bf16(dq, dq16, nq);
    if (dk16) narrow_bf16(dk, dk16, nk);
  }
  // The bf16-output forms are the GPU's (bf16 mode there); here the fp32 kernel, then rounding: the reference.
  void rmsnorm_fwd_bf16(const float* x, const float* w, int N, int C, float eps, uint16_t* out, float* rstd) override {
    std::vector<float> y((size_t)N * C);
    rmsnorm_fwd(x, w, N, C, eps, y.data(), rstd);
    narrow_bf16(y.data(), out, (int64_t)y.size());
  }
  void swiglu_fwd_bf16(const float* g, const float* u, int64_t n, uint16_t* out, uint16_t* g16,
                       uint16_t* u16) override {
    std::vector<float> y(n);
    swiglu_fwd(g, u, n, y.data());
    narrow_bf16(y.data(), out, n);
    if (g16) narrow_bf16(g, g16, n);
    if (u16) narrow_bf16(u, u16, n);
  }
  void swiglu_fwd_stacked(const float* gu, int N, int inter, float* out, uint16_t* out16, const LoraUps& ups) override {
    const int64_t n = (int64_t)N * inter;
    const std::vector<float> g = with_up(gu, N, 2 * inter, 0, inter, ups, 0),
                             u = with_up(gu, N, 2 * inter, inter, inter, ups, 1);
    if (out16) swiglu_fwd_bf16(g.data(), u.data(), n, out16, nullptr, nullptr);
    else swiglu_fwd(g.data(), u.data(), n, out);
  }
  void swiglu_fwd_h(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* out) override {
    std::vector<float> gf(n), uf(n);
    widen_bf16(g, gf.data(), n);
    widen_bf16(u, uf.data(), n);
    swiglu_fwd_bf16(gf.data(), uf.data(), n, out, nullptr, nullptr);
  }
  void swiglu_bwd_h(const uint16_t* g, const uint16_t* u, const float* dout, int64_t n, uint16_t* dg,
                    uint16_t* du) override {
    std::vector<float> gf(n), uf(n);
    widen_bf16(g, gf.data(), n);
    widen_bf16(u, uf.data(), n);
    swiglu_bwd(gf.data(), uf.data(), dout, n, gf.data(), uf.data());
    narrow_bf16(gf.data(), dg, n);
    narrow_bf16(uf.data(), du, n);
  }
  void swiglu_bwd(const float* g, const float* u, const float* dout, int64_t n, float* dg, float* du) override {
    cpu::swiglu_bwd(g, u, dout, n, dg, du);
  }
  double cross_entropy(float* logits, const int32_t* targets, int N, int V, float grad_scale) override {
    return cpu::cross_entropy(logits, targets, N, V, grad_scale);
  }
  void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWHyper& h) override {
    cpu::adamw(p, g, m, v, n, h);
  }
  void adamw_many(float* const* ps, const float* const* gs, float* const* ms, float* const* vs, const int64_t* ns,
                  int count, const AdamWHyper& h) override {
    cpu::adamw_many(ps, gs, ms, vs, ns, count, h);
  }
  void dropout(const float* x, float* mask, float* x_out, int64_t n, float p, uint64_t seed) override {
    cpu::dropout(x, mask, x_out, n, p, seed);
  }
  void cache_write(float* dk, float* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                   const int32_t* off_dev, int C) override {
    const int o = off_dev ? *off_dev : off;
    cpu::cache_write(dk, k, B, Tq, Tk, o, C);
    cpu::cache_write(dv, v, B, Tq, Tk, o, C);
  }
  // The CPU keeps its caches in fp32 (Model::make_cache); these two are the reference the GPU's are checked against.
  void cache_write_bf16(uint16_t* dk, uint16_t* dv, const float* k, const float* v, int B, int Tq, int Tk, int off,
                        const int32_t* off_dev, int C) override {
    const int o = off_dev ? *off_dev : off;
    for (int b = 0; b < B; b++)
      for (int64_t i = 0; i < (int64_t)Tq * C; i++) {
        const int64_t to = ((int64_t)b * Tk + o) * C + i, from = (int64_t)b * Tq * C + i;
        dk[to] = f32_to_bf16(k[from]);
        dv[to] = f32_to_bf16(v[from]);
      }
  }
  void attention_fwd_kv16(const AttnDims& d, const float* q, const uint16_t* k, const uint16_t* v,
                          const int32_t* key_valid, const int32_t* seg, float* out, float* lse,
                          uint16_t* out16) override {
    const int64_t n = (int64_t)d.B * d.Tk * d.KV * d.hd;
    std::vector<float> kf(n), vf(n);
    widen_bf16(k, kf.data(), n);
    widen_bf16(v, vf.data(), n);
    attention_fwd(d, q, kf.data(), vf.data(), key_valid, seg, out, lse, out16);
  }
  void attention_bwd_h(const AttnDims& d, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                       const int32_t* key_valid, const int32_t* seg, const uint16_t* out, const float* lse,
                       const float* dout, float* dq, float* dk, float* dv, float* scratch) override {
    const int64_t nq = (int64_t)d.B * d.Tq * d.H * d.hd, nk = (int64_t)d.B * d.Tk * d.KV * d.hd;
    std::vector<float> qf(nq), kf(nk), vf(nk), of(nq);
    widen_bf16(q, qf.data(), nq);
    widen_bf16(k, kf.data(), nk);
    widen_bf16(v, vf.data(), nk);
    widen_bf16(out, of.data(), nq);
    attention_bwd(d, qf.data(), kf.data(), vf.data(), key_valid, seg, of.data(), lse, dout, dq, dk, dv, scratch);
  }
  // The LoRA products with dropout fused, as the CPU's Model computes them (dropout, then matmul; the Model keeps its
  // own buffers for the masks, which it runs side by side): the GPU's fused kernels are checked against these.
  void lora_down(const float* x, const uint16_t* x16, int N, int in, const float* A, int r, float p, uint64_t seed,
                 float* xa) override {
    const std::vector<float> xd = dropped(x, x16, (int64_t)N * in, p, seed);
    matmul(false, true, N, r, in, 1.0f, xd.data(), in, A, in, 0.0f, xa, r);
  }
  void lora_down_grad(const float* x, const uint16_t* x16, int N, int in, const float* dxa, int r, float p,
                      uint64_t seed, float* gA) override {
    const std::vector<float> xd = dropped(x, x16, (int64_t)N * in, p, seed);
    matmul(true, false, r, in, N, 1.0f, dxa, r, xd.data(), in, 1.0f, gA, in);
  }
  void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A, int count,
                       float* xa) override {
    for (int k = 0; k < count; k++) lora_down(x, x16, N, in, A[k], r, 0.0f, 0, xa + (int64_t)k * N * r);
  }
  // The reference: the bias, then the product (the GPU adds both in one sum), on a widened copy of a bf16 y.
  void lora_up(float* y, uint16_t* y16, int N, int out, const float* xa, const float* B, int r, float scale,
               const float* bias, bool accumulate) override {
    const int64_t n = (int64_t)N * out;
    std::vector<float> wide(y16 ? n : 0);
    if (y16 && accumulate) widen_bf16(y16, wide.data(), n);
    float* t = y16 ? wide.data() : y;
    if (!accumulate) std::fill(t, t + n, 0.0f);
    if (bias) add_bias(t, bias, N, out);
    if (r > 0) matmul(false, true, N, out, r, scale, xa, r, B, r, 1.0f, t, out);
    if (y16) narrow_bf16(t, y16, n);
  }
  void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count) override {
    std::vector<float> t((size_t)N * in);
    for (int k = 0; k < count; k++) {
      matmul(false, false, N, in, r, 1.0f, terms[k].dxa, r, terms[k].A, in, 0.0f, t.data(), in);
      if (p > 0) dropout(t.data(), nullptr, t.data(), (int64_t)N * in, p, terms[k].seed);
      add(dx, t.data(), (int64_t)N * in);
    }
  }

 private:
  // Projection k's output: columns [col, col + width) of the rows of y (ld apart), with its bias, then
  // scale (x A^T) B^T added: what a GPU reader adds for LoraUps (the reference).
  std::vector<float> with_up(const float* y, int N, int ld, int col, int width, const LoraUps& ups, int k) {
    std::vector<float> out((size_t)N * width);
    for (int n = 0; n < N; n++) {
      const float* row = y + (int64_t)n * ld + col;
      std::copy(row, row + width, out.begin() + (int64_t)n * width);
    }
    const LoraUp& u = ups.p[k];
    if (u.bias) add_bias(out.data(), u.bias, N, width);
    if (u.xa) matmul(false, true, N, width, ups.r, ups.scale, u.xa, ups.r, u.B, ups.r, 1.0f, out.data(), width);
    return out;
  }

  // x (or x16 widened) times its dropout mask.
  std::vector<float> dropped(const float* x, const uint16_t* x16, int64_t n, float p, uint64_t seed) {
    std::vector<float> xd(n);
    if (x16) widen_bf16(x16, xd.data(), n);
    else std::copy(x, x + n, xd.begin());
    if (p > 0) dropout(xd.data(), nullptr, xd.data(), n, p, seed);
    return xd;
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace tf
