// _resample and _resample_backward (Note [Resampling plans] in resample.h): their schemas, the checks and plans
// both backends share, and the CPU kernels. The forward runs output rows in parallel; the backward runs planes
// in parallel and adds each plane's gradient in output order, so its sums do not depend on the thread count.
#include "resample.h"
#include "words.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::resample {
namespace {

ScalarType acc_dtype(ScalarType t) { return t == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32; }

Tensor dense(const Tensor& t) { return t.is_contiguous() ? t : ops::contiguous(t); }

// The plan tensors of resampled dim k, checked against its sizes, into plan.dim[j]. `in` is the number of rows
// the taps may read, `out` the output rows the plan must have (-1: whatever it has).
void take_dim(const char* op, Checked& c, int j, size_t k, int64_t in, int64_t out,
              TensorList indices, TensorList weights, ScalarType acc) {
  const Tensor& idx = indices[k];
  VT_CHECK_TYPE(idx.dtype() == ScalarType::Int64, op, ": indices[", k, "] must be int64, got ",
                dtype_name(idx.dtype()));
  VT_CHECK(idx.dim() == 2 && idx.size(1) >= 1, op, ": indices[", k, "] must be [out, taps] with taps >= 1, got ",
           shape_str(idx.sizes()));
  VT_CHECK(idx.device() == c.input.device(), op, ": indices[", k, "] is on ", idx.device().str(),
           ", the input on ", c.input.device().str());
  VT_CHECK(out < 0 || idx.size(0) == out, op, ": indices[", k, "] has ", idx.size(0), " output rows, the gradient ",
           out);
  Dim& d = c.plan.dim[j];
  d.out = idx.size(0), d.in = in, d.taps = idx.size(1);
  c.keep.push_back(dense(idx));
  d.idx = c.keep.back().data<int64_t>();
  if (idx.device().is_cpu()) {  // CUDA kernels check as they read (Note [Deferred kernel errors])
    for (int64_t e = 0, n = idx.numel(); e < n; ++e) {
      const int64_t v = d.idx[e];
      VT_CHECK_INDEX(v == kNoTap || (v >= 0 && v < in), op, ": index ", v, " is out of bounds for dim ", k,
                     " with size ", in);
    }
  }
  if (weights.empty()) {
    VT_CHECK(d.taps == 1, op, ": a gather (no weights) takes one tap per output row, indices[", k, "] has ", d.taps);
    return;
  }
  const Tensor& w = weights[k];
  VT_CHECK_TYPE(w.dtype() == acc, op, ": weights[", k, "] must be ", dtype_name(acc), " for a ",
                dtype_name(c.input.dtype()), " input, got ", dtype_name(w.dtype()));
  VT_CHECK(std::ranges::equal(w.sizes(), idx.sizes()), op, ": weights[", k, "] ", shape_str(w.sizes()),
           " must match indices[", k, "] ", shape_str(idx.sizes()));
  VT_CHECK(w.device() == c.input.device(), op, ": weights[", k, "] is on ", w.device().str(), ", the input on ",
           c.input.device().str());
  c.keep.push_back(dense(w));
  d.w = c.keep.back().data_ptr();
}

size_t check_counts(const char* op, const Tensor& t, TensorList indices, TensorList weights) {
  const size_t nd = indices.size();
  VT_CHECK(nd >= 1 && nd <= size_t(kMaxResampled), op, ": resamples 1 to ", kMaxResampled, " dims, got ", nd, " plans");
  VT_CHECK(weights.empty() || weights.size() == nd, op, ": ", nd, " index plans but ", weights.size(), " weights");
  VT_CHECK(t.dim() >= int64_t(nd), op, ": ", nd, " resampled dims need a tensor of at least ", nd, " dims, got ",
           shape_str(t.sizes()));
  VT_CHECK_TYPE(weights.empty() || is_floating(t.dtype()), op, ": weights need a floating input, got ",
                dtype_name(t.dtype()));
  return nd;
}

// The leading dims of `t` (the first `lead`), coalesced; false when more than two remain.
bool coalesce_planes(const Tensor& t, int64_t lead, Plan& p) {
  int64_t sizes[2], strides[2];
  int n = 0;
  for (int64_t d = 0; d < lead; ++d) {
    const int64_t s = t.size(d), st = t.stride(d);
    p.planes *= s;
    if (s == 1) continue;
    if (n > 0 && strides[n - 1] == st * s) {  // the previous dim steps over this one whole
      sizes[n - 1] *= s, strides[n - 1] = st;
      continue;
    }
    if (n == 2) return false;
    sizes[n] = s, strides[n] = st, ++n;
  }
  if (n == 1) p.inner = sizes[0], p.inner_stride = strides[0];
  if (n == 2) p.inner = sizes[1], p.inner_stride = strides[1], p.outer_stride = strides[0];
  return true;
}

}  // namespace

// Adjoint plans (Note [Adjoint plans] in resample.h) are checked with the forward, where a bad one is the
// caller's error, rather than when the gradient runs: a plan per resampled dim, its rows the input's, its taps
// reading the output's rows; weights of the accumulation type, or none where each has one tap.
void check_adjoint(const Checked& c, size_t nd, TensorList indices, TensorList weights, ScalarType acc) {
  const char* op = "_resample (adjoint plans)";
  VT_CHECK(!indices.empty() || weights.empty(), op, ": adjoint weights without adjoint indices");
  if (indices.empty()) return;
  VT_CHECK(indices.size() == nd, op, ": ", nd, " plans but ", indices.size(), " adjoint plans");
  VT_CHECK(weights.empty() || weights.size() == nd, op, ": ", nd, " adjoint plans but ", weights.size(), " weights");
  Checked a;
  a.input = c.input;
  for (size_t k = 0; k < nd; ++k) {
    const int j = kMaxResampled - int(nd) + int(k);
    take_dim(op, a, j, k, c.plan.dim[j].out, c.plan.dim[j].in, indices, weights, acc);
  }
}

Checked forward_plan(const Tensor& input, TensorList indices, TensorList weights, TensorList adjoint_indices,
                     TensorList adjoint_weights) {
  const char* op = "_resample";
  const size_t nd = check_counts(op, input, indices, weights);
  const int64_t lead = input.dim() - int64_t(nd);
  Checked c;
  c.input = input;
  if (!coalesce_planes(input, lead, c.plan)) {
    c.input = ops::contiguous(input);
    c.plan = Plan{};
    coalesce_planes(c.input, lead, c.plan);
  }
  c.plan.weighted = !weights.empty();
  const ScalarType acc = acc_dtype(input.dtype());
  c.result_sizes = DimVector(input.sizes().first(size_t(lead)));
  for (size_t k = 0; k < nd; ++k) {
    const int j = kMaxResampled - int(nd) + int(k);
    take_dim(op, c, j, k, input.size(lead + int64_t(k)), -1, indices, weights, acc);
    c.plan.dim[j].in_stride = c.input.stride(lead + int64_t(k));
    c.result_sizes.push_back(c.plan.dim[j].out);
  }
  check_adjoint(c, nd, adjoint_indices, adjoint_weights, acc);
  return c;
}

Checked backward_plan(const Tensor& grad, IntArrayRef input_sizes, TensorList indices, TensorList weights) {
  const char* op = "_resample_backward";
  const size_t nd = check_counts(op, grad, indices, weights);
  VT_CHECK_TYPE(is_floating(grad.dtype()), op, ": a floating gradient, got ", dtype_name(grad.dtype()));
  VT_CHECK(int64_t(input_sizes.size()) == grad.dim(), op, ": input_sizes ", shape_str(input_sizes),
           " and the gradient ", shape_str(grad.sizes()), " differ in rank");
  const int64_t lead = grad.dim() - int64_t(nd);
  for (int64_t d = 0; d < lead; ++d)
    VT_CHECK(input_sizes[size_t(d)] == grad.size(d), op, ": input_sizes ", shape_str(input_sizes),
             " and the gradient ", shape_str(grad.sizes()), " differ in the leading dims");
  Checked c;
  c.input = dense(grad);
  c.plan.weighted = !weights.empty();
  for (int64_t d = 0; d < lead; ++d) c.plan.planes *= grad.size(d);
  const ScalarType acc = acc_dtype(grad.dtype());
  c.result_sizes = DimVector(input_sizes);
  for (size_t k = 0; k < nd; ++k) {
    const int64_t in = input_sizes[size_t(lead) + k];
    VT_CHECK(in >= 0, op, ": input_sizes ", shape_str(input_sizes), " has a negative size");
    take_dim(op, c, kMaxResampled - int(nd) + int(k), k, in, grad.size(lead + int64_t(k)), indices, weights, acc);
  }
  int64_t stride = 1;  // the result is dense: its rows' strides
  for (int j = kMaxResampled - 1; j >= 0; --j) c.plan.dim[j].in_stride = stride, stride *= c.plan.dim[j].in;
  c.plan.inner = 1, c.plan.outer_stride = stride;
  return c;
}

namespace {

int64_t plane_offset(const Plan& p, int64_t pl) {
  return (pl / p.inner) * p.outer_stride + (pl % p.inner) * p.inner_stride;
}

// Note [Row cursors]
// Output row r of the dense [planes, out0, out1, out2] result is (plane, o0, o1). A chunk of rows steps through
// them by increments and finds a plane's offset when the plane changes, where five 64-bit divisions per row set
// the pace of short rows (best of noisy runs on the 2-core devbox: a bfloat16 zero pad of [8, 64, 56, 56], rows
// of 58 elements, 0.20 -> 0.16 ms; a bfloat16 2x nearest resize of [8, 256, 32, 32] 3.2 -> 1.9 ms).
struct RowCursor {
  const Plan& p;
  int64_t o1 = 0, o0 = 0, plane = 0, base = 0;  // base: the plane's offset in the tensor read
  RowCursor(const Plan& plan, int64_t r) : p(plan) {
    const int64_t q = r / p.dim[1].out;
    o1 = r % p.dim[1].out, o0 = q % p.dim[0].out, plane = q / p.dim[0].out, base = plane_offset(p, plane);
  }
  void next() {
    if (++o1 < p.dim[1].out) return;
    o1 = 0;
    if (++o0 < p.dim[0].out) return;
    o0 = 0, base = plane_offset(p, ++plane);
  }
};

// acc1[o] += w1 * (the innermost dim's taps of output o over `row`), for every output o of the row; Taps > 0 is
// the tap count known at compile time (0: d.taps, read at run time). A wide plan (antialiasing: 9 taps at a 4x
// downsample) blends four outputs at a time, so four sums advance together where one output's chain of dependent
// adds would wait on each other; each output still adds its taps in order.
template <int Taps, typename T, typename A>
inline void blend_row(const T* row, const Dim& d, const A* w, A w1, A* acc1) {
  const int64_t taps = Taps > 0 ? Taps : d.taps, s = d.in_stride;
  auto read = [&](int64_t e, A& acc) {
    if (d.idx[e] != kNoTap) acc += w[e] * A(opmath_t<T>(row[d.idx[e] * s]));
  };
  int64_t o = 0;
  if constexpr (Taps == 0) {
    for (; o + 4 <= d.out; o += 4) {
      A a[4] = {A(0), A(0), A(0), A(0)};
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t k = 0; k < 4; ++k) read((o + k) * taps + t, a[k]);
      for (int64_t k = 0; k < 4; ++k) acc1[o + k] += w1 * a[k];
    }
  }
  for (; o < d.out; ++o) {
    A acc2 = A(0);
    for (int64_t t = 0; t < taps; ++t) read(o * taps + t, acc2);
    acc1[o] += w1 * acc2;
  }
}

// Whether a dim's plan is the identity (each output row reads its own input row, weight 1): the other dim of an
// antialiased pass. Its rows then blend as whole vectors, acc1 += w1 * row (the same sums: 0 + 1 * x is x).
template <typename A> bool is_identity(const Dim& d) {
  if (d.taps != 1 || d.out != d.in) return false;
  const A* w = static_cast<const A*>(d.w);
  for (int64_t o = 0; o < d.out; ++o)
    if (d.idx[o] != o || (w && w[o] != A(1))) return false;
  return true;
}

// Each output row (a plane and the outer coordinates) takes its outer taps once; the innermost dim's taps run
// over the whole row, into per-row sums that keep the nesting of Note [Resampling plans] (acc1 over dim 1's taps,
// acc0 over dim 0's), so the arithmetic per output is the one the CUDA kernel does.
template <typename T, typename A> void forward_cpu(const Plan& p, const T* x, T* out) {
  const Dim &d0 = p.dim[0], &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t n2 = d2.out, taps2 = d2.taps, rows = p.planes * d0.out * d1.out;
  const A* w2 = static_cast<const A*>(d2.w);  // the innermost dim is always resampled
  const int64_t work = std::max<int64_t>(1, n2 * d0.taps * d1.taps * taps2);
  const bool identity2 = is_identity<A>(d2);
  // 16-bit rows that the taps read more than once in all are widened once per row into a float buffer, the
  // values the taps would convert one by one (the same sums).
  const bool widen = sizeof(T) == 2 && n2 * taps2 >= d2.in;
  Dim d2_dense = d2;
  d2_dense.in_stride = 1;
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / work), [&](int64_t lo, int64_t hi) {
    std::vector<A> acc0(static_cast<size_t>(n2)), acc1(static_cast<size_t>(n2)), wide(widen ? size_t(d2.in) : 0);
    // acc1 += w1 * (the innermost taps of each output over one input row)
    auto blend = [&](const auto* row, const Dim& d, A w1) {
      using R = std::remove_cv_t<std::remove_pointer_t<decltype(row)>>;
      if (identity2) {
        for (int64_t o2 = 0; o2 < n2; ++o2) acc1[size_t(o2)] += w1 * A(opmath_t<R>(row[o2 * d.in_stride]));
      } else if (taps2 == 2) {
        blend_row<2>(row, d, w2, w1, acc1.data());  // linear and cubic: the count known, unrolled
      } else if (taps2 == 4) {
        blend_row<4>(row, d, w2, w1, acc1.data());
      } else {
        blend_row<0>(row, d, w2, w1, acc1.data());
      }
    };
    RowCursor c(p, lo);
    for (int64_t r = lo; r < hi; ++r, c.next()) {
      const int64_t o0 = c.o0, o1 = c.o1;
      const T* base = x + c.base;
      std::fill(acc0.begin(), acc0.end(), A(0));
      for (int64_t t0 = 0; t0 < d0.taps; ++t0) {
        A w0, w1;
        const int64_t i0 = tap(d0, o0, t0, w0);
        if (i0 == kNoTap) continue;
        std::fill(acc1.begin(), acc1.end(), A(0));
        for (int64_t t1 = 0; t1 < d1.taps; ++t1) {
          const int64_t i1 = tap(d1, o1, t1, w1);
          if (i1 == kNoTap) continue;
          const T* row = base + i0 * d0.in_stride + i1 * d1.in_stride;
          if (widen) {
            for (int64_t j = 0; j < d2.in; ++j) wide[size_t(j)] = A(opmath_t<T>(row[j * d2.in_stride]));
            blend(wide.data(), d2_dense, w1);
          } else {
            blend(row, d2, w1);
          }
        }
        for (int64_t o2 = 0; o2 < n2; ++o2) acc0[size_t(o2)] += w0 * acc1[size_t(o2)];
      }
      T* o = out + r * n2;
      for (int64_t o2 = 0; o2 < n2; ++o2) o[o2] = T(opmath_t<T>(acc0[size_t(o2)]));
    }
  });
}

// Note [Gather runs]
// A gather's innermost plan is mostly runs: a pad's interior reads consecutive rows, a constant pad's border none.
// The plan is split into runs once per call; a run of outputs reading consecutive rows moves as one block (a copy
// forward, a vector add in the adjoint), a run of no-taps is one fill. Plans of short runs (nearest upsampling
// reads each row twice) keep the loop over elements. Each input row's gradient still adds its outputs in order.
struct Run {
  int64_t o, n, i;  // outputs [o, o + n) read rows [i, i + n), or none (i == kNoTap)
};
std::vector<Run> gather_runs(const Dim& d) {
  std::vector<Run> runs;
  if (d.taps != 1 || d.in_stride != 1 || d.w) return runs;
  for (int64_t o = 0; o < d.out;) {
    const int64_t i = d.idx[o];
    int64_t n = 1;
    while (o + n < d.out && d.idx[o + n] == (i == kNoTap ? kNoTap : i + n)) ++n;
    runs.push_back({o, n, i});
    o += n;
  }
  if (int64_t(runs.size()) * 8 > d.out) runs.clear();  // runs under 8 long on average: the element loop
  return runs;
}

// A gather moves words of the element's size; a missing tap reads as zero bytes.
template <typename W> void gather_cpu(const Plan& p, const W* x, W* out) {
  const Dim &d0 = p.dim[0], &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t rows = p.planes * d0.out * d1.out;
  const std::vector<Run> runs = gather_runs(d2);
  parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(d2.out, 1)), [&](int64_t lo, int64_t hi) {
    RowCursor c(p, lo);
    for (int64_t r = lo; r < hi; ++r, c.next()) {
      int w;
      const int64_t i0 = tap(d0, c.o0, 0, w), i1 = tap(d1, c.o1, 0, w);
      W* o = out + r * d2.out;
      if (i0 == kNoTap || i1 == kNoTap) {
        std::memset(o, 0, size_t(d2.out) * sizeof(W));
        continue;
      }
      const W* row = x + c.base + i0 * d0.in_stride + i1 * d1.in_stride;
      const int64_t* ix = d2.idx;  // the innermost dim always has a plan
      if (!runs.empty()) {
        for (const Run& u : runs) {
          if (u.n == 1) o[u.o] = u.i == kNoTap ? W{} : row[u.i];  // (a pad's border: no call for one element)
          else if (u.i == kNoTap) std::memset(o + u.o, 0, size_t(u.n) * sizeof(W));
          else std::memcpy(o + u.o, row + u.i, size_t(u.n) * sizeof(W));
        }
      } else if (d2.in_stride == 1) {  // (a plain indexed load, which the compiler vectorises)
        for (int64_t o2 = 0; o2 < d2.out; ++o2) o[o2] = ix[o2] < 0 ? W{} : row[ix[o2]];
      } else {
        for (int64_t o2 = 0; o2 < d2.out; ++o2) o[o2] = ix[o2] < 0 ? W{} : row[ix[o2] * d2.in_stride];
      }
    }
  });
}

// The adjoint of blend_row: each output o's gradient, times w01 and its innermost taps' weights (1 in a gather's
// adjoint, w null), added into the row of input gradients.
template <int Taps, typename T, typename A>
inline void spread_row(const T* grad, const Dim& d, const A* w, A w01, A* row) {
  const int64_t taps = Taps > 0 ? Taps : d.taps, s = d.in_stride;
  for (int64_t o = 0; o < d.out; ++o) {
    const A gv = A(opmath_t<T>(grad[o]));
    const int64_t* ix = d.idx + o * taps;
    for (int64_t t = 0; t < taps; ++t)
      if (ix[t] != kNoTap) row[ix[t] * s] += (w01 * (w ? w[o * taps + t] : A(1))) * gv;
  }
}

// gin: the dense gradient of the input in A, zero on entry. Planes run in parallel; within one, rows of outputs
// in order, each with its outer taps taken once.
template <typename T, typename A> void backward_cpu(const Plan& p, const T* g, A* gin) {
  const Dim &d0 = p.dim[0], &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t n2 = d2.out, taps2 = d2.taps, in_plane = p.in_plane();
  const A* w2 = d2.w ? static_cast<const A*>(d2.w) : nullptr;  // null: a gather's adjoint (weights 1)
  const std::vector<Run> runs = gather_runs(d2);
  parallel_for(0, p.planes, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t pl = lo; pl < hi; ++pl) {
      A* ip = gin + pl * in_plane;
      for (int64_t o0 = 0; o0 < d0.out; ++o0) {
        for (int64_t o1 = 0; o1 < d1.out; ++o1) {
          const T* gr = g + ((pl * d0.out + o0) * d1.out + o1) * n2;
          for (int64_t t0 = 0; t0 < d0.taps; ++t0) {
            A w0, w1;
            const int64_t i0 = tap(d0, o0, t0, w0);
            if (i0 == kNoTap) continue;
            for (int64_t t1 = 0; t1 < d1.taps; ++t1) {
              const int64_t i1 = tap(d1, o1, t1, w1);
              if (i1 == kNoTap) continue;
              A* row = ip + i0 * d0.in_stride + i1 * d1.in_stride;
              const A w01 = w0 * w1;
              if (!runs.empty()) {
                for (const Run& u : runs)
                  if (u.i != kNoTap)
                    for (int64_t j = 0; j < u.n; ++j) row[u.i + j] += w01 * A(opmath_t<T>(gr[u.o + j]));
              } else if (taps2 == 2 && w2) {
                spread_row<2>(gr, d2, w2, w01, row);  // linear: unrolled
              } else {
                spread_row<0>(gr, d2, w2, w01, row);
              }
            }
          }
        }
      }
    }
  });
}

Tensor resample_cpu(const Tensor& input, TensorList indices, TensorList weights, TensorList adjoint_indices,
                    TensorList adjoint_weights) {
  const Checked c = forward_plan(input, indices, weights, adjoint_indices, adjoint_weights);
  Tensor out = empty_tensor(c.result_sizes, input.dtype(), input.device());
  if (out.numel() == 0) return out;
  if (c.plan.weighted) {
    VT_DISPATCH_FLOATING(input.dtype(), "_resample", [&] {
      using A = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
      forward_cpu<scalar_t, A>(c.plan, c.input.data<scalar_t>(), out.data<scalar_t>());
    });
    return out;
  }
  with_word(input.element_size(), [&](auto w) {
    using W = decltype(w);
    gather_cpu(c.plan, reinterpret_cast<const W*>(c.input.data_ptr()), reinterpret_cast<W*>(out.data_ptr()));
  });
  return out;
}

Tensor resample_backward_cpu(const Tensor& grad, IntArrayRef input_sizes, TensorList indices,
                             TensorList weights) {
  const Checked c = backward_plan(grad, input_sizes, indices, weights);
  const ScalarType acc = acc_dtype(grad.dtype());
  Tensor sums = ops::full(c.result_sizes, Scalar(int64_t(0)), acc, grad.device());
  if (sums.numel() == 0 || c.input.numel() == 0) return acc == grad.dtype() ? sums : ops::to_dtype(sums, grad.dtype());
  VT_DISPATCH_FLOATING(grad.dtype(), "_resample_backward", [&] {
    using A = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    backward_cpu<scalar_t, A>(c.plan, c.input.data<scalar_t>(), sums.data<A>());
  });
  return acc == grad.dtype() ? sums : ops::to_dtype(sums, grad.dtype());
}

}  // namespace
}  // namespace vt::resample

VT_LIBRARY(vt, resample) {
  m.def("_resample(Tensor input, Tensor[] indices, Tensor[] weights, Tensor[] adjoint_indices=[], "
        "Tensor[] adjoint_weights=[]) -> Tensor");
  m.def("_resample_backward(Tensor grad, int[] input_sizes, Tensor[] indices, Tensor[] weights) -> Tensor");
  m.impl("_resample", vt::DispatchKey::CPU, &vt::resample::resample_cpu);
  m.impl("_resample_backward", vt::DispatchKey::CPU, &vt::resample::resample_backward_cpu);
}
