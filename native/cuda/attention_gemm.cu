// Attention on tensor cores through cuBLAS: the query rows are visited in chunks, and for each chunk the scores
// S = scale Q_c K^T, the output P V and (backward) the four gradient products are batched GEMMs; our kernels only
// rearrange heads, mask, and do the softmax (and its gradient) row by row. Only one chunk of scores,
// [B*H, Qc, keys], exists at a time (kScoreBytes bounds it), never the [T, T] matrix. Semantics as attention.cu
// and native/cpu/attention.cc: causal, GQA, key padding (a query that sees no key: output 0, lse 0), segment ids,
// q_off into a KV cache, lse saved for the backward.
//
// Layout. The GEMMs are batched over (b, KV head g) with constant strides, so the operands are first packed
// head-major: K and V into [B*KV, keys, hd]; a chunk's queries (and dO) into [B*KV, G*nq, hd], whose row
// r = j*nq + tt is query q0 + tt of head h = g*G + j (the G query heads sharing K/V stacked as rows). One product
// then serves the whole group, and dK = scale dS^T Q, dV = P^T dO sum over the group's heads inside the GEMM.
//
// Precision. fp32 mode: SGEMM (TF32 off, the backend's math mode), parity with the CPU. bf16 mode (base weights
// in bf16): Q, K, V, dO are rounded to bf16 when packed and P, dS when written, then bf16 x bf16 -> fp32 GEMMs
// (CUBLAS_COMPUTE_32F); scores, softmax, lse, D and every accumulation stay fp32.
//
// Determinism: fixed chunk order, dK/dV accumulated with beta = 1 into buffers zeroed once, no atomics; cuBLAS
// picks the same kernels for the same shapes, so a run repeats bit for bit on one GPU and cuBLAS version.
#include <algorithm>
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

constexpr int64_t kScoreBytes = int64_t{64} << 20;  // fp32 bytes of one chunk's scores (all batch rows and heads)
// Query rows per chunk at most: each chunk computes the whole [rows, keys <= q1] block, so the upper triangle
// inside the chunk is wasted work (rows/2 per row); 128 rows keep that small while M = G*128 fills the GEMMs.
constexpr int kMaxChunkRows = 128;
constexpr int kRowWarps = 4;  // the row kernels: one warp per score row, 4 per block

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The workspace of one call, carved from one buffer: the same function of the dims sizes it (backend.cu) and
// uses it, so the two always agree.
struct Plan {
  int G, BK, Tkv, Qc, ldmax;
  size_t esz;  // bytes of a packed operand element: 4 (fp32) or 2 (bf16)
  size_t kp = 0, vp = 0, qp = 0, dop = 0, s = 0, dp = 0, p16 = 0, ds16 = 0, o = 0, dkp = 0, dvp = 0, total = 0;

  Plan(const AttnDims& d, bool bf16, bool backward) {
    G = d.H / d.KV;
    BK = d.B * d.KV;
    Tkv = d.q_off + d.Tq;  // keys any query of the call can see (causal)
    // Score rows have a leading dimension of a multiple of 8 elements (16-byte aligned bf16 rows for the tensor
    // cores); the largest chunk is the last, which sees all Tkv keys.
    ldmax = (int)round_up(Tkv, 8);
    const int64_t row_bytes = 4 * (int64_t)d.B * d.H * ldmax;  // one query row of scores for every batch row, head
    Qc = (int)std::min<int64_t>({std::max<int64_t>(1, kScoreBytes / std::max<int64_t>(row_bytes, 1)), kMaxChunkRows,
                                 (int64_t)d.Tq});
    esz = bf16 ? 2 : 4;
    const size_t kv = (size_t)BK * Tkv * d.hd, qrows = (size_t)BK * G * Qc * d.hd,
                 scores = (size_t)BK * G * Qc * ldmax;
    auto take = [&](size_t bytes) {
      const size_t at = total;
      total += (size_t)round_up((int64_t)bytes, 256);
      return at;
    };
    kp = take(kv * esz);
    vp = take(kv * esz);
    qp = take(qrows * esz);
    s = take(scores * 4);
    o = take(qrows * 4);  // P V (forward) or dQ (backward), packed
    if (bf16) p16 = take(scores * 2);
    if (backward) {
      dop = take(qrows * esz);
      dp = take(scores * 4);
      if (bf16) ds16 = take(scores * 2);
      dkp = take(kv * 4);
      dvp = take(kv * 4);
    }
  }
};

template <typename T>
T* at(void* base, size_t off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

// Index of element (i = b*KV + g, row r = j*n + tt, column c) of a packed [B*KV, G*n, hd] operand in the
// engine's row-major [B, T, KV*G*hd] layout, whose rows t0 .. t0+n-1 it holds.
struct HeadMap {
  int T, t0, n, KV, G, hd;
  __device__ int64_t src(int64_t idx) const {
    const int c = (int)(idx % hd);
    const int64_t rest = idx / hd;
    const int r = (int)(rest % ((int64_t)G * n));
    const int64_t i = rest / ((int64_t)G * n);
    const int j = r / n, tt = r % n;
    const int64_t b = i / KV;
    const int g = (int)(i % KV);
    return ((b * T + t0 + tt) * ((int64_t)KV * G) + (int64_t)g * G + j) * hd + c;
  }
};

// Gathers heads into the packed operand (rounding to bf16 in bf16 mode): consecutive threads read consecutive c.
template <typename S, typename E>
__global__ void pack_kernel(const S* src, HeadMap m, int64_t total, E* dst) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += step)
    dst[idx] = from_float<E>(as_float(src[m.src(idx)]));
}

// The inverse: a packed fp32 result (O, dQ, dK, dV) back into the engine's layout (O in bf16 where attention's output
// is kept in bf16). Each element one writer.
template <typename TO>
__global__ void unpack_kernel(const float* src, HeadMap m, int64_t total, TO* dst) {
  const int64_t step = (int64_t)gridDim.x * blockDim.x;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < total; idx += step)
    dst[m.src(idx)] = from_float<TO>(src[idx]);
}

template <typename S, typename E>
void pack(const S* src, HeadMap m, int B, E* dst, cudaStream_t s) {
  const int64_t total = (int64_t)B * m.KV * m.G * m.n * m.hd;
  pack_kernel<S, E><<<grid_for(total), kThreads, 0, s>>>(src, m, total, dst);
  CUDA_LAUNCH_CHECK("attention_gemm pack_kernel");
}

template <typename TO>
void unpack(const float* src, HeadMap m, int B, TO* dst, cudaStream_t s) {
  const int64_t total = (int64_t)B * m.KV * m.G * m.n * m.hd;
  unpack_kernel<TO><<<grid_for(total), kThreads, 0, s>>>(src, m, total, dst);
  CUDA_LAUNCH_CHECK("attention_gemm unpack_kernel");
}

// Row-major, batched: C_i[M, N] = alpha op(A_i) op(B_i) + beta C_i with X_i = X + i * strideX. fp32 operands go to
// SGEMM, bf16 ones to GemmEx with fp32 accumulation; C is fp32. Same operand swap as CudaBackend::matmul.
void gemm(cublasHandle_t h, bool bf16, bool ta, bool tb, int M, int N, int K, float alpha, const void* A, int lda,
          int64_t sa, const void* B, int ldb, int64_t sb, float beta, float* C, int ldc, int64_t sc, int batch,
          cudaStream_t s) {
  const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (bf16)
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, ob, oa, N, M, K, &alpha, B, CUDA_R_16BF, ldb, sb, A, CUDA_R_16BF, lda,
                                            sa, &beta, C, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT));
  else
    CUBLAS_CHECK(cublasSgemmStridedBatched(h, ob, oa, N, M, K, &alpha, static_cast<const float*>(B), ldb, sb,
                                           static_cast<const float*>(A), lda, sa, &beta, C, ldc, sc, batch));
  if (sync_after_launch()) CUDA_CHECK(cudaStreamSynchronize(s));
}

// Where score row `row` of a chunk comes from, and which keys it sees.
struct ChunkRows {
  int nq, nk, ld;          // query rows per head, keys (columns), leading dimension of the score buffers
  int G, KV, Tq, Tk, q0, q_off;
  const int32_t* key_valid;  // [B, Tk] or null
  const int32_t* seg;        // [B, Tk] or null
  int64_t rows;              // B*KV*G*nq

  struct Row {
    int64_t b, stat;  // batch row; index of the query's lse / D ([B*Tq, H])
    int tq;           // the query's key position (causal limit)
  };
  __device__ Row locate(int64_t row) const {
    const int64_t i = row / ((int64_t)G * nq);
    const int r = (int)(row % ((int64_t)G * nq)), j = r / nq, tt = r % nq;
    const int64_t b = i / KV;
    const int h = (int)(i % KV) * G + j;
    return {b, (b * Tq + q0 + tt) * ((int64_t)KV * G) + h, q_off + q0 + tt};
  }
  __device__ bool visible(const Row& w, int s) const {
    if (s > w.tq) return false;
    if (key_valid && key_valid[w.b * Tk + s] == 0) return false;
    if (seg && seg[w.b * Tk + s] != seg[w.b * Tk + w.tq]) return false;
    return true;
  }
};

// Forward softmax of one score row per warp, in place: masked scores -> -inf, then P = exp(S - lse) into S
// (fp32 mode) or p16 (bf16 mode); lse saved. A row with no visible key gets P = 0 (so O = 0) and lse = 0.
__global__ void __launch_bounds__(kRowWarps * 32)
    softmax_rows_kernel(ChunkRows c, float* S, uint16_t* p16, float* lse) {
  const int64_t row = blockIdx.x * (int64_t)kRowWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= c.rows) return;  // whole warps leave together: the shuffles below see all 32 lanes
  const ChunkRows::Row w = c.locate(row);
  float* s = S + row * c.ld;
  float m = -INFINITY;
  for (int k = lane; k < c.nk; k += 32) {
    const float x = c.visible(w, k) ? s[k] : -INFINITY;
    s[k] = x;
    m = fmaxf(m, x);
  }
  m = warp_max(m);
  float l = 0.0f;  // lse; stays 0 for a row that sees nothing, and exp(-inf - 0) = 0 below
  if (m != -INFINITY) {
    float sum = 0.0f;
    for (int k = lane; k < c.nk; k += 32) sum += expf(s[k] - m);
    l = m + logf(warp_sum(sum));
  }
  for (int k = lane; k < c.nk; k += 32) {
    const float p = expf(s[k] - l);
    if (p16) p16[row * c.ld + k] = f32_to_bf16_bits(p);
    else s[k] = p;
  }
  if (lane == 0 && lse) lse[w.stat] = l;
}

// Backward of the softmax per row: P = exp(S - lse) over visible keys (0 elsewhere, so padding keys get no dK/dV),
// dS = P (dP - D). Written in place (fp32: P into S, dS into dP) or as bf16 copies for the next products.
__global__ void __launch_bounds__(kRowWarps * 32)
    softmax_bwd_rows_kernel(ChunkRows c, float* S, float* dP, const float* lse, const float* D, uint16_t* p16,
                            uint16_t* ds16) {
  const int64_t row = blockIdx.x * (int64_t)kRowWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= c.rows) return;
  const ChunkRows::Row w = c.locate(row);
  const float l = lse[w.stat], Dr = D[w.stat];
  float* s = S + row * c.ld;
  float* dp = dP + row * c.ld;
  for (int k = lane; k < c.nk; k += 32) {
    const float p = c.visible(w, k) ? expf(s[k] - l) : 0.0f;
    const float ds = p * (dp[k] - Dr);
    if (p16) {
      p16[row * c.ld + k] = f32_to_bf16_bits(p);
      ds16[row * c.ld + k] = f32_to_bf16_bits(ds);
    } else {
      s[k] = p;
      dp[k] = ds;
    }
  }
}

unsigned row_blocks(int64_t rows) { return (unsigned)((rows + kRowWarps - 1) / kRowWarps); }

// The packed K and V of keys [0, Tkv) (fp32 or bf16 per the plan), from fp32 activations or a bf16 KV cache.
template <typename KV>
void pack_kv(const AttnDims& d, const Plan& p, const KV* k, const KV* v, void* work, cudaStream_t s) {
  const HeadMap m{d.Tk, 0, p.Tkv, d.KV, 1, d.hd};
  if (p.esz == 2) {
    pack(k, m, d.B, at<uint16_t>(work, p.kp), s);
    pack(v, m, d.B, at<uint16_t>(work, p.vp), s);
  } else {
    pack(k, m, d.B, at<float>(work, p.kp), s);
    pack(v, m, d.B, at<float>(work, p.vp), s);
  }
}

template <typename S>
void pack_rows(const S* src, HeadMap m, int B, const Plan& p, void* dst, cudaStream_t s) {
  if (p.esz == 2) pack(src, m, B, static_cast<uint16_t*>(dst), s);
  else pack(src, m, B, static_cast<float*>(dst), s);
}

}  // namespace

size_t attention_gemm_bytes(const AttnDims& d, bool bf16, bool backward) {
  check_attention_dims(d, backward);
  if (d.B == 0 || d.Tq == 0) return 0;
  return Plan(d, bf16, backward).total;
}

template <typename KV, typename TO>
void attention_gemm_fwd(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                        const int32_t* seg, TO* out, float* lse, cublasHandle_t blas, bool bf16, void* work,
                        cudaStream_t s) {
  check_attention_dims(d, false);
  if (d.B == 0 || d.Tq == 0) return;
  const Plan p(d, bf16, false);
  const float scale = 1.0f / std::sqrt((float)d.hd);
  const int hd = d.hd;
  pack_kv(d, p, k, v, work, s);
  void *Kp = at<char>(work, p.kp), *Vp = at<char>(work, p.vp), *Qp = at<char>(work, p.qp);
  float *S = at<float>(work, p.s), *O = at<float>(work, p.o);
  uint16_t* P16 = bf16 ? at<uint16_t>(work, p.p16) : nullptr;
  const void* P = bf16 ? (const void*)P16 : (const void*)S;
  for (int q0 = 0; q0 < d.Tq; q0 += p.Qc) {
    const int nq = std::min(p.Qc, d.Tq - q0), M = p.G * nq;
    const int nk = d.q_off + q0 + nq, ld = (int)round_up(nk, 8);
    const HeadMap qm{d.Tq, q0, nq, d.KV, p.G, hd};
    pack_rows(q, qm, d.B, p, Qp, s);
    // S = scale Q_c K^T over the keys this chunk can see
    gemm(blas, bf16, false, true, M, nk, hd, scale, Qp, hd, (int64_t)M * hd, Kp, hd, (int64_t)p.Tkv * hd, 0.0f, S, ld,
         (int64_t)M * ld, p.BK, s);
    const ChunkRows c{nq, nk, ld, p.G, d.KV, d.Tq, d.Tk, q0, d.q_off, key_valid, seg, (int64_t)p.BK * M};
    softmax_rows_kernel<<<row_blocks(c.rows), kRowWarps * 32, 0, s>>>(c, S, P16, lse);
    CUDA_LAUNCH_CHECK("softmax_rows_kernel");
    // O_c = P V (P is already normalised)
    gemm(blas, bf16, false, false, M, hd, nk, 1.0f, P, ld, (int64_t)M * ld, Vp, hd, (int64_t)p.Tkv * hd, 0.0f, O, hd,
         (int64_t)M * hd, p.BK, s);
    unpack(O, qm, d.B, out, s);
  }
}

template void attention_gemm_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                 const int32_t*, float*, float*, cublasHandle_t, bool, void*, cudaStream_t);
template void attention_gemm_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                                 const int32_t*, float*, float*, cublasHandle_t, bool, void*, cudaStream_t);
template void attention_gemm_fwd(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                 const int32_t*, uint16_t*, float*, cublasHandle_t, bool, void*, cudaStream_t);
template void attention_gemm_fwd(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                                 const int32_t*, uint16_t*, float*, cublasHandle_t, bool, void*, cudaStream_t);

template <typename T>
void attention_gemm_bwd(const AttnDims& d, const T* q, const T* k, const T* v, const int32_t* key_valid,
                        const int32_t* seg, const T* out, const float* lse, const float* dout, float* dq, float* dk,
                        float* dv, float* scratch, cublasHandle_t blas, bool bf16, void* work, cudaStream_t s) {
  check_attention_dims(d, true);
  if (d.B == 0 || d.Tq == 0) return;
  const Plan p(d, bf16, true);
  const float scale = 1.0f / std::sqrt((float)d.hd);
  const int hd = d.hd;
  float* D = scratch;  // [B*T, H]: rowsum(dO * O), indexed like lse
  attention_rowdot(out, dout, (int64_t)d.B * d.Tq * d.H, hd, D, s);
  pack_kv(d, p, k, v, work, s);
  void *Kp = at<char>(work, p.kp), *Vp = at<char>(work, p.vp), *Qp = at<char>(work, p.qp),
       *dOp = at<char>(work, p.dop);
  float *S = at<float>(work, p.s), *dP = at<float>(work, p.dp), *dQp = at<float>(work, p.o);
  float *dKp = at<float>(work, p.dkp), *dVp = at<float>(work, p.dvp);
  uint16_t* P16 = bf16 ? at<uint16_t>(work, p.p16) : nullptr;
  uint16_t* dS16 = bf16 ? at<uint16_t>(work, p.ds16) : nullptr;
  const void* P = bf16 ? (const void*)P16 : (const void*)S;
  const void* dS = bf16 ? (const void*)dS16 : (const void*)dP;
  const size_t kv_bytes = sizeof(float) * (size_t)p.BK * p.Tkv * hd;
  CUDA_CHECK(cudaMemsetAsync(dKp, 0, kv_bytes, s));  // every chunk adds into dK, dV (beta = 1)
  CUDA_CHECK(cudaMemsetAsync(dVp, 0, kv_bytes, s));
  const int64_t skv = (int64_t)p.Tkv * hd;
  for (int q0 = 0; q0 < d.Tq; q0 += p.Qc) {
    const int nq = std::min(p.Qc, d.Tq - q0), M = p.G * nq;
    const int nk = q0 + nq, ld = (int)round_up(nk, 8);  // q_off == 0 in the backward
    const int64_t sq = (int64_t)M * hd, ss = (int64_t)M * ld;
    const HeadMap qm{d.Tq, q0, nq, d.KV, p.G, hd};
    pack_rows(q, qm, d.B, p, Qp, s);
    pack_rows(dout, qm, d.B, p, dOp, s);
    gemm(blas, bf16, false, true, M, nk, hd, scale, Qp, hd, sq, Kp, hd, skv, 0.0f, S, ld, ss, p.BK, s);   // S
    gemm(blas, bf16, false, true, M, nk, hd, 1.0f, dOp, hd, sq, Vp, hd, skv, 0.0f, dP, ld, ss, p.BK, s);  // dP
    const ChunkRows c{nq, nk, ld, p.G, d.KV, d.Tq, d.Tk, q0, 0, key_valid, seg, (int64_t)p.BK * M};
    softmax_bwd_rows_kernel<<<row_blocks(c.rows), kRowWarps * 32, 0, s>>>(c, S, dP, lse, D, P16, dS16);
    CUDA_LAUNCH_CHECK("softmax_bwd_rows_kernel");
    // dQ_c = scale dS K;  dK[0, nk) += scale dS^T Q_c;  dV[0, nk) += P^T dO_c (over the group's stacked heads)
    gemm(blas, bf16, false, false, M, hd, nk, scale, dS, ld, ss, Kp, hd, skv, 0.0f, dQp, hd, sq, p.BK, s);
    gemm(blas, bf16, true, false, nk, hd, M, scale, dS, ld, ss, Qp, hd, sq, 1.0f, dKp, hd, skv, p.BK, s);
    gemm(blas, bf16, true, false, nk, hd, M, 1.0f, P, ld, ss, dOp, hd, sq, 1.0f, dVp, hd, skv, p.BK, s);
    unpack(dQp, qm, d.B, dq, s);
  }
  const HeadMap km{d.Tk, 0, p.Tkv, d.KV, 1, hd};
  unpack(dKp, km, d.B, dk, s);
  unpack(dVp, km, d.B, dv, s);
}

template void attention_gemm_bwd<float>(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                                        const int32_t*, const float*, const float*, const float*, float*, float*,
                                        float*, float*, cublasHandle_t, bool, void*, cudaStream_t);
template void attention_gemm_bwd<uint16_t>(const AttnDims&, const uint16_t*, const uint16_t*, const uint16_t*,
                                           const int32_t*, const int32_t*, const uint16_t*, const float*,
                                           const float*, float*, float*, float*, float*, cublasHandle_t, bool, void*,
                                           cudaStream_t);

}  // namespace tf::cuda
