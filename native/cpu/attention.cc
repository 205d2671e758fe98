// Causal scaled-dot-product attention with grouped KV heads, a key padding mask and optional segment ids
// (packed sequences never attend across examples). Softmax statistics are kept as log-sum-exp per query so
// the backward pass recomputes probabilities instead of storing [T, T] matrices.
// Work items are single (query or key, head) rows; their cost grows along the causal triangle, so they are
// handed out dynamically. Each item is computed by one thread start to finish, so results do not depend on
// the thread count. Dot products and backward accumulations are fp32 vectors; the exps are vectorised (vec.h).
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace tf::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float a, const float* x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// y += a x with a double accumulator: the forward output feeds the loss, whose smoothness the finite-difference
// gradient checks depend on (fp32 accumulation here made them fail).
inline void axpy(double* y, float a, const float* x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] += (double)a * x[i];
}

// Multiply-adds of one pass over the causal triangle, to decide whether to fork threads.
inline int64_t work(const AttnDims& d) { return (int64_t)d.B * d.H * d.Tq * (d.q_off + d.Tq / 2 + 1) * d.hd; }

inline bool visible(const AttnDims& d, const int32_t* key_valid, const int32_t* seg, int b, int s, int tq) {
  const int64_t row = (int64_t)b * d.Tk;
  if (key_valid && key_valid[row + s] == 0) return false;
  if (seg && seg[row + s] != seg[row + tq]) return false;
  return true;
}

}  // namespace

void attention_fwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, float* out, float* lse) {
  const int group = d.H / d.KV;
  const float scale = 1.0f / std::sqrt((float)d.hd);
  const int64_t qstride = (int64_t)d.H * d.hd, kstride = (int64_t)d.KV * d.hd;
#pragma omp parallel if (work(d) >= kParallelMin)
  {
    std::vector<float> p(d.Tk);
    std::vector<double> acc(d.hd);
#pragma omp for collapse(3) schedule(dynamic, 4)
    for (int b = 0; b < d.B; b++)
      for (int t = 0; t < d.Tq; t++)
        for (int h = 0; h < d.H; h++) {
          const int tq = d.q_off + t;
          const int64_t qi = (int64_t)b * d.Tq + t;
          const float* qv = q + qi * qstride + (int64_t)h * d.hd;
          const float* kb = k + (int64_t)b * d.Tk * kstride + (int64_t)(h / group) * d.hd;
          const float* vb = v + (int64_t)b * d.Tk * kstride + (int64_t)(h / group) * d.hd;
          float* o = out + qi * qstride + (int64_t)h * d.hd;
          float mx = kNegInf;
          for (int s = 0; s <= tq; s++) {
            p[s] = visible(d, key_valid, seg, b, s, tq) ? dot(qv, kb + s * kstride, d.hd) * scale : kNegInf;
            mx = p[s] > mx ? p[s] : mx;
          }
          if (mx == kNegInf) {  // no visible key (a left pad): output 0
            for (int i = 0; i < d.hd; i++) o[i] = 0.0f;
            if (lse) lse[qi * d.H + h] = 0.0f;
            continue;
          }
          const double sum = vec::exp_sum(p.data(), tq + 1, mx, p.data());
          for (int i = 0; i < d.hd; i++) acc[i] = 0;
          for (int s = 0; s <= tq; s++)
            if (p[s] != 0.0f) axpy(acc.data(), p[s], vb + s * kstride, d.hd);
          for (int i = 0; i < d.hd; i++) o[i] = (float)(acc[i] / sum);
          if (lse) lse[qi * d.H + h] = (float)(mx + std::log(sum));
        }
  }
}

// With P = softmax(S), S = scale * q k^T: dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dO * O));
// dQ = scale * dS K; dK = scale * dS^T Q. Two passes so each output row has one writer: queries, then keys.
void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v,
                   const int32_t* key_valid, const int32_t* seg, const float* out, const float* lse,
                   const float* dout, float* dq, float* dk, float* dv, float* scratch) {
  const int group = d.H / d.KV;
  const float scale = 1.0f / std::sqrt((float)d.hd);
  const int64_t qstride = (int64_t)d.H * d.hd, kstride = (int64_t)d.KV * d.hd;
  float* D = scratch;  // [B*T, H]: rowsum(dO * O)
  const int T = d.Tq;

#pragma omp parallel for collapse(2) schedule(static) if (work(d) >= kParallelMin)
  for (int64_t qi = 0; qi < (int64_t)d.B * T; qi++)
    for (int h = 0; h < d.H; h++) {
      const int64_t off = qi * qstride + (int64_t)h * d.hd;
      D[qi * d.H + h] = dot(dout + off, out + off, d.hd);
    }

  // Queries: dq[t] = scale * sum_s dS[t, s] k[s].
#pragma omp parallel if (work(d) >= kParallelMin)
  {
    std::vector<float> P(T), acc(d.hd);
#pragma omp for collapse(3) schedule(dynamic, 4)
    for (int b = 0; b < d.B; b++)
      for (int t = 0; t < T; t++)
        for (int h = 0; h < d.H; h++) {
          const int64_t qi = (int64_t)b * T + t;
          const int64_t off = qi * qstride + (int64_t)h * d.hd;
          const float* kb = k + (int64_t)b * T * kstride + (int64_t)(h / group) * d.hd;
          const float* vb = v + (int64_t)b * T * kstride + (int64_t)(h / group) * d.hd;
          const float L = lse[qi * d.H + h], Di = D[qi * d.H + h];
          for (int s = 0; s <= t; s++)
            P[s] = visible(d, key_valid, seg, b, s, t) ? dot(q + off, kb + s * kstride, d.hd) * scale : kNegInf;
          vec::exp_sum(P.data(), t + 1, L, P.data());  // P = exp(S - lse)
          for (int i = 0; i < d.hd; i++) acc[i] = 0;
          for (int s = 0; s <= t; s++) {
            if (P[s] == 0.0f) continue;
            const float dS = P[s] * (dot(dout + off, vb + s * kstride, d.hd) - Di);
            axpy(acc.data(), dS, kb + s * kstride, d.hd);
          }
          for (int i = 0; i < d.hd; i++) dq[off + i] = acc[i] * scale;
        }
  }

  // Keys: dk[s] = scale * sum_{t, h in group} dS[t, s] q[t]; dv[s] = sum P[t, s] dO[t]. Rows are (t, h) pairs.
#pragma omp parallel if (work(d) >= kParallelMin)
  {
    std::vector<float> P((size_t)T * group), ak(d.hd), av(d.hd);
#pragma omp for collapse(3) schedule(dynamic, 4)
    for (int b = 0; b < d.B; b++)
      for (int s = 0; s < T; s++)
        for (int g = 0; g < d.KV; g++) {
          const int64_t ko = ((int64_t)b * T + s) * kstride + (int64_t)g * d.hd;
          const int n = (T - s) * group;  // P[(t - s) * group + j] for query t, head g * group + j
          for (int t = s; t < T; t++) {
            const bool vis = visible(d, key_valid, seg, b, s, t);
            const int64_t qi = (int64_t)b * T + t;
            for (int j = 0; j < group; j++) {
              const int h = g * group + j;
              const float* qh = q + qi * qstride + (int64_t)h * d.hd;
              P[(t - s) * group + j] = vis ? dot(qh, k + ko, d.hd) * scale - lse[qi * d.H + h] : kNegInf;
            }
          }
          vec::exp_sum(P.data(), n, 0.0f, P.data());
          for (int i = 0; i < d.hd; i++) ak[i] = av[i] = 0;
          for (int t = s; t < T; t++) {
            const int64_t qi = (int64_t)b * T + t;
            for (int j = 0; j < group; j++) {
              const float p = P[(t - s) * group + j];
              if (p == 0.0f) continue;
              const int h = g * group + j;
              const int64_t off = qi * qstride + (int64_t)h * d.hd;
              const float dS = p * (dot(dout + off, v + ko, d.hd) - D[qi * d.H + h]);
              axpy(ak.data(), dS, q + off, d.hd);
              axpy(av.data(), p, dout + off, d.hd);
            }
          }
          for (int i = 0; i < d.hd; i++) {
            dk[ko + i] = ak[i] * scale;
            dv[ko + i] = av[i];
          }
        }
  }
}

}  // namespace tf::cpu
