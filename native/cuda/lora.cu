// LoRA's down-projection x A^T and its two gradients, with the dropout mask drawn where each element is used (the
// generator of Backend::dropout, engine/dropout_rng.h). Done as dropout + cuBLAS, every adapted projection wrote a
// mask and a dropped copy of its input ([N, in] each) and read them back, about 60 bytes per input element and
// projection in a training step: more traffic than the base products' own. These kernels read the input once per
// product and store nothing but the rank-r results. lora_up adds the up-projection (with the projection's bias) to
// the base product's output, fp32 or bf16, in one read and write of it.
//
// All are small GEMMs in which one side is the rank r: fp32 on CUDA cores, 256 threads, each thread a 4 x 4
// register tile of a 256 x 16 (lora_down, lora_down_grad) or 32 x 128 (lora_dx) block tile, or 4 x 8 of 64 x 128
// (lora_up), operands staged through shared memory 16 deep. The long sums (over `in`, or over the N rows for A's
// gradient) are split across blocks when the tiles alone would not fill the GPU; the partial sums are added by a
// second kernel in split order, so results repeat bit for bit.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "engine/dropout_rng.h"

namespace tf::cuda {

namespace {

constexpr int kTileK = 16;    // depth of one shared-memory stage
constexpr int kTileJ = 16;    // rank columns per block (grid.z walks the rest)
constexpr int kTileRows = 256;  // rows (lora_down) or input columns (lora_down_grad) per block
constexpr int kRowsKernelMax = 64;  // lora_down on this many rows or fewer: a warp per output (decoding steps)

using Mask = DropoutMask;  // Backend::dropout's mask (engine/dropout_rng.h), drawn where each element is used

// 8 consecutive values at p, fp32 or bf16 (16-byte aligned), to and from fp32: one 16-byte access of bf16, two of fp32.
template <typename T>
__device__ inline void load8(const T* p, float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    widen8_bf16(*reinterpret_cast<const uint4*>(p), v);
  } else {
    const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}
template <typename T>
__device__ inline void store8(T* p, const float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    *reinterpret_cast<uint4*>(p) = narrow8_bf16(v);
  } else {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}

// x[i .. i + 8) widened and masked (the caller checked that rows are 8-aligned).
template <typename T>
__device__ inline void load8_masked(const T* x, int64_t i, const Mask& mask, float (&v)[8]) {
  load8(x + i, v);
  if (mask.active())
    for (int q = 0; q < 8; q++) v[q] *= mask.at(i + q);
}

// Rows of x (and of y in lora_up) are read 8 values at a time where their width allows it (16-byte vectors).
template <typename T>
bool rows_of_8(const T* p, int width) {
  return width % 8 == 0 && aligned(p, 16);
}

// Blocks the GPU runs at once, roughly: a grid smaller than this gets its long sum split.
int target_blocks() {
  static const int blocks = [] {
    int dev = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    return 4 * (sms > 0 ? sms : 1);
  }();
  return blocks;
}

// Splits of a sum over `steps` stages for a grid of `blocks` tiles: enough to reach target_blocks, each split
// `per` stages long (the last may be shorter).
struct Split {
  int count, per;
};
Split split_for(int64_t blocks, int steps) {
  const int64_t want = (target_blocks() + blocks - 1) / blocks;
  int count = (int)std::max<int64_t>(1, std::min<int64_t>(want, steps));
  const int per = (steps + count - 1) / count;
  count = (steps + per - 1) / per;
  return {count, per};
}

// One stage of a 4 x 4 register tile: acc[a][b] += u[k][ui + SU a] v[k][vi + SV b] over the stage's kTileK rows.
template <int LU, int LV, int SU, int SV>
__device__ inline void stage_fma(const float (*u)[LU], int ui, const float (*v)[LV], int vi, float acc[4][4]) {
  for (int k = 0; k < kTileK; k++) {
    float uk[4], vk[4];
    for (int a = 0; a < 4; a++) uk[a] = u[k][ui + SU * a];
    for (int b = 0; b < 4; b++) vk[b] = v[k][vi + SV * b];
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++) acc[a][b] = fmaf(uk[a], vk[b], acc[a][b]);
  }
}

// Rows [row0, row0 + ROWS) of a row-major [rows, r] matrix (xa, dxa, B), ranks [j0, j0 + kTileK), into shared
// dst[j][row], zeros past either end: the rank-major tiles stage_fma reads, loaded by the block's 256 threads.
template <int ROWS, int LD>
__device__ inline void stage_rank_tile(float (*dst)[LD], const float* m, int rows, int r, int row0, int j0) {
  for (int e = threadIdx.x; e < ROWS * kTileK; e += 256) {
    const int n = e / kTileK, j = e % kTileK;
    dst[j][n] = j0 + j < r && row0 + n < rows ? m[(int64_t)(row0 + n) * r + j0 + j] : 0.0f;
  }
}

// xa[n, j] (or split s's part of it) = sum over this split's i of x[n, i] mask(n in + i) A[j, i].
// Thread t: rows n0 + t % 64 + 64 a, rank columns j0 + t / 64 + 4 b (a, b < 4).
template <typename T, bool kVec>
__global__ void __launch_bounds__(256) lora_down_kernel(const T* x, int N, int in, const float* A, int r, Mask mask,
                                                        int per, float* out, bool partial) {
  __shared__ float xs[kTileK][kTileRows + 1];  // masked x, [i][n]
  __shared__ float as[kTileK][kTileJ + 1];     // A, [i][j]
  const int t = threadIdx.x, tn = t % 64, tj = t / 64;
  const int n0 = blockIdx.x * kTileRows, j0 = blockIdx.z * kTileJ;
  const int k_begin = blockIdx.y * per * kTileK, k_end = min(in, k_begin + per * kTileK);
  float acc[4][4] = {};
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    if constexpr (kVec) {  // in % 8 == 0: a thread takes 8 consecutive inputs of a row, two such a stage
      for (int e = t; e < kTileRows * kTileK / 8; e += 256) {
        const int n = e / (kTileK / 8), k = e % (kTileK / 8) * 8;
        float v[8] = {};
        if (n0 + n < N && k0 + k < k_end) load8_masked(x, (int64_t)(n0 + n) * in + k0 + k, mask, v);
        for (int q = 0; q < 8; q++) xs[k + q][n] = v[q];
      }
    } else {
      for (int e = t; e < kTileRows * kTileK; e += 256) {
        const int n = e / kTileK, k = e % kTileK;
        const int64_t gi = (int64_t)(n0 + n) * in + k0 + k;
        xs[k][n] = n0 + n < N && k0 + k < k_end ? as_float(x[gi]) * mask.at(gi) : 0.0f;
      }
    }
    {
      const int j = t / kTileK, k = t % kTileK;
      as[k][j] = j0 + j < r && k0 + k < k_end ? A[(int64_t)(j0 + j) * in + k0 + k] : 0.0f;
    }
    __syncthreads();
    stage_fma<kTileRows + 1, kTileJ + 1, 64, 4>(xs, tn, as, tj, acc);
    __syncthreads();
  }
  float* dst = out + (partial ? (int64_t)blockIdx.y * N * r : 0);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      const int n = n0 + tn + 64 * a, j = j0 + tj + 4 * b;
      if (n < N && j < r) dst[(int64_t)n * r + j] = acc[a][b];
    }
}

// A decoding step's few rows: one warp per (row, rank column) dot product over `in`, its lanes striding the input.
// One launch and no partial sums, where the tiled kernel would need a split of the input (and a second launch) to
// give the GPU more than one block; the warp's butterfly sum has a fixed order.
template <typename T>
__global__ void lora_down_rows_kernel(const T* x, int N, int in, const float* A, int r, Mask mask, float* xa) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = (int64_t)gridDim.x * blockDim.x / 32;
  // whole warps walk the outputs together: every lane of one has the same `w`
  for (int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32; w < (int64_t)N * r; w += warps) {
    const int n = (int)(w / r), j = (int)(w % r);
    const int64_t row = (int64_t)n * in;
    float sum = 0.0f;
    for (int i = lane; i < in; i += 32)
      sum = fmaf(as_float(x[row + i]) * mask.at(row + i), A[(int64_t)j * in + i], sum);
    sum = warp_sum(sum);
    if (lane == 0) xa[(int64_t)n * r + j] = sum;
  }
}

// gA[j, i] (+)= sum over this split's rows n of dxa[n, j] x[n, i] mask(n in + i): written to split s's part, or
// added to gA when the sum is not split. Thread t: input columns i0 + t % 64 + 64 a, rank columns j0 + t / 64 + 4 b.
template <typename T, bool kVec>
__global__ void __launch_bounds__(256) lora_down_grad_kernel(const T* x, int N, int in, const float* dxa, int r,
                                                             Mask mask, int per, float* out, bool partial) {
  alignas(16) __shared__ float xs[kTileK][kTileRows];  // masked x, [n][i]
  __shared__ float ds[kTileK][kTileJ];     // dxa, [n][j]
  const int t = threadIdx.x, ti = t % 64, tj = t / 64;
  const int i0 = blockIdx.x * kTileRows, j0 = blockIdx.z * kTileJ;
  const int n_begin = blockIdx.y * per * kTileK, n_end = min(N, n_begin + per * kTileK);
  float acc[4][4] = {};
  for (int m0 = n_begin; m0 < n_end; m0 += kTileK) {
    if constexpr (kVec) {  // in % 8 == 0: a thread takes 8 consecutive columns of a row, two such a stage
      for (int e = t; e < kTileK * kTileRows / 8; e += 256) {
        const int k = e / (kTileRows / 8), c = e % (kTileRows / 8) * 8;
        float v[8] = {};
        if (m0 + k < n_end && i0 + c < in) load8_masked(x, (int64_t)(m0 + k) * in + i0 + c, mask, v);
        *reinterpret_cast<float4*>(&xs[k][c]) = make_float4(v[0], v[1], v[2], v[3]);
        *reinterpret_cast<float4*>(&xs[k][c + 4]) = make_float4(v[4], v[5], v[6], v[7]);
      }
    } else {
      for (int k = 0; k < kTileK; k++) {  // one row of the tile per pass: 256 consecutive columns
        const int64_t gi = (int64_t)(m0 + k) * in + i0 + t;
        xs[k][t] = m0 + k < n_end && i0 + t < in ? as_float(x[gi]) * mask.at(gi) : 0.0f;
      }
    }
    {
      const int k = t / kTileJ, j = t % kTileJ;
      ds[k][j] = m0 + k < n_end && j0 + j < r ? dxa[(int64_t)(m0 + k) * r + j0 + j] : 0.0f;
    }
    __syncthreads();
    stage_fma<kTileRows, kTileJ, 64, 4>(xs, ti, ds, tj, acc);
    __syncthreads();
  }
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      const int i = i0 + ti + 64 * a, j = j0 + tj + 4 * b;
      if (i >= in || j >= r) continue;
      const int64_t o = (int64_t)j * in + i;
      if (partial) out[(int64_t)blockIdx.y * r * in + o] = acc[a][b];
      else out[o] += acc[a][b];
    }
}

// y[e] (+)= sum over the splits of part[s * n + e], in split order.
__global__ void sum_splits_kernel(const float* part, int splits, int64_t n, float* y, bool accumulate) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    float s = accumulate ? y[e] : 0.0f;
    float sum = 0.0f;
    for (int k = 0; k < splits; k++) sum += part[k * n + e];
    y[e] = s + sum;
  }
}

// dx[n, i] += sum over the terms of mask_k(n in + i) (dxa_k A_k)[n, i]. Block tile: 32 rows x 128 columns; thread t:
// rows n0 + t / 32 + 8 a, columns i0 + t % 32 + 32 b (a warp writes 32 consecutive columns of a row).
struct DxTerms {
  const float* A[kMaxLoraTerms];
  const float* dxa[kMaxLoraTerms];
  Mask mask[kMaxLoraTerms];
  int count;
};
__global__ void __launch_bounds__(256) lora_dx_kernel(float* dx, int N, int in, int r, DxTerms terms) {
  constexpr int kRows = 32, kCols = 128;
  __shared__ float ds[kTileK][kRows];  // dxa, [j][n]
  __shared__ float as[kTileK][kCols];  // A, [j][i]
  const int t = threadIdx.x, tn = t / 32, ti = t % 32;
  const int n0 = blockIdx.y * kRows, i0 = blockIdx.x * kCols;
  float out[4][4] = {};
  TF_UNROLL
  for (int term = 0; term < kMaxLoraTerms; term++) {  // unrolled: constant indices into the parameter (no local copy)
    if (term >= terms.count) break;
    const float* A = terms.A[term];
    const float* dxa = terms.dxa[term];
    float acc[4][4] = {};
    for (int j0 = 0; j0 < r; j0 += kTileK) {
      stage_rank_tile<kRows>(ds, dxa, N, r, n0, j0);
      for (int e = t; e < kTileK * kCols; e += 256) {
        const int j = e / kCols, i = e % kCols;
        as[j][i] = j0 + j < r && i0 + i < in ? A[(int64_t)(j0 + j) * in + i0 + i] : 0.0f;
      }
      __syncthreads();
      stage_fma<kRows, kCols, 8, 32>(ds, tn, as, ti, acc);
      __syncthreads();
    }
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++) {
        const int64_t gi = (int64_t)(n0 + tn + 8 * a) * in + i0 + ti + 32 * b;
        out[a][b] += terms.mask[term].at(gi) * acc[a][b];
      }
  }
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      const int n = n0 + tn + 8 * a, i = i0 + ti + 32 * b;
      if (n < N && i < in) dx[(int64_t)n * in + i] += out[a][b];
    }
}

// Decoding steps (inference on a few rows, no dropout): xa_k = x A_k^T for the group's terms in one launch spread over
// the GPU, block (split s of the input, term k), partial sums into `part`; the last block of a term to finish adds its
// splits in split order into xa_k (results repeat bit for bit). The readers of the products add the up-projections
// (lora_up.cuh). (One block per few rows and term, which made x A^T with a warp per dot product and then the
// up-projection, gave a batch-32 step 24 blocks with long dependent loops; its LoRA then took several times the
// roofline of the whole layer.)
struct DownTerms {
  const float* A[kMaxLoraTerms];
};
// picked with constant indices: indexing a kernel parameter array at run time would copy it to local memory
__device__ inline const float* term_A(const DownTerms& t, int k) {
  static_assert(kMaxLoraTerms == 3, "one choice per term");
  return k == 0 ? t.A[0] : k == 1 ? t.A[1] : t.A[2];
}

constexpr int kApplySplitsMax = 32;  // splits of the input (per term)
constexpr int kApplyRowsPass = 64;   // rows per pass: 8 warps x 8
constexpr int kApplyRankStage = 16;  // ranks per pass: a half-warp

// Each split at least 64 inputs long, a multiple of 8 (two half-warps' 4-wide vectors).
struct ApplySplit {
  int count, len;
};
ApplySplit apply_split(int in) {
  int len = std::max(64, (in + kApplySplitsMax - 1) / kApplySplitsMax);
  len = (len + 7) / 8 * 8;
  return {(in + len - 1) / len, len};
}

// V consecutive values from i on, widened to fp32 (V = 4: one 16-byte or 8-byte load; the caller checked alignment).
template <int V, typename T>
__device__ inline void load_vec(const T* p, int64_t i, float (&v)[V]) {
  if constexpr (V == 4 && sizeof(T) == 4) {
    const float4 f = *reinterpret_cast<const float4*>(p + i);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else if constexpr (V == 4) {
    const uint2 h = *reinterpret_cast<const uint2*>(p + i);  // four bf16, the lower index in the low half
    v[0] = bf16_bits_to_f32((uint16_t)h.x), v[1] = bf16_bits_to_f32((uint16_t)(h.x >> 16));
    v[2] = bf16_bits_to_f32((uint16_t)h.y), v[3] = bf16_bits_to_f32((uint16_t)(h.y >> 16));
  } else {
    for (int e = 0; e < V; e++) v[e] = as_float(p[i + e]);
  }
}

// part[((k S + s) N + n) r + j] = sum over split s's inputs i of x[n, i] A_k[j, i]. Warp w takes rows w, w + 8, ...;
// lane (j, h) = (lane % 16, lane / 16) rank j0 + j and every other V-wide vector of the split (h = 0 the even ones): a
// half-warp reads one x address at a time (a broadcast), each lane a rank's row of A. One shuffle adds the halves.
// arrived[k] counts term k's finished blocks; the last one sums the splits into xa + k N r and sets it back to 0 for
// the next launch (a replayed decoding step).
template <typename T, int V>
__global__ void __launch_bounds__(256) lora_apply_down_kernel(const T* x, int N, int in, int r, DownTerms terms,
                                                              int len, float* part, float* xa, unsigned* arrived) {
  constexpr int kRowsPerWarp = kApplyRowsPass / 8;
  const int k = blockIdx.y;
  const float* A = term_A(terms, k);
  const int S = gridDim.x, s = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, jl = lane % kApplyRankStage, h = lane / kApplyRankStage;
  const int i_begin = s * len, i_end = min(in, i_begin + len);
  const int64_t nr = (int64_t)N * r;
  float* out = part + ((int64_t)k * S + s) * nr;
  for (int n0 = 0; n0 < N; n0 += kApplyRowsPass)
    for (int j0 = 0; j0 < r; j0 += kApplyRankStage) {
      const int j = j0 + jl;
      const float* a = A + (int64_t)min(j, r - 1) * in;  // lanes past r compute a copy, never written
      float acc[kRowsPerWarp] = {};
      // Every load of a vector step is issued before its sums, and two steps at a time: a split is only 8 steps at
      // most widths, so they are latency, not bandwidth.
      TF_UNROLL_BY(2)
      for (int i = i_begin + V * h; i < i_end; i += 2 * V) {
        float av[V], xv[kRowsPerWarp][V];
        load_vec<V>(a, i, av);
        TF_UNROLL
        for (int q = 0; q < kRowsPerWarp; q++) {
          const int n = n0 + warp + 8 * q;  // the same on every lane of the warp
          if (n < N) load_vec<V>(x, (int64_t)n * in + i, xv[q]);
        }
        TF_UNROLL
        for (int q = 0; q < kRowsPerWarp; q++)
          if (n0 + warp + 8 * q < N)
            TF_UNROLL
            for (int e = 0; e < V; e++) acc[q] = fmaf(xv[q][e], av[e], acc[q]);
      }
      TF_UNROLL
      for (int q = 0; q < kRowsPerWarp; q++) {
        acc[q] += __shfl_xor_sync(0xffffffffu, acc[q], kApplyRankStage);
        const int n = n0 + warp + 8 * q;
        if (h == 0 && j < r && n < N) out[(int64_t)n * r + j] = acc[q];
      }
    }
  if (!last_block_done(&arrived[k], S)) return;
  const float* pk = part + (int64_t)k * S * nr;
  for (int64_t e = threadIdx.x; e < nr; e += blockDim.x) {
    float sum = 0.0f;
    for (int sp = 0; sp < S; sp++) sum += __ldcg(pk + sp * nr + e);  // other blocks' writes: read past the L1 cache
    xa[(int64_t)k * nr + e] = sum;
  }
  if (threadIdx.x == 0) arrived[k] = 0;
}

// y[n, c] = y + bias[c] + scale sum_j xa[n, j] B[c, j], rounded once into y's type: LoRA's up-projection (and the
// projection's bias) added to the base product's output in one read and write of it; without accumulate y is only
// written (bias + scale xa B^T: the base product adds onto it). A 64 x 128 tile of y per block,
// thread t rows n0 + t / 16 + 16 a (a < 4) and the 8 consecutive columns c0 + 8 (t % 16) of each; xa and B staged 16
// ranks deep. kVec (rows of 8s, 16-byte aligned: every model's widths): y moves 16 bytes (bf16) or 32 bytes (fp32)
// per access, 16 threads covering 128 columns of a row; otherwise one value at a time.
template <typename T, bool kVec>
__global__ void __launch_bounds__(256) lora_up_kernel(T* y, int N, int out, const float* xa, const float* B, int r,
                                                      float scale, const float* bias, bool accumulate) {
  constexpr int kRows = 64, kCols = 128;
  __shared__ float xs[kTileK][kRows + 1];               // xa, [j][n]
  alignas(16) __shared__ float bs[kTileK][kCols + 4];  // B, [j][c]; the pad spreads a column's ranks over banks
  const int t = threadIdx.x, tc = t % 16 * 8, tn = t / 16;
  const int c0 = blockIdx.x * kCols, n0 = blockIdx.y * kRows;
  float acc[4][8] = {};
  for (int j0 = 0; j0 < r; j0 += kTileK) {
    stage_rank_tile<kRows>(xs, xa, N, r, n0, j0);
    stage_rank_tile<kCols>(bs, B, out, r, c0, j0);
    __syncthreads();
    for (int j = 0; j < kTileK; j++) {
      const float4 b0 = *reinterpret_cast<const float4*>(&bs[j][tc]);
      const float4 b1 = *reinterpret_cast<const float4*>(&bs[j][tc + 4]);
      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
      for (int a = 0; a < 4; a++) {
        const float xv = xs[j][tn + 16 * a];
        for (int q = 0; q < 8; q++) acc[a][q] = fmaf(xv, bv[q], acc[a][q]);
      }
    }
    __syncthreads();
  }
  const int c = c0 + tc;
  if (c >= out) return;
  const int width = min(8, out - c);  // 8 with kVec
  float bias8[8] = {};
  if (bias)
    for (int q = 0; q < 8; q++)
      if (q < width) bias8[q] = bias[c + q];
  for (int a = 0; a < 4; a++) {
    const int n = n0 + tn + 16 * a;
    if (n >= N) break;
    T* row = y + (int64_t)n * out + c;
    float v[8] = {};
    if (accumulate) {
      if constexpr (kVec) {
        load8(row, v);
      } else {
        for (int q = 0; q < 8; q++)
          if (q < width) v[q] = as_float(row[q]);
      }
    }
    for (int q = 0; q < 8; q++) v[q] = v[q] + bias8[q] + scale * acc[a][q];
    if constexpr (kVec) {
      store8(row, v);
    } else {
      for (int q = 0; q < 8; q++)
        if (q < width) row[q] = from_float<T>(v[q]);
    }
  }
}

int blocks_of(int64_t n, int tile) { return (int)((n + tile - 1) / tile); }

Split down_split(int N, int in, int r) {
  return split_for((int64_t)blocks_of(N, kTileRows) * blocks_of(r, kTileJ), blocks_of(in, kTileK));
}
Split grad_split(int N, int in, int r) {
  return split_for((int64_t)blocks_of(in, kTileRows) * blocks_of(r, kTileJ), blocks_of(N, kTileK));
}

void sum_splits(const float* part, int splits, int64_t n, float* y, bool accumulate, cudaStream_t s) {
  sum_splits_kernel<<<grid_for(n), kThreads, 0, s>>>(part, splits, n, y, accumulate);
  CUDA_LAUNCH_CHECK("sum_splits_kernel");
}

}  // namespace

size_t lora_work_floats(int N, int in, int r) {
  const Split d = down_split(N, in, r), g = grad_split(N, in, r);
  const size_t down = d.count > 1 && N > kRowsKernelMax ? (size_t)d.count * N * r : 0, grad = g.count > 1 ? (size_t)g.count * r * in : 0;
  return std::max<size_t>(1, std::max(down, grad));
}

template <typename T>
void lora_down(const T* x, int N, int in, const float* A, int r, float p, uint64_t seed, float* xa, float* work,
               cudaStream_t s) {
  if (N <= 0 || r <= 0) return;
  if (in <= 0) {
    CUDA_CHECK(cudaMemsetAsync(xa, 0, sizeof(float) * N * r, s));
    return;
  }
  if (N <= kRowsKernelMax) {
    lora_down_rows_kernel<T><<<grid_for((int64_t)N * r * 32), kThreads, 0, s>>>(x, N, in, A, r, Mask::make(p, seed), xa);
    CUDA_LAUNCH_CHECK("lora_down_rows_kernel");
    return;
  }
  const Split sp = down_split(N, in, r);
  const dim3 grid(blocks_of(N, kTileRows), sp.count, blocks_of(r, kTileJ));
  const bool partial = sp.count > 1;
  float* out = partial ? work : xa;
  const Mask mask = Mask::make(p, seed);
  if (rows_of_8(x, in)) lora_down_kernel<T, true><<<grid, 256, 0, s>>>(x, N, in, A, r, mask, sp.per, out, partial);
  else lora_down_kernel<T, false><<<grid, 256, 0, s>>>(x, N, in, A, r, mask, sp.per, out, partial);
  CUDA_LAUNCH_CHECK("lora_down_kernel");
  if (partial) sum_splits(work, sp.count, (int64_t)N * r, xa, false, s);
}

template <typename T>
void lora_down_grad(const T* x, int N, int in, const float* dxa, int r, float p, uint64_t seed, float* gA, float* work,
                    cudaStream_t s) {
  if (N <= 0 || r <= 0 || in <= 0) return;
  const Split sp = grad_split(N, in, r);
  const dim3 grid(blocks_of(in, kTileRows), sp.count, blocks_of(r, kTileJ));
  const bool partial = sp.count > 1;
  float* out = partial ? work : gA;
  const Mask mask = Mask::make(p, seed);
  if (rows_of_8(x, in)) lora_down_grad_kernel<T, true><<<grid, 256, 0, s>>>(x, N, in, dxa, r, mask, sp.per, out, partial);
  else lora_down_grad_kernel<T, false><<<grid, 256, 0, s>>>(x, N, in, dxa, r, mask, sp.per, out, partial);
  CUDA_LAUNCH_CHECK("lora_down_grad_kernel");
  if (partial) sum_splits(work, sp.count, (int64_t)r * in, gA, true, s);
}

void lora_dx(float* dx, int N, int in, int r, float p, const LoraTerm* terms, int count, cudaStream_t s) {
  if (N <= 0 || in <= 0 || r <= 0 || count <= 0) return;
  if (count > kMaxLoraTerms) throw std::invalid_argument("CUDA lora_dx: more terms than kMaxLoraTerms");
  DxTerms dt{};
  for (int k = 0; k < count; k++) {
    dt.A[k] = terms[k].A;
    dt.dxa[k] = terms[k].dxa;
    dt.mask[k] = Mask::make(p, terms[k].seed);
  }
  dt.count = count;
  const dim3 grid(blocks_of(in, 128), blocks_of(N, 32));
  lora_dx_kernel<<<grid, 256, 0, s>>>(dx, N, in, r, dt);
  CUDA_LAUNCH_CHECK("lora_dx_kernel");
}

size_t lora_apply_work_floats(int N, int in, int r, int count) {
  return std::max<size_t>(1, (size_t)count * apply_split(in).count * N * r);
}

void lora_apply_down(const float* x, const uint16_t* x16, int N, int in, int r, const float* const* A, int count,
                     float* xa, float* work, unsigned* arrived, cudaStream_t s) {
  if (N <= 0 || r <= 0 || count <= 0) return;
  if (count > kMaxLoraTerms) throw std::invalid_argument("CUDA lora_apply_down: more terms than kMaxLoraTerms");
  if (in <= 0) {
    CUDA_CHECK(cudaMemsetAsync(xa, 0, sizeof(float) * count * N * r, s));
    return;
  }
  DownTerms dt{};
  bool vec = in % 4 == 0 && (x16 ? aligned(x16, 8) : aligned(x, 16));
  for (int k = 0; k < count; k++) {
    dt.A[k] = A[k];
    vec = vec && aligned(A[k], 16);
  }
  const ApplySplit sp = apply_split(in);
  const dim3 grid(sp.count, count);
  if (x16 && vec) lora_apply_down_kernel<uint16_t, 4><<<grid, 256, 0, s>>>(x16, N, in, r, dt, sp.len, work, xa, arrived);
  else if (x16) lora_apply_down_kernel<uint16_t, 1><<<grid, 256, 0, s>>>(x16, N, in, r, dt, sp.len, work, xa, arrived);
  else if (vec) lora_apply_down_kernel<float, 4><<<grid, 256, 0, s>>>(x, N, in, r, dt, sp.len, work, xa, arrived);
  else lora_apply_down_kernel<float, 1><<<grid, 256, 0, s>>>(x, N, in, r, dt, sp.len, work, xa, arrived);
  CUDA_LAUNCH_CHECK("lora_apply_down_kernel");
}

template <typename T>
void lora_up(T* y, int N, int out, const float* xa, const float* B, int r, float scale, const float* bias,
             bool accumulate, cudaStream_t s) {
  if (N <= 0 || out <= 0 || (accumulate && r <= 0 && !bias)) return;
  const dim3 grid(blocks_of(out, 128), blocks_of(N, 64));
  const int rr = std::max(r, 0);
  if (rows_of_8(y, out)) lora_up_kernel<T, true><<<grid, 256, 0, s>>>(y, N, out, xa, B, rr, scale, bias, accumulate);
  else lora_up_kernel<T, false><<<grid, 256, 0, s>>>(y, N, out, xa, B, rr, scale, bias, accumulate);
  CUDA_LAUNCH_CHECK("lora_up_kernel");
}

template void lora_up(float*, int, int, const float*, const float*, int, float, const float*, bool, cudaStream_t);
template void lora_up(uint16_t*, int, int, const float*, const float*, int, float, const float*, bool, cudaStream_t);
template void lora_down(const float*, int, int, const float*, int, float, uint64_t, float*, float*, cudaStream_t);
template void lora_down(const uint16_t*, int, int, const float*, int, float, uint64_t, float*, float*, cudaStream_t);
template void lora_down_grad(const float*, int, int, const float*, int, float, uint64_t, float*, float*,
                             cudaStream_t);
template void lora_down_grad(const uint16_t*, int, int, const float*, int, float, uint64_t, float*, float*,
                             cudaStream_t);

}  // namespace tf::cuda
