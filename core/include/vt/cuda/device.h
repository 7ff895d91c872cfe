#pragma once
// CUDA devices as vibetensor numbers them: logical device indices over the physical GPUs of the process.
//
// Discovery works without a driver: any failure of the runtime to enumerate devices (no driver, error 35,
// sticky errors) reads as "0 devices", so CPU-only machines import and run normally.
//
// Note [Emulated devices]
// VT_EMULATE_DEVICES=N (or emulate_devices(N) before the first CUDA use) makes the process see N logical CUDA
// devices laid round-robin over the physical GPUs (all on GPU 0 when there is one): logical device k runs on
// physical GPU k % physical_count. Everything keyed by a device index (caching allocators, stream pools, current
// streams, the current device) is keyed by the logical index, so each logical device gets its own memory pool
// and streams, and the code paths are the ones real GPUs take. Only the device guard (and the few calls that
// name a GPU to the CUDA runtime) translate logical -> physical. Two logical devices on one GPU reach each
// other's memory natively (no peer mapping is needed or made). Under emulation every logical device's default
// stream is a stream of its own, not the GPU's legacy default stream: kernels of different logical devices
// that wait on each other (collectives) must be able to run at the same time. Emulation is a test and research
// vehicle, never silent: is_emulated() and emulation_label() let every report say so.
#include <string>

#include "vt/core/device.h"

namespace vt::cuda {

// The most logical devices the per-device tables (allocators, stream pools, current streams) hold.
constexpr int kMaxDevices = 64;

int device_count();  // logical devices (N under emulation)
bool is_available();
// Why there are no devices ("no CUDA driver found", ...), or "" when there are some.
std::string unavailable_reason();
// Throws RuntimeError naming `d` when it does not exist.
void check_device(Device d);

int physical_device_count();
// The physical CUDA ordinal logical device `device` runs on (the identity without emulation).
int physical_device(int device);
bool is_emulated();
// "" without emulation, else e.g. "emulated: 4 logical devices on 1 physical GPU".
std::string emulation_label();
// Asks for N emulated devices; only before the first CUDA use (raises RuntimeError afterwards, unless N is
// what is already in effect). N = 0 turns emulation off.
void emulate_devices(int n);

// The calling thread's current logical device, and setting it (cudaSetDevice on its physical GPU). Without
// emulation these are cudaGetDevice/cudaSetDevice, so other libraries' device changes stay visible.
int current_device_raw();
void set_device_raw(int device);

}  // namespace vt::cuda
