#pragma once
// Which float32 operation sequence the CPU's exact gelu and gelu_backward reproduce (Note [gelu rounds as
// torch's oneDNN] in core/src/ops/cpu_gelu_kernels.cpp): "minimax" (oneDNN's AVX-512 forward), "abramowitz_stegun"
// (oneDNN's forward below AVX-512) or "libm" (ATen's scalar formula). The default follows the CPU as oneDNN's
// choice does, so results match the torch installed beside vibetensor; set_model picks one by name for tests
// and throws for an unknown name or one the CPU cannot run (the oneDNN models need AVX2 + FMA). Not
// thread-safe against running gelu kernels.
#include <string_view>

namespace vt::cpu_gelu {

std::string_view model_name();
void set_model(std::string_view name);

}  // namespace vt::cpu_gelu
