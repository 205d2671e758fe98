// Per-kernel profile (TUNEFORGE_PROFILE=1): every Backend call is timed and grouped by the model phase
// that issued it ("head", "layers.fwd", ...), and each top-level engine call (forward_backward, eval_loss,
// adamw_step, ...) prints its totals to stderr when it returns. Off, it costs one branch per top-level call:
// the model's backend is not wrapped at all.
#pragma once
#include <chrono>
#include <memory>

#include "engine/backend.h"

namespace tf {

// TUNEFORGE_PROFILE set to anything but "" or "0", read once.
bool profiling_enabled();

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
  bool outermost_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tf
