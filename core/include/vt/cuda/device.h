#pragma once
// CUDA device discovery that works without a driver: any failure of the runtime to enumerate devices (no
// driver, error 35, sticky errors) reads as "0 devices", so CPU-only machines import and run normally.
#include <string>

#include "vt/core/device.h"

namespace vt::cuda {

int device_count();
bool is_available();
// Why there are no devices ("no CUDA driver found", ...), or "" when there are some.
std::string unavailable_reason();
// Throws RuntimeError naming `d` when it does not exist.
void check_device(Device d);

}  // namespace vt::cuda
