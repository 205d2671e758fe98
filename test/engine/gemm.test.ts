// tf::cpu::sgemm through its Node-API binding, against a float64 reference: every transpose
// combination, odd sizes around the kernel's tile edges, strides, alpha/beta and the blockings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/data/random.js";
import { loadGemm } from "../../bench/gemm-addon.js";

const gemm = loadGemm();
const rng = createRng(20240607);

function randomArray(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() * 2 - 1;
  return out;
}

interface Case {
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  alpha?: number;
  beta?: number;
  /** Extra elements at the end of each stored row of A, B and C. */
  pad?: number;
  /** Put NaN in C first (only meaningful with beta = 0, which must not read C). */
  nanC?: boolean;
}

/** Runs one case and checks every element of C, including that row padding is left untouched. */
function check(c: Case): void {
  const { ta, tb, M, N, K, alpha = 1, beta = 0, pad = 0 } = c;
  const lda = (ta ? M : K) + pad;
  const ldb = (tb ? K : N) + pad;
  const ldc = N + pad;
  const A = randomArray((ta ? K : M) * lda);
  const B = randomArray((tb ? N : K) * ldb);
  const C = randomArray(M * ldc);
  if (c.nanC) C.fill(NaN, 0, M * ldc - pad);
  const C0 = C.slice();
  gemm.sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

  const label = `ta=${ta} tb=${tb} M=${M} N=${N} K=${K} alpha=${alpha} beta=${beta} pad=${pad}`;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < ldc; j++) {
      const got = C[i * ldc + j];
      if (j >= N) {
        assert.ok(Object.is(got, C0[i * ldc + j]), `${label}: padding at (${i},${j}) was written`);
        continue;
      }
      let sum = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const a = ta ? A[k * lda + i] : A[i * lda + k];
        const b = tb ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
        mag += Math.abs(a * b);
      }
      const prior = beta === 0 ? 0 : beta * C0[i * ldc + j];
      const want = alpha * sum + prior;
      // float32 rounding relative to the size of the terms summed (cancellation-proof).
      const tol = 1e-5 * (Math.abs(alpha) * mag + Math.abs(prior)) + 1e-30;
      if (!(Math.abs(got - want) <= tol)) {
        assert.fail(`${label}: C(${i},${j}) = ${got}, want ${want} (tolerance ${tol})`);
      }
    }
  }
}

const COMBOS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

test("all transpose combinations on odd sizes around the tile edges", () => {
  const sizes = [1, 7, 20, 33, 129];
  for (const [ta, tb] of COMBOS)
    for (const M of sizes) for (const N of sizes) for (const K of sizes) check({ ta, tb, M, N, K });
});

test("sizes past the cache blocks (M > MC, N > NC, K > KC) with beta accumulating once", () => {
  for (const [ta, tb] of COMBOS) {
    check({ ta, tb, M: 1031, N: 37, K: 270, alpha: 0.75, beta: -1.5, pad: 3 });
    // Wide or tall enough to be cut into more chunks than threads (dynamic scheduling).
    check({ ta, tb, M: 40, N: 4500, K: 20, beta: 0.5 });
    check({ ta, tb, M: 4500, N: 40, K: 20, beta: 0.5 });
    // Over 1024 rows per thread even when two threads split M.
    check({ ta, tb, M: 2100, N: 9, K: 40, beta: 2 });
    check({ ta, tb, M: 45, N: 1100, K: 280, alpha: -1, beta: 0.5 });
  }
});

test("skinny LoRA shapes: rank 8..64 as N, K or M", () => {
  for (const [ta, tb] of COMBOS) {
    check({ ta, tb, M: 200, N: 8, K: 64 });
    check({ ta, tb, M: 200, N: 64, K: 8, beta: 1 });
    check({ ta, tb, M: 16, N: 96, K: 200 });
  }
});

test("small products big enough to split across threads: tiny M or K, every transpose, strides, alpha/beta", () => {
  // Each is over a million multiply-adds (so it forks), with one side of 8..48 (one or a few A slivers,
  // or few K steps, where forking and packing cost the most).
  const shapes = [
    [16, 256, 256],
    [16, 128, 896],
    [48, 64, 384],
    [48, 384, 64],
    [384, 64, 48],
    [8, 520, 300],
  ];
  for (const [ta, tb] of COMBOS) {
    for (const [M, N, K] of shapes) check({ ta, tb, M, N, K });
    check({ ta, tb, M: 15, N: 300, K: 270, pad: 3, alpha: -1.25, beta: 0.5 });
    check({ ta, tb, M: 330, N: 70, K: 47, pad: 1, alpha: 0.5, beta: 0, nanC: true });
  }
  // Random small shapes (seeded), so nothing is only right for the sizes above.
  for (let i = 0; i < 12; i++) {
    const [ta, tb] = COMBOS[i % 4];
    const dim = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo));
    check({ ta, tb, M: dim(1, 64), N: dim(1, 400), K: dim(1, 900), pad: i % 3, alpha: 1.5, beta: i % 2 });
  }
});

test("results are bitwise the same on every call, whichever thread computes which part", () => {
  // Back-to-back calls reach the pool's workers spinning, awake or asleep: the result must not change.
  for (const [ta, tb] of COMBOS) {
    const [M, N, K] = [40, 200, 300];
    const A = randomArray(M * K);
    const B = randomArray(K * N);
    const first = new Float32Array(M * N);
    gemm.sgemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, first, N);
    for (let rep = 0; rep < 30; rep++) {
      const C = new Float32Array(M * N);
      gemm.sgemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, C, N);
      assert.deepEqual(C, first, `ta=${ta} tb=${tb}: call ${rep} differs from the first`);
    }
  }
});

test("strided lda/ldb/ldc leave the padding alone", () => {
  for (const [ta, tb] of COMBOS) check({ ta, tb, M: 29, N: 35, K: 41, pad: 5, alpha: 2, beta: 1 });
});

test("alpha/beta semantics: beta = 0 ignores NaN in C, alpha = 0 only scales C", () => {
  for (const [ta, tb] of COMBOS) {
    check({ ta, tb, M: 19, N: 40, K: 23, beta: 0, nanC: true });
    check({ ta, tb, M: 19, N: 40, K: 23, alpha: -0.5, beta: 3 });
  }
  const C = new Float32Array([1, 2, 3, 4]);
  gemm.sgemm(false, false, 2, 2, 2, 0, new Float32Array([NaN, 1, 1, 1]), 2, new Float32Array(4), 2, 2, C, 2);
  assert.deepEqual([...C], [2, 4, 6, 8]);
  const nan = new Float32Array([NaN, NaN, NaN, NaN]);
  gemm.sgemm(false, false, 2, 2, 2, 0, new Float32Array(4), 2, new Float32Array(4), 2, 0, nan, 2);
  assert.deepEqual([...nan], [0, 0, 0, 0]);
});

test("K = 0 gives beta * C", () => {
  for (const [ta, tb] of COMBOS) {
    check({ ta, tb, M: 5, N: 33, K: 0, beta: 0.5 });
    check({ ta, tb, M: 5, N: 33, K: 0, beta: 0, nanC: true });
  }
});

test("arguments are checked against the arrays before any memory is read", () => {
  const a = new Float32Array(6);
  const b = new Float32Array(6);
  const c = new Float32Array(4);
  assert.throws(() => gemm.sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, new Float32Array(3), 2), /C has 3/);
  assert.throws(() => gemm.sgemm(false, false, 2, 2, 4, 1, a, 4, b, 2, 0, c, 2), /A has 6 elements, needs 8/);
  assert.throws(
    () => gemm.sgemm(false, true, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2),
    /ldb \(2\) must be at least 3/,
  );
  assert.throws(() => gemm.sgemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2), /must be >= 0/);
  assert.throws(
    () => gemm.sgemm(false, false, 2, 2, 3, 1, [] as unknown as Float32Array, 3, b, 2, 0, c, 2),
    /Float32Array/,
  );
});

test("reports the instruction set it was built for", () => {
  const info = gemm.gemmInfo();
  assert.ok(["avx512", "avx2", "scalar"].includes(info.isa));
  assert.ok(Number.isInteger(info.threads) && info.threads >= 1);
});
