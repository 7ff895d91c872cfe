#pragma once
// CPU elementwise loops over a TensorIterator. cpu_kernel(it, f) applies `f(in...) -> out` to every element;
// the argument and result types of `f` must be the dtypes of the iterator's operands (outputs first). Three
// inner loops: every operand contiguous (vectorisable), inputs that are broadcast scalars (the scalar is loaded
// once), and the general strided loop.
#include <tuple>
#include <type_traits>
#include <utility>

#include "cpu_vec_map.h"
#include "fn_traits.h"
#include "vt/core/tensor_iterator.h"

namespace vt::cpu {

using vt::fn_traits;

template <typename F, size_t... I>
inline void strided_loop(char** data, const int64_t* strides, int64_t n, F& f, std::index_sequence<I...>) {
  using traits = fn_traits<F>;
  using R = typename traits::result;
  char* out = data[0];
  char* in[sizeof...(I) + 1] = {data[I + 1]...};
  for (int64_t k = 0; k < n; ++k) {
    *reinterpret_cast<R*>(out + k * strides[0]) =
        f(*reinterpret_cast<std::tuple_element_t<I, typename traits::args>*>(in[I] + k * strides[I + 1])...);
  }
}

// Note [Functor copies]: the dense loops work on a local copy of the functor. Through the caller's reference,
// a parameter (leaky_relu's slope, clamp's bounds) was reloaded from memory after every store, since the output
// might alias it; the loop could neither keep it in a register nor vectorise (leaky_relu took 20x torch's time).
template <typename F, size_t... I>
__attribute__((always_inline)) inline void contiguous_loop(char** data, int64_t n, const F& f_ref,
                                                           std::index_sequence<I...>) {
  using traits = fn_traits<F>;
  using R = typename traits::result;
  const F f = f_ref;  // Note [Functor copies]
  R* __restrict__ out = reinterpret_cast<R*>(data[0]);
  std::tuple<std::tuple_element_t<I, typename traits::args>*...> in{
      reinterpret_cast<std::tuple_element_t<I, typename traits::args>*>(data[I + 1])...};
  for (int64_t k = 0; k < n; ++k) out[k] = f(std::get<I>(in)[k]...);
}

// Inputs either contiguous or stride 0: stride-0 values are loaded once, outside the loop.
template <typename F, size_t... I>
__attribute__((always_inline)) inline void broadcast_loop(char** data, const int64_t* strides, int64_t n,
                                                          const F& f_ref, std::index_sequence<I...>) {
  using traits = fn_traits<F>;
  using R = typename traits::result;
  const F f = f_ref;  // Note [Functor copies]
  R* __restrict__ out = reinterpret_cast<R*>(data[0]);
  auto pick = [&](auto* p, int64_t stride, int64_t k) { return stride == 0 ? *p : p[k]; };
  std::tuple<std::tuple_element_t<I, typename traits::args>*...> in{
      reinterpret_cast<std::tuple_element_t<I, typename traits::args>*>(data[I + 1])...};
  for (int64_t k = 0; k < n; ++k) out[k] = f(pick(std::get<I>(in), strides[I + 1], k)...);
}

// Note [Loop clones]: the core is compiled for the baseline x86-64 (SSE2), so the loops above vectorise at four
// floats. For functors of float32 operands (the bulk of the training traffic, and the casts to and from the
// 16-bit floats of mixed precision) they are compiled again for AVX2 (x86-64-v3) and AVX-512 (x86-64-v4), and
// the loader's ifunc picks the widest the CPU runs, once per process (GCC's target_clones): on cache-resident
// float32 operands add_ took 0.116 -> 0.068 ms per million, relu_ 0.115 -> 0.042, maximum 0.23 -> 0.12 (torch
// 0.052, 0.028, 0.077); a float32 -> bfloat16 cast of 4M elements 0.93 -> 0.30 ms (torch 0.29). The answers are
// the same in every clone: elementwise operations round per element whatever the vector width, and the core is
// compiled with -ffp-contract=off (Note [Kernel math flags]), so no clone fuses a multiply and an add that the
// baseline rounds twice. Other dtypes are not cloned: cloning every dtype's loops doubled the compile time of
// the kernel files (binary_ops.cpp 22 -> 41 s; with the float32 functors only, 22 s; with the 16-bit ones too,
// 26 s).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VT_LOOP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VT_LOOP_CLONES
#endif

// Cloned: functors whose operands are all float32, float16 or bfloat16 (float32 math, the 16-bit floats' math,
// which converts each operand to float32 and rounds the result back, and the casts between them, none of which
// the baseline can do in vector registers): bfloat16 a + b of 4M elements 1.16 -> 0.37 ms (torch 0.46).
// A bool input (where's condition, masked_fill's mask) joins them: the baseline's loop kept `c ? x : y` a branch,
// mispredicted on a random condition (where of 4M floats: 8.5 ms, as torch's).
template <typename T> constexpr bool kCloneType =
    std::is_same_v<T, float> || std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>;
template <typename T> constexpr bool kCloneInput = kCloneType<T> || std::is_same_v<T, bool>;
template <typename F, size_t... I> constexpr bool clone_loops(std::index_sequence<I...>) {
  using traits = fn_traits<F>;
  using R = typename traits::result;
  return kCloneType<R> && (... && kCloneInput<std::tuple_element_t<I, typename traits::args>>);
}

template <typename F, size_t... I>
VT_LOOP_CLONES void contiguous_loop_wide(char** data, int64_t n, const F& f, std::index_sequence<I...> idx) {
  contiguous_loop(data, n, f, idx);
}
template <typename F, size_t... I>
VT_LOOP_CLONES void broadcast_loop_wide(char** data, const int64_t* strides, int64_t n, const F& f,
                                        std::index_sequence<I...> idx) {
  broadcast_loop(data, strides, n, f, idx);
}

// Whether every input's inner stride is its element size (or, with allow_scalar, 0).
template <typename F, size_t... I>
inline bool inputs_dense(const int64_t* strides, bool allow_scalar, std::index_sequence<I...>) {
  using args = typename fn_traits<F>::args;
  return (... && (strides[I + 1] == int64_t(sizeof(std::tuple_element_t<I, args>)) ||
                  (allow_scalar && strides[I + 1] == 0)));
}

template <typename F>
void cpu_kernel(TensorIterator& it, F f, int64_t grain = kDefaultGrain) {
  constexpr int nin = fn_traits<F>::arity;
  constexpr int64_t out_size = sizeof(typename fn_traits<F>::result);
  constexpr auto idx = std::make_index_sequence<size_t(nin)>{};
  static_assert(nin < 8, "cpu_kernel supports up to 7 inputs");
  VT_INTERNAL_ASSERT(it.ntensors() == nin + 1, "cpu_kernel arity");
  const int nt = it.ntensors();
  it.for_each(
      [&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
        char* ptrs[8];  // operands: at most 7 inputs
        bool contiguous = strides[0] == out_size;
        bool broadcastable = contiguous && inputs_dense<F>(strides, true, idx);
        contiguous = contiguous && inputs_dense<F>(strides, false, idx);
        for (int64_t j = 0; j < n1; ++j) {
          for (int i = 0; i < nt; ++i) ptrs[i] = data[i] + j * strides[nt + i];
          if constexpr (clone_loops<F>(idx)) {  // Note [Loop clones]
            if (contiguous) contiguous_loop_wide(ptrs, n0, f, idx);
            else if (broadcastable) broadcast_loop_wide(ptrs, strides, n0, f, idx);
            else strided_loop(ptrs, strides, n0, f, idx);
          } else {
            if (contiguous) contiguous_loop(ptrs, n0, f, idx);
            else if (broadcastable) broadcast_loop(ptrs, strides, n0, f, idx);
            else strided_loop(ptrs, strides, n0, f, idx);
          }
        }
      },
      grain);
}

}  // namespace vt::cpu

namespace vt::cpu {
// The CPU backend of the shared op implementations (binary_impl.h, unary_impl.h).
struct CpuLaunch {
  static constexpr bool kHost = true;  // kernels may read operand values on the host (e.g. zero divisors)
  template <typename Op> static void kernel(TensorIterator& it, const Op& op) {
    if constexpr (ArrayKernel<Op>::kHas) ArrayKernel<Op>::run(it, op);  // vectorised exp, tanh... (cpu_vec_map.h)
    else cpu_kernel(it, op);
  }
};
}  // namespace vt::cpu
