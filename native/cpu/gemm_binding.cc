// Node-API binding of tf::cpu::sgemm: validates shapes against the typed arrays, then calls it.
#include "gemm_binding.h"

#include <omp.h>

#include <cstdint>
#include <string>

#include "gemm.h"
#include "gemm_simd.h"

namespace tf::cpu {
namespace {

Napi::Value fail(Napi::Env env, const std::string& message) {
  Napi::RangeError::New(env, "sgemm: " + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Elements a rows x cols row-major matrix with row stride ld spans (0 when empty).
uint64_t span(int rows, int cols, int ld) {
  if (rows == 0 || cols == 0) return 0;
  return (uint64_t)(rows - 1) * (uint64_t)ld + (uint64_t)cols;
}

template <typename T> struct ArrayKind;
template <> struct ArrayKind<float> {
  static constexpr napi_typedarray_type kType = napi_float32_array;
  static constexpr const char* kName = "a Float32Array";
};
template <> struct ArrayKind<uint16_t> {  // bf16 bits
  static constexpr napi_typedarray_type kType = napi_uint16_array;
  static constexpr const char* kName = "a Uint16Array (bf16 bits)";
};

// Checks one operand; returns an error message, or "" when it fits.
template <typename T>
std::string check_operand(const char* name, const char* ld_name, const Napi::Value& v, int rows,
                          int cols, int ld, const T** data) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != ArrayKind<T>::kType)
    return std::string(name) + " must be " + ArrayKind<T>::kName;
  // An empty operand is never read, so its stride does not matter.
  if (rows > 0 && cols > 0 && ld < cols)
    return std::string(ld_name) + " (" + std::to_string(ld) + ") must be at least " +
           std::to_string(cols);
  Napi::TypedArrayOf<T> arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() < span(rows, cols, ld))
    return std::string(name) + " has " + std::to_string(arr.ElementLength()) + " elements, needs " +
           std::to_string(span(rows, cols, ld)) + " (" + std::to_string(rows) + " x " +
           std::to_string(cols) + ", stride " + std::to_string(ld) + ")";
  *data = arr.Data();
  return "";
}

// gemmBf16(transB, M, N, K, alpha, A, lda, B: Uint16Array of bf16 bits, ldb, beta, C, ldc): A not transposed.
Napi::Value GemmBf16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 12 || !info[0].IsBoolean())
    return fail(env, "gemmBf16 expects (transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)");
  for (int i : {1, 2, 3, 4, 6, 8, 9, 11})
    if (!info[i].IsNumber()) return fail(env, "argument " + std::to_string(i + 1) + " must be a number");
  auto num = [&](int i) { return info[i].As<Napi::Number>(); };
  const bool tb = info[0].As<Napi::Boolean>();
  const int M = num(1).Int32Value(), N = num(2).Int32Value(), K = num(3).Int32Value();
  if (M < 0 || N < 0 || K < 0) return fail(env, "M, N and K must be >= 0");
  const int lda = num(6).Int32Value(), ldb = num(8).Int32Value(), ldc = num(11).Int32Value();
  const float *A = nullptr, *Cc = nullptr;
  const uint16_t* B = nullptr;
  std::string err = check_operand("A", "lda", info[5], M, K, lda, &A);
  if (err.empty()) err = check_operand("B", "ldb", info[7], tb ? N : K, tb ? K : N, ldb, &B);
  if (err.empty()) err = check_operand("C", "ldc", info[10], M, N, ldc, &Cc);
  if (!err.empty()) return fail(env, err);
  gemm_bf16b(tb, M, N, K, num(4).FloatValue(), A, lda, B, ldb, num(9).FloatValue(), const_cast<float*>(Cc), ldc);
  return env.Undefined();
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 13)
    return fail(env, "expected 13 arguments (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)");
  for (int i : {0, 1})
    if (!info[i].IsBoolean()) return fail(env, "transA/transB must be booleans");
  for (int i : {2, 3, 4, 5, 7, 9, 10, 12})
    if (!info[i].IsNumber()) return fail(env, "argument " + std::to_string(i + 1) + " must be a number");
  const bool ta = info[0].As<Napi::Boolean>(), tb = info[1].As<Napi::Boolean>();
  const int M = info[2].As<Napi::Number>().Int32Value(), N = info[3].As<Napi::Number>().Int32Value(),
            K = info[4].As<Napi::Number>().Int32Value();
  if (M < 0 || N < 0 || K < 0) return fail(env, "M, N and K must be >= 0");
  const float alpha = info[5].As<Napi::Number>().FloatValue(),
              beta = info[10].As<Napi::Number>().FloatValue();
  const int lda = info[7].As<Napi::Number>().Int32Value(), ldb = info[9].As<Napi::Number>().Int32Value(),
            ldc = info[12].As<Napi::Number>().Int32Value();
  const float *A = nullptr, *B = nullptr, *Cc = nullptr;
  // As stored: A is M x K (K x M when transposed), B is K x N (N x K when transposed), C is M x N.
  std::string err = check_operand("A", "lda", info[6], ta ? K : M, ta ? M : K, lda, &A);
  if (err.empty()) err = check_operand("B", "ldb", info[8], tb ? N : K, tb ? K : N, ldb, &B);
  if (err.empty()) err = check_operand("C", "ldc", info[11], M, N, ldc, &Cc);
  if (!err.empty()) return fail(env, err);
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, const_cast<float*>(Cc), ldc);
  return env.Undefined();
}

Napi::Value GemmInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  constexpr int w = gemm_detail::Simd::W;
  out.Set("isa", w == 16 ? "avx512" : w == 8 ? "avx2" : "scalar");
  out.Set("threads", omp_get_max_threads());
  return out;
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("gemmInfo", Napi::Function::New(env, GemmInfo, "gemmInfo"));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16, "gemmBf16"));
}

}  // namespace tf::cpu
