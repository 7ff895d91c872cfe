#pragma once
// Peer access: the one owner of cudaDeviceEnablePeerAccess in the process.
//
// Note [Peer mapping lifetime]
// "device reads peer" needs the peer's memory mapped into device's address space. Mappings are refcounted per
// ordered pair of logical devices: enable_peer_access() maps on 0 -> 1, disable_peer_access() unmaps on 1 -> 0,
// so the topology probe, the measurements and every Fabric can each hold a pair without undoing another's. A
// mapping someone else made (cudaErrorPeerAccessAlreadyEnabled on our first enable: torch, NCCL, user code) is
// used but never unmapped by us. A kernel may dereference a peer pointer only while its pair is held. Two
// logical devices on one physical GPU (Note [Emulated devices]) need no mapping: their access is native and
// enabling it is a no-op that still counts, so emulated runs exercise the same bookkeeping.
//
// The functional check does not trust the driver's word: it writes a pattern through the mapping with a kernel
// and reads it back. Results: "ok", "failed: <why>" (the pair claims P2P but it does not work), or
// "not-attempted: <why>" (the check itself could not run, e.g. no kernel image for this GPU).
#include <string>

namespace vt {
class Tensor;
}

namespace vt::cuda {

enum class PeerPath : int {
  Native = 0,  // same physical GPU (emulation): plain loads and stores
  P2P = 1,     // the driver reports peer access between two GPUs
  None = 2,    // no peer access: data must be staged through a copy
};
PeerPath peer_path(int device, int peer);
bool can_access_peer(int device, int peer);  // Native or P2P

// Refcounted mapping of `peer`'s memory into `device` (Note [Peer mapping lifetime]). enable raises
// RuntimeError naming the pair when the driver refuses; disable of a pair not held raises too.
void enable_peer_access(int device, int peer);
void disable_peer_access(int device, int peer);
int peer_access_refcount(int device, int peer);

// The functional check of device -> peer (see above). Holds the pair while it runs.
std::string check_peer_access(int device, int peer);

// dst = src (cast, any strides, src broadcast to dst's shape) by one kernel on dst's device and its current stream
// that reads src in place through unified addresses - src may live on another device whose memory dst's device
// can address (can_access_peer, with the pair held). Nothing else is ordered: the caller orders dst's stream
// after src's producers. Capturable (one kernel), unlike a copy_ between devices (cudaMemcpyPeerAsync).
void copy_reading_peer(const Tensor& dst, const Tensor& src);

}  // namespace vt::cuda
