// Causal attention with grouped KV heads, a key padding mask, segment ids (packed sequences) and a query
// offset (KV cache), flash-style: keys are visited in tiles with an online softmax, so the [T, T] score
// matrix never exists; the forward saves log-sum-exp per query and the backward recomputes probabilities
// from it. Semantics, masks and precision choices follow native/cpu/attention.cc.
//
// Layout of every kernel: 128 threads = 4 warps. A tile pairs BQ = 16 queries with BK = 32 keys; warp w owns
// query rows w, w+4, w+8, w+12 of the tile and lane j owns key j, so a row's softmax statistics are warp
// reductions. Products over the head dimension are plain sequential loops per thread. Every output element
// has exactly one writer and a fixed summation order: no atomics, bitwise repeatable.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

constexpr int BQ = 16, BK = 32, kWarps = 4, kAttnThreads = kWarps * 32;
static_assert(BK == 32, "lane j of a warp owns key j of the tile");
static_assert(BQ % kWarps == 0, "each warp owns BQ / kWarps query rows");

// Key s visible to the query at key index tq (the caller has checked s <= tq).
__device__ inline bool visible(const int32_t* key_valid, const int32_t* seg, int64_t row, int s, int tq) {
  if (key_valid && key_valid[row + s] == 0) return false;
  if (seg && seg[row + s] != seg[row + tq]) return false;
  return true;
}

// Shared rows of keys/values are padded to hd + 1 floats, so lane j reading row j hits 32 different banks.
template <typename T>
__device__ inline float dot_row(const float* a, const T* b, int hd) {
  float s = 0;
  for (int i = 0; i < hd; i++) s += a[i] * as_float(b[i]);
  return s;
}


// Copies rows [r0, r0 + n) of a strided [*, stride] matrix (columns col0..col0+hd) into shared [rows, ld] as fp32;
// rows past n are zero-filled so stale values never enter a product.
template <typename T>
__device__ inline void load_rows(float* dst, int ld, int rows, const T* src, int64_t row_stride, int n, int hd) {
  for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
    const int r = idx / hd, c = idx % hd;
    dst[r * ld + c] = r < n ? as_float(src[(int64_t)r * row_stride + c]) : 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Forward. Grid (ceil(Tq / BQ), H, B).

struct FwdSmem {
  static size_t bytes(int hd) {
    return sizeof(double) * 2 * BQ + sizeof(float) * (2 * BQ * hd + BK * (hd + 1) + BQ * BK + BQ);
  }
};

// KV: float, or uint16_t for a bf16 KV cache (widened as the tiles are loaded); TO: the output's type (bf16 in bf16
// mode: o_proj's input).
template <typename KV, typename TO>
__global__ void __launch_bounds__(kAttnThreads)
    attention_fwd_kernel(AttnDims d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                         const int32_t* seg, TO* out, float* lse, float scale) {
  extern __shared__ double smem[];
  const int hd = d.hd;
  double* l_s = smem;                  // [BQ] running sum of exp(s - m)
  double* alpha_s = l_s + BQ;          // [BQ] rescale of this tile
  float* acc = (float*)(alpha_s + BQ);  // [BQ][hd] running P V, in fp32 as the CPU's (fp64 would cost consumer GPUs,
                                        // whose fp64 rate is 1/64, about as much as reading the KV cache)
  float* Qs = acc + BQ * hd;           // [BQ][hd]
  float* KVs = Qs + BQ * hd;           // [BK][hd + 1]: the key tile, then the value tile
  float* Ps = KVs + BK * (hd + 1);     // [BQ][BK]
  float* m_s = Ps + BQ * BK;           // [BQ] running max

  const int b = blockIdx.z, h = blockIdx.y, t0 = blockIdx.x * BQ;
  const int g = h / (d.H / d.KV);
  const int nq = min(BQ, d.Tq - t0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int64_t kvrow = (int64_t)b * d.Tk;  // mask/segment row of this batch element

  load_rows(Qs, hd, BQ, q + ((int64_t)b * d.Tq + t0) * qstride + (int64_t)h * hd, qstride, nq, hd);
  for (int idx = threadIdx.x; idx < BQ * hd; idx += blockDim.x) acc[idx] = 0.0f;
  if (threadIdx.x < BQ) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0;
  }
  // Keys past the last query's position are invisible to the whole tile. A decoding step reads its slot here.
  const int q_off = d.q_off_dev ? *d.q_off_dev : d.q_off;
  const int kend = min(q_off + t0 + nq, d.Tk);
  const KV* kb = k + kvrow * kstride + (int64_t)g * hd;
  const KV* vb = v + kvrow * kstride + (int64_t)g * hd;

  for (int k0 = 0; k0 < kend; k0 += BK) {
    const int nk = min(BK, kend - k0);
    __syncthreads();  // the previous tile is done with KVs and Ps
    load_rows(KVs, hd + 1, BK, kb + (int64_t)k0 * kstride, kstride, nk, hd);
    __syncthreads();
    // Only the tile's nq real rows (a decoding step has 1 of 16): the bound is the same for a whole warp.
    for (int r = warp; r < nq; r += kWarps) {
      const int s = k0 + lane, tq = q_off + t0 + r;
      float sc = -INFINITY;
      if (lane < nk && s <= tq && visible(key_valid, seg, kvrow, s, tq))
        sc = dot_row(Qs + r * hd, KVs + lane * (hd + 1), hd) * scale;
      const float m_old = m_s[r];
      const float m_new = fmaxf(m_old, warp_max(sc));
      const double p = sc == -INFINITY ? 0.0 : exp((double)sc - (double)m_new);
      Ps[r * BK + lane] = (float)p;
      const double psum = warp_sum(p);
      if (lane == 0) {
        // exp(-inf) = 0 resets a row that had seen no visible key; an all-masked tile changes nothing.
        const double alpha = m_new == -INFINITY ? 1.0 : exp((double)m_old - (double)m_new);
        alpha_s[r] = alpha;
        l_s[r] = l_s[r] * alpha + psum;
        m_s[r] = m_new;
      }
    }
    __syncthreads();  // Ps and alpha_s are complete; the key tile is no longer needed
    load_rows(KVs, hd + 1, BK, vb + (int64_t)k0 * kstride, kstride, nk, hd);
    __syncthreads();
    for (int idx = threadIdx.x; idx < nq * hd; idx += blockDim.x) {
      const int r = idx / hd, c = idx % hd;
      float a = (float)(acc[idx] * alpha_s[r]);
      for (int j = 0; j < nk; j++) a = fmaf(Ps[r * BK + j], KVs[j * (hd + 1) + c], a);
      acc[idx] = a;
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nq * hd; idx += blockDim.x) {
    const int r = idx / hd, c = idx % hd;
    const bool none = m_s[r] == -INFINITY;  // no visible key (a left pad): output 0, like the CPU backend
    out[((int64_t)b * d.Tq + t0 + r) * qstride + (int64_t)h * hd + c] =
        from_float<TO>(none ? 0.0f : (float)(acc[idx] / l_s[r]));
  }
  if (lse && (int)threadIdx.x < nq) {
    const int r = threadIdx.x;
    lse[((int64_t)b * d.Tq + t0 + r) * d.H + h] = m_s[r] == -INFINITY ? 0.0f : (float)(m_s[r] + log(l_s[r]));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Backward (Tq == Tk == T, q_off == 0). With P = exp(S - lse), S = scale * q k^T:
//   D = rowsum(dO * O); dS = P * (dO v^T - D); dQ = scale * dS K; dK = scale * dS^T Q; dV = P^T dO.
// Two kernels so that every output row has one writer: one over query tiles (dQ), one over key tiles (dK, dV).

// out fp32, or bf16 (the GEMM path's backward from activations saved in bf16)
template <typename T>
__global__ void attention_bwd_D_kernel(const T* out, const float* dout, int64_t rows, int hd, float* D) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows; i += (int64_t)gridDim.x * blockDim.x)
    D[i] = dot_row(dout + i * hd, out + i * hd, hd);  // rows are (token, head) pairs, each hd long
}

struct DqSmem {
  static size_t bytes(int hd) { return sizeof(float) * (3 * BQ * hd + 2 * BK * (hd + 1) + BQ * BK + 2 * BQ); }
};

__global__ void __launch_bounds__(kAttnThreads)
    attention_bwd_dq_kernel(AttnDims d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                            const int32_t* seg, const float* lse, const float* D, const float* dout, float* dq,
                            float scale) {
  extern __shared__ float fsmem[];
  const int hd = d.hd;
  float* Qs = fsmem;               // [BQ][hd]
  float* dOs = Qs + BQ * hd;       // [BQ][hd]
  float* accq = dOs + BQ * hd;     // [BQ][hd]
  float* Ks = accq + BQ * hd;      // [BK][hd + 1]
  float* Vs = Ks + BK * (hd + 1);  // [BK][hd + 1]
  float* dSs = Vs + BK * (hd + 1); // [BQ][BK]
  float* lse_s = dSs + BQ * BK;    // [BQ]
  float* D_s = lse_s + BQ;         // [BQ]

  const int T = d.Tq;
  const int b = blockIdx.z, h = blockIdx.y, t0 = blockIdx.x * BQ;
  const int g = h / (d.H / d.KV);
  const int nq = min(BQ, T - t0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int64_t kvrow = (int64_t)b * T;
  const int64_t qbase = ((int64_t)b * T + t0) * qstride + (int64_t)h * hd;

  load_rows(Qs, hd, BQ, q + qbase, qstride, nq, hd);
  load_rows(dOs, hd, BQ, dout + qbase, qstride, nq, hd);
  for (int idx = threadIdx.x; idx < BQ * hd; idx += blockDim.x) accq[idx] = 0.0f;
  if (threadIdx.x < BQ) {
    const int r = threadIdx.x;
    lse_s[r] = r < nq ? lse[((int64_t)b * T + t0 + r) * d.H + h] : 0.0f;
    D_s[r] = r < nq ? D[((int64_t)b * T + t0 + r) * d.H + h] : 0.0f;
  }
  const int kend = t0 + nq;  // causal: the tile's last query sees keys up to itself
  const float* kb = k + kvrow * kstride + (int64_t)g * hd;
  const float* vb = v + kvrow * kstride + (int64_t)g * hd;

  for (int k0 = 0; k0 < kend; k0 += BK) {
    const int nk = min(BK, kend - k0);
    __syncthreads();
    load_rows(Ks, hd + 1, BK, kb + (int64_t)k0 * kstride, kstride, nk, hd);
    load_rows(Vs, hd + 1, BK, vb + (int64_t)k0 * kstride, kstride, nk, hd);
    __syncthreads();
    for (int r = warp; r < BQ; r += kWarps) {
      const int s = k0 + lane, t = t0 + r;
      float ds = 0.0f;
      if (r < nq && lane < nk && s <= t && visible(key_valid, seg, kvrow, s, t)) {
        const float sc = dot_row(Qs + r * hd, Ks + lane * (hd + 1), hd) * scale;
        const float p = (float)exp((double)sc - (double)lse_s[r]);
        const float dp = dot_row(dOs + r * hd, Vs + lane * (hd + 1), hd);
        ds = p * (dp - D_s[r]);
      }
      dSs[r * BK + lane] = ds;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < BQ * hd; idx += blockDim.x) {
      const int r = idx / hd, c = idx % hd;
      float a = accq[idx];
      for (int j = 0; j < nk; j++) a += dSs[r * BK + j] * Ks[j * (hd + 1) + c];
      accq[idx] = a;
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nq * hd; idx += blockDim.x) {
    const int r = idx / hd, c = idx % hd;
    dq[qbase + (int64_t)r * qstride + c] = accq[idx] * scale;
  }
}

struct DkvSmem {
  static size_t bytes(int hd) {
    return sizeof(float) * (2 * BK * (hd + 1) + 2 * BK * hd + 2 * BQ * hd + 2 * BQ * BK + 2 * BQ);
  }
};

// Grid (ceil(T / BK), KV, B): one block per key tile of one KV head, looping over every query head of its
// group and every query tile at or after the keys (causal).
__global__ void __launch_bounds__(kAttnThreads)
    attention_bwd_dkv_kernel(AttnDims d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                             const int32_t* seg, const float* lse, const float* D, const float* dout, float* dk,
                             float* dv, float scale) {
  extern __shared__ float fsmem[];
  const int hd = d.hd;
  float* Ks = fsmem;                // [BK][hd + 1]
  float* Vs = Ks + BK * (hd + 1);   // [BK][hd + 1]
  float* acck = Vs + BK * (hd + 1); // [BK][hd]
  float* accv = acck + BK * hd;     // [BK][hd]
  float* Qs = accv + BK * hd;       // [BQ][hd]
  float* dOs = Qs + BQ * hd;        // [BQ][hd]
  float* Ps = dOs + BQ * hd;        // [BQ][BK]
  float* dSs = Ps + BQ * BK;        // [BQ][BK]
  float* lse_s = dSs + BQ * BK;     // [BQ]
  float* D_s = lse_s + BQ;          // [BQ]

  const int T = d.Tq;
  const int b = blockIdx.z, g = blockIdx.y, s0 = blockIdx.x * BK;
  const int group = d.H / d.KV;
  const int nk = min(BK, T - s0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int64_t kvrow = (int64_t)b * T;
  const int64_t kbase = ((int64_t)b * T + s0) * kstride + (int64_t)g * hd;

  load_rows(Ks, hd + 1, BK, k + kbase, kstride, nk, hd);
  load_rows(Vs, hd + 1, BK, v + kbase, kstride, nk, hd);
  for (int idx = threadIdx.x; idx < BK * hd; idx += blockDim.x) acck[idx] = accv[idx] = 0.0f;

  for (int j = 0; j < group; j++) {
    const int h = g * group + j;
    for (int t0 = s0 / BQ * BQ; t0 < T; t0 += BQ) {  // query tiles that can see some key of this tile
      const int nq = min(BQ, T - t0);
      const int64_t qbase = ((int64_t)b * T + t0) * qstride + (int64_t)h * hd;
      __syncthreads();  // the previous query tile is done with Qs, dOs, Ps, dSs
      load_rows(Qs, hd, BQ, q + qbase, qstride, nq, hd);
      load_rows(dOs, hd, BQ, dout + qbase, qstride, nq, hd);
      if (threadIdx.x < BQ) {
        const int r = threadIdx.x;
        lse_s[r] = r < nq ? lse[((int64_t)b * T + t0 + r) * d.H + h] : 0.0f;
        D_s[r] = r < nq ? D[((int64_t)b * T + t0 + r) * d.H + h] : 0.0f;
      }
      __syncthreads();
      for (int r = warp; r < BQ; r += kWarps) {
        const int s = s0 + lane, t = t0 + r;
        float p = 0.0f, ds = 0.0f;
        if (r < nq && lane < nk && s <= t && visible(key_valid, seg, kvrow, s, t)) {
          const float sc = dot_row(Qs + r * hd, Ks + lane * (hd + 1), hd) * scale;
          p = (float)exp((double)sc - (double)lse_s[r]);
          const float dp = dot_row(dOs + r * hd, Vs + lane * (hd + 1), hd);
          ds = p * (dp - D_s[r]);
        }
        Ps[r * BK + lane] = p;
        dSs[r * BK + lane] = ds;
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < BK * hd; idx += blockDim.x) {
        const int kk = idx / hd, c = idx % hd;
        float ak = acck[idx], av = accv[idx];
        for (int r = 0; r < nq; r++) {
          ak += dSs[r * BK + kk] * Qs[r * hd + c];
          av += Ps[r * BK + kk] * dOs[r * hd + c];
        }
        acck[idx] = ak;
        accv[idx] = av;
      }
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nk * hd; idx += blockDim.x) {
    const int kk = idx / hd, c = idx % hd;
    dk[kbase + (int64_t)kk * kstride + c] = acck[idx] * scale;
    dv[kbase + (int64_t)kk * kstride + c] = accv[idx];
  }
}

}  // namespace

void check_attention_dims(const AttnDims& d, bool backward) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument("CUDA attention: " + why + " (B=" + std::to_string(d.B) + " Tq=" +
                                std::to_string(d.Tq) + " Tk=" + std::to_string(d.Tk) + " q_off=" +
                                std::to_string(d.q_off) + " H=" + std::to_string(d.H) + " KV=" +
                                std::to_string(d.KV) + " hd=" + std::to_string(d.hd) + ")");
  };
  if (d.B < 0 || d.Tq < 0 || d.Tk < 0 || d.q_off < 0 || d.H <= 0 || d.KV <= 0 || d.hd <= 0) bad("bad dimensions");
  if (d.H % d.KV != 0) bad("query heads must be a multiple of KV heads");
  if (d.q_off + d.Tq > d.Tk) bad("queries reach past the last key slot");
  if (backward && (d.Tq != d.Tk || d.q_off != 0)) bad("the backward pass needs Tq == Tk and q_off == 0");
}

template <typename T>
void attention_rowdot(const T* out, const float* dout, int64_t rows, int hd, float* D, cudaStream_t s) {
  if (rows == 0) return;
  attention_bwd_D_kernel<T><<<grid_for(rows), kThreads, 0, s>>>(out, dout, rows, hd, D);
  CUDA_LAUNCH_CHECK("attention_bwd_D_kernel");
}
template void attention_rowdot(const float*, const float*, int64_t, int, float*, cudaStream_t);
template void attention_rowdot(const uint16_t*, const float*, int64_t, int, float*, cudaStream_t);

template <typename KV, typename TO>
void attention_fwd(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                   const int32_t* seg, TO* out, float* lse, cudaStream_t s) {
  check_attention_dims(d, false);
  if (d.B == 0 || d.Tq == 0) return;
  const size_t smem = FwdSmem::bytes(d.hd);
  allow_shared_memory((const void*)attention_fwd_kernel<KV, TO>, smem, "attention_fwd_kernel");
  const dim3 grid((d.Tq + BQ - 1) / BQ, d.H, d.B);
  attention_fwd_kernel<KV, TO><<<grid, kAttnThreads, smem, s>>>(d, q, k, v, key_valid, seg, out, lse,
                                                                1.0f / std::sqrt((float)d.hd));
  CUDA_LAUNCH_CHECK("attention_fwd_kernel");
}
template void attention_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*, const int32_t*,
                            float*, float*, cudaStream_t);
template void attention_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                            const int32_t*, float*, float*, cudaStream_t);
template void attention_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*, const int32_t*,
                            uint16_t*, float*, cudaStream_t);
template void attention_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                            const int32_t*, uint16_t*, float*, cudaStream_t);

void attention_bwd(const AttnDims& d, const float* q, const float* k, const float* v, const int32_t* key_valid,
                   const int32_t* seg, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                   float* dv, float* scratch, cudaStream_t s) {
  check_attention_dims(d, true);
  if (d.B == 0 || d.Tq == 0) return;
  const float scale = 1.0f / std::sqrt((float)d.hd);
  const int64_t rows = (int64_t)d.B * d.Tq * d.H;
  float* D = scratch;  // [B*T, H]
  attention_rowdot(out, dout, rows, d.hd, D, s);

  const size_t smem_q = DqSmem::bytes(d.hd);
  allow_shared_memory((const void*)attention_bwd_dq_kernel, smem_q, "attention_bwd_dq_kernel");
  attention_bwd_dq_kernel<<<dim3((d.Tq + BQ - 1) / BQ, d.H, d.B), kAttnThreads, smem_q, s>>>(
      d, q, k, v, key_valid, seg, lse, D, dout, dq, scale);
  CUDA_LAUNCH_CHECK("attention_bwd_dq_kernel");

  const size_t smem_kv = DkvSmem::bytes(d.hd);
  allow_shared_memory((const void*)attention_bwd_dkv_kernel, smem_kv, "attention_bwd_dkv_kernel");
  attention_bwd_dkv_kernel<<<dim3((d.Tk + BK - 1) / BK, d.KV, d.B), kAttnThreads, smem_kv, s>>>(
      d, q, k, v, key_valid, seg, lse, D, dout, dk, dv, scale);
  CUDA_LAUNCH_CHECK("attention_bwd_dkv_kernel");
}

}  // namespace tf::cuda
