// CUDA-side topology probe (see vt/topology/probe.h).
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "vt/cuda/device.h"
#include "vt/topology/probe.h"

namespace vt::topology {
namespace {

std::string err_str(cudaError_t e) { return cudaGetErrorString(e); }

// Driver-only attributes through the runtime's entry-point lookup (no libcuda link needed at build time).
// Values from the driver API: CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED = 128,
// CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED = 132.
int driver_attribute(int ordinal, int attribute) {
  using DeviceGet = int (*)(int*, int);
  using GetAttribute = int (*)(int*, int, int);
  static DeviceGet device_get = nullptr;
  static GetAttribute get_attribute = nullptr;
  static bool looked_up = false;
  if (!looked_up) {
    looked_up = true;
    cudaDriverEntryPointQueryResult q;
    void* fn = nullptr;
    if (cudaGetDriverEntryPointByVersion("cuDeviceGet", &fn, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      device_get = reinterpret_cast<DeviceGet>(fn);
    if (cudaGetDriverEntryPointByVersion("cuDeviceGetAttribute", &fn, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      get_attribute = reinterpret_cast<GetAttribute>(fn);
    cudaGetLastError();
  }
  int dev = 0, v = 0;
  if (!device_get || !get_attribute || device_get(&dev, ordinal) != 0) return -1;
  return get_attribute(&v, attribute, dev) == 0 ? v : -1;
}

std::string uuid_str(const cudaUUID_t& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return buf;
}

// One thread per word: the source GPU writes through its mapping of the peer's buffer.
__global__ void write_pattern(uint32_t* peer_buf, int n, uint32_t seed) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) peer_buf[i] = seed ^ (uint32_t(i) * 2654435761u);
}

std::string check_pair(int src, int dst) {
  constexpr int kWords = 1 << 16;
  uint32_t* buf = nullptr;
  cudaError_t e;
  if ((e = cudaSetDevice(dst)) != cudaSuccess) return "failed: " + err_str(e);
  if ((e = cudaMalloc(&buf, kWords * sizeof(uint32_t))) != cudaSuccess) return "failed: cudaMalloc: " + err_str(e);
  if ((e = cudaMemset(buf, 0, kWords * sizeof(uint32_t))) != cudaSuccess || (e = cudaDeviceSynchronize()) != cudaSuccess) {
    cudaFree(buf);
    return "failed: cudaMemset: " + err_str(e);
  }
  std::string result = "ok";
  cudaSetDevice(src);
  e = cudaDeviceEnablePeerAccess(dst, 0);
  bool enabled_here = e == cudaSuccess;
  if (e == cudaErrorPeerAccessAlreadyEnabled) cudaGetLastError();
  else if (e != cudaSuccess) result = "failed: enable peer access: " + err_str(e);
  uint32_t seed = 0x9e3779b9u ^ uint32_t(src * 131 + dst);
  if (result == "ok") {
    write_pattern<<<(kWords + 255) / 256, 256>>>(buf, kWords, seed);
    // A launch that never ran (e.g. no kernel image for this GPU) is a probe problem, not a broken link.
    if ((e = cudaGetLastError()) != cudaSuccess) result = "not-attempted: kernel launch: " + err_str(e);
    else if ((e = cudaDeviceSynchronize()) != cudaSuccess) result = "failed: peer write: " + err_str(e);
  }
  if (result == "ok") {
    std::vector<uint32_t> host(size_t(kWords), 0u);
    cudaSetDevice(dst);
    if ((e = cudaMemcpy(host.data(), buf, kWords * sizeof(uint32_t), cudaMemcpyDeviceToHost)) != cudaSuccess) {
      result = "failed: read back: " + err_str(e);
    } else {
      int bad = 0;
      for (int i = 0; i < kWords; ++i) bad += host[size_t(i)] != (seed ^ (uint32_t(i) * 2654435761u));
      if (bad) result = "failed: " + std::to_string(bad) + " of " + std::to_string(kWords) + " words wrong";
    }
  }
  if (enabled_here) {
    cudaSetDevice(src);
    cudaDeviceDisablePeerAccess(dst);
  }
  cudaSetDevice(dst);
  cudaFree(buf);
  cudaGetLastError();
  return result;
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  cudaDriverGetVersion(&r.driver_version);
  cudaRuntimeGetVersion(&r.runtime_version);
  if (!cuda::is_available()) r.error = cuda::unavailable_reason();
  cudaGetLastError();
  return r;
}

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  int n = cuda::device_count();
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.uuid = uuid_str(p.uuid);
    char bus[32];
    std::snprintf(bus, sizeof(bus), "%08X:%02X:%02X.0", p.pciDomainID, p.pciBusID, p.pciDeviceID);
    d.pci_bus_id = bus;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    d.sm_count = p.multiProcessorCount;
    d.total_memory = p.totalGlobalMem;
    d.unified_addressing = p.unifiedAddressing != 0;
    d.managed_memory = p.managedMemory != 0;
    d.multicast_supported = driver_attribute(i, 132);
    d.fabric_handles_supported = driver_attribute(i, 128);
    out.push_back(d);
  }
  return out;
}

std::vector<PeerInfo> peers(bool functional_check) {
  std::vector<PeerInfo> out;
  int n = cuda::device_count();
  int current = 0;
  cudaGetDevice(&current);
  for (int s = 0; s < n; ++s) {
    for (int d = 0; d < n; ++d) {
      if (s == d) continue;
      PeerInfo p;
      p.src = s;
      p.dst = d;
      int v = 0;
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrAccessSupported, s, d) == cudaSuccess) p.access_supported = v;
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrNativeAtomicSupported, s, d) == cudaSuccess) p.native_atomics = v;
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrPerformanceRank, s, d) == cudaSuccess) p.performance_rank = v;
      cudaGetLastError();
      p.functional = !functional_check ? "not-attempted" : p.access_supported ? check_pair(s, d) : "not-attempted";
      out.push_back(p);
    }
  }
  cudaSetDevice(current);
  return out;
}

}  // namespace vt::topology
