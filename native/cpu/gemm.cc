// Fast SGEMM for the CPU backend, in the GotoBLAS/BLIS style:
//   threads -> chunks of C (2-D grid); per chunk: M blocks (MC) -> K blocks (KC, pack A)
//   -> N blocks (NC, pack B) -> MR-row A slivers -> NR-column B slivers -> register micro-kernel.
// The micro-kernel and vector width come from gemm_simd.h (AVX-512, AVX2 or scalar), packing
// from gemm_pack.h.
#include "gemm.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <utility>

#include "gemm_pack.h"
#include "gemm_simd.h"
#include "cpu/parallel.h"

namespace tf::cpu {
namespace {

using namespace gemm_detail;

// KC: an A sliver (kMR x KC: 14 KB with AVX-512) stays in L1 while the kernel sweeps every B
// sliver of the block, and KC is long enough to amortise loading/storing the C tile.
constexpr int kKC = 256;
#if defined(__AVX512F__)
// NC: the packed B block (KC x NC = 512 KB) stays in L2 (1-2 MB per core on AVX-512 parts) and is
// re-read from there for each A sliver.
constexpr int kNC = 512;
#else
// Older AVX2 cores often have only 256-512 KB of L2.
constexpr int kNC = 256;
#endif
// MC: the packed A block only needs to sit in L3 (each sliver is read once per NC block), so it is
// large: a bigger MC means B is packed fewer times. Blocks are evened out (see tile()).
constexpr int kMCMax = 1024;

using KernelFn = void (*)(int, const float*, size_t, const float*, float*, size_t, int, float,
                          float);

// One kernel per sliver height (1..kMR) and width (1..kNV vectors), so edges of odd sizes run a
// tile of exactly their size instead of a zero-padded full one; index (mr - 1) * kNV + (nv - 1).
template <ALayout L, size_t... I>
constexpr std::array<KernelFn, sizeof...(I)> make_kernels(std::index_sequence<I...>) {
  return {&micro_kernel<Simd, int(I / Simd::kNV) + 1, int(I % Simd::kNV) + 1, L>...};
}
constexpr auto kIdx = std::make_index_sequence<kMR * Simd::kNV>();
constexpr std::array<std::array<KernelFn, kMR * Simd::kNV>, 2> kKernels = {
    make_kernels<ALayout::kKMajor>(kIdx), make_kernels<ALayout::kRowMajor>(kIdx)};

#if defined(__AVX512VL__)
template <ALayout L, size_t... I>
constexpr std::array<KernelFn, sizeof...(I)> make_half_kernels(std::index_sequence<I...>) {
  return {&micro_kernel<SimdHalf, int(I) + 1, 1, L>...};
}
constexpr std::array<std::array<KernelFn, kMR>, 2> kHalfKernels = {
    make_half_kernels<ALayout::kKMajor>(std::make_index_sequence<kMR>()),
    make_half_kernels<ALayout::kRowMajor>(std::make_index_sequence<kMR>())};
#endif

// The kernel for an mr-row A sliver in layout L and an nr-column packed B sliver.
KernelFn pick_kernel(ALayout L, int mr, int nr) {
  const int l = L == ALayout::kKMajor ? 0 : 1;
#if defined(__AVX512VL__)
  if (nr == kHalfW) return kHalfKernels[l][mr - 1];
#endif
  return kKernels[l][(mr - 1) * Simd::kNV + nr / kW - 1];
}

// TB: float, or uint16_t for a bf16 B (widened while packing, see gemm_pack.h).
template <typename TB>
struct Problem {
  bool ta, tb;
  int K;
  float alpha, beta;
  const float* A;
  size_t lda;
  const TB* B;
  size_t ldb;
  float* C;
  size_t ldc;
};

// Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the next call.
class Workspace {
 public:
  ~Workspace() {
    std::free(a_);
    std::free(b_);
  }
  float* a(size_t n) { return grow(a_, a_cap_, n); }
  float* b(size_t n) { return grow(b_, b_cap_, n); }

 private:
  static float* grow(float*& p, size_t& cap, size_t n) {
    if (n > cap) {
      std::free(p);
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      cap = p ? n : 0;
    }
    return p;
  }
  float* a_ = nullptr;
  float* b_ = nullptr;
  size_t a_cap_ = 0, b_cap_ = 0;
};

// Computes rows [m0, m1) x columns [n0, n1) of C on the calling thread.
template <typename TB>
void tile(const Problem<TB>& p, int m0, int m1, int n0, int n1) {
  if (m0 >= m1 || n0 >= n1) return;
  static thread_local Workspace ws;
  const int m = m1 - m0;
  // Even out the M blocks (e.g. 1100 rows -> 2 x 560, not 1024 + 76) so no pass is mostly edge.
  const int m_blocks = (m + kMCMax - 1) / kMCMax;
  const int mc_max = ((m + m_blocks - 1) / m_blocks + kMR - 1) / kMR * kMR;
  const int kc_max = std::min(kKC, p.K);
  // When all columns fit one B sliver, each A value is used exactly once: packing A would cost
  // as much as the multiply-adds it feeds, so the kernel reads A where it lies.
  const bool pack_a_blocks = n1 - n0 > kNR;
  const ALayout layout = pack_a_blocks || p.ta ? ALayout::kKMajor : ALayout::kRowMajor;
  float* pa = pack_a_blocks ? ws.a((size_t)mc_max * kc_max) : nullptr;
  float* pb = ws.b((size_t)kc_max * ((std::min(kNC, n1 - n0) + kNR - 1) / kNR * kNR));
  if ((pack_a_blocks && !pa) || !pb) std::abort();  // out of memory for a few MB

  for (int ic = m0; ic < m1; ic += mc_max) {
    const int mc = std::min(mc_max, m1 - ic);
    for (int pc = 0; pc < p.K; pc += kKC) {
      const int kc = std::min(kKC, p.K - pc);
      // beta applies once: later K blocks accumulate onto what the first one wrote.
      const float beta = pc == 0 ? p.beta : 1.0f;
      if (pack_a_blocks) pack_a(p.ta, p.A, p.lda, ic, pc, mc, kc, pa);
      for (int jc = n0; jc < n1; jc += kNC) {
        const int nc = std::min(kNC, n1 - jc);
        pack_b(p.tb, p.B, p.ldb, pc, jc, kc, nc, pb);
        for (int is = 0; is < mc; is += kMR) {
          const int mr = std::min(kMR, mc - is);
          // Where the kernel reads this A sliver: packed block, or A itself (op(A)(i, k) at
          // A[k*lda + i] when transposed, A[i*lda + k] otherwise).
          const float* ap;
          size_t a_stride;
          if (pack_a_blocks) {
            ap = pa + (size_t)is * kc;
            a_stride = mr;
          } else if (p.ta) {
            ap = p.A + (size_t)pc * p.lda + ic + is;
            a_stride = p.lda;
          } else {
            ap = p.A + (size_t)(ic + is) * p.lda + pc;
            a_stride = p.lda;
          }
          float* crow = p.C + (size_t)(ic + is) * p.ldc + jc;
          for (int js = 0; js < nc; js += kNR) {
            const int nr = sliver_width(nc - js);
            const int n = std::min(nr, nc - js);
            pick_kernel(layout, mr, nr)(kc, ap, a_stride, pb + (size_t)js * kc, crow + js, p.ldc, n,
                                        p.alpha, beta);
          }
        }
      }
    }
  }
}

// C = beta * C (for K == 0 or alpha == 0). beta == 0 writes zeros without reading C.
void scale_c(int M, int N, float beta, float* C, size_t ldc) {
  if (beta == 1.0f) return;
  for (int i = 0; i < M; i++) {
    float* c = C + (size_t)i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else
      for (int j = 0; j < N; j++) c[j] *= beta;
  }
}

// How C is cut into chunks for the threads: cm x cn rectangles along sliver boundaries.
struct Split {
  int cm, cn;
};

// Starts from the tm x tn = threads grid that minimises the slowest thread's kernel work plus the
// packing it repeats (each chunk packs its own rows of A and columns of B). Large products are then
// cut further, up to kChunksPerThread chunks per thread, which threads claim dynamically: a thread
// slowed by other work on the machine then costs a small chunk, not half the product. Chunks stay
// at least kMinChunk wide/tall, where the extra packing is a few percent.
constexpr int kChunksPerThread = 8;
constexpr int kMinChunk = 512;

Split choose_split(int threads, int M, int N, int K) {
  const int mu = (M + kMR - 1) / kMR, nu = (N + kNR - 1) / kNR;  // sliver counts
  Split best{1, threads};
  double best_cost = -1;
  for (int tm = 1; tm <= threads; tm++) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const double rows = (double)((mu + tm - 1) / tm) * kMR;
    const double cols = (double)((nu + tn - 1) / tn) * kNR;
    const double cost = rows * cols * K / kW + 2.0 * K * (rows + cols);
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  while (best.cm * best.cn < kChunksPerThread * threads) {
    const int rows = M / best.cm, cols = N / best.cn;
    if (cols >= 2 * kMinChunk && cols >= rows)
      best.cn *= 2;
    else if (rows >= 2 * kMinChunk)
      best.cm *= 2;
    else if (cols >= 2 * kMinChunk)
      best.cn *= 2;
    else
      break;
  }
  return best;
}

template <typename TB>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const TB* B,
          int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, (size_t)ldc);
    return;
  }
  const Problem<TB> p{trans_a, trans_b, K, alpha, beta, A, (size_t)lda, B, (size_t)ldb, C, (size_t)ldc};

  // Nested inside a parallel region (the engine's or a kernel's): stay on this thread.
  const double macs = (double)M * N * K;
  const int threads = std::max(1, std::min(SpinPool::threads(), (int)(macs / kGemmMinMacsPerThread)));
  if (threads == 1) {
    tile(p, 0, M, 0, N);
    return;
  }
  const Split sp = choose_split(threads, M, N, K);
  const int mu = (M + kMR - 1) / kMR, nu = (N + kNR - 1) / kNR;
  const int chunks = sp.cm * sp.cn;
  // Threads claim chunks in turn; each chunk of C is computed the same way whoever takes it.
  std::atomic<int> next{0};
  SpinPool::instance().run(threads, [&](int, int) {
    for (int c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      const int im = c / sp.cn, in = c % sp.cn;
      // Cut along sliver boundaries so only the matrix edge has partial slivers.
      const int m0 = std::min(M, (int)((long long)mu * im / sp.cm) * kMR);
      const int m1 = std::min(M, (int)((long long)mu * (im + 1) / sp.cm) * kMR);
      const int n0 = std::min(N, (int)((long long)nu * in / sp.cn) * kNR);
      const int n1 = std::min(N, (int)((long long)nu * (in + 1) / sp.cn) * kNR);
      tile(p, m0, m1, n0, n1);
    }
  });
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_bf16b(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B,
                int ldb, float beta, float* C, int ldc) {
  gemm(false, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace tf::cpu
