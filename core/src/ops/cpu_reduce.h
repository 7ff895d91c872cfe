#pragma once
// The CPU backend of the shared reductions (reduce_impl.h): folding an input into a wide accumulator through a
// reduction TensorIterator, and lane loops.
#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "lanes.h"
#include "vt/core/parallel.h"
#include "vt/core/tensor_iterator.h"

namespace vt::cpu {

// Folds a contiguous run of n elements with four independent accumulators (which breaks the add latency
// chain) and combines them at the end; `combine` is associative for every reduction here.
template <typename AccT, typename S, typename C> AccT fold_run(const S* p, int64_t n, AccT init, const C& combine) {
  AccT a[4] = {init, init, init, init};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int l = 0; l < 4; ++l) a[l] = combine(a[l], AccT(opmath_t<S>(p[k + l])));
  for (; k < n; ++k) a[0] = combine(a[0], AccT(opmath_t<S>(p[k])));
  return combine(combine(a[0], a[1]), combine(a[2], a[3]));
}

// Full reduction of a contiguous tensor, in parallel chunks whose partial results combine in chunk order.
template <typename AccT, typename S, typename C> AccT fold_contiguous(const Tensor& self, AccT init, const C& combine) {
  const S* p = self.data<S>();
  int64_t n = self.numel();
  std::vector<std::pair<int64_t, AccT>> parts;
  std::mutex mu;
  parallel_for(0, n, kDefaultGrain, [&](int64_t b, int64_t e) {
    AccT r = fold_run<AccT>(p + b, e - b, init, combine);
    std::lock_guard<std::mutex> g(mu);
    parts.emplace_back(b, r);
  });
  std::sort(parts.begin(), parts.end(), [](auto& x, auto& y) { return x.first < y.first; });
  AccT r = init;
  for (auto& [b, v] : parts) r = combine(r, v);
  return r;
}

struct CpuReduce {
  static constexpr bool kStoresInputDtype = false;  // accumulates in the output's memory: always AccT
  // it: operand 0 the accumulator (AccT, stride 0 on reduced dims), operand 1 the input (S).
  // MayWiden (Note [Reduce output dtypes]) is moot here: the result is always in AccT.
  template <typename S, bool MayWiden, typename AccT, typename C>
  static void reduce(TensorIterator& it, AccT init, const C& combine) {
    const Tensor& acc = it.operand(0);
    const Tensor& self = it.operand(1);
    if (acc.numel() == 1 && self.is_contiguous()) {
      *acc.data<AccT>() = fold_contiguous<AccT, S>(self, init, combine);
      return;
    }
    std::fill(acc.data<AccT>(), acc.data<AccT>() + acc.numel(), init);
    it.reduce_for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
      for (int64_t j = 0; j < n1; ++j) {
        char* out = data[0] + j * s[2];
        const char* in = data[1] + j * s[3];
        if (s[0] == 0) {  // reducing along the inner dim: keep the accumulator in a register
          AccT a = *reinterpret_cast<AccT*>(out);
          for (int64_t k = 0; k < n0; ++k) a = combine(a, AccT(opmath_t<S>(*reinterpret_cast<const S*>(in + k * s[1]))));
          *reinterpret_cast<AccT*>(out) = a;
        } else {
          for (int64_t k = 0; k < n0; ++k) {
            AccT& o = *reinterpret_cast<AccT*>(out + k * s[0]);
            o = combine(o, AccT(opmath_t<S>(*reinterpret_cast<const S*>(in + k * s[1]))));
          }
        }
      }
    });
  }
  template <typename F>
  static void lanes(const std::vector<Tensor>& tensors, int noutputs, int64_t dim, int64_t n, const F& f) {
    lane_apply(tensors, noutputs, dim, n, f);
  }
};

}  // namespace vt::cpu
