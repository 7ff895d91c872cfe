// The per-thread current stream and the stream pool (vt/cuda/stream.h).
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <mutex>

#include "vt/core/error.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {
namespace {

constexpr int kPoolSize = 8;
thread_local std::array<StreamId, kMaxDevices> t_current{};  // 0: the legacy default stream

struct Pool {
  std::once_flag once;
  std::array<StreamId, kPoolSize> normal{}, high{};
  std::atomic<uint32_t> next_normal{0}, next_high{0};
};
std::array<Pool, kMaxDevices> g_pools;

void check_index(int device) {
  check_device(Device(DeviceType::CUDA, device));
  VT_CHECK(device < kMaxDevices, "device index ", device, " above the supported ", kMaxDevices);
}

}  // namespace

std::pair<int, int> priority_range() {
  int least = 0, greatest = 0;
  VT_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  return {least, greatest};
}

// Under emulation each logical device's default stream is its own blocking stream (Note [Emulated devices]):
// ordered with the GPU's legacy stream like a default stream, but not with the other logical devices' streams.
std::array<std::once_flag, kMaxDevices> g_default_once;
std::array<StreamId, kMaxDevices> g_default{};

StreamId default_stream(int device) {
  if (!is_emulated() || device < 0 || device >= kMaxDevices) return 0;
  std::call_once(g_default_once[size_t(device)], [device] {
    DeviceGuard g(device);
    cudaStream_t s;
    VT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault));
    g_default[size_t(device)] = reinterpret_cast<StreamId>(s);
  });  // lives for the process, like the legacy stream it stands for
  return g_default[size_t(device)];
}

StreamId current_stream(int device) {
  if (device < 0 || device >= kMaxDevices) return 0;
  StreamId s = t_current[size_t(device)];
  return s ? s : default_stream(device);
}

void set_current_stream(int device, StreamId stream) {
  check_index(device);
  t_current[size_t(device)] = stream;
}

StreamId pool_stream(int device, int priority) {
  check_index(device);
  Pool& p = g_pools[size_t(device)];
  std::call_once(p.once, [&] {
    DeviceGuard g(device);
    auto [least, greatest] = priority_range();
    for (int i = 0; i < kPoolSize; ++i) {
      cudaStream_t s;
      VT_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, least));
      p.normal[size_t(i)] = reinterpret_cast<StreamId>(s);
      VT_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, greatest));
      p.high[size_t(i)] = reinterpret_cast<StreamId>(s);
    }
  });  // pool streams live for the process, as torch's do
  if (priority < 0) return p.high[p.next_high++ % kPoolSize];
  return p.normal[p.next_normal++ % kPoolSize];
}

}  // namespace vt::cuda
