#pragma once
// What the CUDA runtime says about the GPUs of this process and how they reach each other. NVML facts (link
// types, NVLink counts, CPU affinity) are gathered in Python through pynvml; both land in one topology
// document (python/vibetensor/topology/schema.py), which every algorithm reads.
//
// Note [Functional P2P check]
// A pair is reported usable only after a kernel on the source GPU wrote a pattern into the peer's memory
// through the peer mapping and the pattern read back intact. Drivers and hypervisors can report P2P access
// that then faults or silently drops writes; the probe never trusts the attribute alone. Peer access enabled
// for the check is disabled again afterwards (it was off before), so probing leaves no state behind.
#include <cstdint>
#include <string>
#include <vector>

namespace vt::topology {

struct DeviceInfo {
  int index = 0;
  std::string name, uuid, pci_bus_id;
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  uint64_t total_memory = 0;
  bool unified_addressing = false;
  bool managed_memory = false;
  // Driver attributes, reported only (vibetensor never creates multicast objects): -1 when unknown.
  int multicast_supported = -1;
  int fabric_handles_supported = -1;
};

struct PeerInfo {
  int src = 0, dst = 0;
  bool access_supported = false;
  bool native_atomics = false;
  int performance_rank = -1;
  std::string functional;  // "ok", "failed: ...", "not-attempted"
};

struct RuntimeInfo {
  int driver_version = 0, runtime_version = 0;
  std::string error;  // set when the runtime could not enumerate devices
};

RuntimeInfo runtime_info();
std::vector<DeviceInfo> devices();
// Every ordered pair (src != dst); with functional_check, runs Note [Functional P2P check] on capable pairs.
std::vector<PeerInfo> peers(bool functional_check);

}  // namespace vt::topology
