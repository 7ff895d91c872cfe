#pragma once
// Grad mode: a per-thread switch saying whether ops record autograd history. no_grad / enable_grad /
// set_grad_enabled flip it for a scope; inference mode turns it off too and raises a second flag that code can
// query (is_inference_mode_enabled). Thread-local on purpose: one thread's no_grad must not change what another
// thread records, and reading it takes no lock (the dispatcher reads it on every call whose inputs need grad).
namespace vt::autograd {

struct GradModeState {
  bool grad_enabled = true;
  bool inference = false;
};
inline thread_local GradModeState tls_grad_mode;

inline bool is_grad_enabled() { return tls_grad_mode.grad_enabled; }
inline void set_grad_enabled(bool on) { tls_grad_mode.grad_enabled = on; }
inline bool is_inference_mode_enabled() { return tls_grad_mode.inference; }

// Restores the previous grad mode on scope exit.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : prev_(tls_grad_mode.grad_enabled) { tls_grad_mode.grad_enabled = enabled; }
  ~GradModeGuard() { tls_grad_mode.grad_enabled = prev_; }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

// Inference mode: no history is recorded and is_inference_mode_enabled() reads true inside the scope.
class InferenceModeGuard {
 public:
  explicit InferenceModeGuard(bool enabled = true) : prev_(tls_grad_mode) {
    if (enabled) tls_grad_mode = GradModeState{false, true};
  }
  ~InferenceModeGuard() { tls_grad_mode = prev_; }
  InferenceModeGuard(const InferenceModeGuard&) = delete;
  InferenceModeGuard& operator=(const InferenceModeGuard&) = delete;

 private:
  GradModeState prev_;
};

}  // namespace vt::autograd
