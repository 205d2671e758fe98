// The CUDA pool's block-reuse policy (native/cuda/block_cache.h, the class memory.cu's allocator uses), replayed
// through the addon with fake pointers: best fit with bounded slack, real block sizes kept, no growth when the
// padded micro-batch length changes every step. Runs without a GPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { blockCacheTrace, type BlockCacheStep } from "../../src/engine/native.js";

const MiB = 1 << 20;
const free = (op: number) => -1 - op;

/** Allocates each size, frees them all, then makes `request`: which block serves it, and how big is it. */
function serve(cached: number[], request: number): BlockCacheStep {
  const ops = [...cached, ...cached.map((_, i) => free(i)), request];
  const steps = blockCacheTrace(ops);
  return steps[steps.length - 1];
}

test("requests round up to 512-byte granules; a freed block serves the same size again", () => {
  const s = blockCacheTrace([0, 513, 1000, free(2), 1000]);
  assert.equal(s[0].blockBytes, 512);
  assert.equal(s[1].blockBytes, 1024);
  assert.equal(s[2].reused, false);
  assert.equal(s[3].cachedBytes, 1024);
  assert.equal(s[4].reused, true);
  assert.equal(s[4].block, s[2].block);
  assert.equal(s[4].cachedBytes, 0);
});

test("best fit: the smallest cached block large enough serves the request", () => {
  // blocks 1..3 are 4096, 8192 and 5120 bytes; 4500 bytes fits 8192 and 5120: the smaller wins
  const got = serve([4096, 8192, 5120], 4500);
  assert.equal(got.reused, true);
  assert.equal(got.block, 3);
  assert.equal(got.blockBytes, 5120);
  // a request larger than every cached block is a fresh cudaMalloc (block 4)
  const big = serve([4096, 8192, 5120], 9000);
  assert.deepEqual([big.reused, big.block, big.blockBytes], [false, 4, 9216]);
});

test("slack is bounded: 25% or 2 MiB above the request, never more than twice it", () => {
  // mid sizes: +2 MiB (more than 25%)
  assert.equal(serve([10 * MiB], 8.5 * MiB).reused, true);
  assert.equal(serve([10 * MiB], 7 * MiB).reused, false);
  // large sizes: +25% (more than 2 MiB)
  assert.equal(serve([100 * MiB], 81 * MiB).reused, true);
  assert.equal(serve([100 * MiB], 79 * MiB).reused, false);
  // small sizes: at most twice the request (a 1 KiB tensor must not pin a 4 KiB block)
  assert.equal(serve([4096], 2560).reused, true);
  assert.equal(serve([4096], 2048).reused, true);
  assert.equal(serve([4096], 1024).reused, false);
});

test("a block keeps its real size: reused for less, it goes back to the cache whole", () => {
  const s = blockCacheTrace([4096, free(0), 2560, free(2)]);
  assert.equal(s[2].blockBytes, 4096);
  assert.equal(s[2].cachedBytes, 0);
  assert.equal(s[3].cachedBytes, 4096);
});

test("micro-batches padded to a different length every step stop calling cudaMalloc and the cache stops growing", () => {
  // Three activations of hidden 3584 (fp32) per step at the step's padded length, all freed at the step's end.
  const lengths = [400, 450, 512, 430, 480, 505, 410, 499, 512, 470, 444, 501, 463, 487, 429, 508];
  const ops: number[] = [];
  const allocsOfStep: number[][] = [];
  for (const T of lengths) {
    const mine: number[] = [];
    for (let k = 0; k < 3; k++) {
      mine.push(ops.length);
      ops.push(3584 * 4 * T + k * 4096);
    }
    for (const i of mine) ops.push(free(i));
    allocsOfStep.push(mine);
  }
  const s = blockCacheTrace(ops);
  const fresh = allocsOfStep.map((idx) => idx.filter((i) => s[i].reused === false).length);
  // Exact size classes would call cudaMalloc for every new length (15 distinct lengths x 3). Best fit: only the
  // steps that set a new maximum beyond the slack (400 -> 450 -> 512) allocate.
  assert.deepEqual(fresh, [3, 3, 3, ...Array(lengths.length - 3).fill(0)]);
  const cachedAfterStep = allocsOfStep.map((idx) => s[idx[2] + 3].cachedBytes);
  for (let i = 3; i < cachedAfterStep.length; i++) assert.equal(cachedAfterStep[i], cachedAfterStep[2]);
  // every live block is at least its request and within the slack bound
  allocsOfStep.flat().forEach((i) => {
    const want = Math.ceil(ops[i] / 512) * 512;
    const got = s[i].blockBytes ?? 0;
    assert.ok(
      got >= want && got <= want + Math.max(want / 4, Math.min(want, 2 * MiB)),
      `op ${i}: ${got} for ${want}`,
    );
  });
});

test("blockCacheTrace refuses a free of nothing live", () => {
  assert.throws(() => blockCacheTrace([1000, free(0), free(0)]), /frees nothing live/);
  assert.throws(() => blockCacheTrace([free(0)]), /frees nothing live/);
});
