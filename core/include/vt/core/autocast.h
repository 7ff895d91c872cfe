#pragma once
// Autocast (torch.autocast): inside an autocast region, ops of a fixed list run in a chosen precision instead of
// their inputs' own. It is a dispatcher layer between the Python-override layer and autograd (Layer::Autocast):
// an op with a policy gets a boxed kernel there that casts its floating tensor arguments and redispatches to
// autograd, so the casts are recorded in the graph and gradients come back in the inputs' own dtypes.
//
//   LowerPrecision  matrix products (mm, bmm, linear): float32 arguments become the region's dtype (bfloat16 or
//                   float16)
//   Float32         ops that lose range or accuracy in 16 bits (exp, log, pow, layer_norm, losses): 16-bit
//                   arguments become float32
//   Float32OptDtype reductions with a dtype= argument (sum, softmax, cumsum): when the call gives none and the
//                   first argument is eligible, dtype=float32 is filled in, so a 16-bit input gives a float32 result
//   Promote         ops that need one dtype (atan2): eligible arguments become the widest floating type among them
//
// Which ops have which policy differs by device type, as torch's lists do (on CPU only the matrix products,
// prod and the losses change; on CUDA also the transcendental functions, norms and softmax); the tables are in
// core/src/autocast.cpp. Python composites (F.conv2d, F.mse_loss, ...) get the same policies from
// vibetensor.torch.amp, which casts their arguments and runs their body with autocast suspended.
//
// Note [Autocast eligibility]
// Only floating tensors on the region's device type are cast, and float64 never is: a double-precision op
// inside an autocast region stays double, as in torch. Integer, bool and undefined arguments pass unchanged.
//
// Note [Autocast cast cache]
// Inside the outermost region, a LowerPrecision cast of a leaf that requires grad (a weight) is kept and handed
// out again while the weight's storage version is unchanged, so a weight used several times in a forward (an RNN's
// over every step, tied embeddings) is cast once, as torch's cache does. Casts made with grad mode off are not
// kept (reused under grad mode they would cut the weight out of the graph), and an in-place update of the
// weight (an optimizer step inside the region) makes its next use cast again. The cache is per thread and is
// cleared when the thread's outermost region exits (cache_enabled=False skips it).
//
// Note [Autocast suspension]
// The ops a policy op runs internally (a composite's pieces, a backward formula) are not autocast again: the
// layer runs its redispatch with `suspended` set, and the autograd engine sets it for every backward node.
// So an autocast op's result dtype is decided once, by its own policy, as torch's ExcludeDispatchKeyGuard does.
#include <cstdint>

#include "vt/core/device.h"
#include "vt/core/dtype.h"

namespace vt {

enum class AutocastPolicy : uint8_t { LowerPrecision, Float32, Float32OptDtype, Promote };

struct AutocastState {
  bool enabled[2] = {false, false};                                // [CPU, CUDA]
  ScalarType dtype[2] = {ScalarType::BFloat16, ScalarType::Float16};  // torch's defaults per device type
  bool suspended = false;                                          // Note [Autocast suspension]
  bool cache_enabled = true;                                       // Note [Autocast cast cache]
  bool active() const { return (enabled[0] || enabled[1]) && !suspended; }
};
inline thread_local AutocastState tls_autocast;

inline bool autocast_active() { return tls_autocast.active(); }

// Sets `suspended` for a scope and restores it after.
class AutocastSuspendGuard {
 public:
  AutocastSuspendGuard() : prev_(tls_autocast.suspended) { tls_autocast.suspended = true; }
  ~AutocastSuspendGuard() { tls_autocast.suspended = prev_; }
  AutocastSuspendGuard(const AutocastSuspendGuard&) = delete;
  AutocastSuspendGuard& operator=(const AutocastSuspendGuard&) = delete;

 private:
  bool prev_;
};

// The region nesting depth of this thread (Python's autocast regions count themselves in and out) and the cast
// cache it bounds (Note [Autocast cast cache]).
int autocast_increment_nesting();
int autocast_decrement_nesting();  // clears the cache when it reaches 0
void clear_autocast_cache();

// Installs the autocast kernels of every op in the policy tables that is defined (idempotent; called once at
// import, after the ops' static registrations).
void install_autocast_kernels();

}  // namespace vt
