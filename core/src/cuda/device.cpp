// Device enumeration through the statically linked CUDA runtime, and the logical -> physical map of emulated
// devices (vt/cuda/device.h, Note [Emulated devices]).
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/device.h"

namespace vt::cuda {

namespace {
constexpr int kMaxLogicalDevices = 64;
std::atomic<int> g_requested{-1};  // emulate_devices() before the probe; -1: read VT_EMULATE_DEVICES

struct Probe {
  int physical = 0;
  int logical = 0;
  bool emulated = false;
  std::string reason;
};

int requested_emulation() {
  int r = g_requested.load();
  if (r >= 0) return r;
  const char* env = std::getenv("VT_EMULATE_DEVICES");
  if (!env || !*env) return 0;
  char* end = nullptr;
  long n = std::strtol(env, &end, 10);
  VT_CHECK_VALUE(end && *end == '\0' && n >= 0 && n <= kMaxLogicalDevices, "VT_EMULATE_DEVICES must be an integer "
                 "between 0 and ", kMaxLogicalDevices, " (the number of logical devices), got '", env, "'");
  return int(n);
}

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      r.reason = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice
                     ? "no CUDA driver or device found"
                     : std::string("CUDA runtime could not enumerate devices: ") + cudaGetErrorString(err);
      cudaGetLastError();  // clear the error so later calls start clean
    } else {
      r.physical = r.logical = n;
      if (n == 0) r.reason = "no CUDA device found";
    }
    int want = requested_emulation();
    if (want > 0 && r.physical > 0) {
      r.logical = want;
      r.emulated = true;
    } else if (want > 0) {
      r.reason += " (VT_EMULATE_DEVICES needs one physical GPU to lay its logical devices on)";
    }
    g_requested.store(want);
    return r;
  }();
  return p;
}
std::atomic<bool> g_probed{false};
const Probe& probed() {
  const Probe& p = probe();
  if (!g_probed.load(std::memory_order_relaxed)) g_probed.store(true, std::memory_order_release);
  return p;
}

thread_local int t_logical_device = 0;  // the current device under emulation (Note [Emulated devices])
}  // namespace

int device_count() { return probed().logical; }
bool is_available() { return probed().logical > 0; }
std::string unavailable_reason() { return probed().reason; }
int physical_device_count() { return probed().physical; }
bool is_emulated() { return probed().emulated; }

int physical_device(int device) {
  const Probe& p = probed();
  return p.emulated ? device % p.physical : device;
}

std::string emulation_label() {
  const Probe& p = probed();
  if (!p.emulated) return "";
  return "emulated: " + std::to_string(p.logical) + " logical devices on " + std::to_string(p.physical) +
         " physical GPU" + (p.physical == 1 ? "" : "s");
}

void emulate_devices(int n) {
  VT_CHECK_VALUE(n >= 0 && n <= kMaxLogicalDevices, "emulate_devices: the number of logical devices must be "
                 "between 0 and ", kMaxLogicalDevices, ", got ", n);
  if (!g_probed.load(std::memory_order_acquire)) {
    g_requested.store(n);
    return;
  }
  const Probe& p = probe();
  int in_effect = p.emulated ? p.logical : 0;
  VT_CHECK(n == in_effect, "emulate_devices(", n, ") must come before the first CUDA use; this process already "
           "uses ", in_effect ? std::to_string(in_effect) + " emulated devices" : std::string("its physical devices"),
           " (set VT_EMULATE_DEVICES=", n, " in the environment instead)");
}

void check_device(Device d) {
  int n = device_count();
  VT_CHECK(n > 0, "cannot use device ", d.str(), ": ", unavailable_reason());
  VT_CHECK(d.index < n, "device ", d.str(), " does not exist: this machine has ", n,
           " CUDA device(s)", is_emulated() ? " (" + emulation_label() + ")" : std::string());
}

int current_device_raw() {
  if (is_emulated()) return t_logical_device;
  int d = 0;
  VT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device_raw(int device) {
  if (is_emulated()) {
    int phys = physical_device(device);
    int now = -1;
    if (cudaGetDevice(&now) != cudaSuccess || now != phys) VT_CUDA_CHECK(cudaSetDevice(phys));
    t_logical_device = device;
    return;
  }
  VT_CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace vt::cuda
