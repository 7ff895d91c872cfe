#pragma once
// The CPU backend of the shared reductions (reduce_impl.h): folding an input into a wide accumulator through a
// reduction TensorIterator, and lane loops.
#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "cpu_float_rows.h"
#include "lanes.h"
#include "reduce_functors.h"
#include "vt/core/cpu_vec_math.h"
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

// Note [Vector sums]: a floating sum (float32 or float64 input, float64 accumulator) of a contiguous run goes to
// cpu_math's vector sum, compiled for the CPU's instruction set, and a sum along an outer dim adds whole
// contiguous rows into the accumulators with cpu_math::accumulate: the generic loops here are compiled for the
// baseline and fold one element at a time (a row sum took 18x torch's time).
template <typename S, typename AccT, typename C>
constexpr bool kVectorSum = std::is_same_v<C, reduce::SumC> && std::is_same_v<AccT, double> &&
                             (std::is_same_v<S, float> || std::is_same_v<S, double>);

// float16 and bfloat16 runs take the float32 vector sum through float32 chunks (Note [16-bit rows in float]).
template <typename S, typename AccT, typename C>
constexpr bool kHalfSum = std::is_same_v<C, reduce::SumC> && std::is_same_v<AccT, double> &&
                          (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>);

// Note [Vector extremes]: amax/amin/max()/min() of float32 (a float64 accumulator, NaN winning) take the vector
// passes too: a dense run's extreme is cpu_math::row_extreme's (NaN if the run has one), and
// an outer dim folds whole rows with cpu_math::accumulate_extreme(_rows). One element at a time through the float64
// selects they took 9-25x torch's time ([4096, 1024] along rows: 2.7 ms against 0.11); on one devbox thread now
// along rows 0.27 ms (torch 0.25), along columns 1.74 (1.78), the whole tensor 0.25 (0.45).
template <typename C> struct VectorPick : std::false_type {};
template <bool IsMax> struct VectorPick<reduce::PickC<IsMax>> : std::true_type {
  static constexpr bool is_max = IsMax;
};
template <typename S, typename AccT, typename C>
constexpr bool kVectorPick = VectorPick<C>::value && std::is_same_v<S, float> && std::is_same_v<AccT, double>;

template <typename AccT, typename S, typename C> AccT fold_dense(const S* p, int64_t n, AccT init, const C& combine) {
  if constexpr (kVectorPick<S, AccT, C>) {
    return n > 0 ? combine(init, AccT(cpu_math::row_extreme(p, n, VectorPick<C>::is_max))) : init;
  } else if constexpr (kVectorSum<S, AccT, C>) {
    return init + cpu_math::sum(p, n);
  } else if constexpr (kHalfSum<S, AccT, C> && std::is_same_v<S, BFloat16>) {
    return init + cpu_math::sum(p, n);  // widened in the register (load_doubles)
  } else if constexpr (kHalfSum<S, AccT, C>) {
    return init + fold_floats(p, n, [](const float* f, int64_t m) { return cpu_math::sum_from_16bit(f, m); });
  } else {
    return fold_run<AccT>(p, n, init, combine);
  }
}

// Full reduction of a contiguous tensor, in parallel chunks whose partial results combine in chunk order.
template <typename AccT, typename S, typename C> AccT fold_contiguous(const Tensor& self, AccT init, const C& combine) {
  const S* p = self.data<S>();
  int64_t n = self.numel();
  if (n <= kDefaultGrain) return combine(init, fold_dense<AccT>(p, n, init, combine));  // one chunk, as below
  std::vector<std::pair<int64_t, AccT>> parts;
  std::mutex mu;
  parallel_for(0, n, kDefaultGrain, [&](int64_t b, int64_t e) {
    AccT r = fold_dense<AccT>(p + b, e - b, init, combine);
    std::lock_guard<std::mutex> g(mu);
    parts.emplace_back(b, r);
  });
  std::sort(parts.begin(), parts.end(), [](auto& x, auto& y) { return x.first < y.first; });
  AccT r = init;
  for (auto& [b, v] : parts) r = combine(r, v);
  return r;
}

// Note [Leading-dim sums]: a sum over the leading dims of a contiguous input (a bias or position-embedding
// gradient: [B, T, D] summed over B) has its reduced dim outermost, which reduce_for_each cannot split (each
// output would be written by several threads), so it ran on one thread. Viewed as rows [R, N] folded into one
// output row, the outputs split instead: each thread adds every row's slice of its columns into its slice of
// the accumulators, eight rows at a time (cpu_math::accumulate_rows). A row of fewer than kNarrowSumColumns
// outputs (the blocks' partials then stay within 4 MiB) splits the rows instead, into a number of blocks that
// depends on the shape alone; each block sums into its own row of partials and the partials are added in block
// order, so a result never depends on the thread count. Narrow rows were the first reason (a bias gradient of 192
// columns gave two threads three slices of 64); wide ones gain too, as each thread then reads one contiguous run
// of rows rather than part of every row: a float32 [4096, 1024] sum(0) went from 1.76x torch's time to 0.52x on
// the 2-core devbox (the column split below stays for rows wider than that, or fewer than two blocks).
// The number of leading rows R when self (contiguous) reduces exactly over its leading dims into acc, else 0.
inline int64_t leading_rows(const Tensor& acc, const Tensor& self) {
  if (!self.is_contiguous() || acc.numel() <= 1 || acc.dim() != self.dim()) return 0;
  int64_t d = 0, rows = 1;
  for (; d < self.dim() && acc.size(d) == 1; ++d) rows *= self.size(d);
  for (int64_t e = d; e < self.dim(); ++e)
    if (acc.size(e) != self.size(e)) return 0;
  return rows;
}
// Note [16-bit leading rows]: a float16 or bfloat16 amax or amin over the leading dims converts blocks of rows
// (8 rows x up to 2048 columns: 64 KiB of float32) with cpu_math::to_float and folds them with the float32
// lanes; the 16-bit path, element by element through the generic loops, ran 7-19x torch's time ([4096, 1024] on
// two devbox threads: bfloat16 amax(0) 4.64 ms -> 0.91, torch 0.44; float16 6.08 -> 1.43, torch 0.32). An
// extreme has no rounding, so the blocking changes no result. float16 sums over the leading dims take the same
// blocks, bfloat16 ones their own lanes (Note [16-bit leading sums]). fold(c0, rows_data, m, stride, w) folds m
// rows of w values starting at column c0; float32 inputs reach it unconverted, in one call.
template <typename S, typename Fold>
void fold_leading_rows(const S* x, int64_t rows, int64_t stride, int64_t n, const Fold& fold) {
  if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>) {
    constexpr int64_t kRows = 8, kCols = 2048;
    thread_local std::vector<float> buf;
    buf.resize(size_t(kRows * std::min(n, kCols)));
    for (int64_t c0 = 0; c0 < n; c0 += kCols) {
      const int64_t w = std::min(kCols, n - c0);
      for (int64_t r = 0; r < rows; r += kRows) {
        const int64_t m = std::min(kRows, rows - r);
        for (int64_t i = 0; i < m; ++i) cpu_math::to_float(x + (r + i) * stride + c0, buf.data() + i * w, w);
        fold(c0, static_cast<const float*>(buf.data()), m, w, w);
      }
    }
  } else {
    fold(int64_t(0), x, rows, stride, n);
  }
}

// acc[0, w) += rows of w values of x (row stride `stride`); float16 converted eight rows at a time and added in a
// float32 tree (Note [16-bit leading sums]).
template <typename S> void accumulate_leading(double* acc, const S* x, int64_t rows, int64_t stride, int64_t w) {
  if constexpr (std::is_same_v<S, Half>) {
    fold_leading_rows(x, rows, stride, w, [&](int64_t c0, const float* r, int64_t m, int64_t rs, int64_t cw) {
      cpu_math::accumulate_rows_in_float(acc + c0, r, m, rs, cw);
    });
  } else {
    cpu_math::accumulate_rows(acc, x, rows, stride, w);
  }
}

inline constexpr int64_t kNarrowSumColumns = 32768, kSumRowBlock = 512, kMaxSumRowBlocks = 16;
template <typename S> void sum_leading_rows(double* acc, const S* x, int64_t rows, int64_t n) {
  const int64_t blocks = n < kNarrowSumColumns ? std::min(kMaxSumRowBlocks, rows / kSumRowBlock) : 1;
  if (blocks <= 1) {
    const int64_t grain = std::max<int64_t>(64, kDefaultGrain / std::max<int64_t>(rows, 1));
    parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
      std::fill(acc + b, acc + e, 0.0);
      accumulate_leading(acc + b, x + b, rows, n, e - b);
    });
    return;
  }
  std::vector<double> partial(static_cast<size_t>(blocks * n), 0.0);
  parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t r0 = rows * blk / blocks, r1 = rows * (blk + 1) / blocks;
      accumulate_leading(partial.data() + blk * n, x + r0 * n, r1 - r0, n, n);
    }
  });
  std::fill(acc, acc + n, 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t j = 0; j < n; ++j) acc[j] += partial[size_t(blk * n + j)];
}

// amax/amin over the leading dims (Note [Vector extremes]): each thread owns one slice of the outputs (as wide as
// it can be: narrow slices walk every row's page again) and folds every row's slice into it, eight rows a pass (the
// result does not depend on the thread count: a max has no rounding).
// float16 and bfloat16 through Note [16-bit leading rows].
template <typename S>
void extreme_leading_rows(double* acc, const S* x, int64_t rows, int64_t n, double init, bool is_max) {
  const int64_t grain = std::max<int64_t>({64, kDefaultGrain / std::max<int64_t>(rows, 1), n / num_threads() + 1});
  parallel_for(0, n, grain, [&](int64_t b, int64_t e) {
    std::fill(acc + b, acc + e, init);
    fold_leading_rows(x + b, rows, n, e - b, [&](int64_t c0, const float* q, int64_t k, int64_t st, int64_t w) {
      cpu_math::accumulate_extreme_rows(acc + b + c0, q, k, st, w, is_max);
    });
  });
}
// The extremes extreme_leading_rows takes: float32 and, converted, the 16-bit types.
template <typename S, typename AccT, typename C>
constexpr bool kLeadingPick = VectorPick<C>::value && std::is_same_v<AccT, double> &&
                              (std::is_same_v<S, float> || std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>);

// The min/max lanes that take cpu_math::arg_extreme: float32, float16 and bfloat16 ones.
template <typename F> struct VectorMinMax : std::false_type {};
template <bool IsMax, typename S>
  requires std::is_same_v<S, float> || std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>
struct VectorMinMax<reduce::MinMaxLane<IsMax, S>> : std::true_type {
  using type = S;
  static constexpr bool is_max = IsMax;
};

// The cumsum lanes that take Note [Interleaved scans].
template <typename F> constexpr bool kInterleavedScan = false;
template <typename S>
  requires std::is_same_v<S, float> || std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>
constexpr bool kInterleavedScan<reduce::CumulativeLane<true, S>> = true;

struct CpuReduce {
  static constexpr bool kStoresInputDtype = false;  // accumulates in the output's memory: always AccT
  static constexpr bool kFoldsOnHost = true;         // Note [Host full folds]
  template <typename S, typename AccT, typename C> static AccT fold_all(const Tensor& self, AccT init, const C& c) {
    return fold_contiguous<AccT, S>(self, init, c);
  }
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
    if constexpr (kVectorSum<S, AccT, C> || kHalfSum<S, AccT, C>) {
      if (const int64_t rows = leading_rows(acc, self); rows > 1 && acc.is_contiguous()) {  // Note [Leading-dim sums]
        sum_leading_rows(acc.data<AccT>(), self.data<S>(), rows, acc.numel());
        return;
      }
    }
    if constexpr (kLeadingPick<S, AccT, C>) {
      if (const int64_t rows = leading_rows(acc, self); rows > 1 && acc.is_contiguous()) {  // Note [Vector extremes]
        extreme_leading_rows(acc.data<AccT>(), self.data<S>(), rows, acc.numel(), init, VectorPick<C>::is_max);
        return;
      }
    }
    std::fill(acc.data<AccT>(), acc.data<AccT>() + acc.numel(), init);
    it.reduce_for_each([&](char** data, const int64_t* s, int64_t n0, int64_t n1) {
      if constexpr (kVectorSum<S, AccT, C> || (kHalfSum<S, AccT, C> && std::is_same_v<S, BFloat16>)) {
        if (s[0] == 0 && s[1] == int64_t(sizeof(S)) && s[2] % int64_t(sizeof(AccT)) == 0 &&
            s[3] % int64_t(sizeof(S)) == 0) {  // rows along a dense inner dim, all in one call (Note [Vector sums])
          cpu_math::sum_rows(reinterpret_cast<AccT*>(data[0]), s[2] / int64_t(sizeof(AccT)),
                             reinterpret_cast<const S*>(data[1]), n1, s[3] / int64_t(sizeof(S)), n0);
          return;
        }
      }
      for (int64_t j = 0; j < n1; ++j) {
        char* out = data[0] + j * s[2];
        const char* in = data[1] + j * s[3];
        if (s[0] == 0 && s[1] == int64_t(sizeof(S))) {  // along a dense inner dim (Note [Vector sums])
          AccT& a = *reinterpret_cast<AccT*>(out);
          a = combine(a, fold_dense<AccT>(reinterpret_cast<const S*>(in), n0, init, combine));
        } else if (kVectorSum<S, AccT, C> && s[0] == int64_t(sizeof(AccT)) && s[1] == int64_t(sizeof(S))) {
          if constexpr (kVectorSum<S, AccT, C>)  // a dense run of outputs, one input row (Note [Vector sums])
            cpu_math::accumulate(reinterpret_cast<AccT*>(out), reinterpret_cast<const S*>(in), n0);
        } else if (kVectorPick<S, AccT, C> && s[0] == int64_t(sizeof(AccT)) && s[1] == int64_t(sizeof(S))) {
          if constexpr (kVectorPick<S, AccT, C>)  // Note [Vector extremes]
            cpu_math::accumulate_extreme(reinterpret_cast<AccT*>(out), reinterpret_cast<const S*>(in), n0,
                                         VectorPick<C>::is_max);
        } else if (s[0] == 0) {  // reducing along the inner dim: keep the accumulator in a register
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
    if constexpr (VectorMinMax<F>::value) {
      using S = typename VectorMinMax<F>::type;
      if (across_rows<S>(tensors, dim, n, VectorMinMax<F>::is_max)) return;
      // dense float32 lanes (16-bit ones through a float32 buffer, exactly): cpu_math's vector pass (values,
      // indices, input as in MinMaxLane)
      lane_apply(tensors, noutputs, dim, n, [&](char* const* p, const int64_t* st, int64_t len) {
        if (st[2] != int64_t(sizeof(S)) || len < 1) return f(p, st, len);
        const S* x = reinterpret_cast<const S*>(p[2]);
        thread_local std::vector<float> scratch;  // 16-bit lanes only (Note [16-bit rows in float])
        if constexpr (!std::is_same_v<S, float>) scratch.resize(size_t(len));
        const int64_t i = cpu_math::arg_extreme(float_row(x, len, scratch.data()), len, VectorMinMax<F>::is_max);
        *reinterpret_cast<S*>(p[0]) = x[i];
        *reinterpret_cast<int64_t*>(p[1]) = i;
      });
    } else if constexpr (kInterleavedScan<F>) {
      const Tensor &out = tensors[0], &in = tensors[1];
      if (n > 0 && dim == in.dim() - 1 && in.is_contiguous() && out.is_contiguous())
        return cumsum_rows<typename F::scalar_type>(out, in, n);
      lane_apply(tensors, noutputs, dim, n, f);
    } else {
      lane_apply(tensors, noutputs, dim, n, f);
    }
  }

 private:
  // Note [Arg-extremes across rows]: max/min over a dim that is not the innermost, of a contiguous input
  // into contiguous outputs (a pooling's windows, x.max(0)): the inner elements of each outer index are lanes
  // that take one row at a time (cpu_math::arg_extreme_step), instead of one strided walk per output element
  // (18 ms for [4096, 1024].max(0) on the devbox). float16 and bfloat16 rows are converted block by block
  // (Note [16-bit rows in float]) and each value is then read back from the input at its index, bit for bit
  // (bfloat16 [4096, 1024].max(0) on two threads: 9.4 ms -> 0.85, torch 4.9). Returns false where it does not
  // apply.
  template <typename S> static bool across_rows(const std::vector<Tensor>& t, int64_t dim, int64_t n, bool is_max) {
    const Tensor &values = t[0], &indices = t[1], &in = t[2];
    if (dim == in.dim() - 1 || n < 1 || !in.is_contiguous() || !values.is_contiguous() || !indices.is_contiguous())
      return false;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= in.size(d);
    for (int64_t d = dim + 1; d < in.dim(); ++d) inner *= in.size(d);
    if (inner < 2) return false;
    const S* x = in.data<S>();
    S* best = values.data<S>();
    int64_t* idx = indices.data<int64_t>();
    constexpr int64_t kBlock = 2048;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    parallel_for(0, outer * blocks, std::max<int64_t>(1, kDefaultGrain / (n * std::min(inner, kBlock))),
                 [&](int64_t b, int64_t e) {
      for (int64_t task = b; task < e; ++task) {
        const int64_t o = task / blocks, i0 = (task % blocks) * kBlock, m = std::min(kBlock, inner - i0);
        const S* xo = x + o * n * inner + i0;
        S* bo = best + o * inner + i0;
        int64_t* io = idx + o * inner + i0;
        std::fill(io, io + m, int64_t(0));
        if constexpr (std::is_same_v<S, float>) {
          std::copy(xo, xo + m, bo);
          for (int64_t k = 1; k < n; ++k) cpu_math::arg_extreme_step(bo, io, xo + k * inner, m, k, is_max);
        } else {
          thread_local std::vector<float> conv;  // the block's best values, then one row, in float32
          conv.resize(size_t(2 * kBlock));
          float *bf = conv.data(), *row = bf + kBlock;
          cpu_math::to_float(xo, bf, m);
          for (int64_t k = 1; k < n; ++k) {
            cpu_math::to_float(xo + k * inner, row, m);
            cpu_math::arg_extreme_step(bf, io, row, m, k, is_max);
          }
          for (int64_t j = 0; j < m; ++j) bo[j] = xo[io[j] * inner + j];
        }
      }
    });
    return true;
  }
  // Note [Interleaved scans]: a float32, float16 or bfloat16 cumsum along dense rows, four rows at a time. Each
  // row's running sum is the same float64 chain as CumulativeLane's (so the same results: a 16-bit output is
  // the float64 sum rounded to float, then to 16 bits), but one chain is bound by its add latency; four
  // independent ones fill the adder (4M float32 elements: 4.0 ms one row at a time, torch 2.0).
  template <typename S> static void cumsum_rows(const Tensor& out, const Tensor& in, int64_t n) {
    const int64_t rows = in.numel() / n;
    const S* x = in.data<S>();
    S* y = out.data<S>();
    auto wide = [](S v) { return double(float(v)); };
    auto narrow = [](double a) { return S(float(a)); };
    parallel_for(0, rows, std::max<int64_t>(1, kDefaultGrain / n), [&](int64_t lo, int64_t hi) {
      int64_t r = lo;
      for (; r + 4 <= hi; r += 4) {
        const S *x0 = x + r * n, *x1 = x0 + n, *x2 = x1 + n, *x3 = x2 + n;
        S *y0 = y + r * n, *y1 = y0 + n, *y2 = y1 + n, *y3 = y2 + n;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (int64_t k = 0; k < n; ++k) {
          a0 += wide(x0[k]), a1 += wide(x1[k]), a2 += wide(x2[k]), a3 += wide(x3[k]);
          y0[k] = narrow(a0), y1[k] = narrow(a1), y2[k] = narrow(a2), y3[k] = narrow(a3);
        }
      }
      for (; r < hi; ++r) {
        double a = 0;
        for (int64_t k = 0; k < n; ++k) y[r * n + k] = narrow(a += wide(x[r * n + k]));
      }
    });
  }
};

}  // namespace vt::cpu
