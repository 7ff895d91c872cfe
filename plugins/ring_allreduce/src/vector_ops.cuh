// Vector loads, stores and reductions of the collectives: a "vector" is 16 bytes of elements (CUTLASS's
// AlignedArray: 4 fp32 or 8 fp16/bf16) moved with one 128-bit access, or a single element where a buffer is not
// 16-byte aligned (the kVec = 1 instantiation). Reductions convert to fp32 arrays (NumericArrayConverter),
// combine there and round once on store, so fp16/bf16 sums are as exact as one rounding per stored partial.
//
// Loads of memory other ranks write during the kernel bypass L1 (ld.global.cg): L1 is not coherent with peer
// writes, and a stale line would be a silent wrong answer. Every buffer a collective touches is read that way.
#pragma once

#include <type_traits>

#include <cutlass/array.h>
#include <cutlass/numeric_conversion.h>
#include <cutlass/numeric_types.h>

namespace ring {

enum class RedOp : int { Sum = 0, Avg = 1, Max = 2, Min = 3 };

template <typename T, int kVec>
struct VecOps {
  using Frag = cutlass::AlignedArray<T, kVec, kVec * int(sizeof(T))>;  // the kVec elements of one access
  using Acc = cutlass::Array<float, kVec>;
  static constexpr int kBytes = kVec * int(sizeof(T));

  __device__ static Frag load(const T* p) {
    Frag f;
    if constexpr (kBytes == 16) {
      *reinterpret_cast<uint4*>(&f) = __ldcg(reinterpret_cast<const uint4*>(p));
    } else if constexpr (kBytes == 4) {
      *reinterpret_cast<unsigned*>(&f) = __ldcg(reinterpret_cast<const unsigned*>(p));
    } else {
      static_assert(kBytes == 2, "16-byte vectors or single 2/4-byte elements");
      *reinterpret_cast<unsigned short*>(&f) = __ldcg(reinterpret_cast<const unsigned short*>(p));
    }
    return f;
  }

  __device__ static void store(T* p, const Frag& f) { *reinterpret_cast<Frag*>(p) = f; }

  __device__ static Acc widen(const Frag& f) {
    if constexpr (std::is_same_v<T, float>) return f;
    else return cutlass::NumericArrayConverter<float, T, kVec>()(f);
  }

  __device__ static Frag narrow(const Acc& a) {
    Frag f;
    if constexpr (std::is_same_v<T, float>) static_cast<cutlass::Array<T, kVec>&>(f) = a;
    else static_cast<cutlass::Array<T, kVec>&>(f) = cutlass::NumericArrayConverter<T, float, kVec>()(a);
    return f;
  }

  __device__ static void combine(Acc& a, const Acc& b, RedOp op) {
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      a[i] = op == RedOp::Max ? fmaxf(a[i], b[i]) : op == RedOp::Min ? fminf(a[i], b[i]) : a[i] + b[i];
    }
  }

  __device__ static void scale(Acc& a, float s) {
#pragma unroll
    for (int i = 0; i < kVec; ++i) a[i] *= s;
  }
};

}  // namespace ring
