// Causal scaled-dot-product attention with grouped KV heads, a key padding mask and optional segment ids
// (packed sequences never attend across examples). Softmax statistics are kept as log-sum-exp per query so
// the backward pass recomputes probabilities instead of storing [T, T] matrices.
//
// Structure: work items are blocks of up to kRows consecutive (query or key) rows of one head. An item computes
// its block's whole score rows S = Q K^T into scratch, masks and exponentiates them, and multiplies them by the
// next operand (O = P V, dQ = dS K, dK = dS^T Q, dV = P^T dO). Every product is one small GEMM, matmul_rows(),
// built on a register-tiled micro-kernel (8 rows x 32 columns of accumulators): the old row-at-a-time dots and
// weighted sums were latency-bound on single accumulator chains and ran at a fifth of the GEMM's speed.
// The score products sweep positions, so their right operand is stored transposed per head ([hd, positions],
// done once per call) and the kernel vectorises along positions; the others vectorise along the head dim of
// plain rows. Decoding (a few query rows against a long KV cache) skips the transpose: it would cost more than
// the scores it serves, so those scores are plain dot products.
// Each item is computed by one thread start to finish (items are handed out dynamically, largest first, as
// their cost grows along the causal triangle), and every output element has one writer, so results are
// deterministic and do not depend on the thread count. Everything is fp32 (as in flash attention), with a
// float exp.
// Backward: two kinds of items in one run: query blocks (dQ) and key blocks of a KV head (dK, dV summed over
// the head's query group), so each output row has one writer; each recomputes P from the saved lse.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "cpu/vec_f32.h"

namespace tf::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Multiply-adds of one pass over the causal triangle. Below kAttnParallelMin (a few microseconds on one core)
// the team is not forked: waking it costs about as much.
inline int64_t work(const AttnDims& d) { return (int64_t)d.B * d.H * d.Tq * (d.q_off + d.Tq / 2 + 1) * d.hd; }
constexpr int64_t kAttnParallelMin = 1 << 15;
inline int threads_for(const AttnDims& d) { return work(d) >= kAttnParallelMin ? SpinPool::threads() : 1; }
// Threads for copying n floats into transposed operands.
inline int copy_threads(int64_t n) { return n >= kParallelMin ? SpinPool::threads() : 1; }

// Query or key rows per work item: enough to reuse each loaded key (or query) across the micro-kernel's rows,
// few enough that a long causal triangle still splits into many items to balance across threads.
constexpr int kRows = 16;

// Score rows are whole vectors of kLanes floats: positions past a row's end are computed and then masked,
// so no loop needs a scalar tail. Transposed rows are zero-padded to whole vectors plus one more, so a
// rounded row starting anywhere inside them stays inside.
constexpr int kLanes = vecf::W;
inline int round_up(int m) { return (m + kLanes - 1) / kLanes * kLanes; }
inline int64_t padded(int n) { return round_up(n) + kLanes; }

using vecf::hmax;
using vecf::hsum;
using vecf::load;
using vecf::store;
using vecf::VF;

// --- The small GEMM ---------------------------------------------------------------------------------------

constexpr int kMR = 8;  // rows of a register tile

// c[r][col, col + 16 NV) (= or +=) alpha * sum_{k < K} a[r][k] * B[k][col, ...) for r < rows, with the last
// vector cut to `last` columns when kPart. The tile always computes MR rows (a[r] for r >= rows repeat a real
// row) so its loops are fixed and its accumulators stay in registers; only real rows are stored.
template <int MR, int NV, bool kPart>
void tile(int rows, int K, const float* const* a, const float* B, int64_t ldb, int col, int last, float alpha,
          bool add, float* const* c) {
  VF acc[MR][NV] = {};
  for (int k = 0; k < K; k++) {
    const float* bk = B + k * ldb + col;
    VF bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++)
      bv[j] = kPart && j == NV - 1 ? vecf::load_n(bk + j * kLanes, last) : load(bk + j * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      const float ar = a[r][k];
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) acc[r][j] += ar * bv[j];
    }
  }
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < NV; j++) {
      float* cj = c[r] + col + j * kLanes;
      const bool part = kPart && j == NV - 1;
      VF y = acc[r][j] * alpha;
      if (add) y += part ? vecf::load_n(cj, last) : load(cj);
      part ? vecf::store_n(cj, y, last) : store(cj, y);
    }
}

// One group of rows across all N columns: 32 at a time, then 16, then a partial vector.
template <int MR>
void row_group(int rows, int N, int K, const float* const* a, const float* B, int64_t ldb, float alpha, bool add,
               float* const* c) {
  int col = 0;
  for (; col + 2 * kLanes <= N; col += 2 * kLanes) tile<MR, 2, false>(rows, K, a, B, ldb, col, 0, alpha, add, c);
  if (N - col >= kLanes) {
    tile<MR, 1, false>(rows, K, a, B, ldb, col, 0, alpha, add, c);
    col += kLanes;
  }
  if (col < N) tile<MR, 1, true>(rows, K, a, B, ldb, col, N - col, alpha, add, c);
}

// C[rows, N] (= or +=) alpha * A[rows, K] B[K, N], single-threaded; rows of A, B and C at strides lda, ldb, ldc.
void matmul_rows(int rows, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float alpha,
                 bool add, float* C, int64_t ldc) {
  for (int r0 = 0; r0 < rows; r0 += kMR) {
    const int nr = std::min(kMR, rows - r0);
    const float* a[kMR];
    float* c[kMR];
    for (int r = 0; r < kMR; r++) {
      const int64_t row = r0 + std::min(r, nr - 1);
      a[r] = A + row * lda;
      c[r] = C + row * ldc;
    }
    if (nr > 4) row_group<8>(nr, N, K, a, B, ldb, alpha, add, c);
    else if (nr > 1) row_group<4>(nr, N, K, a, B, ldb, alpha, add, c);
    else row_group<1>(nr, N, K, a, B, ldb, alpha, add, c);
  }
}

// --- Rows of scores ---------------------------------------------------------------------------------------

// Hides entries of a score row p[0, mv): those outside [lo, hi) (the causal bounds) and, inside, those whose
// key is padding (kv[j] == 0) or of another packed segment (sg[j] != own). kv and sg are indexed like p.
void mask_row(float* p, int mv, int lo, int hi, const int32_t* kv, const int32_t* sg, int32_t own) {
  for (int j = 0; j < lo; j++) p[j] = kNegInf;
  if (kv) {
#pragma omp simd
    for (int j = lo; j < hi; j++) p[j] = kv[j] != 0 ? p[j] : kNegInf;
  }
  if (sg) {
#pragma omp simd
    for (int j = lo; j < hi; j++) p[j] = sg[j] == own ? p[j] : kNegInf;
  }
  for (int j = std::max(lo, hi); j < mv; j++) p[j] = kNegInf;
}

inline float max_of(const float* p, int mv) {
  VF mx = VF{} + kNegInf;
  for (int j = 0; j < mv; j += kLanes) {
    const VF x = load(p + j);
    mx = x > mx ? x : mx;
  }
  return hmax(mx);
}

// p[j] = exp(p[j] - sub[j]) over the row (sub[j] = sub[0] for all j unless per_column); returns the sum.
float exp_row(float* p, int mv, const float* sub, bool per_column) {
  VF acc = {};
  for (int j = 0; j < mv; j += kLanes) {
    const VF e = vecf::exp(load(p + j) - (per_column ? load(sub + j) : VF{} + sub[0]));
    store(p + j, e);
    acc += e;
  }
  return hsum(acc);
}

// dS = P * (dP - D) * scale in place of dP (D per column like exp_row's sub).
void grad_row(const float* p, float* ds, int mv, const float* D, bool per_column, float scale) {
  for (int j = 0; j < mv; j += kLanes) {
    const VF dp = load(ds + j) - (per_column ? load(D + j) : VF{} + D[0]);
    store(ds + j, load(p + j) * dp * scale);
  }
}

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// Positions [0, n) of head rows x (row s at x + s * stride, hd floats) -> xt [hd, ld], zero-padded to ld.
void transpose_head(const float* x, int64_t stride, int n, int hd, float* xt, int64_t ld) {
  for (int i = 0; i < hd; i++) {
    float* dst = xt + i * ld;
    for (int s = 0; s < n; s++) dst[s] = x[s * stride + i];
    std::fill(dst + n, dst + ld, 0.0f);
  }
}

// Buffers kept for the next call instead of allocated and zero-filled per call. A call's shared operands (the
// transposed heads: for long sequences the bulk of attention's memory) live in engine memory, so the model's
// memory figures (peak, the trainer's memory_mb) count them; the calling thread grows it, never a worker.
float* call_scratch(size_t n) {
  static thread_local Tensor buf;
  if ((size_t)buf.numel() < n) buf = Tensor({(int64_t)n});
  return buf.f32();
}
// An item's score rows (a few rows of positions), one per thread.
float* item_scratch(size_t n) {
  static thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Calls item(i) for i in [0, n), each once, spread over the threads as they become free.
template <typename F>
void run_items(int threads, int64_t n, F&& item) {
  std::atomic<int64_t> counter{0};
  SpinPool::instance().run(threads, [&](int, int) {
    for (int64_t i; (i = counter.fetch_add(1, std::memory_order_relaxed)) < n;) item(i);
  });
}

}  // namespace

void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, float* out, float* lse) {
  const int group = d.H / d.KV, hd = d.hd;
  const int n = d.q_off + d.Tq;  // the keys any query may see
  const float scale = 1.0f / std::sqrt((float)hd);
  const int64_t qs = (int64_t)d.H * hd, ks = (int64_t)d.KV * hd;
  const int threads = threads_for(d);
  // Transposing a key costs about hd / 8 times a dot product along the head dim; it pays off once that many
  // query rows share it (not when decoding one token against a cache).
  const bool transposed = (int64_t)d.Tq * group * 8 >= hd;
  const int64_t ld = padded(n);
  float* kt = transposed ? call_scratch((size_t)d.B * d.KV * hd * ld) : nullptr;
  if (transposed)
    run_items(copy_threads((int64_t)d.B * d.KV * hd * n), (int64_t)d.B * d.KV, [&](int64_t bg) {
      transpose_head(k + (bg / d.KV) * d.Tk * ks + (bg % d.KV) * hd, ks, n, hd, kt + bg * hd * ld, ld);
    });

  // Items: (b, h, block of kRows queries), the longest rows first.
  const int blocks = (d.Tq + kRows - 1) / kRows;
  run_items(threads, (int64_t)d.B * d.H * blocks, [&](int64_t item) {
    const int b = (int)(item / blocks / d.H), h = (int)(item / blocks % d.H), g = h / group;
    const int t0 = (blocks - 1 - (int)(item % blocks)) * kRows, rows = std::min(kRows, d.Tq - t0);
    const int m = d.q_off + t0 + rows, mv = round_up(m);  // keys of the block's last row
    const int64_t q0 = (int64_t)b * d.Tq + t0;           // first query row of the item
    const float* qb = q + q0 * qs + (int64_t)h * hd;
    const int64_t kvo = (int64_t)b * d.Tk * ks + (int64_t)g * hd;  // key 0, kv head g
    const int32_t* kv = key_valid ? key_valid + (int64_t)b * d.Tk : nullptr;
    const int32_t* sg = seg ? seg + (int64_t)b * d.Tk : nullptr;
    float* P = item_scratch((size_t)kRows * ld);
    if (transposed) {
      matmul_rows(rows, mv, hd, qb, qs, kt + ((int64_t)b * d.KV + g) * hd * ld, ld, scale, false, P, ld);
    } else {
      for (int r = 0; r < rows; r++)
        for (int s = 0; s < m; s++) P[r * ld + s] = scale * dot(qb + r * qs, k + kvo + s * ks, hd);
    }
    // Phase by phase over the rows rather than row by row: one row's steps depend on each other (mask -> max ->
    // exp -> sum), so on short rows a row at a time left the core waiting on latencies; across rows they overlap.
    float mx[kRows], sum[kRows];
    for (int r = 0; r < rows; r++) {
      const int tq = d.q_off + t0 + r;
      mask_row(P + r * ld, mv, 0, tq + 1, kv, sg, sg ? sg[tq] : 0);
    }
    for (int r = 0; r < rows; r++) mx[r] = max_of(P + r * ld, mv);
    for (int r = 0; r < rows; r++) {
      if (mx[r] == kNegInf) mx[r] = 0;  // no visible key (a left pad): P = exp(-inf) = 0, output 0, lse 0
      sum[r] = exp_row(P + r * ld, mv, &mx[r], false);
    }
    for (int r = 0; r < rows; r++) {
      const bool none = sum[r] == 0;
      if (lse) lse[(q0 + r) * d.H + h] = none ? 0.0f : mx[r] + std::log(sum[r]);
      sum[r] = none ? 0.0f : 1.0f / sum[r];
    }
    float* o = out + q0 * qs + (int64_t)h * hd;
    matmul_rows(rows, hd, m, P, ld, v + kvo, ks, 1.0f, false, o, qs);
    for (int r = 0; r < rows; r++)
      for (int i = 0; i < hd; i++) o[r * qs + i] *= sum[r];
  });
}

// With P = softmax(S), S = scale * q k^T: dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dO * O));
// dQ = scale * dS K; dK = scale * dS^T Q. (`scratch` is not needed: the call keeps its own buffers.)
void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, const float* out, const float* lse,
                   const float* dout, float* dq, float* dk, float* dv, float*) {
  const int group = d.H / d.KV, T = d.Tq, hd = d.hd;
  const int64_t ld = padded(T);
  const float scale = 1.0f / std::sqrt((float)hd);
  const int64_t qs = (int64_t)d.H * hd, ks = (int64_t)d.KV * hd;
  const int threads = threads_for(d);
  // Transposed [B, heads, hd, ld]: keys and values for the query items, queries and output gradients for the
  // key items; the per-query statistics lse and D = rowsum(dO * O) as rows [B, H, ld] for the key items.
  const int64_t nq = (int64_t)d.B * d.H * hd * ld, nk = (int64_t)d.B * d.KV * hd * ld, nr = (int64_t)d.B * d.H * ld;
  float* qt = call_scratch((size_t)(2 * nq + 2 * nk + 2 * nr));
  float *got = qt + nq, *kt = got + nq, *vt = kt + nk, *lset = vt + nk, *Dt = lset + nr;
  // Items: (b, query head) then (b, kv head).
  run_items(copy_threads(2 * (int64_t)d.B * (d.H + d.KV) * hd * T), (int64_t)d.B * (d.H + d.KV), [&](int64_t item) {
    const int64_t b = item / (d.H + d.KV);
    const int x = (int)(item % (d.H + d.KV));
    if (x >= d.H) {
      const int64_t bg = b * d.KV + x - d.H, off = b * T * ks + (int64_t)(x - d.H) * hd;
      transpose_head(k + off, ks, T, hd, kt + bg * hd * ld, ld);
      transpose_head(v + off, ks, T, hd, vt + bg * hd * ld, ld);
      return;
    }
    const int64_t bh = b * d.H + x, off = b * T * qs + (int64_t)x * hd;
    transpose_head(q + off, qs, T, hd, qt + bh * hd * ld, ld);
    transpose_head(dout + off, qs, T, hd, got + bh * hd * ld, ld);
    transpose_head(lse + b * T * d.H + x, d.H, T, 1, lset + bh * ld, ld);
    for (int t = 0; t < T; t++) Dt[bh * ld + t] = dot(dout + off + t * qs, out + off + t * qs, hd);
    std::fill(Dt + bh * ld + T, Dt + (bh + 1) * ld, 0.0f);
  });

  // Items: query blocks (b, h, block), the longest rows first; then key blocks (b, g, block), likewise.
  const int blocks = (T + kRows - 1) / kRows;
  const int64_t query_items = (int64_t)d.B * d.H * blocks;
  run_items(threads, query_items + (int64_t)d.B * d.KV * blocks, [&](int64_t item) {
    float* P = item_scratch((size_t)2 * kRows * ld);
    float* dS = P + kRows * ld;
    if (item < query_items) {
      // dq[t] = scale * sum_s dS[t, s] k[s] over the keys s <= t.
      const int b = (int)(item / blocks / d.H), h = (int)(item / blocks % d.H), g = h / group;
      const int t0 = (blocks - 1 - (int)(item % blocks)) * kRows, rows = std::min(kRows, T - t0);
      const int m = t0 + rows, mv = round_up(m);
      const int64_t bh = (int64_t)b * d.H + h, bg = (int64_t)b * d.KV + g;
      const int64_t off = ((int64_t)b * T + t0) * qs + (int64_t)h * hd;  // query t0, head h
      const int32_t* kv = key_valid ? key_valid + (int64_t)b * T : nullptr;
      const int32_t* sg = seg ? seg + (int64_t)b * T : nullptr;
      matmul_rows(rows, mv, hd, q + off, qs, kt + bg * hd * ld, ld, scale, false, P, ld);
      matmul_rows(rows, mv, hd, dout + off, qs, vt + bg * hd * ld, ld, 1.0f, false, dS, ld);  // dP
      for (int r = 0; r < rows; r++) mask_row(P + r * ld, mv, 0, t0 + r + 1, kv, sg, sg ? sg[t0 + r] : 0);
      for (int r = 0; r < rows; r++) exp_row(P + r * ld, mv, lset + bh * ld + t0 + r, false);  // P = exp(S - lse)
      for (int r = 0; r < rows; r++) grad_row(P + r * ld, dS + r * ld, mv, Dt + bh * ld + t0 + r, false, scale);
      matmul_rows(rows, hd, m, dS, ld, k + (int64_t)b * T * ks + (int64_t)g * hd, ks, 1.0f, false, dq + off, qs);
      return;
    }
    // dk[s] = scale * sum_{t >= s, h in group} dS[t, s] q[t]; dv[s] = sum P[t, s] dO[t]. Row r of the block is
    // key s = s0 + r; column u is query t = s0 + u.
    item -= query_items;
    const int b = (int)(item / blocks / d.KV), g = (int)(item / blocks % d.KV);
    const int s0 = (int)(item % blocks) * kRows, rows = std::min(kRows, T - s0);
    const int m = T - s0, mv = round_up(m);
    const int64_t ko = ((int64_t)b * T + s0) * ks + (int64_t)g * hd;  // key s0, kv head g
    const int32_t* sg = seg ? seg + (int64_t)b * T + s0 : nullptr;
    for (int j = 0; j < group; j++) {
      const int h = g * group + j;
      const int64_t bh = (int64_t)b * d.H + h;
      const int64_t qo = ((int64_t)b * T + s0) * qs + (int64_t)h * hd;  // query s0, head h
      matmul_rows(rows, mv, hd, k + ko, ks, qt + bh * hd * ld + s0, ld, scale, false, P, ld);
      matmul_rows(rows, mv, hd, v + ko, ks, got + bh * hd * ld + s0, ld, 1.0f, false, dS, ld);  // dP
      for (int r = 0; r < rows; r++) {
        const bool pad = key_valid && key_valid[(int64_t)b * T + s0 + r] == 0;  // a padding key: no gradient
        mask_row(P + r * ld, mv, r, pad ? r : m, nullptr, sg, sg ? sg[r] : 0);
      }
      for (int r = 0; r < rows; r++) exp_row(P + r * ld, mv, lset + bh * ld + s0, true);
      for (int r = 0; r < rows; r++) grad_row(P + r * ld, dS + r * ld, mv, Dt + bh * ld + s0, true, scale);
      matmul_rows(rows, hd, m, P, ld, dout + qo, qs, 1.0f, j > 0, dv + ko, ks);
      matmul_rows(rows, hd, m, dS, ld, q + qo, qs, 1.0f, j > 0, dk + ko, ks);
    }
  });
}

}  // namespace tf::cpu
