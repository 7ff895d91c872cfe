// Peer access bookkeeping and the functional check (vt/cuda/peer_access.h, Note [Peer mapping lifetime]).
#include <cuda_runtime.h>

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/peer_access.h"

namespace vt::cuda {
namespace {

struct Mapping {
  int refs = 0;
  bool ours = false;  // we made the mapping (and so unmap it at refcount 0)
};
std::mutex g_mu;
std::map<std::pair<int, int>, Mapping> g_maps;  // keyed by physical (device, peer)

void check_pair(int device, int peer) {
  VT_CHECK_VALUE(device >= 0 && peer >= 0, "peer access needs explicit device indices, got ", device, " and ", peer);
  check_device(Device(DeviceType::CUDA, device));
  check_device(Device(DeviceType::CUDA, peer));
}

// One thread per word: `device` writes through its mapping of the peer's buffer.
__global__ void write_pattern(uint32_t* peer_buf, int n, uint32_t seed) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) peer_buf[i] = seed ^ (uint32_t(i) * 2654435761u);
}

}  // namespace

PeerPath peer_path(int device, int peer) {
  check_pair(device, peer);
  // The driver's answer is fixed for the process, and collectives ask it for every pair of every call (their
  // traffic counters): asked once per pair (stored as path + 1; two threads asking at once store the same value).
  static std::atomic<uint8_t> known[kMaxDevices * kMaxDevices] = {};
  std::atomic<uint8_t>& slot = known[size_t(device) * kMaxDevices + size_t(peer)];
  if (uint8_t k = slot.load(std::memory_order_relaxed)) return PeerPath(k - 1);
  int a = physical_device(device), b = physical_device(peer);
  PeerPath path = PeerPath::Native;
  if (a != b) {
    int v = 0;
    VT_CUDA_CHECK(cudaDeviceCanAccessPeer(&v, a, b));
    path = v ? PeerPath::P2P : PeerPath::None;
  }
  slot.store(uint8_t(int(path) + 1), std::memory_order_relaxed);
  return path;
}

bool can_access_peer(int device, int peer) { return peer_path(device, peer) != PeerPath::None; }

void enable_peer_access(int device, int peer) {
  PeerPath path = peer_path(device, peer);
  VT_CHECK(path != PeerPath::None, "cannot enable peer access cuda:", device, " -> cuda:", peer,
           ": the driver reports no P2P between them (cudaDeviceCanAccessPeer is 0)");
  int a = physical_device(device), b = physical_device(peer);
  std::lock_guard<std::mutex> lock(g_mu);
  Mapping& m = g_maps[{a, b}];
  if (m.refs == 0 && path == PeerPath::P2P) {
    DeviceGuard g(device);
    cudaError_t e = cudaDeviceEnablePeerAccess(b, 0);
    if (e == cudaErrorPeerAccessAlreadyEnabled) {
      cudaGetLastError();
      m.ours = false;  // someone else's mapping: used, never undone by us
    } else {
      VT_CUDA_CHECK(e);
      m.ours = true;
    }
  }
  ++m.refs;
}

void disable_peer_access(int device, int peer) {
  check_pair(device, peer);
  int a = physical_device(device), b = physical_device(peer);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_maps.find({a, b});
  VT_CHECK(it != g_maps.end() && it->second.refs > 0, "disable_peer_access: cuda:", device, " -> cuda:", peer,
           " is not held (more disables than enables)");
  if (--it->second.refs == 0 && it->second.ours) {
    DeviceGuard g(device);
    cudaDeviceDisablePeerAccess(b);
    cudaGetLastError();  // an unmapping failure leaves the mapping in place, which is harmless
    it->second.ours = false;
  }
}

int peer_access_refcount(int device, int peer) {
  check_pair(device, peer);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_maps.find({physical_device(device), physical_device(peer)});
  return it == g_maps.end() ? 0 : it->second.refs;
}

std::string check_peer_access(int device, int peer) {
  constexpr int kWords = 1 << 16;
  if (peer_path(device, peer) == PeerPath::None) return "not-attempted: no P2P reported by the driver";
  try {
    enable_peer_access(device, peer);
  } catch (const std::exception& e) {
    return std::string("failed: enable peer access: ") + e.what();
  }
  std::string result;
  uint32_t* buf = nullptr;
  uint32_t seed = 0x9e3779b9u ^ uint32_t(device * 131 + peer);
  auto fail = [&](const char* what, cudaError_t e) { result = what + std::string(cudaGetErrorString(e)); };
  cudaError_t e;
  {
    DeviceGuard g(peer);
    if ((e = cudaMalloc(&buf, kWords * sizeof(uint32_t))) != cudaSuccess) fail("not-attempted: cudaMalloc: ", e);
    else if ((e = cudaMemset(buf, 0, kWords * sizeof(uint32_t))) != cudaSuccess) fail("not-attempted: memset: ", e);
    else if ((e = cudaDeviceSynchronize()) != cudaSuccess) fail("failed: memset: ", e);
  }
  if (result.empty()) {
    DeviceGuard g(device);
    write_pattern<<<(kWords + 255) / 256, 256>>>(buf, kWords, seed);
    // A launch that never ran (e.g. no kernel image for this GPU) is a check problem, not a broken link.
    if ((e = cudaGetLastError()) != cudaSuccess) fail("not-attempted: kernel launch: ", e);
    else if ((e = cudaDeviceSynchronize()) != cudaSuccess) fail("failed: peer write: ", e);
  }
  if (result.empty()) {
    std::vector<uint32_t> host(size_t(kWords), 0u);
    DeviceGuard g(peer);
    if ((e = cudaMemcpy(host.data(), buf, kWords * sizeof(uint32_t), cudaMemcpyDeviceToHost)) != cudaSuccess) {
      fail("failed: read back: ", e);
    } else {
      int bad = 0;
      for (int i = 0; i < kWords; ++i) bad += host[size_t(i)] != (seed ^ (uint32_t(i) * 2654435761u));
      result = bad ? "failed: " + std::to_string(bad) + " of " + std::to_string(kWords) + " words wrong" : "ok";
    }
  }
  if (buf) {
    DeviceGuard g(peer);
    cudaFree(buf);
  }
  cudaGetLastError();
  disable_peer_access(device, peer);
  return result;
}

}  // namespace vt::cuda
