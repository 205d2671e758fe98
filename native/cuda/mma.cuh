// One warp's tensor-core product, D[16x8] += A[16x16] B[16x8] with bf16 A and B and fp32 D
// (`mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`, compute capability 8.0 and up), and the fragment helpers
// the attention kernels build on it. Fragments are laid out as the PTX ISA defines them for this shape, with
// g = lane / 4 and t = lane % 4 (two bf16 per 32-bit register, the lower column or row in the low half):
//   A a[4]: a[0] = row g, columns 2t and 2t+1; a[1] = row g+8, the same columns; a[2], a[3] = the same rows at
//           columns 2t+8 and 2t+9.
//   B b[2]: b[0] = rows (k) 2t and 2t+1 of column g; b[1] = rows 2t+8 and 2t+9.
//   D d[4]: d[0], d[1] = row g, columns 2t and 2t+1; d[2], d[3] = row g+8.
// The emulator (TUNEFORGE_CUDA_EMU) computes the same product from the same fragments, gathered from the warp's 32
// lanes, so a kernel whose fragments are wrong fails its checks there as it would on a GPU.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"

namespace tf::cuda {

#ifdef TUNEFORGE_CUDA_EMU
inline void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  struct Regs {
    uint32_t a[4], b[2];
  } const mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  const uint64_t* lanes = ::emu::warp_publish(&mine);
  auto of = [lanes](int lane) { return reinterpret_cast<const Regs*>((uintptr_t)lanes[lane]); };
  auto half = [](uint32_t r, int hi) { return bf16_bits_to_f32((uint16_t)(hi ? r >> 16 : r & 0xffffu)); };
  const int lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  float out[4];
  for (int i = 0; i < 4; i++) {
    const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
    float acc = d[i];
    for (int k = 0; k < 16; k++) {
      // A(row, k) sits in lane (row % 8) * 4 + (k % 8) / 2, register (row / 8) + 2 (k / 8); B(k, col) in lane
      // col * 4 + (k % 8) / 2, register k / 8; the half is k % 2 for both.
      const float x = half(of((row & 7) * 4 + (k & 7) / 2)->a[(row >> 3) + 2 * (k >> 3)], k & 1);
      const float y = half(of(col * 4 + (k & 7) / 2)->b[k >> 3], k & 1);
      acc += x * y;  // a product of two bf16 is exact in fp32
    }
    out[i] = acc;
  }
  ::emu::warp_release();  // every lane has read the others' registers before any of them changes
  for (int i = 0; i < 4; i++) d[i] = out[i];
}
#else
__device__ inline void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // the host only launches these kernels on compute capability 8.0 and up
#endif
}
#endif

// 16 bytes from global to shared memory without passing through registers (cp.async, compute 8.0 and up), or 16 zero
// bytes when !valid (src is then not read). The copy is in flight until async_wait lets fewer groups than asked be
// pending; async_commit closes the group of copies issued since the last one. The emulator delays each copy to the
// wait that retires it (the destination holds NaN bytes until then), as a GPU may. The "memory" clobbers keep the
// compiler from moving shared-memory accesses across them.
__device__ inline void copy16_async(void* dst, const void* src, bool valid) {
#ifdef TUNEFORGE_CUDA_EMU
  ::emu::async_copy16(dst, src, valid);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned to = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(src), "r"(valid ? 16 : 0) : "memory");
#else
  __trap();
#endif
}
__device__ inline void async_commit() {
#ifdef TUNEFORGE_CUDA_EMU
  ::emu::async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ inline void async_wait() {
#ifdef TUNEFORGE_CUDA_EMU
  ::emu::async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ inline uint32_t load_u32(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// ldmatrix (compute capability 7.5 and up): M 8x8 bf16 matrices of a shared tile in one instruction, lanes 8m .. 8m+7
// giving the addresses of matrix m's 8 rows (16-byte aligned; with M = 2 lanes 16-31 give none). Lane l receives
// r[m] = row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of matrix m, or with T (.trans) column l / 4, rows 2 (l % 4)
// and 2 (l % 4) + 1: the layouts of A, B and D fragments above, so each fragment costs one instruction instead of a
// shared load per register (or, for a transposed B, two 16-bit loads per register).
template <int M, bool T>
__device__ inline void ldmatrix(uint32_t (&r)[M], const uint16_t* row) {
#ifdef TUNEFORGE_CUDA_EMU
  const uint64_t* lanes = ::emu::warp_publish(row);
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  for (int m = 0; m < M; m++) {
    auto at = [&](int rr, int cc) {  // row rr of matrix m, from the address its lane gave
      return (uint32_t)reinterpret_cast<const uint16_t*>((uintptr_t)lanes[8 * m + rr])[cc];
    };
    r[m] = T ? at(2 * t, g) | at(2 * t + 1, g) << 16 : at(g, 2 * t) | at(g, 2 * t + 1) << 16;
  }
  ::emu::warp_release();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  const unsigned a = (unsigned)__cvta_generic_to_shared(row);
  if constexpr (M == 4 && T)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else if constexpr (M == 4)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
  else if constexpr (M == 2 && T)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
#else
  __trap();
#endif
}

// A fragment of rows [r0, r0 + 16) and columns [c0, c0 + 16) of a row-major bf16 tile with row stride LD (shared):
// matrices (rows, columns) (r0, c0), (r0 + 8, c0), (r0, c0 + 8), (r0 + 8, c0 + 8).
template <int LD>
__device__ inline void frag_a(uint32_t (&a)[4], const uint16_t* tile, int r0, int c0) {
  const int lane = threadIdx.x % 32, m = lane / 8;
  ldmatrix<4, false>(a, tile + (r0 + lane % 8 + 8 * (m & 1)) * LD + c0 + 8 * (m >> 1));
}

// B fragment of B = tile^T: B(k, n) = tile[n0 + n][k0 + k] (the keys of Q K^T, whose rows are B's columns): matrices
// (n0, k0) and (n0, k0 + 8).
template <int LD>
__device__ inline void frag_b_t(uint32_t (&b)[2], const uint16_t* tile, int n0, int k0) {
  const int lane = threadIdx.x % 16;
  ldmatrix<2, false>(b, tile + (n0 + lane % 8) * LD + k0 + 8 * (lane / 8));
}

// B fragment of B = tile: B(k, n) = tile[k0 + k][n0 + n] (the values of P V): matrices (k0, n0) and (k0 + 8, n0),
// transposed.
template <int LD>
__device__ inline void frag_b(uint32_t (&b)[2], const uint16_t* tile, int k0, int n0) {
  const int lane = threadIdx.x % 16;
  ldmatrix<2, true>(b, tile + (k0 + lane) * LD + n0);
}

// The A fragment of a 16x16 matrix whose columns [0, 8) and [8, 16) are two D fragments, rounded to bf16: a
// product's result (probabilities, dS) goes into the next product without leaving the registers.
__device__ inline void frag_a_from_d(uint32_t a[4], const float lo[4], const float hi[4]) {
  a[0] = pack_bf16(lo[0], lo[1]);
  a[1] = pack_bf16(lo[2], lo[3]);
  a[2] = pack_bf16(hi[0], hi[1]);
  a[3] = pack_bf16(hi[2], hi[3]);
}

}  // namespace tf::cuda
