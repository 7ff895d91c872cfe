#pragma once
// Opt-in measurements (`vt-fabric topo --measure`). Conventions, stated once so numbers compare with
// nvbandwidth and p2pBandwidthLatencyTest:
//   * bandwidth is bytes copied per second in GB/s (1e9 B/s); a bidirectional figure is the sum of both
//     directions running at once (as p2pBandwidthLatencyTest reports it);
//   * "ce" copies use the copy engines (cudaMemcpyPeerAsync / cudaMemcpyAsync), "sm" copies a kernel on the
//     source GPU storing through its mapping of the destination (16-byte stores);
//   * latency is a single-thread dependent-load chain on the source GPU over the destination's memory, in
//     microseconds per load (nvbandwidth's latency method).
// Each figure is the median of `iters` timed repetitions after a warm-up, timed with CUDA events. Peer access
// is enabled for the measurement and disabled afterwards if it was off.
#include <cstddef>

namespace vt::topology {

double ce_copy_gbps(int src, int dst, size_t bytes, int iters, bool bidirectional);
double sm_copy_gbps(int src, int dst, size_t bytes, int iters, bool bidirectional);
double peer_latency_us(int src, int dst, int hops);
double host_to_device_gbps(int dev, size_t bytes, int iters);
double device_to_host_gbps(int dev, size_t bytes, int iters);
double device_local_copy_gbps(int dev, size_t bytes, int iters);

}  // namespace vt::topology
