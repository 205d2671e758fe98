// Products of a few rows by a frozen bf16 weight: C[M, N] = alpha A[M, K] W[N, K]^T + beta C with bf16 A and W, fp32
// C and M <= kSkinnyRows, on tensor cores. These are a decoding step's projections and LM head, one row per sequence.
// Such a product only streams W: each weight is read once and used M times, so its speed is W's bytes over the
// bandwidth. cuBLAS's kernels read W at about 440 GB/s here on an H100 (session 13's profile of a batch-32 step), a
// sixth of the copy bandwidth; a decoding step is mostly these products.
//
// The work. A warp owns 16 rows of W (16 columns of C) and a slice of K in chunks of 32. Lane (g = lane / 4,
// t = lane % 4) loads 16 bytes of W's rows g and g + 8 (k = 8t .. 8t + 7 of the chunk) and 16 bytes of A's row
// 8j + g at the same k for each 8-row tile j of A. Those registers already are the A and B fragments of two m16n8k16
// products (cuda/mma.cuh): a product sums over k, so any order of k does if both operands share it, and here fragment
// column 2t + i + 8h of product p is k = 8t + 4p + 2h + i. So W goes from memory to the tensor cores in one 16-byte
// load per lane and row (a row's 64 bytes of a chunk from 4 adjacent lanes), A from L1, with no shared memory and no
// shuffles. The result tile's rows are W's rows, its columns A's rows: C transposed.
//
// The split. Slices of K go to S warps of one block (summed through shared memory) and, for a narrow W (the o and
// down projections: 64 tiles at Qwen3-0.6B), to G blocks, whose partial sums the last block of the tile to finish adds
// in block order (common.cuh last_block_done). S and G depend only on the shape, never on the device, and every sum
// runs in a fixed order: results repeat bit for bit.
#include <algorithm>
#include <stdexcept>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/mma.cuh"

namespace tf::cuda {

namespace {

constexpr int kWarps = 8;    // warps of a block
constexpr int kChunk = 32;   // k of a warp's step: 16 bytes of each W row per lane
constexpr int kUnroll = 4;   // chunks a warp loads before it multiplies (4 KB of W in flight per warp)
constexpr int kTileRows = 16;
// Warps enough to keep every SM's loads in flight (about 16 warps an SM of a 132-SM H100), and at least this many
// chunks each: the split stops there.
constexpr int kTargetWarps = 2048;
constexpr int kMinChunks = 2;

struct Split {
  int tiles;  // 16-row tiles of W
  int S;      // warps per tile in a block (a block holds kWarps / S tiles)
  int G;      // blocks per tile (G > 1 only with S = kWarps)
};

Split split_of(int N, int K) {
  Split sp{(N + kTileRows - 1) / kTileRows, 1, 1};
  const int chunks = K / kChunk;
  while (sp.S < kWarps && sp.tiles * sp.S < kTargetWarps && chunks >= 2 * sp.S * kMinChunks) sp.S *= 2;
  if (sp.S == kWarps)
    while (sp.tiles * sp.S * sp.G < kTargetWarps && chunks >= 2 * sp.S * sp.G * kMinChunks) sp.G *= 2;
  return sp;
}

struct SkinnyArgs {
  const uint16_t* A;
  const uint16_t* W;
  float* C;
  int lda, ldw, ldc, M, N, K;
  float alpha, beta;
  Split sp;
  float* work;        // G > 1: the blocks' partial tiles, [tile][G][M][16]
  unsigned* arrived;  // G > 1: finished blocks per tile
};

__device__ inline uint4 load16(const uint16_t* p) { return *reinterpret_cast<const uint4*>(p); }
// W is read once per step and is larger than L2: loaded as streaming (evict first) so it does not push A out
__device__ inline uint4 load16_stream(const uint16_t* p) { return __ldcs(reinterpret_cast<const uint4*>(p)); }

// One chunk: W rows g and g + 8 (lo, hi) times each 8-row tile of A at k, two products per tile (see the top).
template <int NT>
__device__ inline void chunk_products(float (&acc)[NT][4], uint4 lo, uint4 hi, const uint16_t* a_at, int lda,
                                      unsigned rows, int k) {
  const uint32_t w0[4] = {lo.x, hi.x, lo.y, hi.y}, w1[4] = {lo.z, hi.z, lo.w, hi.w};
  TF_UNROLL
  for (int j = 0; j < NT; j++) {
    const uint4 x = rows >> j & 1 ? load16(a_at + 8 * j * lda + k) : uint4{0, 0, 0, 0};
    const uint32_t x0[2] = {x.x, x.y}, x1[2] = {x.z, x.w};
    mma_bf16_16816(acc[j], w0, x0);
    mma_bf16_16816(acc[j], w1, x1);
  }
}

// C's element (m, n) from its sum: alpha sum + beta C (C is not read when beta is 0: it may hold anything)
__device__ inline void write_c(const SkinnyArgs& a, int m, int n, float sum) {
  if (m >= a.M || n >= a.N) return;
  float* c = a.C + (int64_t)m * a.ldc + n;
  *c = a.beta == 0.0f ? a.alpha * sum : a.alpha * sum + a.beta * *c;
}

// NT 8-row tiles of A (M <= 8 NT). Block b: with G = 1, tiles (b P .. b P + P - 1), P = kWarps / S, warp w on tile
// b P + w / S, slice w % S of S; with G > 1, tile b / G, slice (b % G) S + w of S G.
template <int NT>
__global__ void __launch_bounds__(kWarps * 32) skinny_gemm_kernel(SkinnyArgs a) {
  wait_for_previous_grid();  // launched chained (common.cuh)
  extern __shared__ float part[];  // [warp][m][16]: each warp's sums
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int S = a.sp.S, G = a.sp.G, P = kWarps / S, slices = S * G;
  const int tile = (int)blockIdx.x / G * P + warp / S, slice = (int)blockIdx.x % G * S + warp % S;
  const int n0 = tile * kTileRows, chunks = a.K / kChunk;
  // a warp past the last tile (the grid's last block) has no chunks, but meets the barriers
  const int c_begin = tile < a.sp.tiles ? chunks * slice / slices : 0;
  const int c_end = tile < a.sp.tiles ? chunks * (slice + 1) / slices : 0;
  // rows past N read the last row (in bounds) and their results are never written
  const uint16_t* w_lo = a.W + (int64_t)min(n0 + g, a.N - 1) * a.ldw + 8 * t;
  const uint16_t* w_hi = a.W + (int64_t)min(n0 + g + 8, a.N - 1) * a.ldw + 8 * t;
  // A's rows 8 j + g for every tile j, bit j of `rows` set where that row exists (the others multiply zeros)
  const uint16_t* a_at = a.A + (int64_t)g * a.lda + 8 * t;
  unsigned rows = 0;
  TF_UNROLL
  for (int j = 0; j < NT; j++) rows |= (unsigned)(8 * j + g < a.M) << j;

  float acc[NT][4];
  TF_UNROLL
  for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  for (int c = c_begin; c < c_end; c += kUnroll) {
    uint4 lo[kUnroll], hi[kUnroll];
    TF_UNROLL
    for (int u = 0; u < kUnroll; u++)
      if (c + u < c_end) {
        lo[u] = load16_stream(w_lo + (c + u) * kChunk);
        hi[u] = load16_stream(w_hi + (c + u) * kChunk);
      }
    TF_UNROLL
    for (int u = 0; u < kUnroll; u++)
      if (c + u < c_end) chunk_products<NT>(acc, lo[u], hi[u], a_at, a.lda, rows, (c + u) * kChunk);
  }

  // D fragment: acc[j][2 r + i] is W row g + 8 r (C column n0 + g + 8 r) times A row 8 j + 2 t + i
  const int M8 = 8 * NT;
  float* mine = part + warp * M8 * kTileRows;
  TF_UNROLL
  for (int j = 0; j < NT; j++)
    TF_UNROLL
    for (int e = 0; e < 4; e++) mine[(8 * j + 2 * t + (e & 1)) * kTileRows + g + 8 * (e >> 1)] = acc[j][e];
  __syncthreads();

  // The block's tiles, element (m, nn) by consecutive threads along nn: its S warps' sums in warp order
  const int per_tile = a.M * kTileRows;
  for (int i = threadIdx.x; i < P * per_tile; i += blockDim.x) {
    const int q = i / per_tile, m = i % per_tile / kTileRows, nn = i % kTileRows;
    float sum = 0.0f;
    for (int s = 0; s < S; s++) sum += part[((q * S + s) * M8 + m) * kTileRows + nn];
    const int tq = (int)blockIdx.x / G * P + q;
    if (G == 1) write_c(a, m, tq * kTileRows + nn, sum);
    else a.work[((int64_t)tq * G + (int)blockIdx.x % G) * per_tile + i] = sum;
  }
  if (G == 1) return;
  // G > 1 (one tile per block): the last of the tile's G blocks adds their partial tiles in block order
  if (!last_block_done(&a.arrived[tile], G)) return;
  for (int i = threadIdx.x; i < per_tile; i += blockDim.x) {
    float sum = 0.0f;
    for (int b = 0; b < G; b++) sum += __ldcg(a.work + ((int64_t)tile * G + b) * per_tile + i);
    write_c(a, i / kTileRows, n0 + i % kTileRows, sum);
  }
  if (threadIdx.x == 0) a.arrived[tile] = 0;
}

template <int NT>
void launch(const SkinnyArgs& a, cudaStream_t s) {
  const int P = kWarps / a.sp.S;
  const unsigned blocks = a.sp.G > 1 ? (unsigned)(a.sp.tiles * a.sp.G) : (unsigned)((a.sp.tiles + P - 1) / P);
  const size_t smem = sizeof(float) * kWarps * 8 * NT * kTileRows;  // at most 32 KB (NT 8)
  launch_chained("skinny_gemm_kernel", skinny_gemm_kernel<NT>, blocks, kWarps * 32, smem, s, a);
}

// The kernel for `tiles` 8-row tiles of A (1 to 8)
template <int NT = 1>
void launch_for(int tiles, const SkinnyArgs& a, cudaStream_t s) {
  if constexpr (NT < kSkinnyRows / 8)
    if (tiles > NT) return launch_for<NT + 1>(tiles, a, s);
  launch<NT>(a, s);
}

}  // namespace

bool skinny_gemm_fits(int M, int N, int K, const uint16_t* A, int lda, const uint16_t* W, int ldw) {
  return M >= 1 && M <= kSkinnyRows && N >= 1 && K >= kChunk && K % kChunk == 0 && lda % 8 == 0 && ldw % 8 == 0 &&
         aligned(A, 16) && aligned(W, 16);
}

size_t skinny_gemm_work_floats(int M, int N, int K) {
  const Split sp = split_of(N, K);
  return sp.G > 1 ? (size_t)sp.tiles * sp.G * M * kTileRows : 0;
}
size_t skinny_gemm_counters(int N, int K) {
  const Split sp = split_of(N, K);
  return sp.G > 1 ? (size_t)sp.tiles : 0;
}

void skinny_gemm(const uint16_t* A, int lda, const uint16_t* W, int ldw, float* C, int ldc, int M, int N, int K,
                 float alpha, float beta, float* work, unsigned* arrived, cudaStream_t s) {
  if (!skinny_gemm_fits(M, N, K, A, lda, W, ldw)) throw std::invalid_argument("CUDA skinny_gemm: unsupported shape");
  const SkinnyArgs a{A, W, C, lda, ldw, ldc, M, N, K, alpha, beta, split_of(N, K), work, arrived};
  launch_for((M + 7) / 8, a, s);
}

}  // namespace tf::cuda
