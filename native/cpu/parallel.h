// How the CPU kernels split their loops across the OpenMP team. Below kParallelMin work a loop runs on the
// calling thread with no OpenMP region at all: even a region with if(false) costs ~0.5 us, and a real fork
// 5-50 us (the sleeping threads are woken by a futex), more than a small model's norm or optimizer update.
// Chunks are static and contiguous, one per thread, and partial sums are added in chunk order, so results
// depend only on the thread count, never on timing.
#pragma once
#include <omp.h>

#include <cstdint>
#include <vector>

#include "cpu/kernels.h"

namespace tf::cpu {

// Calls body(i0, i1) on disjoint ranges covering [0, n); `work` (elements touched) decides whether to fork.
template <typename F>
inline void parallel_for(int64_t n, int64_t work, F&& body) {
  if (work < kParallelMin || n < 2 || omp_get_max_threads() == 1) {
    body((int64_t)0, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    body(n * t / nt, n * (t + 1) / nt);
  }
}

// The sum of body(i0, i1) over the same ranges, added in range order.
template <typename F>
inline double parallel_sum(int64_t n, int64_t work, F&& body) {
  if (work < kParallelMin || n < 2 || omp_get_max_threads() == 1) return body((int64_t)0, n);
  std::vector<double> part(omp_get_max_threads(), 0.0);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    part[t] = body(n * t / nt, n * (t + 1) / nt);
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace tf::cpu
