// See kernel_check.h. Each case builds host inputs once, runs the reference backend on host copies and the
// tested backend on copies in its device memory, then compares every output element.
#include "cuda/kernel_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "engine/bf16.h"
#include "engine/dropout_rng.h"
#include "engine/tensor.h"

namespace tf {

namespace {

using F = std::vector<float>;
using I = std::vector<int32_t>;

class Harness {
 public:
  Harness(Backend& ref, Backend& test, Device dev, uint64_t seed) : ref_(ref), test_(test), dev_(dev), rng_(seed) {}

  std::vector<KernelCheckResult> run() {
    matmuls();
    half_weights(false);
    half_weights(true);
    skinny_products();
    bf16_narrowing();
    elementwise();
    reductions();
    embedding();
    rmsnorm();
    rope();
    attention();
    swiglu();
    cross_entropy();
    adamw();
    dropout();
    lora();
    cache_write();
    return std::move(out_);
  }

 private:
  // ---- data ----
  F rand(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> u(lo, hi);
    F v(n);
    for (float& x : v) x = u(rng_);
    return v;
  }
  int32_t randint(int32_t lo, int32_t hi) { return std::uniform_int_distribution<int32_t>(lo, hi)(rng_); }

  // A device copy of host data (an empty vector gives an unallocated tensor, whose pointer is null); with host_mapped,
  // where dev_ is a GPU, in pinned host memory the device reads over the bus (Tensor::host_mapped).
  template <typename T>
  Tensor up(const std::vector<T>& h, bool host_mapped = false) {
    if (h.empty()) return Tensor();
    const DType dt = std::is_same_v<T, float> ? DType::F32 : std::is_same_v<T, uint16_t> ? DType::BF16 : DType::I32;
    const std::vector<int64_t> shape = {(int64_t)h.size()};
    Tensor t = host_mapped && dev_ != Device::CPU ? Tensor::host_mapped(shape, dt) : Tensor(shape, dt, dev_);
    copy_from_host(t, h.data(), sizeof(T) * h.size());
    return t;
  }
  F down(const Tensor& t) {
    F h(t.numel());
    if (t.dtype() == DType::BF16) {  // widened (exactly) for the comparison
      std::vector<uint16_t> b(t.numel());
      copy_to_host(b.data(), t, t.bytes());
      return widen(b);
    }
    copy_to_host(h.data(), t, t.bytes());
    return h;
  }
  static std::vector<uint16_t> narrow(const F& x) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); i++) b[i] = f32_to_bf16(x[i]);
    return b;
  }
  static F widen(const std::vector<uint16_t>& b) {
    F x(b.size());
    for (size_t i = 0; i < b.size(); i++) x[i] = bf16_to_f32(b[i]);
    return x;
  }
  // Random LoraUps for a reader's projections of widths outs[k] over N rows: LoRA (x A^T and B, rank r) where lora[k],
  // a bias where bias[k]. `ref` points at host copies for the reference, `test` at device copies.
  struct UpsPair {
    LoraUps ref, test;
    std::vector<F> host;
    std::vector<Tensor> dev;
  };
  UpsPair random_ups(int N, int r, const std::vector<int>& outs, const std::vector<bool>& lora,
                     const std::vector<bool>& bias) {
    UpsPair u;
    u.host.reserve(3 * outs.size());  // no reallocation: the pointers below stay valid
    u.dev.reserve(3 * outs.size());
    u.ref.r = u.test.r = r;
    u.ref.scale = u.test.scale = 0.75f;
    auto add = [&](F v, const float*& ref, const float*& test) {
      u.host.push_back(std::move(v));
      u.dev.push_back(up(u.host.back()));
      ref = u.host.back().data();
      test = u.dev.back().f32();
    };
    for (size_t k = 0; k < outs.size(); k++) {
      if (lora[k]) {
        add(rand((int64_t)N * r), u.ref.p[k].xa, u.test.p[k].xa);
        add(rand((int64_t)outs[k] * r), u.ref.p[k].B, u.test.p[k].B);
      }
      if (bias[k]) add(rand(outs[k]), u.ref.p[k].bias, u.test.p[k].bias);
    }
    return u;
  }
  static const int32_t* ip(const Tensor& t) { return t.empty() ? nullptr : t.i32(); }
  static const int32_t* ip(const I& v) { return v.empty() ? nullptr : v.data(); }

  // ---- comparison ----
  void compare(const std::string& op, const std::string& output, const std::string& shape, const F& ref,
               const F& got) {
    KernelCheckResult r{op, output, shape, 0, 0, 0, (int64_t)ref.size()};
    if (got.size() != ref.size()) {
      r.max_abs = r.max_rel = std::numeric_limits<double>::infinity();
    } else {
      for (size_t i = 0; i < ref.size(); i++) {
        const double a = ref[i], b = got[i];
        double diff = std::fabs(a - b);
        if (std::isnan(a) || std::isnan(b)) diff = std::isnan(a) && std::isnan(b) ? 0.0 : INFINITY;
        r.max_abs = std::max(r.max_abs, diff);
        if (std::isfinite(a)) r.ref_max = std::max(r.ref_max, std::fabs(a));
      }
      r.max_rel = r.max_abs == 0 ? 0.0 : r.max_abs / std::max(r.ref_max, 1e-30);
    }
    out_.push_back(std::move(r));
  }
  void compare_dev(const std::string& op, const std::string& output, const std::string& shape, const F& ref,
                   const Tensor& got) {
    compare(op, output, shape, ref, down(got));
  }
  void compare_scalar(const std::string& op, const std::string& shape, double ref, double got) {
    compare(op, "result", shape, F{(float)ref}, F{(float)got});
    // Scalars are compared in double (the float rounding above would hide differences below 6e-8).
    KernelCheckResult& r = out_.back();
    r.max_abs = std::fabs(ref - got);
    if (std::isnan(ref) != std::isnan(got)) r.max_abs = INFINITY;
    r.ref_max = std::fabs(ref);
    r.max_rel = r.max_abs == 0 ? 0.0 : r.max_abs / std::max(r.ref_max, 1e-30);
  }

  // ---- cases ----
  void matmuls() {
    struct Case {
      bool ta, tb;
      int M, N, K;
      float beta;
    };
    const Case cases[] = {{false, false, 37, 53, 71, 0.5f}, {false, true, 37, 53, 71, 0.5f},
                          {true, false, 37, 53, 71, 0.5f},  {true, true, 37, 53, 71, 0.5f},
                          {false, true, 65, 130, 1031, 0.5f}, {false, false, 33, 17, 9, 0.0f}};
    for (const Case& c : cases) {
      const int pad = 3;  // row strides wider than the rows: checks the lda/ldb/ldc handling
      const int arows = c.ta ? c.K : c.M, acols = c.ta ? c.M : c.K;
      const int brows = c.tb ? c.N : c.K, bcols = c.tb ? c.K : c.N;
      const int lda = acols + pad, ldb = bcols + pad, ldc = c.N + pad;
      F A = rand((int64_t)arows * lda), B = rand((int64_t)brows * ldb), C = rand((int64_t)c.M * ldc);
      // beta = 0 must not read C: NaN there would propagate (the padding keeps its NaN on both sides).
      if (c.beta == 0.0f) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
      Tensor dA = up(A), dB = up(B), dC = up(C);
      const float alpha = 0.7f;
      ref_.matmul(c.ta, c.tb, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
      test_.matmul(c.ta, c.tb, c.M, c.N, c.K, alpha, dA.f32(), lda, dB.f32(), ldb, c.beta, dC.f32(), ldc);
      compare_dev("matmul", "C",
                  "ta" + std::to_string(c.ta) + " tb" + std::to_string(c.tb) + " M" + std::to_string(c.M) + " N" +
                      std::to_string(c.N) + " K" + std::to_string(c.K) + (c.beta == 0.0f ? " beta0" : ""),
                  C, dC);
    }
  }

  // Half (bf16, or fp16 in fp16 mode) frozen weights: the reference keeps the activation in fp32, a GPU rounds it
  // to the weight's type for the tensor cores, so matmul_bf16w / matmul_f16w have their own tolerances; the gather
  // and widening are exact.
  std::vector<uint16_t> rand_half(int64_t n, bool f16) {
    const F f = rand(n);
    std::vector<uint16_t> h(n);
    for (int64_t i = 0; i < n; i++) h[i] = f16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
    return h;
  }

  void half_weights(bool f16) {
    const std::string tag = f16 ? "f16" : "bf16";
    struct Case {
      bool tw;
      int M, N, K;
      float beta;
    };
    const Case cases[] = {{true, 37, 53, 71, 0.5f}, {false, 37, 53, 71, 0.5f}, {true, 65, 130, 1031, 0.0f},
                          {false, 33, 17, 9, 1.0f}};
    for (const Case& c : cases) {
      const int pad = 3;
      const int wrows = c.tw ? c.N : c.K, wcols = c.tw ? c.K : c.N;
      const int lda = c.K + pad, ldw = wcols + pad, ldc = c.N + pad;
      const F A = rand((int64_t)c.M * lda);
      const std::vector<uint16_t> W = rand_half((int64_t)wrows * ldw, f16);
      F C = rand((int64_t)c.M * ldc);
      if (c.beta == 0.0f) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
      Tensor dA = up(A), dW = up(W), dC = up(C);
      for (Backend* b : {&ref_, &test_}) {
        const bool ref = b == &ref_;
        const float* a = ref ? A.data() : dA.f32();
        const uint16_t* w = ref ? W.data() : dW.half();
        float* out = ref ? C.data() : dC.f32();
        if (f16) b->matmul_f16w(c.tw, c.M, c.N, c.K, 0.7f, a, lda, w, ldw, c.beta, out, ldc);
        else b->matmul_bf16w(c.tw, c.M, c.N, c.K, 0.7f, a, lda, w, ldw, c.beta, out, ldc);
      }
      const std::string shape = "tw" + std::to_string(c.tw) + " M" + std::to_string(c.M) + " N" +
                                std::to_string(c.N) + " K" + std::to_string(c.K) + (c.beta == 0.0f ? " beta0" : "");
      compare_dev("matmul_" + tag + "w", "C", shape, C, dC);
      if (f16) continue;
      // Both operands in bf16, A as stored ([M, K]) and transposed ([K, M]): both sides multiply the same bf16 values
      // (exact products, fp32 sums).
      for (const bool ta : {false, true}) {
        const int lda16 = (ta ? c.M : c.K) + pad;
        const std::vector<uint16_t> A16 = rand_half((int64_t)(ta ? c.K : c.M) * lda16, false);
        F C2 = rand((int64_t)c.M * ldc);
        if (c.beta == 0.0f) C2.assign(C2.size(), std::numeric_limits<float>::quiet_NaN());
        Tensor dA16 = up(A16), dC2 = up(C2);
        ref_.matmul_bf16(ta, c.tw, c.M, c.N, c.K, 0.7f, A16.data(), lda16, W.data(), ldw, c.beta, C2.data(), nullptr,
                         ldc);
        test_.matmul_bf16(ta, c.tw, c.M, c.N, c.K, 0.7f, dA16.bf16(), lda16, dW.bf16(), ldw, c.beta, dC2.f32(),
                          nullptr, ldc);
        compare_dev("matmul_bf16", "C", "ta" + std::to_string(ta) + " " + shape, C2, dC2);
        // C in bf16 (a training layer's projection outputs): read (beta) and written rounded
        std::vector<uint16_t> C16 = rand_half((int64_t)c.M * ldc, false);
        Tensor dC16 = up(C16);
        ref_.matmul_bf16(ta, c.tw, c.M, c.N, c.K, 0.7f, A16.data(), lda16, W.data(), ldw, c.beta, nullptr, C16.data(),
                         ldc);
        test_.matmul_bf16(ta, c.tw, c.M, c.N, c.K, 0.7f, dA16.bf16(), lda16, dW.bf16(), ldw, c.beta, nullptr,
                          dC16.bf16(), ldc);
        compare_dev("matmul_bf16", "C16", "ta" + std::to_string(ta) + " " + shape, widen(C16), dC16);
      }
    }
    // C 67: the scalar gather; C 64: 16-byte loads, from a table in host-mapped memory (an untied model's on a GPU)
    for (const int C : {67, 64}) {
      const int V = 101, N = 301;
      const std::string shape = "V" + std::to_string(V) + " C" + std::to_string(C) + " N" + std::to_string(N);
      const std::vector<uint16_t> table = rand_half((int64_t)V * C, f16);
      I ids(N);
      for (int32_t& i : ids) i = randint(0, V - 1);
      Tensor dtable = up(table, C % 8 == 0), dids = up(ids);
      F out((int64_t)N * C), wide((int64_t)V * C);
      Tensor dout(std::vector<int64_t>{(int64_t)N * C}, DType::F32, dev_);
      Tensor dwide(std::vector<int64_t>{(int64_t)V * C}, DType::F32, dev_);
      if (f16) {
        ref_.embedding_fwd_f16(table.data(), ids.data(), N, C, out.data());
        test_.embedding_fwd_f16(dtable.half(), dids.i32(), N, C, dout.f32());
        ref_.widen_f16(table.data(), wide.data(), (int64_t)V * C);
        test_.widen_f16(dtable.half(), dwide.f32(), (int64_t)V * C);
      } else {
        ref_.embedding_fwd_bf16(table.data(), ids.data(), N, C, out.data());
        test_.embedding_fwd_bf16(dtable.bf16(), dids.i32(), N, C, dout.f32());
        ref_.widen_bf16(table.data(), wide.data(), (int64_t)V * C);
        test_.widen_bf16(dtable.bf16(), dwide.f32(), (int64_t)V * C);
      }
      compare_dev("embedding_fwd_" + tag, "out", shape, out, dout);
      compare_dev("widen_" + tag, "y", "n" + std::to_string(V * C), wide, dwide);
    }
  }

  // A decoding step's products, x W^T with at most 64 rows of x and K a multiple of 32 (CUDA: skinny_gemm.cu), as
  // matmul_bf16 and as matmul_bf16w (x in fp32, rounded by the GPU): rows of 1 to 64 (every count of 8-row tiles),
  // N past a 16-row tile, one 16-row tile only, splits of K across warps and across blocks (N 1024 at K 3072, N 40
  // at K 2048), beta 0 (C not read: NaN), 0.5 and 1.
  void skinny_products() {
    struct Case {
      int M, N, K;
      float beta;
    };
    const Case cases[] = {{1, 16, 32, 0.0f},     {5, 53, 96, 0.5f},    {8, 300, 1024, 0.0f}, {13, 40, 2048, 1.0f},
                          {32, 1024, 3072, 0.0f}, {33, 129, 64, 0.5f}, {47, 97, 256, 0.0f},  {64, 77, 512, 1.0f}};
    for (const Case& c : cases) {
      const int pad = 8;  // rows stay 16-byte aligned
      const int lda = c.K + pad, ldw = c.K + pad, ldc = c.N + 3;
      const std::vector<uint16_t> A16 = rand_half((int64_t)c.M * lda, false), W = rand_half((int64_t)c.N * ldw, false);
      const F A = widen(A16);  // bf16-exact: matmul_bf16w's rounding changes nothing, both forms have one answer
      const std::string shape = "M" + std::to_string(c.M) + " N" + std::to_string(c.N) + " K" + std::to_string(c.K) +
                                (c.beta == 0.0f ? " beta0" : "") + " skinny";
      Tensor dA16 = up(A16), dA = up(A), dW = up(W);
      for (const bool wide : {false, true}) {
        F C = rand((int64_t)c.M * ldc);
        if (c.beta == 0.0f) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
        Tensor dC = up(C);
        if (wide) {
          ref_.matmul_bf16w(true, c.M, c.N, c.K, 0.7f, A.data(), lda, W.data(), ldw, c.beta, C.data(), ldc);
          test_.matmul_bf16w(true, c.M, c.N, c.K, 0.7f, dA.f32(), lda, dW.bf16(), ldw, c.beta, dC.f32(), ldc);
        } else {
          ref_.matmul_bf16(false, true, c.M, c.N, c.K, 0.7f, A16.data(), lda, W.data(), ldw, c.beta, C.data(), nullptr,
                           ldc);
          test_.matmul_bf16(false, true, c.M, c.N, c.K, 0.7f, dA16.bf16(), lda, dW.bf16(), ldw, c.beta, dC.f32(),
                            nullptr, ldc);
        }
        compare_dev(wide ? "matmul_bf16w" : "matmul_bf16", "C", shape, C, dC);
      }
    }
  }

  void bf16_narrowing() {
    // Rounding to nearest even, ties included: values halfway between two bf16 numbers, and ordinary ones.
    F x = rand(100003, -40.0f, 40.0f);
    for (size_t i = 0; i < x.size(); i += 3) {  // exactly halfway: a bf16 number's bits, then half its last bit
      const uint32_t bits = (uint32_t)f32_to_bf16(x[i]) << 16 | 0x8000u;
      std::memcpy(&x[i], &bits, sizeof bits);
    }
    std::vector<uint16_t> y(x.size());
    Tensor dx = up(x), dy(std::vector<int64_t>{(int64_t)x.size()}, DType::BF16, dev_);
    ref_.narrow_bf16(x.data(), y.data(), (int64_t)x.size());
    test_.narrow_bf16(dx.f32(), dy.bf16(), (int64_t)x.size());
    F ynarrow(y.size());
    for (size_t i = 0; i < y.size(); i++) ynarrow[i] = bf16_to_f32(y[i]);
    compare_dev("narrow_bf16", "y", "n100003", ynarrow, dy);
    // Several jobs in one launch (a LoRA group's x A^T and B): sizes that end mid-block, and an empty one.
    const std::vector<int64_t> sizes = {1000, 0, 37, 4099, 1};
    NarrowJobs jobs;
    std::vector<Tensor> outs;
    for (int64_t n : sizes) {
      outs.emplace_back(std::vector<int64_t>{std::max<int64_t>(n, 1)}, DType::BF16, dev_);
      jobs.add(dx.f32() + 3 * jobs.count, outs.back().bf16(), n);
    }
    test_.narrow_bf16_many(jobs);
    for (int k = 0; k < jobs.count; k++) {
      if (sizes[k] == 0) continue;
      const auto from = y.begin() + 3 * k;
      compare_dev("narrow_bf16_many", "y", "job " + std::to_string(k) + " n" + std::to_string(sizes[k]),
                  widen(std::vector<uint16_t>(from, from + sizes[k])), outs[k]);
    }
  }

  void elementwise() {
    for (int64_t n : {int64_t{7}, int64_t{100003}}) {
      const std::string shape = "n" + std::to_string(n);
      const F x = rand(n), y0 = rand(n);
      Tensor dx = up(x);
      // Each op in place on a fresh copy of y0 (x as its second operand), on both backends.
      auto check = [&](const char* op, const char* arg, auto&& apply) {
        F y = y0;
        Tensor dy = up(y);
        apply(ref_, y.data(), x.data());
        apply(test_, dy.f32(), static_cast<const float*>(dx.f32()));
        compare_dev(op, arg, shape, y, dy);
      };
      check("zero", "x", [&](Backend& b, float* y, const float*) { b.zero(y, n); });
      check("copy", "dst", [&](Backend& b, float* y, const float* src) { b.copy(y, src, n); });
      check("add", "y", [&](Backend& b, float* y, const float* src) { b.add(y, src, n); });
      check("add_out", "out", [&](Backend& b, float* y, const float* src) { b.add_out(y, src, y, n); });
      check("scale", "x", [&](Backend& b, float* y, const float*) { b.scale(y, -1.37f, n); });
      check("mul", "y", [&](Backend& b, float* y, const float* src) { b.mul(y, src, n); });
    }
    {
      // More elements than grid_for's cap of 65535 blocks x 256 threads: the grid-stride loop must go round.
      const int64_t n = int64_t{65535} * 256 + 1001;
      F y = rand(n);
      Tensor dy = up(y);
      ref_.scale(y.data(), 0.75f, n);
      test_.scale(dy.f32(), 0.75f, n);
      compare_dev("scale", "x", "n" + std::to_string(n) + " grid-stride", y, dy);
    }
    const int N = 301, C = 67;
    F y = rand((int64_t)N * C), bias = rand(C);
    Tensor dy = up(y), db = up(bias);
    ref_.add_bias(y.data(), bias.data(), N, C);
    test_.add_bias(dy.f32(), db.f32(), N, C);
    compare_dev("add_bias", "y", "N301 C67", y, dy);
  }

  void reductions() {
    // C = 600: the column-per-thread kernel spans several blocks.
    for (const auto& [N, C] : {std::pair{1, 67}, std::pair{301, 67}, std::pair{129, 600}}) {
      F gb = rand(C), dyv = rand((int64_t)N * C);
      Tensor dgb = up(gb), ddy = up(dyv);
      ref_.bias_grad(gb.data(), dyv.data(), N, C);
      test_.bias_grad(dgb.f32(), ddy.f32(), N, C);
      compare_dev("bias_grad", "gb", "N" + std::to_string(N) + " C" + std::to_string(C), gb, dgb);
    }
    for (int64_t n : {int64_t{5}, int64_t{1000003}}) {
      const F x = rand(n);
      Tensor dx = up(x);
      compare_scalar("sum_squares", "n" + std::to_string(n), ref_.sum_squares(x.data(), n),
                     test_.sum_squares(dx.f32(), n));
    }
    sum_squares_many();
    zero_many();
    argmax_rows();
  }

  // Several buffers (an empty one, one longer than the fixed grid covers in one pass, one element) in one call;
  // "result" against the reference, "vs_loop" against the tested backend's own per-buffer loop (must be bitwise).
  void sum_squares_many() {
    const int64_t sizes[] = {5, 1000003, 0, 70001, 1, 4099};
    const int count = (int)(sizeof sizes / sizeof sizes[0]);
    std::vector<F> host;
    std::vector<Tensor> dev;
    std::vector<const float*> hp, dp;
    std::vector<int64_t> ns;
    for (int64_t n : sizes) {
      host.push_back(rand(n));
      dev.push_back(up(host.back()));
      ns.push_back(n);
    }
    for (int i = 0; i < count; i++) {
      hp.push_back(host[i].data());
      dp.push_back(dev[i].empty() ? nullptr : dev[i].f32());
    }
    const double ref = ref_.sum_squares_many(hp.data(), ns.data(), count);
    const double got = test_.sum_squares_many(dp.data(), ns.data(), count);
    double loop = 0;
    for (int i = 0; i < count; i++) loop += test_.sum_squares(dp[i], ns[i]);
    compare_scalar("sum_squares_many", "6 buffers", ref, got);
    compare_scalar("sum_squares_many", "6 buffers vs_loop", loop, got);
  }

  // Buffers of random values (an empty one, one longer than a block's stretch of the grid, single elements) zeroed in one
  // call; a neighbour of each must keep its values (the reference backend zeroes it too, in its own way).
  void zero_many() {
    const int64_t sizes[] = {5, 1000003, 0, 70001, 1};
    std::vector<F> host;
    std::vector<Tensor> dev;
    std::vector<float*> hp, dp;
    std::vector<int64_t> ns;
    for (int64_t n : sizes) {
      host.push_back(rand(n + 3));  // 3 values past the zeroed length stay
      dev.push_back(up(host.back()));
      ns.push_back(n);
    }
    for (size_t i = 0; i < host.size(); i++) {
      hp.push_back(host[i].data());
      dp.push_back(dev[i].f32());
    }
    ref_.zero_many(hp.data(), ns.data(), (int)ns.size());
    test_.zero_many(dp.data(), ns.data(), (int)ns.size());
    for (size_t i = 0; i < host.size(); i++)
      compare_dev("zero_many", "x", "n" + std::to_string(sizes[i]) + " of 5 buffers", host[i], dev[i]);
  }

  // Rows with the maximum repeated at two far-apart indices (different threads of a GPU block), constant rows,
  // all -inf, the maximum in the last column, rows narrower than a block (down to 2 columns).
  void argmax_rows() {
    for (const auto& [N, V] : {std::pair{13, 5003}, std::pair{9, 300}, std::pair{5, 2}}) {
      F x = rand((int64_t)N * V, -4.0f, 4.0f);
      for (int i = 0; i < N; i++) {
        float* row = x.data() + (int64_t)i * V;
        const int kind = i % 5;
        if (kind == 1 && V > 2) {  // a tie: the lower index must win
          const int a = randint(0, V / 2 - 1), b = randint(V / 2, V - 1);
          row[a] = row[b] = 9.0f;
        } else if (kind == 2) {
          for (int c = 0; c < V; c++) row[c] = 0.25f;
        } else if (kind == 3) {
          for (int c = 0; c < V; c++) row[c] = -std::numeric_limits<float>::infinity();
        } else if (kind == 4) {
          row[V - 1] = 9.0f;
        }
      }
      Tensor dx = up(x);
      I ref(N);
      Tensor got(std::vector<int64_t>{N}, DType::I32, dev_);
      ref_.argmax_rows(x.data(), N, V, ref.data());
      test_.argmax_rows(dx.f32(), N, V, got.i32());
      I g(N);
      copy_to_host(g.data(), got, sizeof(int32_t) * N);
      compare("argmax_rows", "out", "N" + std::to_string(N) + " V" + std::to_string(V) + " ties",
              F(ref.begin(), ref.end()), F(g.begin(), g.end()));
    }
  }

  void embedding() {
    embedding_case(101, 67, 301);  // the scalar gather
    embedding_case(37, 600, 203);  // 16-byte loads; the scatter's column-per-thread grid spans several blocks
    embedding_case(53, 64, 97, true);  // 16-byte loads from a table in host-mapped memory
  }

  void embedding_case(int V, int C, int N, bool host_mapped = false) {
    const std::string shape = "V" + std::to_string(V) + " C" + std::to_string(C) + " N" + std::to_string(N) +
                              (host_mapped ? " host-mapped" : "");
    const F table = rand((int64_t)V * C), d = rand((int64_t)N * C);
    I ids(N);
    for (int32_t& i : ids) i = randint(0, V - 1);  // more draws than rows: many repeats
    Tensor dtable = up(table, host_mapped), dids = up(ids), dd = up(d);
    F out((int64_t)N * C);
    Tensor dout(std::vector<int64_t>{(int64_t)N * C}, DType::F32, dev_);
    ref_.embedding_fwd(table.data(), ids.data(), N, C, out.data());
    test_.embedding_fwd(dtable.f32(), dids.i32(), N, C, dout.f32());
    compare_dev("embedding_fwd", "out", shape, out, dout);

    F grad = rand((int64_t)V * C);
    Tensor dgrad = up(grad);
    ref_.embedding_bwd(grad.data(), ids.data(), N, C, d.data());
    test_.embedding_bwd(dgrad.f32(), dids.i32(), N, C, dd.f32());
    compare_dev("embedding_bwd", "table_grad", shape, grad, dgrad);

    // distinct rows (the loss head's): a shuffled run of min(N, V) rows of the table
    const int n = std::min(N, V);
    I rows(V);
    for (int i = 0; i < V; i++) rows[i] = i;
    for (int i = V - 1; i > 0; i--) std::swap(rows[i], rows[randint(0, i)]);
    rows.resize(n);
    Tensor drows = up(rows);
    F dst = rand((int64_t)V * C);
    Tensor ddst = up(dst);
    ref_.scatter_add_rows(dst.data(), rows.data(), n, C, d.data());
    test_.scatter_add_rows(ddst.f32(), drows.i32(), n, C, dd.f32());
    compare_dev("scatter_add_rows", "dst", shape, dst, ddst);
  }

  void rmsnorm() {
    rmsnorm_case(37, 1001);
    rmsnorm_case(300, 128);  // qk-norm: rows of head_dim, narrower than the 256-thread block
  }

  void rmsnorm_case(int N, int C) {
    const std::string base = "N" + std::to_string(N) + " C" + std::to_string(C);
    const float eps = 1e-6f;
    const F x = rand((int64_t)N * C, -3.0f, 3.0f), w = rand(C, 0.5f, 1.5f), dyv = rand((int64_t)N * C);
    Tensor dx = up(x), dw = up(w), ddy = up(dyv);
    F out((int64_t)N * C), rstd(N);
    Tensor dout(std::vector<int64_t>{(int64_t)N * C}, DType::F32, dev_), drstd(std::vector<int64_t>{N}, DType::F32, dev_);
    ref_.rmsnorm_fwd(x.data(), w.data(), N, C, eps, out.data(), rstd.data());
    test_.rmsnorm_fwd(dx.f32(), dw.f32(), N, C, eps, dout.f32(), drstd.f32());
    compare_dev("rmsnorm_fwd", "out", base, out, dout);
    compare_dev("rmsnorm_fwd", "rstd", base, rstd, drstd);
    // bf16 output (bf16 mode's projection inputs): the same values rounded to nearest even
    std::vector<uint16_t> out16((size_t)N * C);
    Tensor dout16(std::vector<int64_t>{(int64_t)N * C}, DType::BF16, dev_);
    ref_.rmsnorm_fwd_bf16(x.data(), w.data(), N, C, eps, out16.data(), rstd.data());
    test_.rmsnorm_fwd_bf16(dx.f32(), dw.f32(), N, C, eps, dout16.bf16(), drstd.f32());
    compare_dev("rmsnorm_fwd_bf16", "out", base, widen(out16), dout16);
    compare_dev("rmsnorm_fwd_bf16", "rstd", base, rstd, drstd);
    // the residual add before a norm, in one call: fp32 output, then bf16 (reported as " bf16out")
    const F b = rand((int64_t)N * C, -3.0f, 3.0f);
    Tensor db = up(b);
    // ... and a decoding step's, b its o or down product with the projection's bias and LoRA added as it is read
    for (const int variant : {0, 1, 2}) {
      const bool half = variant == 1, lora = variant == 2;
      const UpsPair ups = random_ups(N, 16, {C}, {lora}, {lora});
      F sum((int64_t)N * C), nout((int64_t)N * C), nrstd(N);
      std::vector<uint16_t> nout16(half ? (size_t)N * C : 0);
      Tensor dsum(std::vector<int64_t>{(int64_t)N * C}, DType::F32, dev_), dno = up(nout), dno16 = up(nout16),
          dnr(std::vector<int64_t>{N}, DType::F32, dev_);
      ref_.add_rmsnorm(x.data(), b.data(), w.data(), N, C, eps, sum.data(), half ? nullptr : nout.data(),
                       half ? nout16.data() : nullptr, nrstd.data(), ups.ref);
      test_.add_rmsnorm(dx.f32(), db.f32(), dw.f32(), N, C, eps, dsum.f32(), half ? nullptr : dno.f32(),
                        half ? dno16.bf16() : nullptr, dnr.f32(), ups.test);
      const std::string shape = base + (half ? " bf16out" : "") + (lora ? " lora bias" : "");
      compare_dev("add_rmsnorm", "sum", shape, sum, dsum);
      if (half) compare_dev("add_rmsnorm", "out", shape, widen(nout16), dno16);
      else compare_dev("add_rmsnorm", "out", shape, nout, dno);
      compare_dev("add_rmsnorm", "rstd", shape, nrstd, dnr);
    }

    Tensor rstd_in = up(rstd);  // both backwards get the reference rstd, so only the backward is compared
    for (bool acc : {false, true}) {
      F gx = rand((int64_t)N * C), gw = rand(C);
      Tensor dgx = up(gx), dgw = up(gw);
      // with accumulation, also dx rounded to bf16 (the residual gradient bf16 mode's next dy reads)
      Tensor dgx16 = acc ? up(std::vector<uint16_t>((size_t)N * C)) : Tensor();
      ref_.rmsnorm_bwd(x.data(), w.data(), rstd.data(), dyv.data(), N, C, gx.data(), acc, gw.data(), nullptr);
      test_.rmsnorm_bwd(dx.f32(), dw.f32(), rstd_in.f32(), ddy.f32(), N, C, dgx.f32(), acc, dgw.f32(),
                        acc ? dgx16.bf16() : nullptr);
      const std::string shape = base + " accumulate=" + (acc ? "1" : "0");
      compare_dev("rmsnorm_bwd", "dx", shape, gx, dgx);
      compare_dev("rmsnorm_bwd", "dw", shape, gw, dgw);
      if (acc) compare_dev("rmsnorm_bwd", "dx16", shape, widen(narrow(gx)), dgx16);
    }
  }

  void rope() {
    const int N = 41, heads = 5, hd = 128;
    I pos(N);
    for (int32_t& p : pos) p = randint(0, 40000);  // long positions: the fp32 angle rounding matters
    F inv_freq(hd / 2);
    for (int i = 0; i < hd / 2; i++) inv_freq[i] = (float)std::pow(1e6, -2.0 * i / hd);
    Tensor dpos = up(pos), dinv = up(inv_freq);
    F cs((int64_t)N * hd);
    Tensor dcs(std::vector<int64_t>{(int64_t)N * hd}, DType::F32, dev_);
    ref_.rope_table(pos.data(), inv_freq.data(), N, hd, cs.data());
    test_.rope_table(dpos.i32(), dinv.f32(), N, hd, dcs.f32());
    compare_dev("rope_table", "cs", "N41 hd128", cs, dcs);

    Tensor cs_in = up(cs);
    for (bool inverse : {false, true}) {
      F x = rand((int64_t)N * heads * hd);
      Tensor dx = up(x);
      ref_.rope(x.data(), cs.data(), N, heads, hd, inverse);
      test_.rope(dx.f32(), cs_in.f32(), N, heads, hd, inverse);
      compare_dev("rope", "x", std::string("N41 heads5 hd128 inverse=") + (inverse ? "1" : "0"), x, dx);
    }
    qk_norm_rope_case(41, 5, 2, 128, true);
    qk_norm_rope_case(41, 5, 1, 128, false);  // in place, rotation only (no qk-norm: Qwen2, Llama)
    qk_norm_rope_case(7, 3, 3, 80, true);
    qk_norm_rope_case(5, 2, 1, 256, true);  // the kernel's widest head
    qk_norm_rope_bf16_in_case(41, 5, 2, 128, true);
    qk_norm_rope_bf16_in_case(41, 5, 1, 128, false);
    qk_norm_rope_bf16_in_case(7, 3, 3, 80, true);
    // a decoding step's q, k and v from one stacked product: qk-norm or not, fp32 and bf16 caches, the slot given or
    // read on the device,
    // rows with spare columns past v; each value with LoRA on q and v and every bias, LoRA on all three, or nothing
    qkv_to_cache_case(3, 1, 4, 2, 64, true, true, 0, 1);
    qkv_to_cache_case(2, 5, 3, 3, 128, false, false, 7, 2);
    qkv_to_cache_case(4, 1, 2, 1, 256, true, true, 3, 0);
    qkv_to_cache_case(5, 1, 4, 2, 80, false, true, 0, 1);
    // the backward: rotation only, from fp32 and bf16 inputs of the norm, and with the norm weights' gradients
    qk_norm_rope_bwd_case(41, 5, 1, 128, false, false, false);
    qk_norm_rope_bwd_case(41, 5, 2, 128, true, false, false);
    qk_norm_rope_bwd_case(7, 3, 3, 80, true, true, false);
    qk_norm_rope_bwd_case(9, 4, 2, 64, true, false, true);
    qk_norm_rope_bwd_case(5, 2, 1, 256, true, true, false);
    // the results in bf16 (bf16 activations): rotation only, and with the norm written over its bf16 inputs
    qk_norm_rope_bwd_case(41, 5, 1, 128, false, false, false, true);
    qk_norm_rope_bwd_case(7, 3, 3, 80, true, true, false, true);
    qk_norm_rope_bwd_case(5, 2, 1, 256, true, true, false, true);
  }

  void qk_norm_rope_bwd_case(int N, int H, int KV, int hd, bool norm, bool pre16, bool dw, bool out16 = false) {
    const std::string shape = "N" + std::to_string(N) + " H" + std::to_string(H) + " KV" + std::to_string(KV) + " hd" +
                              std::to_string(hd) + (norm ? " norm" : " rotation") + (pre16 ? " bf16in" : "") +
                              (dw ? " dw" : "") + (out16 ? " bf16out" : "");
    const int64_t nq = (int64_t)N * H * hd, nk = (int64_t)N * KV * hd;
    F dq = rand(nq), dk = rand(nk), dqp(nq), dkp(nk), gq = rand(hd), gk = rand(hd);
    const F cs = rand((int64_t)N * hd), qw = rand(hd, 0.5f, 1.5f), kw = rand(hd, 0.5f, 1.5f);
    const F rq = rand((int64_t)N * H, 0.5f, 2.0f), rk = rand((int64_t)N * KV, 0.5f, 2.0f);
    const std::vector<uint16_t> q16 = narrow(rand(nq, -3.0f, 3.0f)), k16 = narrow(rand(nk, -3.0f, 3.0f));
    const F q = widen(q16), k = widen(k16);  // the same values either way
    Tensor tdq = up(dq), tdk = up(dk), tdqp = up(dqp), tdkp = up(dkp), tgq = up(gq), tgk = up(gk), tcs = up(cs),
           tqw = up(qw), tkw = up(kw), trq = up(rq), trk = up(rk), tq16 = up(q16), tk16 = up(k16), tq = up(q),
           tk = up(k);
    ref_.qk_norm_rope_bwd(dq.data(), dk.data(), norm && !pre16 ? q.data() : nullptr,
                          norm && !pre16 ? k.data() : nullptr, norm && pre16 ? q16.data() : nullptr,
                          norm && pre16 ? k16.data() : nullptr, norm ? qw.data() : nullptr, norm ? kw.data() : nullptr,
                          norm ? rq.data() : nullptr, norm ? rk.data() : nullptr, cs.data(), N, H, KV, hd, dqp.data(),
                          dkp.data(), dw ? gq.data() : nullptr, dw ? gk.data() : nullptr, nullptr, nullptr);
    // bf16 results: over the norm's bf16 inputs (as the Model calls it), or into buffers of their own (rotation only)
    Tensor oq(std::vector<int64_t>{nq}, DType::BF16, dev_), ok(std::vector<int64_t>{nk}, DType::BF16, dev_);
    uint16_t* dq16 = !out16 ? nullptr : pre16 ? tq16.bf16() : oq.bf16();
    uint16_t* dk16 = !out16 ? nullptr : pre16 ? tk16.bf16() : ok.bf16();
    test_.qk_norm_rope_bwd(tdq.f32(), tdk.f32(), norm && !pre16 ? tq.f32() : nullptr,
                           norm && !pre16 ? tk.f32() : nullptr, norm && pre16 ? tq16.bf16() : nullptr,
                           norm && pre16 ? tk16.bf16() : nullptr, norm ? tqw.f32() : nullptr,
                           norm ? tkw.f32() : nullptr, norm ? trq.f32() : nullptr, norm ? trk.f32() : nullptr,
                           tcs.f32(), N, H, KV, hd, out16 ? nullptr : tdqp.f32(), out16 ? nullptr : tdkp.f32(),
                           dw ? tgq.f32() : nullptr, dw ? tgk.f32() : nullptr, dq16, dk16);
    if (out16) {
      // the bf16 roundings of the fp32 reference's results
      const F& rq_out = norm ? dqp : dq;
      const F& rk_out = norm ? dkp : dk;
      compare_dev("qk_norm_rope_bwd", norm ? "dq_pre16" : "dq16", shape, widen(narrow(rq_out)), pre16 ? tq16 : oq);
      compare_dev("qk_norm_rope_bwd", norm ? "dk_pre16" : "dk16", shape, widen(narrow(rk_out)), pre16 ? tk16 : ok);
      return;
    }
    if (!norm) {
      compare_dev("qk_norm_rope_bwd", "dq", shape, dq, tdq);
      compare_dev("qk_norm_rope_bwd", "dk", shape, dk, tdk);
      return;
    }
    compare_dev("qk_norm_rope_bwd", "dq_pre", shape, dqp, tdqp);
    compare_dev("qk_norm_rope_bwd", "dk_pre", shape, dkp, tdkp);
    if (!dw) return;
    compare_dev("qk_norm_rope_bwd", "dq_w", shape, gq, tgq);
    compare_dev("qk_norm_rope_bwd", "dk_w", shape, gk, tgk);
  }

  // q and k normed and rotated in one call, against rmsnorm_fwd then rope (a random rotation table will do), with the
  // bf16 copies of what goes in (norm only) and out, as training with bf16 activations asks for them.
  void qk_norm_rope_case(int N, int H, int KV, int hd, bool norm) {
    const std::string shape = "N" + std::to_string(N) + " H" + std::to_string(H) + " KV" + std::to_string(KV) + " hd" +
                              std::to_string(hd) + (norm ? " norm" : " in place");
    const float eps = 1e-6f;
    const int64_t nq = (int64_t)N * H * hd, nk = (int64_t)N * KV * hd;
    const F q_in = rand(nq, -3.0f, 3.0f), k_in = rand(nk, -3.0f, 3.0f);
    const F qw = rand(hd, 0.5f, 1.5f), kw = rand(hd, 0.5f, 1.5f), cs = rand((int64_t)N * hd);
    F q = norm ? F(nq) : q_in, k = norm ? F(nk) : k_in, rq((int64_t)N * H), rk((int64_t)N * KV);
    Tensor dq_in = up(q_in), dk_in = up(k_in), dqw = up(qw), dkw = up(kw), dcs = up(cs);
    Tensor dq = up(q), dk = up(k), drq = up(rq), drk = up(rk);
    std::vector<uint16_t> q16(nq), k16(nk), qp16(norm ? nq : 0), kp16(norm ? nk : 0);
    Tensor dq16 = up(q16), dk16 = up(k16), dqp16 = up(qp16), dkp16 = up(kp16);
    const QkCopies ref_copies{norm ? qp16.data() : nullptr, norm ? kp16.data() : nullptr, q16.data(), k16.data()};
    const QkCopies test_copies{norm ? dqp16.bf16() : nullptr, norm ? dkp16.bf16() : nullptr, dq16.bf16(), dk16.bf16()};
    // in place without norm weights: q and k are their own inputs
    ref_.qk_norm_rope(norm ? q_in.data() : q.data(), norm ? k_in.data() : k.data(), norm ? qw.data() : nullptr,
                      norm ? kw.data() : nullptr, cs.data(), N, H, KV, hd, eps, q.data(), k.data(),
                      norm ? rq.data() : nullptr, norm ? rk.data() : nullptr, ref_copies);
    test_.qk_norm_rope(norm ? dq_in.f32() : dq.f32(), norm ? dk_in.f32() : dk.f32(), norm ? dqw.f32() : nullptr,
                       norm ? dkw.f32() : nullptr, dcs.f32(), N, H, KV, hd, eps, dq.f32(), dk.f32(),
                       norm ? drq.f32() : nullptr, norm ? drk.f32() : nullptr, test_copies);
    compare_dev("qk_norm_rope", "q", shape, q, dq);
    compare_dev("qk_norm_rope", "k", shape, k, dk);
    compare_dev("qk_norm_rope", "q16", shape, widen(q16), dq16);
    compare_dev("qk_norm_rope", "k16", shape, widen(k16), dk16);
    if (!norm) return;
    compare_dev("qk_norm_rope", "rstd_q", shape, rq, drq);
    compare_dev("qk_norm_rope", "rstd_k", shape, rk, drk);
    compare_dev("qk_norm_rope", "q_pre16", shape, widen(qp16), dqp16);
    compare_dev("qk_norm_rope", "k_pre16", shape, widen(kp16), dkp16);
  }

  // qkv_to_cache against the reference's composition (qk_norm_rope, then the cache write), into fp32 and bf16 caches
  // whose other slots must keep their values.
  void qkv_to_cache_case(int B, int Tq, int H, int KV, int hd, bool norm, bool slot_on_device, int spare, int lora) {
    const int N = B * Tq, Tk = 11, off = 4, kd = KV * hd, ld = (H + 2 * KV) * hd + spare;
    const std::string shape = "B" + std::to_string(B) + " Tq" + std::to_string(Tq) + " H" + std::to_string(H) + " KV" +
                              std::to_string(KV) + " hd" + std::to_string(hd) + " ld" + std::to_string(ld) +
                              (norm ? " norm" : " rotation only") + (slot_on_device ? " slot-on-device" : "") +
                              (lora == 1 ? " lora q,v bias" : lora == 2 ? " lora q,k,v" : "");
    const UpsPair ups = random_ups(N, 8, {H * hd, kd, kd}, {lora > 0, lora == 2, lora > 0}, {lora == 1, lora == 1, lora == 1});
    const float eps = 1e-6f;
    const F qkv = rand((int64_t)N * ld, -3.0f, 3.0f), qw = rand(hd, 0.5f, 1.5f), kw = rand(hd, 0.5f, 1.5f);
    const F cs = rand((int64_t)N * hd);
    const Tensor dqkv = up(qkv), dqw = up(qw), dkw = up(kw), dcs = up(cs), slot = up(I{off});
    const int32_t* test_slot = slot_on_device ? slot.i32() : nullptr;
    const int host_off = slot_on_device ? 0 : off;  // a stale host value where the device holds the slot
    const int64_t cache = (int64_t)B * Tk * kd;
    F q((int64_t)N * H * hd), kc = rand(cache), vc = rand(cache);
    Tensor dq = up(q), dkc = up(kc), dvc = up(vc);
    ref_.qkv_to_cache(qkv.data(), ld, norm ? qw.data() : nullptr, norm ? kw.data() : nullptr, cs.data(), B, Tq, H, KV,
                      hd, eps, q.data(), kc.data(), vc.data(), nullptr, nullptr, Tk, off, nullptr, ups.ref);
    test_.qkv_to_cache(dqkv.f32(), ld, norm ? dqw.f32() : nullptr, norm ? dkw.f32() : nullptr, dcs.f32(), B, Tq, H, KV,
                       hd, eps, dq.f32(), dkc.f32(), dvc.f32(), nullptr, nullptr, Tk, host_off, test_slot, ups.test);
    compare_dev("qkv_to_cache", "q", shape, q, dq);
    compare_dev("qkv_to_cache", "k", shape, kc, dkc);
    compare_dev("qkv_to_cache", "v", shape, vc, dvc);
    std::vector<uint16_t> kc16 = narrow(rand(cache)), vc16 = narrow(rand(cache));
    Tensor dkc16 = up(kc16), dvc16 = up(vc16);
    ref_.qkv_to_cache(qkv.data(), ld, norm ? qw.data() : nullptr, norm ? kw.data() : nullptr, cs.data(), B, Tq, H, KV,
                      hd, eps, q.data(), nullptr, nullptr, kc16.data(), vc16.data(), Tk, off, nullptr, ups.ref);
    test_.qkv_to_cache(dqkv.f32(), ld, norm ? dqw.f32() : nullptr, norm ? dkw.f32() : nullptr, dcs.f32(), B, Tq, H, KV,
                       hd, eps, dq.f32(), nullptr, nullptr, dkc16.bf16(), dvc16.bf16(), Tk, host_off, test_slot,
                       ups.test);
    compare_dev("qkv_to_cache", "k16", shape, widen(kc16), dkc16);
    compare_dev("qkv_to_cache", "v16", shape, widen(vc16), dvc16);
  }

  // The inputs only in bf16 (a training layer's q and k products write them so), no fp32 k wanted: against the fp32
  // reference on the same bf16 values. Without norm weights the bf16 rows are rotated in place.
  void qk_norm_rope_bf16_in_case(int N, int H, int KV, int hd, bool norm) {
    const std::string shape = "N" + std::to_string(N) + " H" + std::to_string(H) + " KV" + std::to_string(KV) + " hd" +
                              std::to_string(hd) + (norm ? " norm" : " in place") + " bf16in";
    const float eps = 1e-6f;
    const int64_t nq = (int64_t)N * H * hd, nk = (int64_t)N * KV * hd;
    const std::vector<uint16_t> q_in16 = narrow(rand(nq, -3.0f, 3.0f)), k_in16 = narrow(rand(nk, -3.0f, 3.0f));
    F q_in = widen(q_in16), k_in = widen(k_in16);
    const F qw = rand(hd, 0.5f, 1.5f), kw = rand(hd, 0.5f, 1.5f), cs = rand((int64_t)N * hd);
    F q(nq), k(nk), rq((int64_t)N * H), rk((int64_t)N * KV);
    ref_.qk_norm_rope(q_in.data(), k_in.data(), norm ? qw.data() : nullptr, norm ? kw.data() : nullptr, cs.data(), N,
                      H, KV, hd, eps, q.data(), k.data(), norm ? rq.data() : nullptr, norm ? rk.data() : nullptr, {});
    Tensor dqw = up(qw), dkw = up(kw), dcs = up(cs), dq = up(F(nq)), drq = up(rq), drk = up(rk);
    Tensor dqi = up(q_in16), dki = up(k_in16);
    Tensor dq16(std::vector<int64_t>{nq}, DType::BF16, dev_), dk16(std::vector<int64_t>{nk}, DType::BF16, dev_);
    QkCopies copies{dqi.bf16(), dki.bf16(), norm ? dq16.bf16() : dqi.bf16(), norm ? dk16.bf16() : dki.bf16(), true};
    test_.qk_norm_rope(nullptr, nullptr, norm ? dqw.f32() : nullptr, norm ? dkw.f32() : nullptr, dcs.f32(), N, H, KV,
                       hd, eps, dq.f32(), nullptr, norm ? drq.f32() : nullptr, norm ? drk.f32() : nullptr, copies);
    compare_dev("qk_norm_rope", "q", shape, q, dq);
    compare_dev("qk_norm_rope", "q16", shape, widen(narrow(q)), norm ? dq16 : dqi);
    compare_dev("qk_norm_rope", "k16", shape, widen(narrow(k)), norm ? dk16 : dki);
    if (!norm) return;
    compare_dev("qk_norm_rope", "rstd_q", shape, rq, drq);
    compare_dev("qk_norm_rope", "rstd_k", shape, rk, drk);
  }

  struct AttnCase {
    AttnDims d;
    bool left_pad, tail_pad, segments;
  };

  // The shape, then the tested backend's attention path (CUDA: gemm or flash) and " bf16" for bf16 mode, whose
  // tolerance is looser (test/gpu/kernels.test.ts).
  // `tags` name a variant of the call (a bf16 KV cache, the slot read on the device).
  std::string describe(const AttnCase& c, const std::string& path, bool bf16, const std::string& tags = "") {
    const AttnDims& d = c.d;
    std::string s = "B" + std::to_string(d.B) + " Tq" + std::to_string(d.Tq) + " Tk" + std::to_string(d.Tk) +
                    " qoff" + std::to_string(d.q_off) + " H" + std::to_string(d.H) + " KV" + std::to_string(d.KV) +
                    " hd" + std::to_string(d.hd);
    if (c.left_pad) s += " leftpad";
    if (c.tail_pad) s += " tailpad";
    if (c.segments) s += " segments";
    s += tags;
    // the kernels that ran, where the path hands some calls to others (the mma path: fp32 mode and decoding steps)
    const std::string route = test_.attention_route(d);
    if (!route.empty() && route != path) s += " ran:" + route;
    if (!path.empty()) s += " " + path;
    if (bf16) s += " bf16";
    return s;
  }

  void attention() {
    const AttnCase cases[] = {
        {{2, 37, 37, 0, 4, 2, 64}, true, false, false},
        {{1, 70, 70, 0, 6, 2, 128}, false, true, true},
        {{3, 45, 45, 0, 2, 2, 80}, false, false, false},
        {{2, 33, 33, 0, 8, 1, 128}, true, false, true},
        {{2, 7, 61, 40, 4, 2, 64}, true, false, true},  // a prefill chunk after 40 cached slots
        // 3 query tiles and 3 key tiles at an offset that is no multiple of either tile, into a longer cache
        {{2, 40, 100, 53, 6, 2, 80}, true, false, true},
        {{3, 1, 50, 43, 4, 4, 128}, true, false, false},  // one decoding step
        // long enough for 3 query chunks on the GEMM path (128 + 128 + 44 rows), GQA, padding and segments
        {{2, 300, 300, 0, 8, 2, 64}, true, false, true},
        // on the GEMM path, a prefill of 2 query chunks (128 + 22 rows) after 37 cached slots: each chunk's keys
        // run to q_off + its last row; and a decoding step with 16 query heads on one KV head (16 rows: GEMM)
        {{1, 150, 190, 37, 4, 2, 64}, true, false, true},
        {{2, 1, 40, 30, 16, 1, 64}, true, false, false},
        // decoding steps over several 64-key chunks of a longer cache, the last chunks past the slot (empty partials
        // on the decode kernels); a 3-row step after 100 cached slots
        {{2, 1, 200, 150, 8, 2, 64}, true, false, false},
        {{2, 3, 140, 100, 4, 4, 128}, false, true, true},
        // decoding steps at the largest head dimension the decode kernels stage (256: 16-byte rows of 32 lanes, or 64
        // in fp32) and at one that is no power of two (80)
        {{1, 1, 130, 120, 2, 1, 256}, true, false, false},
        {{2, 2, 90, 70, 6, 3, 80}, false, true, true},
    };
    // bf16 mode only: the other head dimensions the mma kernels are built for, and blocks of 64 rows with a partial last
    // one (130 = 64 + 64 + 2 queries, 65 keys = a full key block and one key)
    const AttnCase bf16_cases[] = {
        {{1, 130, 130, 0, 4, 2, 16}, false, true, true},
        {{2, 65, 65, 0, 2, 1, 32}, true, false, false},
        {{1, 100, 100, 0, 3, 3, 96}, false, false, true},
        {{1, 50, 50, 0, 2, 1, 80}, false, true, false},
        {{2, 70, 90, 20, 4, 1, 16}, true, false, true},  // a prefill of 70 queries after 20 cached slots
        // no padding, no segments: tiles a warp sees whole take the mma kernels' unmasked loop (also in a prefill
        // of 80 queries after 100 cached slots, where whole tiles start before the queries)
        {{1, 200, 200, 0, 4, 2, 64}, false, false, false},
        {{1, 80, 180, 100, 4, 4, 128}, false, false, false},
    };
    // Every case on every attention path of the tested backend (the CUDA GEMM path hands calls with fewer than
    // 16 query rows per KV head, here the 7-row prefill chunk and the 4-head decoding step, to the flash kernels),
    // then a few in bf16 mode, against the fp32 reference.
    std::vector<std::string> paths = test_.attention_paths();
    if (paths.empty()) paths.push_back("");
    for (const std::string& path : paths) {
      test_.set_attention_path(path);
      // fp32 mode on the mma path is the GEMM path's (the cases would run the same kernels again)
      if (path != "mma")
        for (const AttnCase& c : cases) attention_case(c, path, false);
      test_.set_weights_dtype(DType::BF16);
      for (int i : {0, 3, 5, 6, 7, 8, 9, 10, 11}) attention_case(cases[i], path, true);
      for (const AttnCase& c : bf16_cases) attention_case(c, path, true);
      test_.set_weights_dtype(DType::F32);
    }
  }

  void attention_case(const AttnCase& c, const std::string& path, bool bf16) {
    const AttnDims& d = c.d;
    const std::string shape = describe(c, path, bf16);
    const int64_t nq = (int64_t)d.B * d.Tq * d.H * d.hd, nk = (int64_t)d.B * d.Tk * d.KV * d.hd;
    const int64_t rows = (int64_t)d.B * d.Tq * d.H;
    F q = rand(nq, -2.0f, 2.0f), k = rand(nk, -2.0f, 2.0f), v = rand(nk), dout = rand(nq);
    // Cache slots past the last query are NaN: no query sees them, so no kernel may let them into a sum (a product
    // with a zero probability would still give NaN).
    for (int b = 0; b < d.B; b++)
      for (int s = d.q_off + d.Tq; s < d.Tk; s++)
        for (int64_t i = 0; i < (int64_t)d.KV * d.hd; i++) {
          const int64_t at = ((int64_t)b * d.Tk + s) * d.KV * d.hd + i;
          k[at] = v[at] = std::numeric_limits<float>::quiet_NaN();
        }
    I key_valid, seg;
    if (c.left_pad || c.tail_pad) {
      key_valid.assign((size_t)d.B * d.Tk, 1);
      for (int b = 0; b < d.B; b++) {
        const int n = 3 + 2 * b;  // a different amount per row; row 0 of a left-padded batch too
        for (int s = 0; s < n && s < d.Tk; s++) key_valid[(size_t)b * d.Tk + (c.left_pad ? s : d.Tk - 1 - s)] = 0;
      }
    }
    if (c.segments) {
      seg.resize((size_t)d.B * d.Tk);
      for (int b = 0; b < d.B; b++)
        for (int s = 0; s < d.Tk; s++) seg[(size_t)b * d.Tk + s] = (s + 7 * b) / 19;  // segments of 19, offset per row
    }
    Tensor dq_ = up(q), dk_ = up(k), dv_ = up(v), ddout = up(dout), dvalid = up(key_valid), dseg = up(seg);

    F out(nq), lse(rows);
    Tensor gout(std::vector<int64_t>{nq}, DType::F32, dev_), glse(std::vector<int64_t>{rows}, DType::F32, dev_);
    ref_.attention_fwd(d, q.data(), k.data(), v.data(), ip(key_valid), ip(seg), out.data(), lse.data(), nullptr);
    // (the comparison counts NaN against NaN as equal: the reference itself must not have read the NaN slots)
    for (float x : out)
      if (!std::isfinite(x)) throw std::runtime_error("kernel check: the reference attention read a slot past its last query");
    test_.attention_fwd(d, dq_.f32(), dk_.f32(), dv_.f32(), ip(dvalid), ip(dseg), gout.f32(), glse.f32(), nullptr);
    compare_dev("attention_fwd", "out", shape, out, gout);
    compare_dev("attention_fwd", "lse", shape, lse, glse);
    // K and V from a bf16 KV cache (what bf16 mode on a GPU keeps): against the fp32 reference on the same
    // bf16-exact keys and values.
    const std::vector<uint16_t> k16 = narrow(k), v16 = narrow(v);
    const Tensor dk16 = up(k16), dv16 = up(v16);
    F out16(nq), lse16(rows);
    ref_.attention_fwd_kv16(d, q.data(), k16.data(), v16.data(), ip(key_valid), ip(seg), out16.data(), lse16.data(),
                            nullptr);
    {
      Tensor gout16(std::vector<int64_t>{nq}, DType::F32, dev_), glse16(std::vector<int64_t>{rows}, DType::F32, dev_);
      test_.attention_fwd_kv16(d, dq_.f32(), dk16.bf16(), dv16.bf16(), ip(dvalid), ip(dseg), gout16.f32(),
                               glse16.f32(), nullptr);
      const std::string kv16_shape = describe(c, path, bf16, " kv16");
      compare_dev("attention_fwd_kv16", "out", kv16_shape, out16, gout16);
      compare_dev("attention_fwd_kv16", "lse", kv16_shape, lse16, glse16);
    }
    {
      // The output rounded to bf16 (bf16 activations: o_proj's input straight from attention), both K/V types.
      Tensor o16(std::vector<int64_t>{nq}, DType::BF16, dev_), l16(std::vector<int64_t>{rows}, DType::F32, dev_);
      test_.attention_fwd(d, dq_.f32(), dk_.f32(), dv_.f32(), ip(dvalid), ip(dseg), nullptr, l16.f32(), o16.bf16());
      compare_dev("attention_fwd", "out16", shape, widen(narrow(out)), o16);
      test_.attention_fwd_kv16(d, dq_.f32(), dk16.bf16(), dv16.bf16(), ip(dvalid), ip(dseg), nullptr, l16.f32(),
                               o16.bf16());
      compare_dev("attention_fwd_kv16", "out16", describe(c, path, bf16, " kv16"), widen(narrow(out16)), o16);
    }
    if (d.Tq == 1) {
      // A decoding step as recorded ones run: the slot read from device memory, the host's q_off a stale 0; with
      // both cache types.
      AttnDims dd = d;
      dd.q_off = 0;
      const Tensor slot = up(I{d.q_off});
      dd.q_off_dev = slot.i32();
      Tensor sout(std::vector<int64_t>{nq}, DType::F32, dev_), slse(std::vector<int64_t>{rows}, DType::F32, dev_);
      test_.attention_fwd(dd, dq_.f32(), dk_.f32(), dv_.f32(), ip(dvalid), ip(dseg), sout.f32(), slse.f32(), nullptr);
      const std::string slot_shape = describe(c, path, bf16, " slot-on-device");
      compare_dev("attention_fwd", "out", slot_shape, out, sout);
      compare_dev("attention_fwd", "lse", slot_shape, lse, slse);
      test_.attention_fwd_kv16(dd, dq_.f32(), dk16.bf16(), dv16.bf16(), ip(dvalid), ip(dseg), sout.f32(),
                               slse.f32(), nullptr);
      const std::string slot16_shape = describe(c, path, bf16, " kv16 slot-on-device");
      compare_dev("attention_fwd_kv16", "out", slot16_shape, out16, sout);
      compare_dev("attention_fwd_kv16", "lse", slot16_shape, lse16, slse);
    }
    if (d.Tq != d.Tk || d.q_off != 0) return;  // the backward is for training only

    // Both backwards get the reference out and lse, so the comparison is of the backward alone.
    Tensor rout = up(out), rlse = up(lse);
    F dq(nq), dk(nk), dv(nk), scratch(rows);
    Tensor gdq(std::vector<int64_t>{nq}, DType::F32, dev_), gdk(std::vector<int64_t>{nk}, DType::F32, dev_),
        gdv(std::vector<int64_t>{nk}, DType::F32, dev_), gscratch(std::vector<int64_t>{rows}, DType::F32, dev_);
    ref_.attention_bwd(d, q.data(), k.data(), v.data(), ip(key_valid), ip(seg), out.data(), lse.data(), dout.data(),
                       dq.data(), dk.data(), dv.data(), scratch.data());
    test_.attention_bwd(d, dq_.f32(), dk_.f32(), dv_.f32(), ip(dvalid), ip(dseg), rout.f32(), rlse.f32(),
                        ddout.f32(), gdq.f32(), gdk.f32(), gdv.f32(), gscratch.f32());
    compare_dev("attention_bwd", "dq", shape, dq, gdq);
    compare_dev("attention_bwd", "dk", shape, dk, gdk);
    compare_dev("attention_bwd", "dv", shape, dv, gdv);
    // From q, k, v and out held in bf16 (bf16 activations), against the reference on the same bf16-exact values.
    const std::vector<uint16_t> q16 = narrow(q), o16 = narrow(out);
    const Tensor dq16 = up(q16), do16 = up(o16);
    ref_.attention_bwd_h(d, q16.data(), k16.data(), v16.data(), ip(key_valid), ip(seg), o16.data(), lse.data(),
                         dout.data(), dq.data(), dk.data(), dv.data(), scratch.data());
    test_.attention_bwd_h(d, dq16.bf16(), dk16.bf16(), dv16.bf16(), ip(dvalid), ip(dseg), do16.bf16(), rlse.f32(),
                          ddout.f32(), gdq.f32(), gdk.f32(), gdv.f32(), gscratch.f32());
    compare_dev("attention_bwd_h", "dq", shape, dq, gdq);
    compare_dev("attention_bwd_h", "dk", shape, dk, gdk);
    compare_dev("attention_bwd_h", "dv", shape, dv, gdv);
  }

  void swiglu() {
    const int64_t n = 100003;
    const F g = rand(n, -12.0f, 12.0f), u = rand(n), d = rand(n);
    Tensor dg_in = up(g), du_in = up(u), dd = up(d);
    F out(n), dg(n), du(n);
    Tensor gout(std::vector<int64_t>{n}, DType::F32, dev_), gdg(std::vector<int64_t>{n}, DType::F32, dev_),
        gdu(std::vector<int64_t>{n}, DType::F32, dev_);
    ref_.swiglu_fwd(g.data(), u.data(), n, out.data());
    test_.swiglu_fwd(dg_in.f32(), du_in.f32(), n, gout.f32());
    compare_dev("swiglu_fwd", "out", "n100003", out, gout);
    ref_.swiglu_bwd(g.data(), u.data(), d.data(), n, dg.data(), du.data());
    test_.swiglu_bwd(dg_in.f32(), du_in.f32(), dd.f32(), n, gdg.f32(), gdu.f32());
    compare_dev("swiglu_bwd", "dg", "n100003", dg, gdg);
    compare_dev("swiglu_bwd", "du", "n100003", du, gdu);
    // In place, as the Model calls it (dg over g, du over u): each element is read before it is written.
    Tensor gg = up(g), gu = up(u);
    test_.swiglu_bwd(gg.f32(), gu.f32(), dd.f32(), n, gg.f32(), gu.f32());
    compare_dev("swiglu_bwd", "dg", "n100003 in place", dg, gg);
    compare_dev("swiglu_bwd", "du", "n100003 in place", du, gu);
    std::vector<uint16_t> out16(n);
    Tensor gout16(std::vector<int64_t>{n}, DType::BF16, dev_);
    ref_.swiglu_fwd_bf16(g.data(), u.data(), n, out16.data(), nullptr, nullptr);
    test_.swiglu_fwd_bf16(dg_in.f32(), du_in.f32(), n, gout16.bf16(), nullptr, nullptr);
    compare_dev("swiglu_fwd_bf16", "out", "n100003", widen(out16), gout16);
    // with g and u rounded alongside (a layer's saved copies): exact
    Tensor gg16(std::vector<int64_t>{n}, DType::BF16, dev_), gu16(std::vector<int64_t>{n}, DType::BF16, dev_);
    test_.swiglu_fwd_bf16(dg_in.f32(), du_in.f32(), n, gout16.bf16(), gg16.bf16(), gu16.bf16());
    compare_dev("swiglu_fwd_bf16", "out", "n100003 with g16 u16", widen(out16), gout16);
    compare_dev("swiglu_fwd_bf16", "g16", "n100003", widen(narrow(g)), gg16);
    compare_dev("swiglu_fwd_bf16", "u16", "n100003", widen(narrow(u)), gu16);
    // from g and u held in bf16 (backward in bf16 mode)
    const std::vector<uint16_t> g16 = narrow(g), u16 = narrow(u);
    Tensor dg16 = up(g16), du16 = up(u16);
    ref_.swiglu_fwd_h(g16.data(), u16.data(), n, out16.data());
    test_.swiglu_fwd_h(dg16.bf16(), du16.bf16(), n, gout16.bf16());
    compare_dev("swiglu_fwd_h", "out", "n100003", widen(out16), gout16);
    // g and u side by side in the rows of one product (a decoding step's gate/up): the first 37 x 1001 of g, u
    {
      const int N = 37, inter = 1001;
      F gu((int64_t)N * 2 * inter);
      for (int i = 0; i < N; i++)
        for (int c = 0; c < inter; c++) {
          gu[(int64_t)i * 2 * inter + c] = g[(int64_t)i * inter + c];
          gu[(int64_t)i * 2 * inter + inter + c] = u[(int64_t)i * inter + c];
        }
      const Tensor dgu = up(gu);
      F sout((int64_t)N * inter);
      std::vector<uint16_t> sout16((int64_t)N * inter);
      Tensor dsout = up(sout), dsout16 = up(sout16);
      const UpsPair none = random_ups(N, 16, {inter, inter}, {false, false}, {false, false});
      ref_.swiglu_fwd_stacked(gu.data(), N, inter, sout.data(), nullptr, none.ref);
      test_.swiglu_fwd_stacked(dgu.f32(), N, inter, dsout.f32(), nullptr, none.test);
      compare_dev("swiglu_fwd_stacked", "out", "N37 inter1001", sout, dsout);
      ref_.swiglu_fwd_stacked(gu.data(), N, inter, nullptr, sout16.data(), none.ref);
      test_.swiglu_fwd_stacked(dgu.f32(), N, inter, nullptr, dsout16.bf16(), none.test);
      compare_dev("swiglu_fwd_stacked", "out16", "N37 inter1001", widen(sout16), dsout16);
      // with LoRA on gate and a bias on up, then LoRA (of a rank that is no multiple of 4: scalar loads) and biases on
      // both
      for (const bool both : {false, true}) {
        const UpsPair ups = random_ups(N, both ? 6 : 16, {inter, inter}, {true, both}, {both, true});
        ref_.swiglu_fwd_stacked(gu.data(), N, inter, sout.data(), nullptr, ups.ref);
        test_.swiglu_fwd_stacked(dgu.f32(), N, inter, dsout.f32(), nullptr, ups.test);
        compare_dev("swiglu_fwd_stacked", "out", both ? "N37 inter1001 lora bias" : "N37 inter1001 lora gate bias up",
                    sout, dsout);
      }
    }
    // dg and du rounded to bf16, written over the bf16 g and u (as the Model calls it)
    std::vector<uint16_t> dg16_ref(n), du16_ref(n);
    ref_.swiglu_bwd_h(g16.data(), u16.data(), d.data(), n, dg16_ref.data(), du16_ref.data());
    test_.swiglu_bwd_h(dg16.bf16(), du16.bf16(), dd.f32(), n, dg16.bf16(), du16.bf16());
    compare_dev("swiglu_bwd_h", "dg16", "n100003 in place", widen(dg16_ref), dg16);
    compare_dev("swiglu_bwd_h", "du16", "n100003 in place", widen(du16_ref), du16);
  }

  void cross_entropy() {
    cross_entropy_case(13, 5003);
    cross_entropy_case(5, 300);  // a row shorter than the 1024-thread block
  }

  void cross_entropy_case(int N, int V) {
    for (float grad_scale : {0.37f, 0.0f}) {
      F logits = rand((int64_t)N * V, -6.0f, 6.0f);
      I targets(N);
      for (int i = 0; i < N; i++) targets[i] = i % 4 == 3 ? -100 : randint(0, V - 1);  // some ignored rows
      Tensor dl = up(logits), dt = up(targets);
      const double lr = ref_.cross_entropy(logits.data(), targets.data(), N, V, grad_scale);
      const double lt = test_.cross_entropy(dl.f32(), dt.i32(), N, V, grad_scale);
      const std::string shape =
          "N" + std::to_string(N) + " V" + std::to_string(V) + " grad_scale=" + std::to_string(grad_scale).substr(0, 4);
      compare_scalar("cross_entropy", shape, lr, lt);
      compare_dev("cross_entropy", "dlogits", shape, logits, dl);
    }
  }

  void adamw() {
    const int64_t n = 4099;
    F p = rand(n), g = rand(n), m = rand(n, -0.1f, 0.1f), v = rand(n, 0.0f, 0.01f);
    Tensor dp = up(p), dg = up(g), dm = up(m), dv = up(v);
    const AdamWHyper h{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3};
    ref_.adamw(p.data(), g.data(), m.data(), v.data(), n, h);
    test_.adamw(dp.f32(), dg.f32(), dm.f32(), dv.f32(), n, h);
    compare_dev("adamw", "p", "n4099 step3", p, dp);
    compare_dev("adamw", "m", "n4099 step3", m, dm);
    compare_dev("adamw", "v", "n4099 step3", v, dv);
    adamw_many();
  }

  // adamw_many (reported as op "adamw", shape "many ...") on tensors of odd sizes, an empty one included, against
  // the reference's per-tensor adamw: on the CPU the two must agree bitwise (the kernel test checks it).
  void adamw_many() {
    const int64_t sizes[] = {5, 4099, 0, 17, 1, 300};
    const int count = (int)(sizeof sizes / sizeof sizes[0]);
    const AdamWHyper h{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 4};
    F p, g, m, v;  // every tensor's host data, concatenated
    for (int64_t n : sizes) {
      for (float x : rand(n)) p.push_back(x);
      for (float x : rand(n)) g.push_back(x);
      for (float x : rand(n, -0.1f, 0.1f)) m.push_back(x);
      for (float x : rand(n, 0.0f, 0.01f)) v.push_back(x);
    }
    Tensor dp = up(p), dg = up(g), dm = up(m), dv = up(v);
    std::vector<float*> ps, ms, vs;
    std::vector<const float*> gs;
    int64_t at = 0;
    for (int i = 0; i < count; i++) {
      ref_.adamw(p.data() + at, g.data() + at, m.data() + at, v.data() + at, sizes[i], h);
      ps.push_back(dp.f32() + at);
      gs.push_back(dg.f32() + at);
      ms.push_back(dm.f32() + at);
      vs.push_back(dv.f32() + at);
      at += sizes[i];
    }
    test_.adamw_many(ps.data(), gs.data(), ms.data(), vs.data(), sizes, count, h);
    const std::string shape = "many " + std::to_string(count) + " tensors step4";
    compare_dev("adamw", "p", shape, p, dp);
    compare_dev("adamw", "m", shape, m, dm);
    compare_dev("adamw", "v", shape, v, dv);
  }

  void dropout() {
    const int64_t n = 10007;
    const F x = rand(n);
    Tensor dx = up(x);
    F mask(n), xo(n);
    Tensor gmask(std::vector<int64_t>{n}, DType::F32, dev_), gxo(std::vector<int64_t>{n}, DType::F32, dev_);
    const uint64_t seed = 0x5eedULL + (uint64_t)randint(0, 1000);
    ref_.dropout(x.data(), mask.data(), xo.data(), n, 0.1f, seed);
    test_.dropout(dx.f32(), gmask.f32(), gxo.f32(), n, 0.1f, seed);
    compare_dev("dropout", "mask", "n10007 p0.1", mask, gmask);
    compare_dev("dropout", "x_out", "n10007 p0.1", xo, gxo);
    // Without a mask (the forward's call): the same dropped input.
    Tensor gxo2(std::vector<int64_t>{n}, DType::F32, dev_);
    test_.dropout(dx.f32(), nullptr, gxo2.f32(), n, 0.1f, seed);
    compare_dev("dropout", "x_out", "n10007 p0.1 no mask", xo, gxo2);
    // The generator itself (engine/dropout_rng.h): the tested backend's share of dropped elements against p, over
    // consecutive indices (one hash each) and indices past 2^32 (the second hash). Reported as |share - p| / p.
    const std::vector<float> m = down(gmask);
    double dropped = 0;
    for (float v : m) dropped += v == 0.0f;
    compare_scalar("dropout", "share n10007 p0.1", 0.1, dropped / n);
    for (const float p : {0.05f, 0.5f}) {
      const DropoutMask drop = DropoutMask::make(p, seed);
      const int64_t draws = 200000;
      double low = 0, high = 0;  // indices from 0, and from 2^32 - draws / 2 across the boundary
      for (int64_t i = 0; i < draws; i++) {
        low += drop.at(i) == 0.0f;
        high += drop.at((int64_t{1} << 32) - draws / 2 + i) == 0.0f;
      }
      const std::string tag = "p" + std::to_string(p).substr(0, 4) + " n200000";
      compare_scalar("dropout", "share " + tag, p, low / draws);
      compare_scalar("dropout", "share " + tag + " across 2^32", p, high / draws);
    }
  }

  // The fused LoRA products against dropout + matmul: the masks must be dropout's, element for element (a wrong one
  // is off by a whole value), and the tiles' and splits' edges are crossed (ranks past 16, inputs not a multiple of
  // the tile, split sums over the input and over the rows, a decoding step's few rows: 64 or fewer take a warp per
  // output).
  void lora() {
    struct Case {
      int N, in, r;
      float p;
      bool x16;
      int terms;
    };
    const Case cases[] = {{37, 71, 16, 0.1f, false, 3},  {300, 1031, 8, 0.05f, false, 1}, {37, 71, 20, 0.0f, false, 2},
                          {65, 130, 16, 0.1f, true, 3},  {3, 300, 16, 0.0f, false, 1},   {600, 40, 4, 0.3f, false, 2},
                          {260, 300, 33, 0.05f, true, 2}, {5, 200, 16, 0.1f, true, 3},
                          {300, 256, 16, 0.1f, true, 3},  // widths of 8s: the 8-wide loads (also in600 in40)
                          {32, 1024, 16, 0.0f, true, 3}};  // the last: a decoding step of batch 32
    for (const Case& c : cases) {
      const std::string shape = "N" + std::to_string(c.N) + " in" + std::to_string(c.in) + " r" + std::to_string(c.r) +
                                " p" + std::to_string(c.p).substr(0, 4) + (c.x16 ? " bf16x" : "");
      const int64_t nx = (int64_t)c.N * c.in;
      const F x = rand(nx);
      const std::vector<uint16_t> x16 = narrow(x);
      const Tensor dx32 = up(x), dx16 = up(x16);
      const float* rx = c.x16 ? nullptr : x.data();
      const uint16_t* rx16 = c.x16 ? x16.data() : nullptr;
      const float* tx = c.x16 ? nullptr : dx32.f32();
      const uint16_t* tx16 = c.x16 ? dx16.bf16() : nullptr;
      const uint64_t seed = 0x10a4ULL + (uint64_t)randint(0, 1000);

      const F A = rand((int64_t)c.r * c.in);
      const Tensor dA = up(A);
      F xa((int64_t)c.N * c.r);
      Tensor dxa_out(std::vector<int64_t>{(int64_t)c.N * c.r}, DType::F32, dev_);
      ref_.lora_down(rx, rx16, c.N, c.in, A.data(), c.r, c.p, seed, xa.data());
      test_.lora_down(tx, tx16, c.N, c.in, dA.f32(), c.r, c.p, seed, dxa_out.f32());
      compare_dev("lora_down", "xa", shape, xa, dxa_out);

      const F dxa = rand((int64_t)c.N * c.r);
      F gA = rand((int64_t)c.r * c.in);
      const Tensor ddxa = up(dxa);
      Tensor dgA = up(gA);
      ref_.lora_down_grad(rx, rx16, c.N, c.in, dxa.data(), c.r, c.p, seed, gA.data());
      test_.lora_down_grad(tx, tx16, c.N, c.in, ddxa.f32(), c.r, c.p, seed, dgA.f32());
      compare_dev("lora_down_grad", "gA", shape, gA, dgA);

      // dx: `terms` modules with their own A, dy B and seed, added to a dx that already holds the base's gradient.
      std::vector<F> As, ds;
      std::vector<Tensor> dAs, dds;
      std::vector<LoraTerm> ref_terms, test_terms;
      for (int k = 0; k < c.terms; k++) {
        As.push_back(rand((int64_t)c.r * c.in));
        ds.push_back(rand((int64_t)c.N * c.r));
        dAs.push_back(up(As.back()));
        dds.push_back(up(ds.back()));
      }
      for (int k = 0; k < c.terms; k++) {
        ref_terms.push_back({As[k].data(), ds[k].data(), seed + 7 * k});
        test_terms.push_back({dAs[k].f32(), dds[k].f32(), seed + 7 * k});
      }
      F dx = rand(nx);
      Tensor ddx = up(dx);
      ref_.lora_dx(dx.data(), c.N, c.in, c.r, c.p, ref_terms.data(), c.terms);
      test_.lora_dx(ddx.f32(), c.N, c.in, c.r, c.p, test_terms.data(), c.terms);
      compare_dev("lora_dx", "dx", shape + " terms" + std::to_string(c.terms), dx, ddx);

      // lora_apply_down (inference, no dropout): x A_k^T for every module in one call; twice, as a replayed decoding
      // step runs it (the counters its last blocks reset must be back at 0)
      std::vector<const float*> rA, tA;
      for (int k = 0; k < c.terms; k++) {
        rA.push_back(As[k].data());
        tA.push_back(dAs[k].f32());
      }
      const int64_t nxa = (int64_t)c.terms * c.N * c.r;
      F xas(nxa);
      ref_.lora_apply_down(rx, rx16, c.N, c.in, c.r, rA.data(), c.terms, xas.data());
      for (const char* run : {"", " again"}) {
        Tensor dxas = up(rand(nxa));
        test_.lora_apply_down(tx, tx16, c.N, c.in, c.r, tA.data(), c.terms, dxas.f32());
        compare_dev("lora_apply_down", "xa", shape + " terms" + std::to_string(c.terms) + run, xas, dxas);
      }

      // lora_up: xa B^T (and a bias) onto an fp32 or a bf16 y, with widths past a 64-column tile; r = 0 adds the bias
      // alone (a projection without LoRA). Widths of 8s take the 8-wide loads and stores (past a 128-column tile).
      // Without accumulate y is written, never read: it starts as NaN.
      const int out = c.in % 8 == 0 ? c.in + 88 : c.in + 29;
      const F B = rand((int64_t)out * c.r), bias = rand(out);
      const Tensor dB = up(B), dbias = up(bias);
      for (const bool acc : {true, false})
        for (const int r : {c.r, 0}) {
          const std::string tag =
              shape + " out" + std::to_string(out) + (r == 0 ? " bias only" : "") + (acc ? "" : " write");
          const float* rb = c.terms == 2 && r > 0 ? nullptr : bias.data();  // some cases without a bias
          const float* tb = rb ? dbias.f32() : nullptr;
          const float nan = std::numeric_limits<float>::quiet_NaN();
          F y = acc ? rand((int64_t)c.N * out) : F((size_t)c.N * out, nan);
          Tensor dy = up(y);
          ref_.lora_up(y.data(), nullptr, c.N, out, xa.data(), B.data(), r, 0.5f, rb, acc);
          test_.lora_up(dy.f32(), nullptr, c.N, out, dxa_out.f32(), dB.f32(), r, 0.5f, tb, acc);
          compare_dev("lora_up", "y", tag, y, dy);
          std::vector<uint16_t> y16 = narrow(acc ? rand((int64_t)c.N * out) : F((size_t)c.N * out, nan));
          Tensor dy16 = up(y16);
          ref_.lora_up(nullptr, y16.data(), c.N, out, xa.data(), B.data(), r, 0.5f, rb, acc);
          test_.lora_up(nullptr, dy16.bf16(), c.N, out, dxa_out.f32(), dB.f32(), r, 0.5f, tb, acc);
          compare_dev("lora_up", "y16", tag, widen(y16), dy16);
        }
    }
  }

  // Keys and values into their caches in one call: the prefill's write at slot 9, then a decoding step's at the slot
  // held in device memory (the host's value a stale 2), into fp32 and bf16 caches (rounded to nearest even: exact).
  void cache_write() {
    const int B = 3, Tq = 5, Tk = 17, off = 9, C = 67;
    F dk = rand((int64_t)B * Tk * C), dv = rand((int64_t)B * Tk * C);
    const F k = rand((int64_t)B * Tq * C), v = rand((int64_t)B * Tq * C);
    const F k1 = rand((int64_t)B * C), v1 = rand((int64_t)B * C);
    Tensor ddk = up(dk), ddv = up(dv), tk = up(k), tv = up(v), tk1 = up(k1), tv1 = up(v1), slot = up(I{off + Tq});
    ref_.cache_write(dk.data(), dv.data(), k.data(), v.data(), B, Tq, Tk, off, nullptr, C);
    test_.cache_write(ddk.f32(), ddv.f32(), tk.f32(), tv.f32(), B, Tq, Tk, off, nullptr, C);
    compare_dev("cache_write", "dk", "B3 Tq5 Tk17 off9 C67", dk, ddk);
    compare_dev("cache_write", "dv", "B3 Tq5 Tk17 off9 C67", dv, ddv);
    ref_.cache_write(dk.data(), dv.data(), k1.data(), v1.data(), B, 1, Tk, off + Tq, nullptr, C);
    test_.cache_write(ddk.f32(), ddv.f32(), tk1.f32(), tv1.f32(), B, 1, Tk, 2, slot.i32(), C);
    compare_dev("cache_write", "dk", "B3 Tq1 Tk17 slot-on-device14 C67", dk, ddk);
    compare_dev("cache_write", "dv", "B3 Tq1 Tk17 slot-on-device14 C67", dv, ddv);

    std::vector<uint16_t> dk16 = narrow(rand((int64_t)B * Tk * C)), dv16 = narrow(rand((int64_t)B * Tk * C));
    Tensor ddk16 = up(dk16), ddv16 = up(dv16);
    ref_.cache_write_bf16(dk16.data(), dv16.data(), k.data(), v.data(), B, Tq, Tk, off, nullptr, C);
    test_.cache_write_bf16(ddk16.bf16(), ddv16.bf16(), tk.f32(), tv.f32(), B, Tq, Tk, off, nullptr, C);
    ref_.cache_write_bf16(dk16.data(), dv16.data(), k1.data(), v1.data(), B, 1, Tk, off + Tq, nullptr, C);
    test_.cache_write_bf16(ddk16.bf16(), ddv16.bf16(), tk1.f32(), tv1.f32(), B, 1, Tk, 2, slot.i32(), C);
    const std::string shape = "B3 Tq5 then Tq1 slot-on-device14 Tk17 C67";
    compare_dev("cache_write_bf16", "dk", shape, widen(dk16), ddk16);
    compare_dev("cache_write_bf16", "dv", shape, widen(dv16), ddv16);
  }

  Backend& ref_;
  Backend& test_;
  Device dev_;
  std::mt19937_64 rng_;
  std::vector<KernelCheckResult> out_;
};

}  // namespace

std::vector<KernelCheckResult> kernel_check(Backend& ref, Backend& test, Device test_device, uint64_t seed) {
  return Harness(ref, test, test_device, seed).run();
}

}  // namespace tf
