// The route table (vt/fabric/routes.h, Note [Route lifetime]).
#include "vt/fabric/routes.h"

#include <array>
#include <atomic>
#include <mutex>

#include "vt/core/error.h"

namespace vt::fabric {
namespace {

constexpr const char* kReasonNames[] = {"none", "no_p2p", "p2p_broken", "disabled_by_user", "capture_active",
                                        "peer_limit"};
static_assert(sizeof(kReasonNames) / sizeof(kReasonNames[0]) == size_t(Reason::kCount));

struct Slot {
  std::atomic<uint8_t> route{uint8_t(Route::Uncovered)};
  std::atomic<uint8_t> reason{uint8_t(Reason::None)};
  int holders = 0;  // under g_mu
};
std::array<Slot, kMaxDevices * kMaxDevices> g_slots;
std::mutex g_mu;

Slot& slot(int compute, int remote) {
  VT_CHECK_VALUE(compute >= 0 && compute < kMaxDevices && remote >= 0 && remote < kMaxDevices,
                 "fabric: device pair (", compute, ", ", remote, ") outside 0..", kMaxDevices - 1);
  return g_slots[size_t(compute * kMaxDevices + remote)];
}

const char* route_name(Route r) {
  switch (r) {
    case Route::Native: return "native";
    case Route::Peer: return "p2p";
    case Route::Staged: return "staged";
    default: return "uncovered";
  }
}

}  // namespace

const char* reason_name(Reason r) { return size_t(r) < size_t(Reason::kCount) ? kReasonNames[size_t(r)] : "?"; }

Reason reason_from_name(const std::string& name) {
  std::string all;
  for (size_t i = 1; i < size_t(Reason::kCount); ++i) {
    if (name == kReasonNames[i]) return Reason(i);
    all += std::string(i > 1 ? ", " : "") + kReasonNames[i];
  }
  VT_FAIL_KIND(Value, "unknown fallback reason '", name, "' (known: ", all, ")");
}

void hold_route(int compute, int remote, Route route, Reason reason) {
  VT_CHECK_VALUE(compute != remote, "fabric: a route needs two devices, got cuda:", compute, " twice");
  VT_CHECK_VALUE(route != Route::Uncovered, "fabric: hold_route needs a route");
  VT_CHECK_VALUE((route == Route::Staged) == (reason != Reason::None),
                 "fabric: a staged route needs a reason, and only a staged route has one");
  Slot& s = slot(compute, remote);
  std::lock_guard<std::mutex> g(g_mu);
  if (s.holders > 0) {
    auto held = Route(s.route.load());
    VT_CHECK(held == route && Reason(s.reason.load()) == reason, "fabric: cuda:", compute, " -> cuda:", remote,
             " is already held by an open Fabric as ", route_name(held),
             held == Route::Staged ? std::string(" (") + reason_name(Reason(s.reason.load())) + ")" : std::string(),
             "; a second Fabric over the pair must route it the same way (close the first one)");
  } else {
    s.reason.store(uint8_t(reason));
    s.route.store(uint8_t(route), std::memory_order_release);
  }
  ++s.holders;
}

void release_route(int compute, int remote) {
  Slot& s = slot(compute, remote);
  std::lock_guard<std::mutex> g(g_mu);
  VT_CHECK(s.holders > 0, "fabric: release of cuda:", compute, " -> cuda:", remote, ", which no Fabric holds");
  if (--s.holders == 0) {
    s.route.store(uint8_t(Route::Uncovered), std::memory_order_release);
    s.reason.store(uint8_t(Reason::None));
  }
}

Route route(int compute, int remote) {
  if (compute < 0 || compute >= kMaxDevices || remote < 0 || remote >= kMaxDevices) return Route::Uncovered;
  return Route(g_slots[size_t(compute * kMaxDevices + remote)].route.load(std::memory_order_acquire));
}

Reason route_reason(int compute, int remote) { return Reason(slot(compute, remote).reason.load()); }

int route_holders(int compute, int remote) {
  Slot& s = slot(compute, remote);
  std::lock_guard<std::mutex> g(g_mu);
  return s.holders;
}

}  // namespace vt::fabric
