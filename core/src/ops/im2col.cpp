// im2col / col2im (F.unfold / F.fold): argument checks with torch's messages, the CPU loops and the op
// registrations; the element math is in im2col_impl.h (the CUDA kernels in cuda/im2col.cu use it; the CPU walks
// rows instead: Note [Row loops on the CPU]). conv2d and the 2-D poolings are built on these in Python
// (nn/functional): im2col then a GEMM, or a max / mean over K.
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "im2col_impl.h"
#include "vt/core/dispatcher.h"
#include "vt/core/parallel.h"

namespace vt {
namespace im2col {
namespace {

void check_args(IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride) {
  auto pair = [](IntArrayRef v, const char* name) {
    VT_CHECK(v.size() == 2, "It is expected ", name, " equals to 2, but got size ", v.size());
  };
  pair(kernel, "kernel_size");
  pair(dilation, "dilation");
  pair(padding, "padding");
  pair(stride, "stride");
  VT_CHECK(kernel[0] > 0 && kernel[1] > 0, "kernel size should be greater than zero, but got kernel_height: ",
           kernel[0], " kernel_width: ", kernel[1]);
  VT_CHECK(stride[0] > 0 && stride[1] > 0, "stride should be greater than zero, but got stride_height: ", stride[0],
           " stride_width: ", stride[1]);
  VT_CHECK(dilation[0] > 0 && dilation[1] > 0, "dilation should be greater than zero, but got dilation_height: ",
           dilation[0], " dilation_width: ", dilation[1]);
  VT_CHECK(padding[0] >= 0 && padding[1] >= 0, "padding should be non-negative, but got padding_height: ",
           padding[0], " padding_width: ", padding[1]);
}

Geometry base(IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride, int64_t H, int64_t W) {
  Geometry g{};
  g.H = H, g.W = W, g.kh = kernel[0], g.kw = kernel[1], g.dh = dilation[0], g.dw = dilation[1];
  g.ph = padding[0], g.pw = padding[1], g.sh = stride[0], g.sw = stride[1];
  g.oh = (H + 2 * g.ph - (g.dh * (g.kh - 1) + 1)) / g.sh + 1;
  g.ow = (W + 2 * g.pw - (g.dw * (g.kw - 1) + 1)) / g.sw + 1;
  if (H + 2 * g.ph < g.dh * (g.kh - 1) + 1) g.oh = 0;  // C++ division truncates toward zero; torch's count is 0
  if (W + 2 * g.pw < g.dw * (g.kw - 1) + 1) g.ow = 0;
  return g;
}

}  // namespace

Geometry plan_im2col(const Tensor& input, IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding,
                     IntArrayRef stride) {
  check_args(kernel, dilation, padding, stride);
  VT_CHECK(input.dim() == 4, "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got: ",
           shape_str(input.sizes()));
  Geometry g = base(kernel, dilation, padding, stride, input.size(2), input.size(3));
  VT_CHECK(g.oh >= 1 && g.ow >= 1, "Given input with spatial size (", g.H, ", ", g.W, "), kernel_size=(", g.kh, ", ",
           g.kw, "), dilation=(", g.dh, ", ", g.dw, "), padding=(", g.ph, ", ", g.pw,
           "), calculated shape of the array of sliding blocks as (", g.oh, ", ", g.ow,
           "), but its components must be at least one.");
  g.N = input.size(0), g.C = input.size(1);
  for (int d = 0; d < 4; ++d) g.s[d] = input.stride(d);
  return g;
}

Geometry plan_col2im(const Tensor& cols, IntArrayRef output_size, IntArrayRef kernel, IntArrayRef dilation,
                     IntArrayRef padding, IntArrayRef stride) {
  check_args(kernel, dilation, padding, stride);
  VT_CHECK(output_size.size() == 2, "It is expected output_size equals to 2, but got size ", output_size.size());
  VT_CHECK(cols.dim() == 3, "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
           "dimensions for input, but got: ", shape_str(cols.sizes()));
  const int64_t K = kernel[0] * kernel[1];
  VT_CHECK(cols.size(1) % K == 0, "Expected size of input's dimension 1 to be divisible by the product of "
           "kernel_size, but got input.size(1)=", cols.size(1), " and kernel_size=(", kernel[0], ", ", kernel[1], ")");
  Geometry g = base(kernel, dilation, padding, stride, output_size[0], output_size[1]);
  VT_CHECK(g.oh >= 1 && g.ow >= 1 && g.oh * g.ow == cols.size(2), "Given output_size=(", g.H, ", ", g.W,
           "), kernel_size=(", g.kh, ", ", g.kw, "), dilation=(", g.dh, ", ", g.dw, "), padding=(", g.ph, ", ", g.pw,
           "), stride=(", g.sh, ", ", g.sw, "), expected size of input's dimension 2 to match the calculated number "
           "of sliding blocks ", g.oh, " * ", g.ow, " = ", g.oh * g.ow, ", but got input.size(2)=", cols.size(2), ".");
  g.N = cols.size(0), g.C = cols.size(1) / K;
  for (int d = 0; d < 3; ++d) g.s[d] = cols.stride(d);
  return g;
}

Tensor with_batch_dim(const Tensor& t) {
  DimVector sizes(t.sizes()), strides(t.strides());
  sizes.insert(0, 1);
  strides.insert(0, std::max<int64_t>(t.numel(), 1));
  return make_view(t, sizes, strides, t.storage_offset());
}

Tensor without_batch_dim(const Tensor& t) {
  return make_view(t, t.sizes().subspan(1), t.strides().subspan(1), t.storage_offset());
}

Tensor columns_alias(const Tensor& stored) {
  return make_view(stored, DimVector{stored.size(0), stored.size(2), stored.size(1)},
                   DimVector{stored.stride(0), stored.stride(2), stored.stride(1)}, stored.storage_offset());
}

}  // namespace im2col

namespace {

// Note [Row loops on the CPU]: the CPU walks rows, not elements. col2im reads the columns in their stored order
// for one image at a time and adds each entry into its pixel, so every task owns a whole output image (or a
// channel range of it): deterministic, no atomics. The element functions of im2col_impl.h (which the CUDA kernels
// use) cost several 64-bit divisions per element: 1.1 s for a [32, 64, 56, 56] 3x3 im2col on the devbox against
// ~0.1 s this way.
//
// Note [Planar columns on the CPU]: the CPU's im2col returns the columns [N, C*K, L] contiguous (CUDA stores them
// [N, L, C*K], Note [Column layout]): each column row (c, ki, kj) is, output row by output row, a run of one input
// row - a plain copy at stride 1: a 3x3 im2col of [8, 64, 32, 32] took 2.3 ms on the devbox as 3-element gathers
// per output position, 0.55 ms this way. A convolution then multiplies the weight [O, C*K] by each image's
// columns and gets [N, O, L] in NCHW order with no layout copy (4.0 vs 4.8 ms for that product), and a pooling
// reduces over K with L contiguous. col2im, its adjoint, adds the rows back the same way when the columns have
// that layout (benchmarks/cpu_conv.py: convolutions 1.1-3x faster than with the [N, L, C*K] columns, pooling 2x).
// The kernel rows ki whose input row y = oy * sh - ph + ki * dh lies inside the image: [lo, hi).
inline std::pair<int64_t, int64_t> rows_inside(const im2col::Geometry& g, int64_t oy) {
  const int64_t y0 = oy * g.sh - g.ph;
  int64_t lo = 0, hi = g.kh;
  while (lo < hi && y0 + lo * g.dh < 0) ++lo;
  while (hi > lo && y0 + (hi - 1) * g.dh >= g.H) --hi;
  return {lo, hi};
}

// Whether every tap x0 + kj * dw of a window starting at x0 lies inside the row (no checks needed), and whether
// the taps are three adjacent elements (a 3 x 3 convolution's rows: copied without a loop).
inline bool taps_inside(const im2col::Geometry& g, int64_t x0) { return x0 >= 0 && x0 + (g.kw - 1) * g.dw < g.W; }

// The output positions ox of one output row whose tap x = x0 + ox * sw lies inside [0, W): [lo, hi).
inline std::pair<int64_t, int64_t> cols_inside(const im2col::Geometry& g, int64_t x0) {
  const int64_t lo = x0 >= 0 ? 0 : (-x0 + g.sw - 1) / g.sw;
  const int64_t hi = x0 > g.W - 1 ? 0 : std::min(g.ow, (g.W - 1 - x0) / g.sw + 1);
  return {std::min(lo, g.ow), std::max(hi, std::min(lo, g.ow))};
}

// The columns [N, C*K, L] written row by row (Note [Planar columns on the CPU]): one task per (image, channel),
// and for each of its K taps and each output row, a run of one input row (a plain copy at stride 1), zeros past
// the image.
template <typename T>
void im2col_rows(const im2col::Geometry& g, const T* in, T* out) {
  const int64_t K = g.kh * g.kw, L = g.oh * g.ow, step = g.sw * g.s[3];
  parallel_for(0, g.N * g.C, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(K * L, 1)),
               [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / g.C, c = task % g.C;
      const T* plane = in + n * g.s[0] + c * g.s[1];
      T* o = out + task * K * L;
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        for (int64_t kj = 0; kj < g.kw; ++kj) {
          const int64_t x0 = kj * g.dw - g.pw;
          const auto [lo, hi] = cols_inside(g, x0);
          for (int64_t oy = 0; oy < g.oh; ++oy, o += g.ow) {
            const int64_t y = oy * g.sh - g.ph + ki * g.dh;
            if (y < 0 || y >= g.H || lo == hi) {
              std::fill(o, o + g.ow, T(0.0f));
              continue;
            }
            std::fill(o, o + lo, T(0.0f));
            const T* src = plane + y * g.s[2] + (x0 + lo * g.sw) * g.s[3];
            if (step == 1) std::copy(src, src + (hi - lo), o + lo);
            else for (int64_t ox = lo; ox < hi; ++ox) o[ox] = src[(ox - lo) * step];
            std::fill(o + hi, o + g.ow, T(0.0f));
          }
        }
      }
    }
  });
}

// col2im of planar columns (Note [Planar columns on the CPU]): each task owns one (image, channel) plane and adds
// its K column rows into it, run by run, in a fixed order (deterministic). Rows may be any stride apart (0 too).
// float and double planes sum in the output itself; 16-bit ones in a float plane, rounded once at the end.
template <typename T>
void col2im_planar_rows(const im2col::Geometry& g, const T* cols, T* out) {
  using Acc = opmath_t<T>;
  constexpr bool kInPlace = std::is_same_v<Acc, T>;
  const int64_t K = g.kh * g.kw, L = g.oh * g.ow, HW = g.H * g.W;
  parallel_for(0, g.N * g.C, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(K * L, 1)),
               [&](int64_t b, int64_t e) {
    std::vector<Acc> buffer(kInPlace ? 0 : static_cast<size_t>(HW));
    for (int64_t task = b; task < e; ++task) {
      Acc* acc = kInPlace ? reinterpret_cast<Acc*>(out + task * HW) : buffer.data();
      std::fill(acc, acc + HW, Acc(0));
      const T* col = cols + (task / g.C) * g.s[0] + (task % g.C) * K * g.s[1];
      for (int64_t ki = 0; ki < g.kh; ++ki) {
        for (int64_t kj = 0; kj < g.kw; ++kj, col += g.s[1]) {
          const int64_t x0 = kj * g.dw - g.pw;
          const auto [lo, hi] = cols_inside(g, x0);
          for (int64_t oy = 0; oy < g.oh; ++oy) {
            const int64_t y = oy * g.sh - g.ph + ki * g.dh;
            if (y < 0 || y >= g.H) continue;
            Acc* line = acc + y * g.W;
            const T* src = col + oy * g.ow;
            for (int64_t ox = lo; ox < hi; ++ox) line[x0 + ox * g.sw] += Acc(src[ox]);
          }
        }
      }
      if constexpr (!kInPlace) {
        T* o = out + task * HW;
        for (int64_t i = 0; i < HW; ++i) o[i] = T(acc[i]);
      }
    }
  });
}

// cols [N, C*K, L] through strides g.s (the stored layout reads contiguously) into out [N, C, H, W], each pixel
// the sum of its entries in opmath (Note [Row loops on the CPU]). Tasks are (image, channel range) pairs.
template <typename T>
void col2im_rows(const im2col::Geometry& g, const T* cols, T* out) {
  using Acc = opmath_t<T>;
  const int64_t K = g.kh * g.kw, HW = g.H * g.W, L = g.oh * g.ow;
  if (g.N == 0 || g.C == 0 || HW == 0) return;
  const bool three = g.kw == 3 && g.dw == 1 && g.s[1] == 1;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(g.C, (2 * num_threads() + g.N - 1) / g.N));
  parallel_for(0, g.N * parts, 1, [&](int64_t b, int64_t e) {
    std::vector<Acc> acc;
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / parts, part = task % parts;
      const int64_t c0 = g.C * part / parts, c1 = g.C * (part + 1) / parts;
      acc.assign(size_t((c1 - c0) * HW), Acc(0));
      for (int64_t l = 0; l < L; ++l) {
        const int64_t oy = l / g.ow, ox = l % g.ow, x0 = ox * g.sw - g.pw;
        const auto [ki_lo, ki_hi] = rows_inside(g, oy);
        const bool inside = taps_inside(g, x0);
        const T* col = cols + n * g.s[0] + l * g.s[2];
        for (int64_t c = c0; c < c1; ++c) {
          Acc* plane = acc.data() + (c - c0) * HW;
          for (int64_t ki = ki_lo; ki < ki_hi; ++ki) {
            Acc* line = plane + (oy * g.sh - g.ph + ki * g.dh) * g.W;
            const T* src = col + (c * K + ki * g.kw) * g.s[1];
            if (inside && three) {
              Acc* t = line + x0;
              t[0] += Acc(src[0]), t[1] += Acc(src[1]), t[2] += Acc(src[2]);
            } else {
              for (int64_t kj = 0; kj < g.kw; ++kj) {
                const int64_t x = x0 + kj * g.dw;
                if (inside || (x >= 0 && x < g.W)) line[x] += Acc(src[kj * g.s[1]]);
              }
            }
          }
        }
      }
      T* o = out + (n * g.C + c0) * HW;
      for (int64_t i = 0; i < (c1 - c0) * HW; ++i) o[i] = T(acc[size_t(i)]);
    }
  });
}

Tensor im2col_cpu(const Tensor& input, IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride) {
  if (input.dim() == 3)
    return im2col::without_batch_dim(im2col_cpu(im2col::with_batch_dim(input), kernel, dilation, padding, stride));
  im2col::Geometry g = im2col::plan_im2col(input, kernel, dilation, padding, stride);
  Tensor out = empty_tensor(DimVector{g.N, g.C * g.kh * g.kw, g.oh * g.ow}, input.dtype(), kCPU);
  VT_DISPATCH_FLOATING(input.dtype(), "im2col", [&] { im2col_rows(g, input.data<scalar_t>(), out.data<scalar_t>()); });
  return out;  // Note [Planar columns on the CPU]: contiguous [N, C*K, L]
}

Tensor col2im_cpu(const Tensor& cols, IntArrayRef output_size, IntArrayRef kernel, IntArrayRef dilation,
                  IntArrayRef padding, IntArrayRef stride) {
  if (cols.dim() == 2)
    return im2col::without_batch_dim(
        col2im_cpu(im2col::with_batch_dim(cols), output_size, kernel, dilation, padding, stride));
  im2col::Geometry g = im2col::plan_col2im(cols, output_size, kernel, dilation, padding, stride);
  Tensor out = empty_tensor(DimVector{g.N, g.C, g.H, g.W}, cols.dtype(), kCPU);
  // each column row contiguous (the CPU's im2col layout, or a gradient broadcast over the rows: a pooling's sum)
  const bool planar = g.s[2] == 1 || g.oh * g.ow == 1;
  VT_DISPATCH_FLOATING(cols.dtype(), "col2im", [&] {
    if (planar) col2im_planar_rows(g, cols.data<scalar_t>(), out.data<scalar_t>());
    else col2im_rows(g, cols.data<scalar_t>(), out.data<scalar_t>());
  });
  return out;
}

}  // namespace

VT_LIBRARY(vt, im2col) {
  m.def("im2col(Tensor self, int[] kernel_size, int[] dilation, int[] padding, int[] stride) -> Tensor");
  m.def("col2im(Tensor self, int[] output_size, int[] kernel_size, int[] dilation, int[] padding, int[] stride) -> Tensor");
  m.impl("im2col", DispatchKey::CPU, &im2col_cpu);
  m.impl("col2im", DispatchKey::CPU, &col2im_cpu);
}

}  // namespace vt
