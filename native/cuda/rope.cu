// Rotary position embedding, HF "rotate_half" layout, as native/cpu/rope.cc: the angle is formed in fp32
// (pos * inv_freq, as HF does) and its cos/sin evaluated in double, once per batch (rope_table).
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/lora_up.cuh"

namespace tf::cuda {

namespace {

__global__ void rope_table_kernel(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs) {
  const int half = hd / 2;
  const int64_t n = (int64_t)N * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx / half;
    const int j = (int)(idx % half);
    const float angle = __fmul_rn((float)pos[i], inv_freq[j]);
    cs[i * hd + j] = (float)cos((double)angle);
    cs[i * hd + half + j] = (float)sin((double)angle);
  }
}

// One thread per rotated pair (token i, head h, j < hd/2).
__global__ void rope_kernel(float* x, const float* cs, int N, int heads, int hd, float sign) {
  const int half = hd / 2;
  const int64_t n = (int64_t)N * heads * half;
  for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int j = (int)(idx % half);
    const int64_t ih = idx / half;  // token * heads + head
    const int64_t i = ih / heads;
    const float c = cs[i * hd + j], sj = sign * cs[i * hd + half + j];
    float* xh = x + ih * hd;
    const float a = xh[j], b = xh[j + half];
    xh[j] = a * c - b * sj;
    xh[j + half] = b * c + a * sj;
  }
}

// One warp per head row of q (rows < N*H) or k: its optional RMSNorm (the row's sum of squares in double, as
// rmsnorm_fwd) and its rotation, reading the row once and writing it once. Lane l holds the pairs (j, j + hd/2) for
// j = l, l + 32, ...: a rotation never leaves the lane.
struct QkSide {
  const float* in;
  const float* w;  // norm weights, or null: rotation only
  float* out;
  float* rstd;
  int heads;
  uint16_t* in16;   // bf16 copies of the input and the output, or null
  uint16_t* out16;
  bool in_is16;  // the input is in16 (read, not written); `in` unused
};
// Runs f(side, r, token) for every head row r (token * heads + head) of q, then of k: a warp per row, lanes together.
template <typename Side, typename F>
__device__ inline void for_each_head_row(const Side& q, const Side& k, int N, F f) {
  const int64_t q_rows = (int64_t)N * q.heads, rows = q_rows + (int64_t)N * k.heads;
  const int64_t warps = (int64_t)gridDim.x * blockDim.x / 32;
  for (int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
    const bool is_q = row < q_rows;
    const Side side = is_q ? q : k;  // by value: a reference would copy the parameters to local memory
    const int64_t r = is_q ? row : row - q_rows;
    f(side, r, r / side.heads);
  }
}

constexpr int kPairs = kMaxRopeHeadDim / 2 / 32;  // rotation pairs per lane

// This lane's pairs of a head row (j = lane + 32 p < hd/2: a[p] = x[j], b[p] = x[j + hd/2]) RMS-normed with weights w,
// from the lane's share of the row's sum of squares (the sum in double, as rmsnorm_fwd). Returns the row's 1/rms.
__device__ inline float norm_pairs(float (&a)[kPairs], float (&b)[kPairs], double ss, const float* w, int hd,
                                   float eps) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  ss = warp_sum(ss);
  const float rs = (float)(1.0 / sqrt(ss / hd + eps));
  for (int p = 0; p < kPairs; p++) {
    const int j = lane + 32 * p;
    if (j >= half) continue;
    a[p] = (a[p] * rs) * w[j];
    b[p] = (b[p] * rs) * w[j + half];
  }
  return rs;
}

// The pairs rotated by their token's angles (cs_row: hd/2 cosines, then hd/2 sines).
__device__ inline void rotate_pairs(float (&a)[kPairs], float (&b)[kPairs], const float* cs_row, int hd) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  for (int p = 0; p < kPairs; p++) {
    const int j = lane + 32 * p;
    if (j >= half) continue;
    const float c = cs_row[j], s = cs_row[half + j];
    const float y0 = a[p] * c - b[p] * s, y1 = b[p] * c + a[p] * s;
    a[p] = y0;
    b[p] = y1;
  }
}

// The pairs into a head row at dst (float, or bf16 bits rounded to nearest even).
template <typename T>
__device__ inline void store_pairs(T* dst, const float (&a)[kPairs], const float (&b)[kPairs], int hd) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  for (int p = 0; p < kPairs; p++) {
    const int j = lane + 32 * p;
    if (j >= half) continue;
    dst[j] = from_float<T>(a[p]);
    dst[j + half] = from_float<T>(b[p]);
  }
}

__global__ void qk_norm_rope_kernel(QkSide q, QkSide k, const float* cs, int N, int hd, float eps) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  for_each_head_row(q, k, N, [&](const QkSide& side, int64_t r, int64_t token) {
    float a[kPairs], b[kPairs];
    double ss = 0;
    for (int p = 0; p < kPairs; p++) {
      const int j = lane + 32 * p;
      const int64_t at = r * hd + j;
      a[p] = j >= half ? 0.0f : side.in_is16 ? as_float(side.in16[at]) : side.in[at];
      b[p] = j >= half ? 0.0f : side.in_is16 ? as_float(side.in16[at + half]) : side.in[at + half];
      ss += (double)a[p] * a[p] + (double)b[p] * b[p];
      if (side.in16 && !side.in_is16 && j < half) {
        side.in16[r * hd + j] = f32_to_bf16_bits(a[p]);
        side.in16[r * hd + j + half] = f32_to_bf16_bits(b[p]);
      }
    }
    if (side.w) {
      const float rs = norm_pairs(a, b, ss, side.w, hd, eps);
      if (lane == 0) side.rstd[r] = rs;
    }
    rotate_pairs(a, b, cs + token * hd, hd);
    // (out16 may be in16: this lane read its elements of the row above)
    if (side.out) store_pairs(side.out + r * hd, a, b, hd);
    if (side.out16) store_pairs(side.out16 + r * hd, a, b, hd);
  });
}

// A decoding step's q, k and v from one stacked product (token n's row at qkv + n ld: q's H heads, k's KV, v's KV): a
// warp per head row of q (rows < N H), then of k, then of v, each value with its bias and LoRA added as it is read.
// q and k are normed (with weights) and rotated as above; q goes to q [N, H hd], k and v to token n = b Tq + t's cache
// slot b Tk + o + t (nothing to the cache for a slot outside it: the host checked its own copy).
template <typename C>
__global__ void qkv_to_cache_kernel(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs,
                                    int N, int Tq, int H, int KV, int hd, float eps, float* q, C* kc, C* vc, int Tk,
                                    int off, const int32_t* off_dev, ReaderUps ups) {
  wait_for_previous_grid();  // launched chained (common.cuh)
  const int o = off_dev ? *off_dev : off;
  const bool slot_ok = o >= 0 && o + Tq <= Tk;
  const int half = hd / 2, lane = threadIdx.x % 32;
  const int64_t q_rows = (int64_t)N * H, kv_rows = (int64_t)N * KV, rows = q_rows + 2 * kv_rows;
  const int64_t warps = (int64_t)gridDim.x * blockDim.x / 32;
  for (int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
    const int kind = row < q_rows ? 0 : row < q_rows + kv_rows ? 1 : 2;  // q, k, v: the same on the whole warp
    const int64_t r = kind == 0 ? row : kind == 1 ? row - q_rows : row - q_rows - kv_rows;
    const int heads = kind == 0 ? H : KV, h = (int)(r % heads);
    const int64_t n = r / heads;
    const float* src = qkv + n * ld + (kind == 0 ? 0 : kind == 1 ? H * hd : (H + KV) * hd) + (int64_t)h * hd;
    const LoraUp up = up_of(ups.ups, kind);
    float a[kPairs], b[kPairs];
    double ss = 0;
    for (int p = 0; p < kPairs; p++) {
      const int j = lane + 32 * p, c = h * hd + j;  // c: the column in the projection's output
      a[p] = j >= half ? 0.0f : with_up(src[j], up, ups, n, c);
      b[p] = j >= half ? 0.0f : with_up(src[j + half], up, ups, n, c + half);
      ss += (double)a[p] * a[p] + (double)b[p] * b[p];
    }
    if (kind != 2) {
      const float* w = kind == 0 ? q_w : k_w;
      if (w) norm_pairs(a, b, ss, w, hd, eps);
      rotate_pairs(a, b, cs + n * hd, hd);
    }
    if (kind == 0) store_pairs(q + r * hd, a, b, hd);
    else if (slot_ok)
      store_pairs((kind == 1 ? kc : vc) + ((n / Tq) * Tk + o + n % Tq) * (int64_t)KV * hd + (int64_t)h * hd, a, b, hd);
  }
}

// qk_norm_rope's backward: a warp per head row of dq (rows < N*H) or dk, lanes holding rotation pairs as above. The
// row's gradient is rotated back; with a norm, dx = rstd (g - x rstd mean(g x rstd)) with g = dy w, the row's dot in
// double (rmsnorm_bwd's formula).
struct QkGradSide {
  float* d;             // dq or dk: rotated back in place when there is no norm or `keep_rotated`
  const float* x;       // the norm's input: fp32, or
  const uint16_t* x16;  // bf16
  const float* w;       // norm weights, or null: rotation only
  const float* rstd;
  float* dx;  // the norm's input gradient
  uint16_t* out16;  // or null: the result (dx with a norm, the rotated d without) goes here in bf16 instead
  int heads;
  bool keep_rotated;  // the weights' gradient (a separate column sum) reads the rotated dy
};
__global__ void qk_norm_rope_bwd_kernel(QkGradSide q, QkGradSide k, const float* cs, int N, int hd) {
  const int half = hd / 2, lane = threadIdx.x % 32;
  for_each_head_row(q, k, N, [&](const QkGradSide& side, int64_t r, int64_t token) {
    const int64_t at = r * hd;
    float ga[kPairs], gb[kPairs];
    for (int p = 0; p < kPairs; p++) {
      const int j = lane + 32 * p;
      ga[p] = gb[p] = 0.0f;
      if (j >= half) continue;
      const float a = side.d[at + j], b = side.d[at + j + half];
      const float c = cs[token * hd + j], s = cs[token * hd + half + j];
      ga[p] = a * c + b * s;  // the inverse rotation (rope with -sin)
      gb[p] = b * c - a * s;
      if (!side.w && side.out16) {
        side.out16[at + j] = f32_to_bf16_bits(ga[p]);
        side.out16[at + j + half] = f32_to_bf16_bits(gb[p]);
      } else if (!side.w || side.keep_rotated) {
        side.d[at + j] = ga[p];
        side.d[at + j + half] = gb[p];
      }
    }
    if (!side.w) return;
    const float rs = side.rstd[r];
    float xa[kPairs], xb[kPairs];
    double dot = 0;
    for (int p = 0; p < kPairs; p++) {
      const int j = lane + 32 * p;
      xa[p] = xb[p] = 0.0f;
      if (j >= half) continue;
      xa[p] = side.x16 ? as_float(side.x16[at + j]) : side.x[at + j];
      xb[p] = side.x16 ? as_float(side.x16[at + j + half]) : side.x[at + j + half];
      dot += (double)ga[p] * side.w[j] * xa[p] * rs + (double)gb[p] * side.w[j + half] * xb[p] * rs;
    }
    dot = warp_sum(dot);
    const float mean = (float)(dot / hd);
    for (int p = 0; p < kPairs; p++) {
      const int j = lane + 32 * p;
      if (j >= half) continue;
      // (out16 may be x16: this lane read its elements of the row above)
      const float y0 = rs * (ga[p] * side.w[j] - xa[p] * rs * mean);
      const float y1 = rs * (gb[p] * side.w[j + half] - xb[p] * rs * mean);
      if (side.out16) {
        side.out16[at + j] = f32_to_bf16_bits(y0);
        side.out16[at + j + half] = f32_to_bf16_bits(y1);
      } else {
        side.dx[at + j] = y0;
        side.dx[at + j + half] = y1;
      }
    }
  });
}

void check_head_dim(const char* op, int hd) {
  if (hd % 2 != 0 || hd > kMaxRopeHeadDim)
    throw std::invalid_argument(std::string("CUDA ") + op + ": head_dim " + std::to_string(hd) +
                                " must be even and at most " + std::to_string(kMaxRopeHeadDim));
}

}  // namespace

void qk_norm_rope_bwd(float* dq, float* dk, const float* q_pre, const float* k_pre, const uint16_t* q_pre16,
                      const uint16_t* k_pre16, const float* q_w, const float* k_w, const float* rstd_q,
                      const float* rstd_k, const float* cs, int N, int H, int KV, int hd, float* dq_pre, float* dk_pre,
                      float* dq_w, float* dk_w, uint16_t* dq16, uint16_t* dk16, cudaStream_t s) {
  check_head_dim("qk_norm_rope_bwd", hd);
  if ((dq_w && (q_pre16 || dq16)) || (dk_w && (k_pre16 || dk16)))
    throw std::invalid_argument("CUDA qk_norm_rope_bwd: the norm weights' gradients need fp32 inputs and results");
  const int64_t rows = (int64_t)N * (H + KV);
  if (rows <= 0) return;
  const QkGradSide qs{dq, q_pre, q_pre16, q_w, rstd_q, dq_pre, dq16, H, dq_w != nullptr};
  const QkGradSide ks{dk, k_pre, k_pre16, k_w, rstd_k, dk_pre, dk16, KV, dk_w != nullptr};
  qk_norm_rope_bwd_kernel<<<grid_for(rows * 32), kThreads, 0, s>>>(qs, ks, cs, N, hd);
  CUDA_LAUNCH_CHECK("qk_norm_rope_bwd_kernel");
  if (dq_w) rmsnorm_weight_grad(q_pre, rstd_q, dq, N * H, hd, dq_w, s);
  if (dk_w) rmsnorm_weight_grad(k_pre, rstd_k, dk, N * KV, hd, dk_w, s);
}

void qk_norm_rope(const float* q_in, const float* k_in, const float* q_w, const float* k_w, const float* cs, int N,
                  int H, int KV, int hd, float eps, float* q, float* k, float* rstd_q, float* rstd_k,
                  const QkCopies& copies, cudaStream_t s) {
  check_head_dim("qk_norm_rope", hd);
  const int64_t rows = (int64_t)N * (H + KV);
  if (rows <= 0) return;
  const QkSide qs{q_in, q_w, q, rstd_q, H, copies.q_pre, copies.q, copies.pre_is_input};
  const QkSide ks{k_in, k_w, k, rstd_k, KV, copies.k_pre, copies.k, copies.pre_is_input};
  qk_norm_rope_kernel<<<grid_for(rows * 32), kThreads, 0, s>>>(qs, ks, cs, N, hd, eps);
  CUDA_LAUNCH_CHECK("qk_norm_rope_kernel");
}

template <typename C>
void qkv_to_cache(const float* qkv, int ld, const float* q_w, const float* k_w, const float* cs, int B, int Tq, int H,
                  int KV, int hd, float eps, float* q, C* kc, C* vc, int Tk, int off, const int32_t* off_dev,
                  const LoraUps& ups, cudaStream_t s) {
  check_head_dim("qkv_to_cache", hd);
  const int N = B * Tq;
  const int64_t rows = (int64_t)N * (H + 2 * KV);
  if (rows <= 0) return;
  launch_chained("qkv_to_cache_kernel", qkv_to_cache_kernel<C>, grid_for(rows * 32), kThreads, 0, s, qkv, ld, q_w, k_w,
                 cs, N, Tq, H, KV, hd, eps, q, kc, vc, Tk, off, off_dev, reader_ups(ups));
}
template void qkv_to_cache(const float*, int, const float*, const float*, const float*, int, int, int, int, int, float,
                           float*, float*, float*, int, int, const int32_t*, const LoraUps&, cudaStream_t);
template void qkv_to_cache(const float*, int, const float*, const float*, const float*, int, int, int, int, int, float,
                           float*, uint16_t*, uint16_t*, int, int, const int32_t*, const LoraUps&, cudaStream_t);

void rope_table(const int32_t* pos, const float* inv_freq, int N, int hd, float* cs, cudaStream_t s) {
  const int64_t n = (int64_t)N * (hd / 2);
  if (n <= 0) return;
  rope_table_kernel<<<grid_for(n), kThreads, 0, s>>>(pos, inv_freq, N, hd, cs);
  CUDA_LAUNCH_CHECK("rope_table_kernel");
}

void rope(float* x, const float* cs, int N, int heads, int hd, bool inverse, cudaStream_t s) {
  const int64_t n = (int64_t)N * heads * (hd / 2);
  if (n <= 0) return;
  rope_kernel<<<grid_for(n), kThreads, 0, s>>>(x, cs, N, heads, hd, inverse ? -1.0f : 1.0f);
  CUDA_LAUNCH_CHECK("rope_kernel");
}

}  // namespace tf::cuda
