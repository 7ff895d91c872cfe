#pragma once
// im2col / col2im (torch's F.unfold / F.fold), the element math of the CUDA kernels (cuda/im2col.cu): each
// output element is computed by one call, a thread each (the CPU walks rows with the same geometry: Note [Row
// loops on the CPU] in im2col.cpp). Shapes (C = channels, K = kh * kw, L = oh * ow):
//   im2col: input [N, C, H, W] (any strides)  -> columns [N, C*K, L]   column (c, ki, kj) at block (oy, ox) holds
//           input[n, c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw], zero outside the image;
//   col2im: columns [N, C*K, L] (any strides) -> image [N, C, H, W]   each pixel sums every column entry that
//           im2col would have read it into (so col2im is im2col's adjoint, and each is the other's backward).
// col2im gathers per pixel instead of scattering per column, so it needs no atomics and is deterministic.
#include <cstdint>

#include "vt/core/dtype.h"
#include "vt/core/half.h"
#include "vt/core/ivalue.h"

namespace vt::im2col {

struct Geometry {
  int64_t N, C, H, W, kh, kw, dh, dw, ph, pw, sh, sw, oh, ow;
  int64_t s[4];  // element strides of the strided side: input [N, C, H, W] for im2col, columns [N, C*K, L] for col2im
};

// Check torch's rules (RuntimeError naming the sizes) and build the geometry. im2col: input [N, C, H, W];
// col2im: columns [N, C*K, L] and output_size (H, W).
Geometry plan_im2col(const Tensor& input, IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding,
                     IntArrayRef stride);
Geometry plan_col2im(const Tensor& cols, IntArrayRef output_size, IntArrayRef kernel, IntArrayRef dilation,
                     IntArrayRef padding, IntArrayRef stride);
// torch's im2col also takes an unbatched input [C, H, W], and col2im unbatched columns [C*K, L]: the ops run on
// a batch of one (with_batch_dim) and return the result without its batch dim (without_batch_dim). Both are
// aliases of the storage, as columns_alias is.
Tensor with_batch_dim(const Tensor& t);
Tensor without_batch_dim(const Tensor& t);
// The stored [N, L, C*K] columns as [N, C*K, L]: an alias (not a view with a base, which autograd would
// treat as a view of a tensor outside the graph).
Tensor columns_alias(const Tensor& stored);

// Element i of the columns [N, C*K, L] (row-major).
template <typename T> VT_HOST_DEVICE T im2col_at(const Geometry& g, const T* in, int64_t i) {
  const int64_t L = g.oh * g.ow, K = g.kh * g.kw;
  int64_t l = i % L, r = (i / L) % (g.C * K), n = i / (L * g.C * K);
  int64_t c = r / K, ki = (r / g.kw) % g.kh, kj = r % g.kw;
  int64_t y = (l / g.ow) * g.sh - g.ph + ki * g.dh, x = (l % g.ow) * g.sw - g.pw + kj * g.dw;
  if (y < 0 || y >= g.H || x < 0 || x >= g.W) return T(0.0f);
  return in[n * g.s[0] + c * g.s[1] + y * g.s[2] + x * g.s[3]];
}

// Note [Column layout]
// On CUDA the columns are stored as [N, L, C*K] and handed out as a transposed view [N, C*K, L]: a convolution
// then multiplies the contiguous [N*L, C*K] rows by the weight in one GEMM, and a pooling reduces over K along the
// innermost dim. im2col_stored_at maps element i of that storage to the columns' element. (The CPU stores them as
// they are indexed, [N, C*K, L]: Note [Planar columns on the CPU] in im2col.cpp.)
template <typename T> VT_HOST_DEVICE T im2col_stored_at(const Geometry& g, const T* in, int64_t i) {
  const int64_t L = g.oh * g.ow, CK = g.C * g.kh * g.kw;
  const int64_t r = i % CK, l = (i / CK) % L, n = i / (CK * L);
  return im2col_at(g, in, (n * CK + r) * L + l);
}

// Element i of the image [N, C, H, W] (row-major).
template <typename T> VT_HOST_DEVICE T col2im_at(const Geometry& g, const T* cols, int64_t i) {
  const int64_t x = i % g.W, y = (i / g.W) % g.H, c = (i / (g.W * g.H)) % g.C, n = i / (g.W * g.H * g.C);
  opmath_t<T> acc = 0;
  for (int64_t ki = 0; ki < g.kh; ++ki) {
    int64_t ty = y + g.ph - ki * g.dh;
    if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
    for (int64_t kj = 0; kj < g.kw; ++kj) {
      int64_t tx = x + g.pw - kj * g.dw;
      if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow) continue;
      int64_t row = c * g.kh * g.kw + ki * g.kw + kj, col = (ty / g.sh) * g.ow + tx / g.sw;
      acc += opmath_t<T>(cols[n * g.s[0] + row * g.s[1] + col * g.s[2]]);
    }
  }
  return T(acc);
}

}  // namespace vt::im2col
