#pragma once
// The Fabric's route table: for every ordered pair (compute device, remote device) of an open Fabric, how a
// kernel on the compute device reaches the remote device's memory - natively (two emulated devices on one GPU),
// through a verified peer mapping, or by a staged copy, with the reason it is staged. Python's Fabric object
// decides the routes (topology document, functional check, faults, user choices) and publishes them here; the
// cross-device call hook (Note [Cross-device calls]) and the collectives read them on every call without a lock.
//
// Note [Route lifetime]
// Routes are refcounted per pair: each open Fabric covering a pair holds it, and the pair's route is the one the
// first holder published (later Fabrics over the same pair must agree, or the open fails). close() releases the
// pair; a pair no Fabric holds is not covered, and mixed-device calls on it raise torch's error again. A kernel
// may read a peer pointer only while the pair is held (the Fabric holds the peer mapping as long, Note [Peer
// mapping lifetime]).
#include <cstdint>
#include <string>
#include <vector>

#include "vt/cuda/device.h"

namespace vt::fabric {

using cuda::kMaxDevices;  // the core's per-device tables hold as many

enum class Route : uint8_t {
  Uncovered = 0,  // no open Fabric holds the pair
  Native = 1,     // same physical GPU (emulation)
  Peer = 2,       // a verified P2P mapping
  Staged = 3,     // copied to the compute device first; see Reason
};

// Why a pair is staged: a fixed set, so counters and reports can be compared across machines.
enum class Reason : uint8_t {
  None = 0,
  NoP2P,            // the driver (or the topology document) reports no peer access
  P2PBroken,        // P2P reported, but the functional check failed
  DisabledByUser,   // Fabric(p2p=False) or a pair the user excluded
  CaptureActive,    // a staged path was needed while a CUDA graph capture was underway
  PeerLimit,        // the driver refused another peer mapping
  kCount
};
const char* reason_name(Reason r);  // "no_p2p", "p2p_broken", ...
Reason reason_from_name(const std::string& name);  // raises ValueError listing the names

// Publishes a pair's route (refcount + 1). Raises when a held pair is published with another route.
void hold_route(int compute, int remote, Route route, Reason reason);
void release_route(int compute, int remote);
Route route(int compute, int remote);  // lock-free
Reason route_reason(int compute, int remote);
int route_holders(int compute, int remote);

}  // namespace vt::fabric
