// What the float32 attention kernels share (flash_attention_f32.cu's forward, flash_attention_f32_bwd.cu's
// backward): per-(batch, head) strides, the 64-row tile and padded head dim, and the read of one 4-column chunk of
// a tile with zeros past the rows and the head dim, so that padded lanes change no product.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "vt/core/tensor.h"
#include "vt/cuda/check.h"

namespace vt::attention::f32 {

constexpr int kT = 64;  // tile rows and the padded head dim
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Strides {
  int64_t batch, head, row;
};

// Row row0 + r, columns [c, c + 4) of a global [rows, E] matrix (row stride rs, unit columns); zeros past `rows`
// and E. vec: E, rs and the base are multiples of 4 floats / 16 bytes, so the chunk is one load.
__device__ __forceinline__ float4 fetch4(const float* g, int64_t rs, int64_t row0, int64_t rows, int E, bool vec,
                                         int r, int c) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (row0 + r < rows && c < E) {
    const float* src = g + (row0 + r) * rs + c;
    if (vec) {
      v = *reinterpret_cast<const float4*>(src);
    } else {
      v.x = src[0];
      v.y = c + 1 < E ? src[1] : 0.f;
      v.z = c + 2 < E ? src[2] : 0.f;
      v.w = c + 3 < E ? src[3] : 0.f;
    }
  }
  return v;
}

inline Strides strides_of(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }
inline bool vec_ok(const Tensor& x) {
  return x.size(3) % 4 == 0 && x.stride(0) % 4 == 0 && x.stride(1) % 4 == 0 && x.stride(2) % 4 == 0 &&
         reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
}

// Dynamic shared memory past 48 KiB needs the kernel's opt-in, once per (kernel, device).
template <auto Kernel> void allow_smem(size_t bytes, int device) {
  static std::atomic<uint64_t> done{0};
  uint64_t bit = uint64_t(1) << (device % 64);
  if (done.load(std::memory_order_relaxed) & bit) return;
  VT_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  done.fetch_or(bit, std::memory_order_relaxed);
}

}  // namespace vt::attention::f32
