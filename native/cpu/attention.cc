// Causal scaled-dot-product attention with grouped KV heads, a key padding mask and optional segment ids
// (packed sequences never attend across examples). Softmax statistics are kept as log-sum-exp per query so
// the backward pass recomputes probabilities instead of storing [T, T] matrices.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/kernels.h"

namespace tf::cpu {

namespace {

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

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
#pragma omp parallel
  {
    std::vector<float> p(d.Tk);
    std::vector<double> acc(d.hd);
#pragma omp for collapse(3) schedule(static)
    for (int b = 0; b < d.B; b++)
      for (int t = 0; t < d.Tq; t++)
        for (int h = 0; h < d.H; h++) {
          const int tq = d.q_off + t;
          const int64_t qi = (int64_t)b * d.Tq + t;
          const float* qv = q + qi * qstride + (int64_t)h * d.hd;
          const float* kb = k + (int64_t)b * d.Tk * kstride + (int64_t)(h / group) * d.hd;
          const float* vb = v + (int64_t)b * d.Tk * kstride + (int64_t)(h / group) * d.hd;
          float* o = out + qi * qstride + (int64_t)h * d.hd;
          float mx = -std::numeric_limits<float>::infinity();
          for (int s = 0; s <= tq; s++) {
            if (!visible(d, key_valid, seg, b, s, tq)) {
              p[s] = -std::numeric_limits<float>::infinity();
              continue;
            }
            p[s] = dot(qv, kb + s * kstride, d.hd) * scale;
            if (p[s] > mx) mx = p[s];
          }
          if (mx == -std::numeric_limits<float>::infinity()) {  // no visible key (a left pad): output 0
            for (int i = 0; i < d.hd; i++) o[i] = 0.0f;
            if (lse) lse[qi * d.H + h] = 0.0f;
            continue;
          }
          double sum = 0;
          for (int i = 0; i < d.hd; i++) acc[i] = 0;
          for (int s = 0; s <= tq; s++) {
            if (p[s] == -std::numeric_limits<float>::infinity()) continue;
            const double e = std::exp((double)p[s] - mx);
            sum += e;
            const float* vs = vb + s * kstride;
            for (int i = 0; i < d.hd; i++) acc[i] += e * vs[i];
          }
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

#pragma omp parallel
  {
    std::vector<double> acc(d.hd);
#pragma omp for collapse(3) schedule(static)
    for (int b = 0; b < d.B; b++)
      for (int t = 0; t < T; t++)
        for (int h = 0; h < d.H; h++) {
          const int64_t qi = (int64_t)b * T + t;
          const int64_t off = qi * qstride + (int64_t)h * d.hd;
          const float Di = dot(dout + off, out + off, d.hd);
          D[qi * d.H + h] = Di;
          const float L = lse[qi * d.H + h];
          const float* kb = k + (int64_t)b * T * kstride + (int64_t)(h / group) * d.hd;
          const float* vb = v + (int64_t)b * T * kstride + (int64_t)(h / group) * d.hd;
          for (int i = 0; i < d.hd; i++) acc[i] = 0;
          for (int s = 0; s <= t; s++) {
            if (!visible(d, key_valid, seg, b, s, t)) continue;
            const float P = std::exp(dot(q + off, kb + s * kstride, d.hd) * scale - L);
            const float dS = P * (dot(dout + off, vb + s * kstride, d.hd) - Di);
            for (int i = 0; i < d.hd; i++) acc[i] += (double)dS * kb[s * kstride + i];
          }
          for (int i = 0; i < d.hd; i++) dq[off + i] = (float)(acc[i] * scale);
        }
  }

#pragma omp parallel
  {
    std::vector<double> ak(d.hd), av(d.hd);
#pragma omp for collapse(3) schedule(static)
    for (int b = 0; b < d.B; b++)
      for (int s = 0; s < T; s++)
        for (int g = 0; g < d.KV; g++) {
          const int64_t ko = ((int64_t)b * T + s) * kstride + (int64_t)g * d.hd;
          for (int i = 0; i < d.hd; i++) ak[i] = av[i] = 0;
          for (int t = s; t < T; t++) {
            if (!visible(d, key_valid, seg, b, s, t)) continue;
            const int64_t qi = (int64_t)b * T + t;
            for (int h = g * group; h < (g + 1) * group; h++) {
              const int64_t off = qi * qstride + (int64_t)h * d.hd;
              const float P = std::exp(dot(q + off, k + ko, d.hd) * scale - lse[qi * d.H + h]);
              const float dS = P * (dot(dout + off, v + ko, d.hd) - D[qi * d.H + h]);
              for (int i = 0; i < d.hd; i++) {
                ak[i] += (double)dS * q[off + i];
                av[i] += (double)P * dout[off + i];
              }
            }
          }
          for (int i = 0; i < d.hd; i++) {
            dk[ko + i] = (float)(ak[i] * scale);
            dv[ko + i] = (float)av[i];
          }
        }
  }
}

}  // namespace tf::cpu
