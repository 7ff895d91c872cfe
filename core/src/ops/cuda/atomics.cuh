#pragma once
// Atomic read-modify-write of one element of any dtype, for the scatters (index_put_ with accumulate, the
// scatter family). Native atomics serve float/double/int32/int64 sums; everything else is a compare-and-swap
// loop on the aligned word that holds the element (32 bits for elements of 1, 2 and 4 bytes, 64 for 8).
//
// Note [Atomic word padding]
// The 32-bit word around a 1- or 2-byte element can reach up to 3 bytes past the tensor's last byte (never
// written: the CAS puts the neighbours' bytes back as they were). That stays inside the allocation because
// every device allocation is a multiple of 4 bytes: the caching allocator's blocks are multiples of 512, and
// its pass-through mode (for compute-sanitizer) rounds each request up to 4, so memcheck does not flag the
// word; memory from other libraries (DLPack) comes from allocators that round further.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "vt/core/dtype.h"

namespace vt::cuda {

// *addr = f(*addr, v), atomically. f is a __device__ functor on S.
template <typename S, typename F> __device__ void atomic_update(S* addr, S v, F f) {
  if constexpr (sizeof(S) == 8) {
    auto word = reinterpret_cast<unsigned long long*>(addr);
    unsigned long long old = *word, assumed;
    do {
      assumed = old;
      S cur, next;
      memcpy(&cur, &assumed, 8);
      next = f(cur, v);
      unsigned long long bits;
      memcpy(&bits, &next, 8);
      old = atomicCAS(word, assumed, bits);
    } while (old != assumed);
  } else {
    auto word = reinterpret_cast<unsigned int*>(reinterpret_cast<uintptr_t>(addr) & ~uintptr_t(3));
    const unsigned shift = unsigned(reinterpret_cast<uintptr_t>(addr) & 3u) * 8u;
    const unsigned mask = sizeof(S) == 4 ? 0xffffffffu : sizeof(S) == 2 ? 0xffffu : 0xffu;
    unsigned old = *word, assumed;
    do {
      assumed = old;
      S cur;
      unsigned bits = (assumed >> shift) & mask;
      memcpy(&cur, &bits, sizeof(S));
      S next = f(cur, v);
      unsigned nb = 0;
      memcpy(&nb, &next, sizeof(S));
      old = atomicCAS(word, assumed, (assumed & ~(mask << shift)) | (nb << shift));
    } while (old != assumed);
  }
}

struct AtomicPlus {
  template <typename S> __device__ S operator()(S a, S b) const { return S(opmath_t<S>(a) + opmath_t<S>(b)); }
};

// *addr += v: native atomics where CUDA has them.
template <typename S> __device__ void atomic_add(S* addr, S v) {
  if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double> || std::is_same_v<S, int32_t>) {
    atomicAdd(addr, v);
  } else if constexpr (std::is_same_v<S, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(v));
  } else {
    atomic_update(addr, v, AtomicPlus{});
  }
}

}  // namespace vt::cuda
