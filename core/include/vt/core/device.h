#pragma once
// Device: where a tensor's storage lives. "cpu", "cuda" (the current CUDA device) or "cuda:N".
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vt {

enum class DeviceType : int8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int8_t index = -1;  // -1: "the current device" for CUDA, always -1 for CPU

  constexpr Device() = default;
  constexpr Device(DeviceType t, int idx = -1) : type(t), index(int8_t(t == DeviceType::CPU ? -1 : idx)) {}
  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  constexpr bool operator==(const Device&) const = default;
  std::string str() const;
};

// Parses "cpu", "cuda", "cuda:3"; throws RuntimeError naming the string otherwise.
Device parse_device(std::string_view s);
inline constexpr Device kCPU{DeviceType::CPU};

}  // namespace vt
