// Causal scaled-dot-product attention with grouped KV heads, a key padding mask and optional segment ids
// (packed sequences never attend across examples). Softmax statistics are kept as log-sum-exp per query so
// the backward pass recomputes probabilities instead of storing [T, T] matrices.
// Work items are blocks of up to kRows consecutive (query or key) rows of one head; their cost grows along the
// causal triangle, so they are handed out dynamically. Each item is computed by one thread start to finish, so
// results do not depend on the thread count.
// Each item runs in phases (all rows' scores, then all their exps, then all weighted sums) rather than row by
// row: one row's steps depend on each other (scores -> max -> exp -> sum), so on short rows a row at a time
// left the core waiting on latencies (the double exp's polynomial most of all); across rows they overlap.
// Every row still does exactly the same arithmetic in the same order, so results are unchanged.
// Speed: the per-position dot products (q.k for a query's keys, k.q for a key's queries, and the same with
// dO and v) of small head dims were most of a tiny model's step, each ending in a horizontal sum. So the
// operand a row sweeps over is first transposed per head to [hd, positions] and the dots run along positions,
// a whole vector of them at a time; rows are padded so the loops need no scalar tails. Weighted sums of rows
// (P V, dS K, ...) run along the head dim instead. The exps are vectorised (vec.h); the forward output
// accumulates in double.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"
#include "engine/tensor.h"

namespace tf::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Multiply-adds of one pass over the causal triangle. Below kAttnParallelMin (a few microseconds on one core,
// vectorised) the team is not forked: waking it costs about as much. The fixture's 40K (2 x 24 tokens, 4 heads
// of 16) is above it: the passes' exps and masking make it ~35 us single-threaded.
inline int64_t work(const AttnDims& d) { return (int64_t)d.B * d.H * d.Tq * (d.q_off + d.Tq / 2 + 1) * d.hd; }
constexpr int64_t kAttnParallelMin = 1 << 15;

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// Position loops over transposed rows are rounded up to whole vectors of kLanes floats (AVX-512); the
// transposed rows get kLanes spare zeros, so a rounded loop starting anywhere in the row stays inside it.
constexpr int kLanes = 16;
inline int round_up(int m) { return (m + kLanes - 1) / kLanes * kLanes; }
inline int64_t padded(int n) { return round_up(n) + kLanes; }

// Query or key rows per work item: enough rows for their phases to overlap, few enough that a long causal
// triangle still splits into many items to balance across threads.
constexpr int kRows = 16;

// Threads for one attention call: forking costs about as much as the whole call below kAttnParallelMin.
inline int threads_for(const AttnDims& d) { return work(d) >= kAttnParallelMin ? SpinPool::threads() : 1; }

// Calls slot(next) once per thread slot; next() hands out the item indices 0..n-1, each once, then -1.
template <typename F>
void run_items(int threads, int64_t n, F&& slot) {
  std::atomic<int64_t> counter{0};
  SpinPool::instance().run(threads, [&](int, int) {
    slot([&]() -> int64_t {
      const int64_t i = counter.fetch_add(1, std::memory_order_relaxed);
      return i < n ? i : -1;
    });
  });
}

// x [B, rows, heads * hd] (positions 0..n-1 of each row used) -> xt [B, heads, hd, ld] (ld = padded(n); the
// padding must be zero: the caller's buffer is fresh engine memory).
void transpose_heads(const float* x, int B, int rows, int n, int heads, int hd, float* xt, int threads) {
  const int64_t ld = padded(n);
  SpinPool::instance().run(threads, [&](int slot, int slots) {
    for (int64_t bh = (int64_t)B * heads * slot / slots; bh < (int64_t)B * heads * (slot + 1) / slots; bh++) {
      const int64_t b = bh / heads, h = bh % heads;
      for (int i = 0; i < hd; i++) {
        float* dst = xt + (bh * hd + i) * ld;
        const float* src = x + b * rows * heads * hd + h * hd + i;
        for (int s = 0; s < n; s++) dst[s] = src[(int64_t)s * heads * hd];
      }
    }
  });
}

typedef float VF16 __attribute__((vector_size(kLanes * sizeof(float))));
inline VF16 load16(const float* p) {
  VF16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// out[s] = scale * (a . x_s) for s < round_up(m), where x_s is column s of xt [hd, ld] (one head, transposed).
// Entries from m on are scores of positions the caller does not use (or of zero padding). Four independent
// accumulators per step (two on the last vectors) keep the FMA pipeline full.
inline void dots(const float* a, const float* xt, int64_t ld, int m, int hd, float scale, float* out) {
  const int mv = round_up(m);
  int s = 0;
  for (; s + 4 * kLanes <= mv; s += 4 * kLanes) {
    VF16 c0 = {}, c1 = {}, c2 = {}, c3 = {};
    for (int i = 0; i < hd; i++) {
      const float* xi = xt + i * ld + s;
      c0 += a[i] * load16(xi);
      c1 += a[i] * load16(xi + kLanes);
      c2 += a[i] * load16(xi + 2 * kLanes);
      c3 += a[i] * load16(xi + 3 * kLanes);
    }
    const VF16 r[4] = {c0 * scale, c1 * scale, c2 * scale, c3 * scale};
    std::memcpy(out + s, r, sizeof r);
  }
  for (; s < mv; s += kLanes) {
    VF16 c0 = {}, c1 = {};
    int i = 0;
    for (; i + 1 < hd; i += 2) {
      c0 += a[i] * load16(xt + i * ld + s);
      c1 += a[i + 1] * load16(xt + (i + 1) * ld + s);
    }
    if (i < hd) c0 += a[i] * load16(xt + i * ld + s);
    const VF16 r = (c0 + c1) * scale;
    std::memcpy(out + s, &r, sizeof r);
  }
}

// 8 floats from p as a vector of V's lanes (float or double).
template <typename V>
inline V load8(const float* p);
template <>
inline vec::VF load8<vec::VF>(const float* p) {
  vec::VF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <>
inline vec::VD load8<vec::VD>(const float* p) {
  return vec::load(p);
}

// y[0, 8 NV) += sum_{s < m} w[s] * x_s[0, 8 NV), the NV accumulators held in registers across all the rows.
template <typename V, int NV, typename Acc>
inline void wsum_regs(const float* w, const float* x, int64_t stride, int m, Acc* y) {
  V acc[NV] = {};
  for (int s = 0; s < m; s++) {
    if (w[s] == 0.0f) continue;  // masked or underflowed weights: common along padded or long rows
    const V ws = V{} + w[s];
    for (int j = 0; j < NV; j++) acc[j] += ws * load8<V>(x + s * stride + 8 * j);
  }
  for (int j = 0; j < NV; j++)
    for (int l = 0; l < 8; l++) y[8 * j + l] += acc[j][l];
}

// y += sum_{s < m} w[s] * x_s for rows x_s = x + s * stride of length hd, accumulated in Acc (float, or double
// for the forward output). Head dims that are a multiple of 8 (all real models) keep y in registers.
template <typename Acc>
inline void wsum(const float* w, const float* x, int64_t stride, int m, int hd, Acc* y) {
  using V = std::conditional_t<std::is_same_v<Acc, double>, vec::VD, vec::VF>;
  if (hd % 8 != 0) {
    for (int s = 0; s < m; s++) {
      if (w[s] == 0.0f) continue;
      const Acc ws = w[s];
#pragma omp simd
      for (int i = 0; i < hd; i++) y[i] += ws * x[s * stride + i];
    }
    return;
  }
  int i = 0;
  for (; i + 32 <= hd; i += 32) wsum_regs<V, 4>(w, x + i, stride, m, y + i);
  if (hd - i == 24) wsum_regs<V, 3>(w, x + i, stride, m, y + i);
  if (hd - i == 16) wsum_regs<V, 2>(w, x + i, stride, m, y + i);
  if (hd - i == 8) wsum_regs<V, 1>(w, x + i, stride, m, y + i);
}

// Hides keys [0, m) from query position tq of row b: a padding key, or one of another packed segment.
inline void mask_keys(const int32_t* key_valid, const int32_t* seg, int64_t row, int tq, int m, float* p) {
  if (key_valid) {
    const int32_t* kv = key_valid + row;
#pragma omp simd
    for (int s = 0; s < m; s++) p[s] = kv[s] != 0 ? p[s] : kNegInf;
  }
  if (seg) {
    const int32_t* sg = seg + row;
    const int32_t own = sg[tq];
#pragma omp simd
    for (int s = 0; s < m; s++) p[s] = sg[s] == own ? p[s] : kNegInf;
  }
}

inline float max_of(const float* p, int m) {
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (int s = 0; s < m; s++) mx = p[s] > mx ? p[s] : mx;
  return mx;
}

}  // namespace

void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, float* out, float* lse) {
  const int group = d.H / d.KV, hd = d.hd;
  const int n = d.q_off + d.Tq;  // the keys any query may see
  const int64_t ld = padded(n);
  const float scale = 1.0f / std::sqrt((float)hd);
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int threads = threads_for(d);
  Tensor kt_buf({(int64_t)d.B * d.KV * hd * ld});
  float* kt = kt_buf.f32();
  transpose_heads(k, d.B, d.Tk, n, d.KV, hd, kt, threads);
  // Items: (b, h, block of kRows queries).
  const int blocks = (d.Tq + kRows - 1) / kRows;
  run_items(threads, (int64_t)d.B * d.H * blocks, [&](auto next) {
    std::vector<float> P(kRows * ld);
    float mx[kRows];
    double sum[kRows];
    std::vector<double> acc(hd);
    for (int64_t item; (item = next()) >= 0;) {
      const int b = (int)(item / ((int64_t)d.H * blocks)), h = (int)(item / blocks % d.H);
      const int t0 = (int)(item % blocks) * kRows, rows = std::min(kRows, d.Tq - t0);
      const float* ktb = kt + ((int64_t)b * d.KV + h / group) * hd * ld;
      const float* vb = v + (int64_t)b * d.Tk * kstride + (int64_t)(h / group) * hd;
      const int64_t q0 = (int64_t)b * d.Tq + t0;  // first query row of the item
      for (int r = 0; r < rows; r++) {
        const int tq = d.q_off + t0 + r;
        float* p = P.data() + r * ld;
        dots(q + (q0 + r) * qstride + (int64_t)h * hd, ktb, ld, tq + 1, hd, scale, p);
        mask_keys(key_valid, seg, (int64_t)b * d.Tk, tq, tq + 1, p);
        mx[r] = max_of(p, tq + 1);
      }
      for (int r = 0; r < rows; r++) {
        float* p = P.data() + r * ld;
        if (mx[r] != kNegInf) sum[r] = vec::exp_sum(p, d.q_off + t0 + r + 1, mx[r], p);
      }
      for (int r = 0; r < rows; r++) {
        const int64_t qi = q0 + r;
        float* o = out + qi * qstride + (int64_t)h * hd;
        if (mx[r] == kNegInf) {  // no visible key (a left pad): output 0
          for (int i = 0; i < hd; i++) o[i] = 0.0f;
          if (lse) lse[qi * d.H + h] = 0.0f;
          continue;
        }
        for (int i = 0; i < hd; i++) acc[i] = 0;
        wsum(P.data() + r * ld, vb, kstride, d.q_off + t0 + r + 1, hd, acc.data());
        for (int i = 0; i < hd; i++) o[i] = (float)(acc[i] / sum[r]);
        if (lse) lse[qi * d.H + h] = (float)(mx[r] + std::log(sum[r]));
      }
    }
  });
}

// With P = softmax(S), S = scale * q k^T: dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dO * O));
// dQ = scale * dS K; dK = scale * dS^T Q. Two passes so each output row has one writer: queries, then keys.
// (`scratch` is not needed: the transposed operands live in a buffer of this call.)
void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, const float* out, const float* lse,
                   const float* dout, float* dq, float* dk, float* dv, float*) {
  const int group = d.H / d.KV, T = d.Tq, hd = d.hd;
  const int64_t ld = padded(T);
  const float scale = 1.0f / std::sqrt((float)hd);
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int threads = threads_for(d);
  // Transposed [B, heads, hd, ld]: keys and values for the query pass, queries and output gradients for the key
  // pass; the per-query statistics lse and D = rowsum(dO * O) as [B, H, ld] for the key pass.
  const int64_t nq = (int64_t)d.B * d.H * hd * ld, nk = (int64_t)d.B * d.KV * hd * ld, nr = (int64_t)d.B * d.H * ld;
  Tensor buf({2 * nq + 2 * nk + 2 * nr});
  float *qt = buf.f32(), *got = qt + nq, *kt = got + nq, *vt = kt + nk, *lset = vt + nk, *Dt = lset + nr;
  transpose_heads(q, d.B, T, T, d.H, hd, qt, threads);
  transpose_heads(dout, d.B, T, T, d.H, hd, got, threads);
  transpose_heads(k, d.B, T, T, d.KV, hd, kt, threads);
  transpose_heads(v, d.B, T, T, d.KV, hd, vt, threads);
  transpose_heads(lse, d.B, T, T, d.H, 1, lset, threads);
  parallel_for((int64_t)d.B * d.H, threads > 1 ? kParallelMin : 0, [&](int64_t bh0, int64_t bh1) {
    for (int64_t bh = bh0; bh < bh1; bh++)
      for (int t = 0; t < T; t++) {
        const int64_t off = ((bh / d.H) * T + t) * qstride + (bh % d.H) * hd;
        Dt[bh * ld + t] = dot(dout + off, out + off, hd);
      }
  });
  const int blocks = (T + kRows - 1) / kRows;

  // Queries: dq[t] = scale * sum_s dS[t, s] k[s]. Items: (b, h, block of kRows queries).
  run_items(threads, (int64_t)d.B * d.H * blocks, [&](auto next) {
    std::vector<float> P(kRows * ld), dS(kRows * ld), acc(hd);
    for (int64_t item; (item = next()) >= 0;) {
      const int b = (int)(item / ((int64_t)d.H * blocks)), h = (int)(item / blocks % d.H);
      const int t0 = (int)(item % blocks) * kRows, rows = std::min(kRows, T - t0);
      const int64_t bh = (int64_t)b * d.H + h, bg = (int64_t)b * d.KV + h / group;
      const int64_t off0 = ((int64_t)b * T + t0) * qstride + (int64_t)h * hd;  // query t0, head h
      for (int r = 0; r < rows; r++) {
        const int t = t0 + r;
        float* p = P.data() + r * ld;
        dots(q + off0 + r * qstride, kt + bg * hd * ld, ld, t + 1, hd, scale, p);
        mask_keys(key_valid, seg, (int64_t)b * T, t, t + 1, p);
      }
      for (int r = 0; r < rows; r++) {
        float* p = P.data() + r * ld;
        vec::exp_sum(p, t0 + r + 1, lset[bh * ld + t0 + r], p);  // P = exp(S - lse)
      }
      for (int r = 0; r < rows; r++) {
        const int m = t0 + r + 1;
        const float Di = Dt[bh * ld + t0 + r];
        const float* p = P.data() + r * ld;
        float* ds = dS.data() + r * ld;
        dots(dout + off0 + r * qstride, vt + bg * hd * ld, ld, m, hd, 1.0f, ds);  // dP
#pragma omp simd
        for (int s = 0; s < m; s++) ds[s] = p[s] * (ds[s] - Di);
      }
      for (int r = 0; r < rows; r++) {
        for (int i = 0; i < hd; i++) acc[i] = 0;
        wsum(dS.data() + r * ld, k + (int64_t)b * T * kstride + (int64_t)(h / group) * hd, kstride, t0 + r + 1,
             hd, acc.data());
        for (int i = 0; i < hd; i++) dq[off0 + r * qstride + i] = acc[i] * scale;
      }
    }
  });

  // Keys: dk[s] = scale * sum_{t >= s, h in group} dS[t, s] q[t]; dv[s] = sum P[t, s] dO[t].
  // Items: (b, g, block of kRows keys); key s sweeps the queries s..T-1, as index u = t - s.
  run_items(threads, (int64_t)d.B * d.KV * blocks, [&](auto next) {
    std::vector<float> P(kRows * ld), dS(kRows * ld), ak(kRows * hd), av(kRows * hd);
    for (int64_t item; (item = next()) >= 0;) {
      const int b = (int)(item / ((int64_t)d.KV * blocks)), g = (int)(item / blocks % d.KV);
      const int s0 = (int)(item % blocks) * kRows, rows = std::min(kRows, T - s0);
      const int64_t ko0 = ((int64_t)b * T + s0) * kstride + (int64_t)g * hd;  // key s0, kv head g
      std::fill(ak.begin(), ak.end(), 0.0f);
      std::fill(av.begin(), av.end(), 0.0f);
      for (int j = 0; j < group; j++) {
        const int h = g * group + j;
        const int64_t bh = (int64_t)b * d.H + h;
        for (int r = 0; r < rows; r++) {
          const int s = s0 + r, m = T - s;
          float* p = P.data() + r * ld;
          const float* lse_h = lset + bh * ld + s;
          dots(k + ko0 + r * kstride, qt + bh * hd * ld + s, ld, m, hd, scale, p);
#pragma omp simd
          for (int u = 0; u < m; u++) p[u] -= lse_h[u];
          if (seg) {
            const int32_t* sg = seg + (int64_t)b * T + s;
#pragma omp simd
            for (int u = 0; u < m; u++) p[u] = sg[u] == sg[0] ? p[u] : kNegInf;
          }
        }
        for (int r = 0; r < rows; r++) vec::exp_sum(P.data() + r * ld, T - s0 - r, 0.0f, P.data() + r * ld);
        for (int r = 0; r < rows; r++) {
          const int s = s0 + r, m = T - s;
          const float* D_h = Dt + bh * ld + s;
          const float* p = P.data() + r * ld;
          float* ds = dS.data() + r * ld;
          dots(v + ko0 + r * kstride, got + bh * hd * ld + s, ld, m, hd, 1.0f, ds);  // dP
#pragma omp simd
          for (int u = 0; u < m; u++) ds[u] = p[u] * (ds[u] - D_h[u]);
        }
        for (int r = 0; r < rows; r++) {
          const int s = s0 + r;
          if (key_valid && key_valid[(int64_t)b * T + s] == 0) continue;  // a padding key: no gradient
          const int64_t qo = ((int64_t)b * T + s) * qstride + (int64_t)h * hd;  // query s, head h
          wsum(dS.data() + r * ld, q + qo, qstride, T - s, hd, ak.data() + r * hd);
          wsum(P.data() + r * ld, dout + qo, qstride, T - s, hd, av.data() + r * hd);
        }
      }
      for (int r = 0; r < rows; r++)
        for (int i = 0; i < hd; i++) {
          dk[ko0 + r * kstride + i] = ak[r * hd + i] * scale;
          dv[ko0 + r * kstride + i] = av[r * hd + i];
        }
    }
  });
}

}  // namespace tf::cpu
