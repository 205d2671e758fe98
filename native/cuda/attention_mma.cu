// Attention on the tensor cores in the flash style (bf16 mode, compute capability 8.0 and up): the forward and the two
// backward kernels keep each tile's scores in registers as mma fragments (cuda/mma.cuh), so no score ever reaches
// device memory. The GEMM path (attention_gemm.cu) writes every chunk of scores out in fp32 and reads it back, in
// backward several times: at seq 1024 that traffic is, by estimate, most of what attention costs there.
//
// Precision as the GEMM path's bf16 mode: Q, K, V and dO enter the products rounded to bf16, and so do P and dS;
// scores, the softmax, lse, D and every sum stay fp32. Semantics as native/cpu/attention.cc: causal, grouped KV heads,
// key padding (a query that sees no key: output 0, lse 0), segment ids, and in the forward a query offset into a
// longer key range (a prefill after cached slots). Decoding steps (a slot read on the device) are not for these.
//
// Layout, FlashAttention-2's: 4 warps of 16 rows each. The forward and dQ give each block 64 queries of one head, so a
// warp's rows are queries and its softmax statistics stay in its registers; dK and dV give each block 64 keys of one
// KV head, which sums the group's query heads in order. Two backward kernels, so that every output row has one
// writer: no atomics, and a run repeats bit for bit. Tiles pass through shared memory in bf16, rows padded by 8
// values so that the fragment loads of a warp spread over the banks.
//
// As FlashAttention-2 does, a tile that a warp's queries see whole (every key before them, usable, in their segment)
// skips the mask: only the tiles on the diagonal, and those with padding or a segment's edge, test each score. The
// masked and unmasked loops are one body (`masked` a compile-time constant), so a visible score is the same number
// either way.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/attention_mask.cuh"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/mma.cuh"

namespace tf::cuda {

namespace {

constexpr int kThreadsMma = 128;  // 4 warps
constexpr int kRows = 64;         // a block's queries (forward, dQ) or keys (dK, dV): 16 per warp
constexpr int kTileF = 64;        // keys per tile in the forward
constexpr int kTileB = 32;        // keys per tile in dQ, queries per tile in dK/dV (their registers hold two products)
constexpr int kPad = 8;
constexpr float kLog2e = 1.4426950408889634f;

template <int HD>
constexpr int kLd = HD + kPad;  // a shared tile's row stride, in bf16 values

// Two adjacent values (index i even) of an fp32 or bf16 tensor, packed as bf16.
__device__ inline uint32_t load_pair(const void* src, bool is16, int64_t i) {
  if (is16) return load_u32(static_cast<const uint16_t*>(src) + i);
  const float* f = static_cast<const float*>(src) + i;
  return pack_bf16(f[0], f[1]);
}

// Eight values from index i (a multiple of 8) as bf16: one 16-byte load of bf16 or two of fp32 where the tensor starts on
// 16 bytes (`vec`: any tensor from the pool), else four 32-bit ones.
__device__ inline uint4 load_eight(const void* src, bool is16, bool vec, int64_t i) {
  if (vec && is16) return *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(src) + i);
  if (vec) {
    const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(src) + i);
    const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(src) + i + 4);
    return {pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w)};
  }
  return {load_pair(src, is16, i), load_pair(src, is16, i + 2), load_pair(src, is16, i + 4),
          load_pair(src, is16, i + 6)};
}

// A tile of ROWS rows into shared bf16 [ROWS][HD + kPad]: row r from src[first + r * stride + (0..HD)], zeros from row
// `avail` on (so nothing stale enters a product). Every load of a thread is issued before its first store, so they
// are in flight together instead of one latency each.
template <int HD, int ROWS>
__device__ inline void load_tile(uint16_t* dst, const void* src, bool is16, bool vec, int64_t first, int64_t stride,
                                 int avail) {
  constexpr int LD = kLd<HD>, C = HD / 8, CHUNKS = ROWS * C, PER = (CHUNKS + kThreadsMma - 1) / kThreadsMma;
  uint4 w[PER];
  TF_UNROLL for (int p = 0; p < PER; p++) {
    const int idx = threadIdx.x + p * kThreadsMma, r = idx / C, c = 8 * (idx % C);
    w[p] = idx < CHUNKS && r < avail ? load_eight(src, is16, vec, first + r * stride + c) : uint4{0, 0, 0, 0};
  }
  TF_UNROLL for (int p = 0; p < PER; p++) {
    const int idx = threadIdx.x + p * kThreadsMma;
    if (idx < CHUNKS) *reinterpret_cast<uint4*>(dst + (idx / C) * LD + 8 * (idx % C)) = w[p];
  }
}

// A tile for a later stage: bf16 rows from a 16-byte-aligned tensor go by cp.async (no registers, in flight until the
// caller's async_wait; rows from `avail` on are zero-filled), others as load_tile does (visible after the next barrier).
template <int HD, int ROWS>
__device__ inline void stage_tile(uint16_t* dst, const void* src, bool is16, bool vec, int64_t first, int64_t stride,
                                  int avail) {
  if (!is16 || !vec) return load_tile<HD, ROWS>(dst, src, is16, vec, first, stride, avail);
  constexpr int LD = kLd<HD>, C = HD / 8;
  for (int idx = threadIdx.x; idx < ROWS * C; idx += kThreadsMma) {
    const int r = idx / C, c = 8 * (idx % C);
    const int64_t at = first + (int64_t)min(r, avail - 1) * stride + c;  // (a row past avail reads nothing)
    copy16_async(dst + r * LD + c, static_cast<const uint16_t*>(src) + at, r < avail);
  }
}

// A key loop's stage: the K and V tiles of keys [k0, k0 + ROWS) and their masks (the caller commits).
template <int HD, int ROWS>
__device__ inline void load_key_stage(uint16_t* Ks, uint16_t* Vs, int* ok, int* sg, const void* k, const void* v,
                                      bool kv16, bool vec, int64_t base, int64_t stride, int k0, int kend,
                                      const int32_t* key_valid, const int32_t* seg, int64_t kvrow) {
  const int nk = min(ROWS, kend - k0);
  stage_tile<HD, ROWS>(Ks, k, kv16, vec, base + (int64_t)k0 * stride, stride, nk);
  stage_tile<HD, ROWS>(Vs, v, kv16, vec, base + (int64_t)k0 * stride, stride, nk);
  if (threadIdx.x < ROWS) {
    ok[threadIdx.x] = key_usable(key_valid, kvrow, k0 + threadIdx.x, kend);
    sg[threadIdx.x] = segment_of(seg, kvrow, k0 + threadIdx.x, kend);
  }
}

// A row's maximum and sum over the 4 lanes that hold it (lanes 4g .. 4g+3 of a D fragment).
__device__ inline float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ inline float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Two adjacent output values, fp32 or bf16.
__device__ inline void store_pair(void* dst, bool is16, int64_t i, float a, float b) {
  if (is16) {
    *reinterpret_cast<uint32_t*>(static_cast<uint16_t*>(dst) + i) = pack_bf16(a, b);
  } else {
    float* f = static_cast<float*>(dst) + i;
    f[0] = a;
    f[1] = b;
  }
}

// The double-buffered loop of the three kernels: step `it`'s tiles sit in stage it % 2. load(stage, step) issues a step's
// copies (the next one's while body(stage, step) computes this one); a step's stage is free again after the barrier
// that closes the step before, and an empty group keeps the count async_wait<1> relies on uniform.
template <typename Load, typename Body>
__device__ inline void double_buffered(int steps, Load load, Body body) {
  if (steps > 0) load(0, 0);
  async_commit();
  for (int it = 0; it < steps; it++) {
    if (it + 1 < steps) load((it + 1) & 1, it + 1);
    async_commit();
    async_wait<1>();  // this step's copies are done (the next step's may still be in flight)
    __syncthreads();
    body(it & 1, it);
    __syncthreads();  // every warp is done with this stage before a later step loads into it
  }
}

// acc[j] += A B^T for every 8-row group j of a shared tile: A is the 16 x HD matrix a warp holds as KS = HD / 16 A
// fragments (its queries, or dO), B the tile's rows (keys, or values): S = Q K^T, dP = dO V^T.
template <int LD, int KS, int NT>
__device__ inline void mma_frags_by_tile_t(float (&acc)[NT][4], const uint32_t (&a)[KS][4], const uint16_t* tile) {
  TF_UNROLL for (int j = 0; j < NT; j++) {
    TF_UNROLL for (int kk = 0; kk < KS; kk++) {
      uint32_t fb[2];
      frag_b_t<LD>(fb, tile, j * 8, kk * 16);
      mma_bf16_16816(acc[j], a[kk], fb);
    }
  }
}

// acc[n] += A B for every 8-column tile n of the head: A is the 16 x 16*KK matrix a warp holds as 2*KK accumulator
// fragments (probabilities or dS, rounded to bf16 as they become A fragments), B rows [0, 16*KK) of a shared tile
// (P V, dS K, P^T dO, dS^T Q).
template <int LD, int KK, int NS>
__device__ inline void mma_acc_by_tile(float (&acc)[NS][4], const float (&a)[2 * KK][4], const uint16_t* tile) {
  TF_UNROLL for (int kk = 0; kk < KK; kk++) {
    uint32_t fa[4];
    frag_a_from_d(fa, a[2 * kk], a[2 * kk + 1]);
    TF_UNROLL for (int n = 0; n < NS; n++) {
      uint32_t fb[2];
      frag_b<LD>(fb, tile, kk * 16, n * 8);
      mma_bf16_16816(acc[n], fa, fb);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Forward. Grid (ceil(Tq / 64), H, B). Scores are kept in log2 units (scale * log2 e folded in) for exp2.

template <int HD>
__global__ void __launch_bounds__(kThreadsMma)
    attention_mma_fwd_kernel(AttnDims d, const void* q, bool q16, const void* k, const void* v, bool kv16, bool vec,
                             const int32_t* key_valid, const int32_t* seg, void* out, bool out16, float* lse,
                             float scale_log2) {
  constexpr int LD = kLd<HD>, KS = HD / 16, NS = HD / 8, NT = kTileF / 8;
  // Two stages of the key loop, each a K and a V tile (FwdShared): one is computed while the next one loads.
  extern __shared__ uint4 fwd_words[];
  __shared__ int key_ok[2][kTileF], key_seg[2][kTileF];
  auto keys = [&](int stage) { return reinterpret_cast<uint16_t*>(fwd_words) + stage * 2 * kTileF * LD; };

  const int b = blockIdx.z, h = blockIdx.y, t0 = blockIdx.x * kRows;
  const int g = h / (d.H / d.KV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tc = 2 * (lane % 4);
  const int nq = min(kRows, d.Tq - t0);
  const int64_t qstride = (int64_t)d.H * HD, kstride = (int64_t)d.KV * HD;
  const int64_t kvrow = (int64_t)b * d.Tk;
  const int64_t qbase = ((int64_t)b * d.Tq + t0) * qstride + (int64_t)h * HD;
  const int64_t kvbase = kvrow * kstride + (int64_t)g * HD;

  // The queries go through the second stage's space into fragments each warp holds for the whole loop.
  load_tile<HD, kRows>(keys(1), q, q16, vec, qbase, qstride, nq);
  __syncthreads();
  uint32_t qf[KS][4];
  TF_UNROLL for (int kk = 0; kk < KS; kk++) frag_a<LD>(qf[kk], keys(1), warp * 16, kk * 16);
  __syncthreads();  // every warp has its fragments before the second stage is loaded

  float acc[NS][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows gr and gr + 8: running max (log2), partial sums
  const int kend = min(d.q_off + t0 + nq, d.Tk);               // the block's last query sees keys up to itself
  const int warp_last = d.q_off + t0 + warp * 16 + 15;          // the warp's last query position
  int qseg[2];
  TF_UNROLL for (int hr = 0; hr < 2; hr++) qseg[hr] = segment_of(seg, kvrow, d.q_off + t0 + warp * 16 + gr + 8 * hr, kend);
  auto load = [&](int stage, int step) {
    load_key_stage<HD, kTileF>(keys(stage), keys(stage) + kTileF * LD, key_ok[stage], key_seg[stage], k, v, kv16, vec,
                               kvbase, kstride, step * kTileF, kend, key_valid, seg, kvrow);
  };
  double_buffered((kend + kTileF - 1) / kTileF, load, [&](int cur, int step) {
    const int k0 = step * kTileF;
    // (a warp none of whose queries sees a key of the tile has nothing to add)
    if (k0 <= warp_last && warp * 16 < nq) {
      const uint16_t* Ks = keys(cur);
      const uint16_t* Vs = Ks + kTileF * LD;
      const int* ok = key_ok[cur];
      const int* sg = key_seg[cur];
      float s[NT][4] = {};
      mma_frags_by_tile_t<LD>(s, qf, Ks);  // S = Q K^T
      float mx[2] = {-INFINITY, -INFINITY};
      // (the conditions before warp_all are the same on every lane of the warp)
      const bool whole = k0 + kTileF - 1 <= d.q_off + t0 + warp * 16 && warp * 16 + 16 <= nq &&
                         warp_all(qseg[0] == sg[0] && qseg[1] == sg[0] && keys_in_segment(ok, sg, kTileF, sg[0]));
      auto scale_scores = [&](auto masked) {
        TF_UNROLL for (int j = 0; j < NT; j++) {
          TF_UNROLL for (int i = 0; i < 4; i++) {
            const int r = warp * 16 + gr + 8 * (i / 2), c = j * 8 + tc + (i & 1);
            const bool vis = !decltype(masked)::value ||
                             (r < nq && k0 + c <= d.q_off + t0 + r && ok[c] && sg[c] == qseg[i / 2]);
            s[j][i] = vis ? s[j][i] * scale_log2 : -INFINITY;
            mx[i / 2] = fmaxf(mx[i / 2], s[j][i]);
          }
        }
      };
      if (whole) scale_scores(std::false_type{});
      else scale_scores(std::true_type{});
      float alpha[2];
      TF_UNROLL for (int hr = 0; hr < 2; hr++) {
        const float m_new = fmaxf(m[hr], quad_max(mx[hr]));
        // exp2(-inf) = 0 resets a row that had seen no visible key; a row that still sees none keeps its zeros.
        alpha[hr] = m_new == -INFINITY ? 1.0f : exp2f(m[hr] - m_new);
        m[hr] = m_new;
        l[hr] *= alpha[hr];
      }
      TF_UNROLL for (int j = 0; j < NT; j++) {
        TF_UNROLL for (int i = 0; i < 4; i++) {
          // rounded here, as P V will read it: the row's weights then sum to exactly 1 after the division by l
          const float p = s[j][i] == -INFINITY ? 0.0f : bf16_bits_to_f32(f32_to_bf16_bits(exp2f(s[j][i] - m[i / 2])));
          s[j][i] = p;
          l[i / 2] += p;
        }
      }
      TF_UNROLL for (int n = 0; n < NS; n++) {
        TF_UNROLL for (int i = 0; i < 4; i++) acc[n][i] *= alpha[i / 2];
      }
      mma_acc_by_tile<LD, kTileF / 16>(acc, s, Vs);  // O += P V
    }
  });

  TF_UNROLL for (int hr = 0; hr < 2; hr++) {
    const float sum = quad_sum(l[hr]);
    const int r = warp * 16 + gr + 8 * hr;
    if (r >= nq) continue;
    const bool none = m[hr] == -INFINITY;  // no visible key (a left pad): output 0, like the CPU backend
    const float inv = none ? 0.0f : 1.0f / sum;
    TF_UNROLL for (int n = 0; n < NS; n++)
      store_pair(out, out16, qbase + r * qstride + n * 8 + tc, acc[n][2 * hr] * inv, acc[n][2 * hr + 1] * inv);
    if (lse && lane % 4 == 0)
      lse[((int64_t)b * d.Tq + t0 + r) * d.H + h] = none ? 0.0f : (m[hr] + log2f(sum)) / kLog2e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Backward (Tq == Tk == T, q_off == 0). With P = exp(S - lse), S = scale q k^T and D = rowsum(dO * O):
//   dS = P * (dO v^T - D); dQ = scale dS K; dK = scale dS^T Q; dV = P^T dO.

// dQ. Grid (ceil(T / 64), H, B): per 32-key tile, S and dP as fragments, dS, then dQ += dS K.
template <int HD>
__global__ void __launch_bounds__(kThreadsMma)
    attention_mma_dq_kernel(AttnDims d, const void* q, const void* k, const void* v, bool in16, bool vec,
                            const int32_t* key_valid, const int32_t* seg, const float* lse, const float* D,
                            const uint16_t* dout, float* dq, float scale, float scale_log2) {
  constexpr int LD = kLd<HD>, KS = HD / 16, NS = HD / 8, NT = kTileB / 8;
  // Two stages of the key loop, each a 32-key K tile and its V tile (one computed while the next loads); before the
  // loop Q, then dO, pass through the second one on their way to the fragments.
  __shared__ uint4 words[2 * kRows * LD / 8];
  __shared__ int key_ok[2][kTileB], key_seg[2][kTileB];
  auto keys = [&](int stage) { return reinterpret_cast<uint16_t*>(words) + stage * kRows * LD; };
  uint16_t* tile = keys(1);

  const int T = d.Tq;
  const int b = blockIdx.z, h = blockIdx.y, t0 = blockIdx.x * kRows;
  const int g = h / (d.H / d.KV);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tc = 2 * (lane % 4);
  const int nq = min(kRows, T - t0);
  const int64_t qstride = (int64_t)d.H * HD, kstride = (int64_t)d.KV * HD;
  const int64_t kvrow = (int64_t)b * T;
  const int64_t qbase = ((int64_t)b * T + t0) * qstride + (int64_t)h * HD;
  const int64_t kvbase = kvrow * kstride + (int64_t)g * HD;

  uint32_t qf[KS][4], df[KS][4];
  load_tile<HD, kRows>(tile, q, in16, vec, qbase, qstride, nq);
  __syncthreads();
  TF_UNROLL for (int kk = 0; kk < KS; kk++) frag_a<LD>(qf[kk], tile, warp * 16, kk * 16);
  __syncthreads();
  load_tile<HD, kRows>(tile, dout, true, vec, qbase, qstride, nq);
  __syncthreads();
  TF_UNROLL for (int kk = 0; kk < KS; kk++) frag_a<LD>(df[kk], tile, warp * 16, kk * 16);
  __syncthreads();  // every warp has its fragments before the second stage is loaded
  float lse2[2], Dr[2];
  TF_UNROLL for (int hr = 0; hr < 2; hr++) {
    const int r = warp * 16 + gr + 8 * hr;
    const int64_t at = ((int64_t)b * T + t0 + r) * d.H + h;
    lse2[hr] = r < nq ? lse[at] * kLog2e : 0.0f;
    Dr[hr] = r < nq ? D[at] : 0.0f;
  }

  float acc[NS][4] = {};
  const int kend = t0 + nq;  // causal
  const int warp_last = t0 + warp * 16 + 15;
  int qseg[2];
  TF_UNROLL for (int hr = 0; hr < 2; hr++) qseg[hr] = segment_of(seg, kvrow, t0 + warp * 16 + gr + 8 * hr, kend);
  auto load = [&](int stage, int step) {
    load_key_stage<HD, kTileB>(keys(stage), keys(stage) + kTileB * LD, key_ok[stage], key_seg[stage], k, v, in16, vec,
                               kvbase, kstride, step * kTileB, kend, key_valid, seg, kvrow);
  };
  double_buffered((kend + kTileB - 1) / kTileB, load, [&](int cur, int step) {
    const int k0 = step * kTileB;
    if (k0 <= warp_last && warp * 16 < nq) {
      const uint16_t* Ks = keys(cur);
      const uint16_t* Vs = Ks + kTileB * LD;
      const int* ok = key_ok[cur];
      const int* sg = key_seg[cur];
      float s[NT][4] = {}, dp[NT][4] = {};
      mma_frags_by_tile_t<LD>(s, qf, Ks);   // S = Q K^T
      mma_frags_by_tile_t<LD>(dp, df, Vs);  // dP = dO V^T
      const bool whole = k0 + kTileB - 1 <= t0 + warp * 16 && warp * 16 + 16 <= nq &&
                         warp_all(qseg[0] == sg[0] && qseg[1] == sg[0] && keys_in_segment(ok, sg, kTileB, sg[0]));
      auto grad_scores = [&](auto masked) {
        TF_UNROLL for (int j = 0; j < NT; j++) {
          TF_UNROLL for (int i = 0; i < 4; i++) {
            const int r = warp * 16 + gr + 8 * (i / 2), c = j * 8 + tc + (i & 1);
            const bool vis =
                !decltype(masked)::value || (r < nq && k0 + c <= t0 + r && ok[c] && sg[c] == qseg[i / 2]);
            const float p = vis ? exp2f(s[j][i] * scale_log2 - lse2[i / 2]) : 0.0f;
            s[j][i] = p * (dp[j][i] - Dr[i / 2]);  // dS
          }
        }
      };
      if (whole) grad_scores(std::false_type{});
      else grad_scores(std::true_type{});
      mma_acc_by_tile<LD, kTileB / 16>(acc, s, Ks);  // dQ += dS K
    }
  });
  TF_UNROLL for (int hr = 0; hr < 2; hr++) {
    const int r = warp * 16 + gr + 8 * hr;
    if (r >= nq) continue;
    TF_UNROLL for (int n = 0; n < NS; n++)
      store_pair(dq, false, qbase + r * qstride + n * 8 + tc, acc[n][2 * hr] * scale, acc[n][2 * hr + 1] * scale);
  }
}

// dK and dV. Grid (ceil(T / 64), KV, B): a block's 64 keys stay in shared memory while it visits every query head of
// the group and every 32-query tile at or after the keys (causal). Each warp holds S^T and dP^T of its 16 keys.
template <int HD>
struct DkvShared {
  // K and V, then two stages of a Q and a dO tile, then two stages of the rows' lse, D and segment
  static constexpr size_t bytes = sizeof(uint16_t) * (2 * kRows + 2 * 2 * kTileB) * kLd<HD> +
                                  sizeof(float) * 2 * 3 * kTileB;
};

template <int HD>
__global__ void __launch_bounds__(kThreadsMma)
    attention_mma_dkv_kernel(AttnDims d, const void* q, const void* k, const void* v, bool in16, bool vec,
                             const int32_t* key_valid, const int32_t* seg, const float* lse, const float* D,
                             const uint16_t* dout, float* dk, float* dv, float scale, float scale_log2) {
  constexpr int LD = kLd<HD>, KS = HD / 16, NS = HD / 8, NT = kTileB / 8;
  extern __shared__ uint4 dkv_words[];  // DkvShared
  uint16_t* Ks = reinterpret_cast<uint16_t*>(dkv_words);
  uint16_t* Vs = Ks + kRows * LD;
  auto q_tile = [&](int stage) { return Vs + kRows * LD + stage * 2 * kTileB * LD; };  // then dO's at + kTileB * LD
  float* const rows_at = reinterpret_cast<float*>(Vs + kRows * LD + 2 * 2 * kTileB * LD);
  auto row_stats = [&](int stage) { return rows_at + stage * 3 * kTileB; };  // lse (log2 units), D, segment

  const int T = d.Tq;
  const int b = blockIdx.z, g = blockIdx.y, s0 = blockIdx.x * kRows;
  const int group = d.H / d.KV;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gr = lane / 4, tc = 2 * (lane % 4);
  const int nk = min(kRows, T - s0);
  const int64_t qstride = (int64_t)d.H * HD, kstride = (int64_t)d.KV * HD;
  const int64_t kvrow = (int64_t)b * T;
  const int64_t kbase = ((int64_t)b * T + s0) * kstride + (int64_t)g * HD;

  load_tile<HD, kRows>(Ks, k, in16, vec, kbase, kstride, nk);
  load_tile<HD, kRows>(Vs, v, in16, vec, kbase, kstride, nk);
  float dka[NS][4] = {}, dva[NS][4] = {};
  const int warp_first = s0 + warp * 16;  // the warp's first key
  bool kok[2];
  int kseg[2];
  TF_UNROLL for (int hr = 0; hr < 2; hr++) {
    kok[hr] = key_usable(key_valid, kvrow, warp_first + gr + 8 * hr, s0 + nk);
    kseg[hr] = segment_of(seg, kvrow, warp_first + gr + 8 * hr, s0 + nk);
  }

  // One step per (query head of the group, 32-query tile at or after the keys), double-buffered like the key loops.
  const int first_t0 = s0 / kTileB * kTileB, tiles = (T - first_t0 + kTileB - 1) / kTileB, steps = group * tiles;
  auto load_stage = [&](int stage, int step) {
    const int h = g * group + step / tiles, t0 = first_t0 + (step % tiles) * kTileB, nq = min(kTileB, T - t0);
    const int64_t qbase = ((int64_t)b * T + t0) * qstride + (int64_t)h * HD;
    stage_tile<HD, kTileB>(q_tile(stage), q, in16, vec, qbase, qstride, nq);
    stage_tile<HD, kTileB>(q_tile(stage) + kTileB * LD, dout, true, vec, qbase, qstride, nq);
    if (threadIdx.x < kTileB) {
      const int r = threadIdx.x;
      const int64_t at = ((int64_t)b * T + t0 + r) * d.H + h;
      float* st = row_stats(stage);
      st[r] = r < nq ? lse[at] * kLog2e : 0.0f;
      st[kTileB + r] = r < nq ? D[at] : 0.0f;
      reinterpret_cast<int*>(st)[2 * kTileB + r] = segment_of(seg, kvrow, t0 + r, t0 + nq);
    }
  };
  // (the first step's barrier also publishes K and V)
  double_buffered(steps, load_stage, [&](int cur, int it) {
    const int t0 = first_t0 + (it % tiles) * kTileB, nq = min(kTileB, T - t0);
    // a warp whose keys all come after the tile's queries has nothing to add
    if (warp_first <= t0 + nq - 1 && warp * 16 < nk) {
      const uint16_t* Qs = q_tile(cur);
      const uint16_t* dOs = Qs + kTileB * LD;
      const float* lse_s = row_stats(cur);
      const float* D_s = lse_s + kTileB;
      const int* qseg_s = reinterpret_cast<const int*>(lse_s) + 2 * kTileB;
      float st[NT][4] = {}, dpt[NT][4] = {};
      TF_UNROLL for (int kk = 0; kk < KS; kk++) {
        uint32_t ka[4], va[4];
        frag_a<LD>(ka, Ks, warp * 16, kk * 16);
        frag_a<LD>(va, Vs, warp * 16, kk * 16);
        TF_UNROLL for (int n = 0; n < NT; n++) {
          uint32_t bf[2];
          frag_b_t<LD>(bf, Qs, n * 8, kk * 16);
          mma_bf16_16816(st[n], ka, bf);
          frag_b_t<LD>(bf, dOs, n * 8, kk * 16);
          mma_bf16_16816(dpt[n], va, bf);
        }
      }
      // every query of the tile real and after the warp's last key, the warp's keys usable and all in one segment
      static_assert(kTileB == 32, "a lane per query of the tile");
      const bool whole = nq == kTileB && warp_first + 15 <= t0 &&
                         warp_all(kok[0] && kok[1] && kseg[0] == qseg_s[0] && kseg[1] == qseg_s[0] &&
                                  qseg_s[lane] == qseg_s[0]);
      auto grad_scores = [&](auto masked) {
        TF_UNROLL for (int n = 0; n < NT; n++) {
          TF_UNROLL for (int i = 0; i < 4; i++) {
            const int qi = n * 8 + tc + (i & 1);
            const bool vis = !decltype(masked)::value || (qi < nq && warp_first + gr + 8 * (i / 2) <= t0 + qi &&
                                                          kok[i / 2] && kseg[i / 2] == qseg_s[qi]);
            const float p = vis ? exp2f(st[n][i] * scale_log2 - lse_s[qi]) : 0.0f;
            st[n][i] = p;
            dpt[n][i] = p * (dpt[n][i] - D_s[qi]);  // dS^T
          }
        }
      };
      if (whole) grad_scores(std::false_type{});
      else grad_scores(std::true_type{});
      mma_acc_by_tile<LD, kTileB / 16>(dva, st, dOs);  // dV += P^T dO
      mma_acc_by_tile<LD, kTileB / 16>(dka, dpt, Qs);  // dK += dS^T Q
    }
  });
  TF_UNROLL for (int hr = 0; hr < 2; hr++) {
    const int r = warp * 16 + gr + 8 * hr;
    if (r >= nk) continue;
    const int64_t at = kbase + r * kstride;
    TF_UNROLL for (int n = 0; n < NS; n++) {
      store_pair(dk, false, at + n * 8 + tc, dka[n][2 * hr] * scale, dka[n][2 * hr + 1] * scale);
      store_pair(dv, false, at + n * 8 + tc, dva[n][2 * hr], dva[n][2 * hr + 1]);
    }
  }
}

// The kernels are compiled for these head dimensions (multiples of 16: a product's k step), each its own unrolled
// instance; others take the GEMM path.
template <template <int> class Launch, typename... A>
void with_head_dim(int hd, A&&... args) {
  switch (hd) {
    case 16: return Launch<16>::run(args...);
    case 32: return Launch<32>::run(args...);
    case 64: return Launch<64>::run(args...);
    case 80: return Launch<80>::run(args...);
    case 96: return Launch<96>::run(args...);
    case 128: return Launch<128>::run(args...);
  }
  throw std::invalid_argument("attention_mma: no kernel for head dim " + std::to_string(hd));
}

template <int HD>
struct LaunchFwd {
  static void run(const AttnDims& d, const void* q, bool q16, const void* k, const void* v, bool kv16, bool vec,
                  const int32_t* key_valid, const int32_t* seg, void* out, bool out16, float* lse, cudaStream_t s) {
    const dim3 grid((d.Tq + kRows - 1) / kRows, d.H, d.B);
    const float scale_log2 = kLog2e / std::sqrt((float)HD);
    const size_t smem = sizeof(uint16_t) * 2 * 2 * kTileF * kLd<HD>;  // two stages of a K and a V tile
    allow_shared_memory((const void*)attention_mma_fwd_kernel<HD>, smem, "attention_mma_fwd_kernel");
    attention_mma_fwd_kernel<HD><<<grid, kThreadsMma, smem, s>>>(d, q, q16, k, v, kv16, vec, key_valid, seg, out, out16, lse, scale_log2);
    CUDA_LAUNCH_CHECK("attention_mma_fwd_kernel");
  }
};

template <int HD>
struct LaunchBwd {
  static void run(const AttnDims& d, const void* q, const void* k, const void* v, bool in16, bool vec,
                  const int32_t* key_valid, const int32_t* seg, const float* lse, const float* D,
                  const uint16_t* dout, float* dq, float* dk, float* dv, cudaStream_t s) {
    const float scale = 1.0f / std::sqrt((float)HD), scale_log2 = kLog2e * scale;
    const dim3 qgrid((d.Tq + kRows - 1) / kRows, d.H, d.B);
    attention_mma_dq_kernel<HD><<<qgrid, kThreadsMma, 0, s>>>(d, q, k, v, in16, vec, key_valid, seg, lse, D, dout, dq, scale, scale_log2);
    CUDA_LAUNCH_CHECK("attention_mma_dq_kernel");
    const size_t smem = DkvShared<HD>::bytes;
    allow_shared_memory((const void*)attention_mma_dkv_kernel<HD>, smem, "attention_mma_dkv_kernel");
    const dim3 kgrid((d.Tk + kRows - 1) / kRows, d.KV, d.B);
    attention_mma_dkv_kernel<HD><<<kgrid, kThreadsMma, smem, s>>>(d, q, k, v, in16, vec, key_valid, seg, lse, D, dout, dk, dv, scale, scale_log2);
    CUDA_LAUNCH_CHECK("attention_mma_dkv_kernel");
  }
};

}  // namespace

bool attention_mma_compiled() {
  // Code built for compute 8.0 or later (SASS, or PTX the driver compiles): a build for older targets only, run on a
  // newer GPU, would JIT the 7.x PTX, where mma.sync and cp.async are __trap().
  cudaFuncAttributes a{};
  CUDA_CHECK(cudaFuncGetAttributes(&a, (const void*)attention_mma_fwd_kernel<64>));
  return a.ptxVersion >= 80;
}

bool attention_mma_fits(const AttnDims& d, std::initializer_list<const void*> tensors) {
  // Pairs of values are read and written as one 32-bit word: tensors must start on one (rows and heads then do).
  for (const void* p : tensors)
    if (!aligned(p, 4)) return false;
  switch (d.hd) {
    case 16:
    case 32:
    case 64:
    case 80:
    case 96:
    case 128:
      return !d.q_off_dev;
  }
  return false;
}

template <typename TQ, typename KV, typename TO>
void attention_mma_fwd(const AttnDims& d, const TQ* q, const KV* k, const KV* v, const int32_t* key_valid,
                       const int32_t* seg, TO* out, float* lse, cudaStream_t s) {
  check_attention_dims(d, false);
  if (!attention_mma_fits(d, {q, k, v, out}))
    throw std::invalid_argument("attention_mma_fwd: a call attention_mma_fits refuses");
  if (d.B == 0 || d.Tq == 0) return;
  constexpr bool q16 = sizeof(TQ) == 2, kv16 = sizeof(KV) == 2, out16 = sizeof(TO) == 2;
  const bool vec = aligned(q, 16) && aligned(k, 16) && aligned(v, 16);
  with_head_dim<LaunchFwd>(d.hd, d, q, q16, k, v, kv16, vec, key_valid, seg, out, out16, lse, s);
}

size_t attention_mma_bytes(const AttnDims& d, bool backward) {
  return backward ? sizeof(uint16_t) * (size_t)d.B * d.Tq * d.H * d.hd : 0;
}

template <typename T>
void attention_mma_bwd(const AttnDims& d, const T* q, const T* k, const T* v, const int32_t* key_valid,
                       const int32_t* seg, const T* out, const float* lse, const float* dout, float* dq, float* dk,
                       float* dv, float* scratch, void* work, cudaStream_t s) {
  check_attention_dims(d, true);
  if (!attention_mma_fits(d, {q, k, v, out}))
    throw std::invalid_argument("attention_mma_bwd: a call attention_mma_fits refuses");
  if (d.B == 0 || d.Tq == 0) return;
  float* D = scratch;  // [B*T, H]
  const int64_t n = (int64_t)d.B * d.Tq * d.H * d.hd;
  attention_rowdot(out, dout, n / d.hd, d.hd, D, s);
  // dO in bf16 once (the products read it so anyway): the dK/dV blocks read it again for every key block after it
  uint16_t* dout16 = static_cast<uint16_t*>(work);
  narrow_bf16(dout, n, dout16, s);
  const bool vec = aligned(q, 16) && aligned(k, 16) && aligned(v, 16) && aligned(dout16, 16);
  with_head_dim<LaunchBwd>(d.hd, d, q, k, v, sizeof(T) == 2, vec, key_valid, seg, lse, D, dout16, dq, dk, dv, s);
}

template void attention_mma_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                const int32_t*, float*, float*, cudaStream_t);
template void attention_mma_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                                const int32_t*, float*, float*, cudaStream_t);
template void attention_mma_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                const int32_t*, uint16_t*, float*, cudaStream_t);
template void attention_mma_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                                const int32_t*, uint16_t*, float*, cudaStream_t);
template void attention_mma_bwd(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                const int32_t*, const float*, const float*, const float*, float*, float*, float*,
                                float*, void*, cudaStream_t);
template void attention_mma_bwd(const AttnDims&, const uint16_t*, const uint16_t*, const uint16_t*, const int32_t*,
                                const int32_t*, const uint16_t*, const float*, const float*, float*, float*, float*,
                                float*, void*, cudaStream_t);

}  // namespace tf::cuda
