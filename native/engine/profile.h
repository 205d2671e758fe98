// Per-kernel profile (TUNEFORGE_PROFILE=1): every Backend call is timed and grouped by the model phase
// that issued it ("head", "layers.fwd", ...), and each top-level engine call (forward_backward, eval_loss,
// adamw_step, ...) prints its totals to stderr when it returns. Off, it costs one branch per top-level call:
// the model's backend is not wrapped at all.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace tf {

// TUNEFORGE_PROFILE set to anything but "" or "0" (read once), or what set_profiling() said since.
bool profiling_enabled();
// Turns profiling on or off at run time (the benchmark profiles one step). A model's backend is wrapped when the
// model is built, so only models built while it is on get per-kernel rows; top-level calls report while it is on.
void set_profiling(bool on);

// One table row: the kernel calls of one Backend method issued in one model phase. On CUDA every profiled call
// is synchronised before and after, so `seconds` is the kernel's own time (launch included), not queueing.
struct ProfileRow {
  std::string region, kernel;
  int64_t calls = 0;
  double seconds = 0, flops = 0;
  double bytes = 0;  // what the calls' inputs and outputs amount to, each read or written once
};
// What one outermost top-level call (forward_backward, adamw_step, ...) spent, as printed to stderr.
struct ProfileReport {
  std::string call;
  double seconds = 0;  // the whole call, kernels and host work
  std::vector<ProfileRow> rows;  // slowest first
};
// The reports made since the last take (at most the last 64), oldest first; clears them.
std::vector<ProfileReport> take_profile_reports();

// Wraps `inner` in a timing decorator when profiling is on; returns it unchanged otherwise.
std::unique_ptr<Backend> profiled(std::unique_ptr<Backend> inner);

// Names the phase the kernels issued in this scope belong to (nested scopes replace, then restore).
class ProfileRegion {
 public:
  explicit ProfileRegion(const char* name);
  ~ProfileRegion();
  ProfileRegion(const ProfileRegion&) = delete;
  ProfileRegion& operator=(const ProfileRegion&) = delete;

 private:
  const char* prev_;
};

// A top-level engine call: the outermost one prints the table of what ran inside it, then clears it.
class ProfileCall {
 public:
  explicit ProfileCall(const char* name);
  ~ProfileCall();
  ProfileCall(const ProfileCall&) = delete;
  ProfileCall& operator=(const ProfileCall&) = delete;

 private:
  const char* name_;
  bool on_ = false;  // profiling was on when the call began (it may be switched off before the call ends)
  bool outermost_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tf
