// CPU kernels of the fused cross entropy (_cross_entropy_rows and its backward; the CUDA ones and the op's
// contract are in cuda/cross_entropy.cu). Rows run in parallel through the float32 lanes of cpu_vec_math (16-bit
// rows converted first, Note [16-bit rows in float]; float64 rows in plain double loops); the row losses are
// then summed in float64 in row order, so the result does not depend on the thread count. A target outside
// [0, C) other than ignore_index raises torch's IndexError before anything is computed.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_float_rows.h"
#include "cross_entropy_args.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::cpu::xent {
namespace {

using namespace vt::xent;

struct RowArgs {
  int64_t rows, classes, row_stride, ignore;
  const int64_t* target;
};

bool ignored(const RowArgs& a, int64_t r) { return a.target[r] == a.ignore; }

int64_t grain(int64_t classes) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(classes, 1)); }

// (max, log of the sum of exp(x - max)) of a row: Note [Cross entropy keeps the max apart]. A +inf makes the
// row's stats NaN (torch's log-softmax: inf - inf), a row of only -inf has a log sum of -inf (and NaN losses).
template <typename A> bool infinite_max(A m, A& shift, A& logs) {
  if (!(m == std::numeric_limits<A>::infinity())) return false;
  shift = m, logs = std::numeric_limits<A>::quiet_NaN();
  return true;
}
void float_stats(const float* row, int64_t n, float& shift, float& logs) {
  const float m = cpu_math::row_max(row, n, 1.0f);  // skips NaN, which then makes the sum NaN
  if (infinite_max(m, shift, logs)) return;
  shift = std::isinf(m) ? 0.0f : m;
  logs = std::log(cpu_math::sum_exp(row, n, 1.0f, shift));
}
void double_stats(const double* row, int64_t n, double& shift, double& logs) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) m = row[j] > m ? row[j] : m;  // skips NaN, as row_max
  if (infinite_max(m, shift, logs)) return;
  shift = std::isinf(m) ? 0.0 : m;
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(row[j] - shift);
  logs = std::log(s);
}

// Row losses (0 where ignored) and stats.
template <typename T, typename A> void forward_rows(const T* x, const RowArgs& a, A* loss, A* stats) {
  parallel_for(0, a.rows, grain(a.classes), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch = row_scratch<T>(1, a.classes);
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * a.row_stride;
      A shift, logs;
      if constexpr (std::is_same_v<T, double>) double_stats(xr, a.classes, shift, logs);
      else float_stats(float_row(xr, a.classes, scratch.data()), a.classes, shift, logs);
      stats[2 * r] = shift, stats[2 * r + 1] = logs;
      loss[r] = ignored(a, r) ? A(0) : (shift - A(opmath_t<T>(xr[a.target[r]]))) + logs;
    }
  });
}

// d/dx = scale_r * (exp((x - max) - log sum) - [j == target]), 0 on ignored rows.
template <typename T, typename A>
void backward_rows(const T* x, const RowArgs& a, const A* stats, const T* grad, A count, int64_t reduction, T* gx) {
  parallel_for(0, a.rows, grain(a.classes), [&](int64_t lo, int64_t hi) {
    std::vector<A> y(size_t(a.classes));
    for (int64_t r = lo; r < hi; ++r) {
      T* out = gx + r * a.classes;
      if (ignored(a, r)) {
        std::fill(out, out + a.classes, T(0));
        continue;
      }
      const A g = reduction == 0 ? A(opmath_t<T>(grad[r])) : A(opmath_t<T>(grad[0]));
      const A scale = reduction == 1 ? g / count : g;
      const A shift = stats[2 * r], logs = stats[2 * r + 1];
      const T* xr = x + r * a.row_stride;
      for (int64_t j = 0; j < a.classes; ++j) y[size_t(j)] = (A(opmath_t<T>(xr[j])) - shift) - logs;
      if constexpr (std::is_same_v<A, float>) cpu_math::exp(y.data(), y.data(), a.classes);
      else for (A& v : y) v = std::exp(v);
      y[size_t(a.target[r])] -= A(1);
      for (int64_t j = 0; j < a.classes; ++j) out[j] = T(opmath_t<T>(scale * y[size_t(j)]));
    }
  });
}

// check_targets: the forward's; the backward reads targets the forward already accepted.
RowArgs row_args(const Tensor& input, const Tensor& target, int64_t ignore_index, bool check_targets) {
  RowArgs a{input.size(0), input.size(1), input.stride(0), ignore_index, target.data<int64_t>()};
  for (int64_t r = 0; check_targets && r < a.rows; ++r) {
    const int64_t t = a.target[r];
    VT_CHECK_INDEX(t == ignore_index || (t >= 0 && t < a.classes), "Target ", t, " is out of bounds.");
  }
  return a;
}

ScalarType acc_dtype(const Tensor& input) {
  return input.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
}

std::tuple<Tensor, Tensor, Tensor> ce_rows_cpu(const Tensor& input_in, const Tensor& target_in, int64_t ignore_index,
                                               int64_t reduction) {
  check_rows_args(input_in, target_in, reduction);
  const Tensor input = class_rows(input_in), target = dense_targets(target_in);
  const RowArgs a = row_args(input, target, ignore_index, true);
  const ScalarType acc = acc_dtype(input);
  Tensor stats = empty_tensor(DimVector{a.rows, 2}, acc, input.device());
  Tensor rows = empty_tensor(DimVector{a.rows}, acc, input.device());
  Tensor loss = empty_tensor(reduction == 0 ? DimVector{a.rows} : DimVector{}, input.dtype(), input.device());
  double total = 0, count = 0;
  VT_DISPATCH_FLOATING(input.dtype(), "cross_entropy", [&] {
    using A = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    forward_rows<scalar_t, A>(input.data<scalar_t>(), a, rows.data<A>(), stats.data<A>());
    const A* rl = rows.data<A>();
    for (int64_t r = 0; r < a.rows; ++r) total += double(rl[r]), count += ignored(a, r) ? 0.0 : 1.0;
    if (reduction == 0) {
      for (int64_t r = 0; r < a.rows; ++r) loss.data<scalar_t>()[r] = scalar_t(rl[r]);
    } else {  // a mean over no rows is 0 / 0, as torch's
      *loss.data<scalar_t>() = scalar_t(A(reduction == 1 ? total / count : total));
    }
  });
  Tensor n = empty_tensor(DimVector{}, acc, input.device());
  ops::fill_(n, Scalar(count));
  return {loss, stats, n};
}

Tensor ce_rows_backward_cpu(const Tensor& grad_in, const Tensor& input_in, const Tensor& target_in,
                            const Tensor& stats, const Tensor& count, int64_t ignore_index, int64_t reduction) {
  const Tensor input = class_rows(input_in), target = dense_targets(target_in);
  const Tensor grad = grad_in.dtype() == input.dtype() ? ops::contiguous(grad_in) : ops::to_dtype(grad_in, input.dtype());
  const RowArgs a = row_args(input, target, ignore_index, false);
  Tensor gx = empty_tensor(DimVector{a.rows, a.classes}, input.dtype(), input.device());
  if (gx.numel() == 0) return gx;
  VT_DISPATCH_FLOATING(input.dtype(), "cross_entropy backward", [&] {
    using A = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    backward_rows<scalar_t, A>(input.data<scalar_t>(), a, stats.data<A>(), grad.data<scalar_t>(),
                               *count.data<A>(), reduction, gx.data<scalar_t>());
  });
  return gx;
}

}  // namespace
}  // namespace vt::cpu::xent

VT_LIBRARY(vt, cross_entropy_cpu) {
  m.impl("_cross_entropy_rows", vt::DispatchKey::CPU, &vt::cpu::xent::ce_rows_cpu);
  m.impl("_cross_entropy_rows_backward", vt::DispatchKey::CPU, &vt::cpu::xent::ce_rows_backward_cpu);
}
