// CUDA-side topology probe (see vt/topology/probe.h).
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "vt/cuda/device.h"
#include "vt/cuda/peer_access.h"
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
    if (cudaGetDeviceProperties(&p, cuda::physical_device(i)) != cudaSuccess) continue;
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
    d.multicast_supported = driver_attribute(cuda::physical_device(i), 132);
    d.fabric_handles_supported = driver_attribute(cuda::physical_device(i), 128);
    out.push_back(d);
  }
  return out;
}

std::vector<PeerInfo> peers(bool functional_check) {
  std::vector<PeerInfo> out;
  int n = cuda::device_count();
  for (int s = 0; s < n; ++s) {
    for (int d = 0; d < n; ++d) {
      if (s == d) continue;
      PeerInfo p;
      p.src = s;
      p.dst = d;
      int v = 0;
      int ps = cuda::physical_device(s), pd = cuda::physical_device(d);
      if (ps == pd) {  // emulated devices on one GPU: native access (Note [Emulated devices])
        p.access_supported = p.native_atomics = true;
        p.functional = functional_check ? cuda::check_peer_access(s, d) : "not-attempted";
        out.push_back(p);
        continue;
      }
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrAccessSupported, ps, pd) == cudaSuccess) p.access_supported = v;
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrNativeAtomicSupported, ps, pd) == cudaSuccess) p.native_atomics = v;
      if (cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrPerformanceRank, ps, pd) == cudaSuccess) p.performance_rank = v;
      cudaGetLastError();
      p.functional = !functional_check ? "not-attempted" : p.access_supported ? cuda::check_peer_access(s, d) : "not-attempted";
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace vt::topology
