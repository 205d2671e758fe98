// How the CPU kernels and the GEMM split their work across threads.
//
// Why not plain OpenMP regions: the addon runs libgomp with OMP_WAIT_POLICY=PASSIVE (src/engine/native.ts:
// busy-waiting threads made training many times slower on a loaded machine), so every region wakes its
// sleeping threads through a futex: 10-15 us on a small VM, as long as a whole small GEMM. SpinPool's
// workers instead spin for a short, fixed time (kSpinMicros) after each job and only then sleep, so the
// back-to-back kernels of a step reach a spinning worker in about a microsecond, and an idle process burns
// at most kSpinMicros per worker after its last job. The caller takes work slots too, so it never waits
// for a worker that is asleep or descheduled: it runs that worker's share itself.
//
// Below kParallelMin work a loop runs on the calling thread with no fork at all. Ranges are static and
// contiguous, one per slot, and partial sums are added in slot order, so results depend only on the
// thread count (omp_get_max_threads(), set by Backend::set_threads), never on timing or on which thread
// ran a slot.
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu/kernels.h"

namespace tf::cpu {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

class SpinPool {
 public:
  static constexpr int kSpinMicros = 100;

  // Process-wide; never destroyed, so exit never waits on (or races with) a worker.
  static SpinPool& instance() {
    static SpinPool* pool = new SpinPool();
    return *pool;
  }

  // Threads a region started here would use: 1 inside another region (ours or OpenMP's), where the
  // caller's thread is already one of a team.
  static int threads() { return in_job() || omp_in_parallel() ? 1 : omp_get_max_threads(); }

  // Calls job(t, nt) once for every slot t in [0, nt) and returns when all are done. The caller takes
  // slots too, so a worker that is asleep or descheduled when the job starts is never waited for: the
  // caller runs its slots instead. Which thread runs a slot never changes what the slot computes.
  template <typename F>
  void run(int nt, F&& job) {
    nt = std::min(nt, 0xffff);  // what state_ can count
    if (nt <= 1) {
      job(0, 1);
      return;
    }
    std::lock_guard<std::mutex> one_at_a_time(run_mu_);
    while ((int)workers_.size() < nt - 1) {
      workers_.emplace_back([this] { work(); });
      workers_.back().detach();
    }
    fn_ = [](void* f, int t, int n) { (*static_cast<F*>(f))(t, n); };
    ctx_ = &job;
    done_.store(0, std::memory_order_relaxed);
    const uint64_t run_id = (state_.load(std::memory_order_relaxed) >> 32) + 1;
    {
      // Under the lock, so a worker about to sleep either sees the new job or gets the notification.
      std::lock_guard<std::mutex> lk(mu_);
      state_.store(run_id << 32 | (uint64_t)nt << 16, std::memory_order_release);
    }
    cv_.notify_all();
    in_job() = true;
    while (run_slot(run_id)) {
    }
    in_job() = false;
    // Only slots a worker already runs are left: it is on a CPU, unless the machine is oversubscribed. Then
    // spinning (or yielding, which CFS may ignore) would keep that worker off the CPU for whole timeslices per
    // run, so after a short spin the caller sleeps and the worker that finishes the last slot wakes it.
    for (int spin = 0; done_.load(std::memory_order_seq_cst) < nt; spin++) {
      if (spin < 4096) {
        cpu_relax();
        continue;
      }
      std::unique_lock<std::mutex> lk(done_mu_);
      caller_waiting_.store(true, std::memory_order_seq_cst);
      done_cv_.wait(lk, [&] { return done_.load(std::memory_order_seq_cst) >= nt; });
      caller_waiting_.store(false, std::memory_order_relaxed);
      break;
    }
  }

 private:
  static bool& in_job() {
    static thread_local bool flag = false;
    return flag;
  }

  // Claims the next free slot of run `run_id` and runs it; false when that run has none left.
  bool run_slot(uint64_t run_id) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      const int nt = (int)(s >> 16 & 0xffff), slot = (int)(s & 0xffff);
      if (s >> 32 != run_id || slot >= nt) return false;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        fn_(ctx_, slot, nt);
        // seq_cst with the caller's flag: either it sees the count complete or this sees it waiting.
        if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == nt &&
            caller_waiting_.load(std::memory_order_seq_cst)) {
          std::lock_guard<std::mutex> lk(done_mu_);
          done_cv_.notify_all();
        }
        return true;
      }
    }
  }

  void work() {
    in_job() = true;
    uint64_t seen = 0;
    for (;;) {
      // Spin a little for the next run, then sleep until one starts.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int spin = 1; state_.load(std::memory_order_acquire) >> 32 == seen; spin++) {
        cpu_relax();
        if (spin % 64 == 0 && std::chrono::steady_clock::now() > deadline) {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] { return state_.load(std::memory_order_acquire) >> 32 != seen; });
        }
      }
      seen = state_.load(std::memory_order_acquire) >> 32;
      while (run_slot(seen)) {
      }
    }
  }

  std::mutex run_mu_;  // one run at a time (e.g. two JS worker threads training at once)
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  // run id << 32 | its slot count << 16 | next unclaimed slot: the one word workers watch and claim from.
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};  // slots of the current run finished
  std::mutex done_mu_;        // the caller sleeps on done_cv_ when a worker's slot keeps it waiting
  std::condition_variable done_cv_;
  std::atomic<bool> caller_waiting_{false};
  void (*fn_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
};

// Calls body(i0, i1) on disjoint ranges covering [0, n); `work` (elements touched) decides whether to fork.
template <typename F>
inline void parallel_for(int64_t n, int64_t work, F&& body) {
  const int threads = work < kParallelMin || n < 2 ? 1 : SpinPool::threads();
  SpinPool::instance().run(threads, [&](int t, int nt) { body(n * t / nt, n * (t + 1) / nt); });
}

// The sum of body(i0, i1) over the same ranges, added in range order.
template <typename F>
inline double parallel_sum(int64_t n, int64_t work, F&& body) {
  const int threads = work < kParallelMin || n < 2 ? 1 : SpinPool::threads();
  if (threads == 1) return body((int64_t)0, n);
  std::vector<double> part(threads, 0.0);
  SpinPool::instance().run(threads, [&](int t, int nt) { part[t] = body(n * t / nt, n * (t + 1) / nt); });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace tf::cpu
