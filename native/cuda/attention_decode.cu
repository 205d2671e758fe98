// Attention for decoding steps (a few query rows per sequence against a long KV cache), flash-decoding style: the key
// range is cut into chunks of 64 and every (chunk, KV head, sequence) is a block, so a step with 32 sequences of 256
// cached keys runs 1024 blocks where the flash kernel of attention.cu runs one warp per query row. A block scores its
// keys for every query row of the heads sharing its KV head (the cache is read once, not once per query head), keeps
// its own softmax statistics, and writes a partial output; the last block of a (sequence, KV head) to finish merges its
// rows' partials in chunk order (one launch per layer, not two).
// fp32 sums throughout (fp32 mode matches the CPU to the flash kernel's tolerance); K and V fp32 or bf16 (a bf16 cache),
// the output fp32 or bf16. The slot may be read on the device (a recorded step): the grid covers the whole cache and the
// chunks past the last visible key only write empty partials. Semantics as native/cpu/attention.cc.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/attention_mask.cuh"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace tf::cuda {

namespace {

constexpr int kChunk = 64;                 // keys per block
constexpr int kDecodeThreads = 128;        // 4 warps

__host__ __device__ inline int chunks_of(const AttnDims& d) { return (d.Tk + kChunk - 1) / kChunk; }

// A partial: the chunk's unnormalised output for one row, then its max and its sum of exp(score - max).
__device__ inline int64_t partial_at(const AttnDims& d, int rows, int b, int g, int c, int r) {
  return ((((int64_t)b * d.KV + g) * chunks_of(d) + c) * rows + r) * (d.hd + 2);
}

// 16 bytes of a cache row (8 bf16 or 4 floats) widened to floats.
template <typename KV>
constexpr int kVec = 16 / (int)sizeof(KV);
__device__ inline void widen16(const float* p, float (&v)[4]) {
  const float4 f = *reinterpret_cast<const float4*>(p);
  v[0] = f.x;
  v[1] = f.y;
  v[2] = f.z;
  v[3] = f.w;
}
__device__ inline void widen16(const uint16_t* p, float (&v)[8]) { widen8_bf16(*reinterpret_cast<const uint4*>(p), v); }

// Row stride (in elements) of the staged keys and values: 16 bytes of padding put the rows that 8 consecutive threads
// read 16 bytes of on 8 different groups of 4 banks.
template <typename KV>
__host__ __device__ inline int staged_ld(int hd) {
  return hd + kVec<KV>;
}
// Shared memory of a block: the query rows, scores and statistics (floats, rounded up to 16 bytes), then the chunk's
// keys and values.
__host__ __device__ inline int floats_before_kv(int rows, int hd) { return (rows * (hd + kChunk + 2) + 3) / 4 * 4; }
template <typename KV>
size_t decode_smem_bytes(int rows, int hd) {
  return sizeof(float) * floats_before_kv(rows, hd) + sizeof(KV) * 2 * kChunk * staged_ld<KV>(hd);
}

// Block (c, g, b) of grid (chunks, KV, B): chunk c's partials of its rows. Row r of a block is query t = r / G of head
// g * G + r % G; MAXR bounds the rows (G x Tq), whose output sums each thread holds in registers (the common step, 1 or
// 2 heads per KV head, takes MAXR = 4: fewer registers, more blocks per SM).
// The chunk's keys and values are first copied to shared memory with 16-byte loads, every thread's in flight at once
// (at hd 128 in bf16, 16 per thread): a decoding step is bound by reading the cache, and a load per key and lane,
// one key after another, kept a block waiting on memory latency (about 270 GB/s on an H100, session 13).
template <typename KV, int MAXR>
__device__ void chunk_partial(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                              const int32_t* seg, float* part, float scale) {
  extern __shared__ float decode_smem[];
  constexpr int VW = kVec<KV>, kBatch = 8;  // elements per 16-byte load; loads a thread has in flight
  const int hd = d.hd, G = d.H / d.KV, rows = G * d.Tq, LD = staged_ld<KV>(hd);
  const int c = blockIdx.x, g = blockIdx.y, b = blockIdx.z, s0 = c * kChunk;
  const int q_off = d.q_off_dev ? *d.q_off_dev : d.q_off;
  float* qs = decode_smem;            // [rows][hd]
  float* ps = qs + rows * hd;         // [rows][kChunk] scores, then probabilities
  float* stats = ps + rows * kChunk;  // [rows][2] max, sum
  KV* ks = reinterpret_cast<KV*>(decode_smem + floats_before_kv(rows, hd));  // [kChunk][LD]
  KV* vs = ks + kChunk * LD;                                                  // [kChunk][LD]

  if (s0 > q_off + d.Tq - 1) {  // no query sees a key of this chunk (causal): an empty partial
    for (int idx = threadIdx.x; idx < rows * (hd + 2); idx += blockDim.x) {
      const int r = idx / (hd + 2), i = idx % (hd + 2);
      part[partial_at(d, rows, b, g, c, r) + i] = i == hd ? -INFINITY : 0.0f;
    }
    return;
  }
  const int64_t qstride = (int64_t)d.H * hd, kstride = (int64_t)d.KV * hd;
  const int64_t kvrow = (int64_t)b * d.Tk;
  const int kend = min(d.Tk, q_off + d.Tq);  // no query sees a key from here on: its slots are not read
  const KV* kb = k + kvrow * kstride + (int64_t)g * hd;
  const KV* vb = v + kvrow * kstride + (int64_t)g * hd;
  // Keys then values, 16 bytes an item: slots past kend are staged as zeros (never read from the cache)
  const int per_row = hd / VW, items = 2 * kChunk * per_row;
  for (int base = threadIdx.x; base < items; base += kBatch * blockDim.x) {
    uint4 got[kBatch];
    TF_UNROLL for (int u = 0; u < kBatch; u++) {
      const int i = base + u * blockDim.x, j = i % (kChunk * per_row) / per_row, s = s0 + j;
      const KV* src = (i < kChunk * per_row ? kb : vb) + (int64_t)s * kstride + i % per_row * VW;
      got[u] = i < items && s < kend ? *reinterpret_cast<const uint4*>(src) : uint4{0, 0, 0, 0};
    }
    TF_UNROLL for (int u = 0; u < kBatch; u++) {
      const int i = base + u * blockDim.x, j = i % (kChunk * per_row) / per_row;
      if (i < items) *reinterpret_cast<uint4*>((i < kChunk * per_row ? ks : vs) + j * LD + i % per_row * VW) = got[u];
    }
  }
  for (int idx = threadIdx.x; idx < rows * hd; idx += blockDim.x) {
    const int r = idx / hd, i = idx % hd;
    qs[idx] = q[((int64_t)b * d.Tq + r / G) * qstride + (int64_t)(g * G + r % G) * hd + i];
  }
  __syncthreads();

  // Scores: a thread per (row, key), its dot product in order of the dimensions.
  for (int idx = threadIdx.x; idx < rows * kChunk; idx += blockDim.x) {
    const int r = idx / kChunk, j = idx % kChunk, s = s0 + j;
    const float* qr = qs + r * hd;
    const KV* kr = ks + j * LD;
    float x = 0.0f;
    for (int i = 0; i < hd; i += VW) {
      float kv[VW];
      widen16(kr + i, kv);
      TF_UNROLL for (int e = 0; e < VW; e++) x = fmaf(qr[i + e], kv[e], x);
    }
    const int tq = q_off + r / G;  // the query's key index
    const bool vis = key_usable(key_valid, kvrow, s, kend) && s <= tq &&
                     segment_of(seg, kvrow, s, kend) == segment_of(seg, kvrow, tq, kend);
    ps[idx] = vis ? x * scale : -INFINITY;
  }
  __syncthreads();

  // The chunk's softmax per row (a warp per row): probabilities relative to the chunk's max.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = warp; r < rows; r += kDecodeThreads / 32) {
    float* row = ps + r * kChunk;
    const float m = warp_max(fmaxf(row[lane], row[lane + 32]));
    float sum = 0.0f;
    for (int j = lane; j < kChunk; j += 32) {
      const float p = m == -INFINITY ? 0.0f : expf(row[j] - m);
      row[j] = p;
      sum += p;
    }
    sum = warp_sum(sum);
    if (lane == 0) {
      stats[2 * r] = m;
      stats[2 * r + 1] = sum;
    }
  }
  __syncthreads();

  // The partial output: a thread per dimension, keys in order, every row at once.
  const int nk = min(kChunk, kend - s0);
  for (int dim = threadIdx.x; dim < hd; dim += blockDim.x) {
    float acc[MAXR];
    TF_UNROLL for (int r = 0; r < MAXR; r++) acc[r] = 0.0f;
    TF_UNROLL_BY(8) for (int j = 0; j < nk; j++) {
      const float x = as_float(vs[j * LD + dim]);
      TF_UNROLL for (int r = 0; r < MAXR; r++)
        if (r < rows) acc[r] = fmaf(ps[r * kChunk + j], x, acc[r]);
    }
    TF_UNROLL for (int r = 0; r < MAXR; r++)
      if (r < rows) part[partial_at(d, rows, b, g, c, r) + dim] = acc[r];
  }
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    part[partial_at(d, rows, b, g, c, r) + hd] = stats[2 * r];
    part[partial_at(d, rows, b, g, c, r) + hd + 1] = stats[2 * r + 1];
  }
}

// Row r of (b, g) (query t = r / G of head h = g G + r % G) merged from its partials in chunk order by the whole
// block; a row that saw no key gets output 0 and lse 0. The partials are other blocks' writes: read past the L1 cache.
template <typename TO>
__device__ void merge_row(const AttnDims& d, const float* part, TO* out, float* lse, int b, int g, int r) {
  const int G = d.H / d.KV, rows = G * d.Tq, t = r / G, h = g * G + r % G;
  const int chunks = chunks_of(d);
  float m = -INFINITY;
  for (int c = 0; c < chunks; c++) m = fmaxf(m, __ldcg(part + partial_at(d, rows, b, g, c, r) + d.hd));
  float sum = 0.0f;
  if (m != -INFINITY)
    for (int c = 0; c < chunks; c++) {
      const float* p = part + partial_at(d, rows, b, g, c, r);
      const float pm = __ldcg(p + d.hd);
      if (pm != -INFINITY) sum += __ldcg(p + d.hd + 1) * expf(pm - m);
    }
  const int64_t o = ((int64_t)b * d.Tq + t) * d.H * d.hd + (int64_t)h * d.hd;
  for (int dim = threadIdx.x; dim < d.hd; dim += blockDim.x) {
    float acc = 0.0f;
    if (m != -INFINITY)
      for (int c = 0; c < chunks; c++) {
        const float* p = part + partial_at(d, rows, b, g, c, r);
        const float pm = __ldcg(p + d.hd);
        if (pm != -INFINITY) acc += __ldcg(p + dim) * expf(pm - m);
      }
    out[o + dim] = from_float<TO>(m == -INFINITY ? 0.0f : acc / sum);
  }
  if (lse && threadIdx.x == 0)
    lse[((int64_t)b * d.Tq + t) * d.H + h] = m == -INFINITY ? 0.0f : m + logf(sum);
}

// Grid (chunks, KV, B): each block its chunk's partials; the last of a (b, g)'s blocks to finish (arrived[b KV + g]
// counts them: last_block_done) merges its rows and sets the count back to 0 for the next launch.
template <typename KV, typename TO, int MAXR>
__global__ void __launch_bounds__(kDecodeThreads)
    attention_decode_kernel(AttnDims d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                            const int32_t* seg, float* part, float scale, TO* out, float* lse, unsigned* arrived) {
  wait_for_previous_grid();  // launched chained (common.cuh)
  chunk_partial<KV, MAXR>(d, q, k, v, key_valid, seg, part, scale);
  const int g = blockIdx.y, b = blockIdx.z;
  unsigned& count = arrived[(int64_t)b * d.KV + g];
  if (!last_block_done(&count, gridDim.x)) return;
  const int rows = (d.H / d.KV) * d.Tq;
  for (int r = 0; r < rows; r++) merge_row(d, part, out, lse, b, g, r);
  if (threadIdx.x == 0) count = 0;
}

}  // namespace

bool attention_decode_fits(const AttnDims& d) {
  return d.KV > 0 && d.H % d.KV == 0 && d.hd <= kDecodeMaxHeadDim && d.hd % 8 == 0 &&
         (int64_t)(d.H / d.KV) * d.Tq <= kDecodeMaxRows;
}

size_t attention_decode_bytes(const AttnDims& d) {
  const int64_t rows = (int64_t)(d.H / d.KV) * d.Tq;
  return sizeof(float) * (size_t)((int64_t)d.B * d.KV * chunks_of(d) * rows * (d.hd + 2));
}

template <typename KV, typename TO>
void attention_decode(const AttnDims& d, const float* q, const KV* k, const KV* v, const int32_t* key_valid,
                      const int32_t* seg, TO* out, float* lse, void* work, unsigned* arrived, cudaStream_t s) {
  check_attention_dims(d, false);
  if (!attention_decode_fits(d)) throw std::invalid_argument("attention_decode: a call attention_decode_fits refuses");
  if (d.B == 0 || d.Tq == 0) return;
  float* part = static_cast<float*>(work);
  const int rows = (d.H / d.KV) * d.Tq;
  if (!aligned(k, 16) || !aligned(v, 16)) throw std::invalid_argument("attention_decode: K and V must be 16-byte aligned");
  const size_t smem = decode_smem_bytes<KV>(rows, d.hd);
  const dim3 grid(chunks_of(d), d.KV, d.B);
  const float scale = 1.0f / std::sqrt((float)d.hd);
  if (rows <= 4) {
    allow_shared_memory((const void*)attention_decode_kernel<KV, TO, 4>, smem, "attention_decode_kernel");
    launch_chained("attention_decode_kernel", attention_decode_kernel<KV, TO, 4>, grid, kDecodeThreads, smem, s, d, q, k,
                   v, key_valid, seg, part, scale, out, lse, arrived);
  } else {
    allow_shared_memory((const void*)attention_decode_kernel<KV, TO, kDecodeMaxRows>, smem, "attention_decode_kernel");
    launch_chained("attention_decode_kernel", attention_decode_kernel<KV, TO, kDecodeMaxRows>, grid, kDecodeThreads, smem,
                   s, d, q, k, v, key_valid, seg, part, scale, out, lse, arrived);
  }
}

template void attention_decode(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                               const int32_t*, float*, float*, void*, unsigned*, cudaStream_t);
template void attention_decode(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                               const int32_t*, float*, float*, void*, unsigned*, cudaStream_t);
template void attention_decode(const AttnDims&, const float*, const float*, const float*, const int32_t*,
                               const int32_t*, uint16_t*, float*, void*, unsigned*, cudaStream_t);
template void attention_decode(const AttnDims&, const float*, const uint16_t*, const uint16_t*, const int32_t*,
                               const int32_t*, uint16_t*, float*, void*, unsigned*, cudaStream_t);

}  // namespace tf::cuda
