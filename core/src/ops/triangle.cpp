// tril / triu and their in-place forms: the argument checks and layouts shared by both backends (run) and the
// CPU loop, which copies each row's kept run of columns and clears the rest (triangle.h). The CUDA kernel is in
// cuda/triangle.cu; the backward formula (the gradient's own triangle) in autograd/formulas_shape.cpp.
#include <cstring>

#include "triangle.h"
#include "words.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::triangle {

Tensor run(const Tensor& self, int64_t diagonal, bool lower, bool in_place, Kernel kernel) {
  VT_CHECK(self.dim() >= 2, lower ? "tril" : "triu", ": input tensor must have at least 2 dimensions");
  const bool folds = collapsed_batch_stride(self) >= 0;  // Note [Triangle layouts]
  if (in_place && !folds) return ops::copy_(self, run(self, diagonal, lower, false, kernel));
  const Tensor in = folds ? self : ops::contiguous(self);
  const Tensor out = in_place ? self : empty_tensor(self.sizes(), self.dtype(), self.device());
  const Plan p = make_plan(in, out, diagonal, lower, in_place);
  if (p.batch > 0) kernel(p, in, out);
  return out;
}

namespace {

template <typename Word>
void rows_cpu(const Plan& p, const char* in_bytes, char* out_bytes, int64_t first, int64_t last) {
  const auto* in = reinterpret_cast<const Word*>(in_bytes);
  auto* out = reinterpret_cast<Word*>(out_bytes);
  const bool dense = p.in[2] == 1 && p.out[2] == 1;
  for (int64_t i = first; i < last; ++i) {
    const int64_t b = i / p.rows, r = i % p.rows;
    const Word* src = in + b * p.in[0] + r * p.in[1];
    Word* dst = out + b * p.out[0] + r * p.out[1];
    int64_t begin, end;
    kept_columns(p, r, begin, end);
    if (dense) {  // the row's three runs: cleared, kept, cleared
      std::memset(dst, 0, begin * sizeof(Word));
      if (!p.in_place) std::memcpy(dst + begin, src + begin, (end - begin) * sizeof(Word));
      std::memset(dst + end, 0, (p.cols - end) * sizeof(Word));
      continue;
    }
    for (int64_t c = 0; c < p.cols; ++c)
      if (c < begin || c >= end) dst[c * p.out[2]] = Word(0);
      else if (!p.in_place) dst[c * p.out[2]] = src[c * p.in[2]];
  }
}

void kernel_cpu(const Plan& p, const Tensor& in_tensor, const Tensor& out_tensor) {
  const char* in = in_tensor.data_ptr();
  char* out = out_tensor.data_ptr();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.cols, 1));  // rows per task
  parallel_for(0, p.batch * p.rows, grain, [&](int64_t first, int64_t last) {
    with_word(p.itemsize, [&](auto w) { rows_cpu<decltype(w)>(p, in, out, first, last); });
  });
}

Tensor tril_cpu(const Tensor& self, int64_t diagonal) { return run(self, diagonal, true, false, kernel_cpu); }
Tensor triu_cpu(const Tensor& self, int64_t diagonal) { return run(self, diagonal, false, false, kernel_cpu); }
Tensor tril_inplace_cpu(const Tensor& self, int64_t diagonal) { return run(self, diagonal, true, true, kernel_cpu); }
Tensor triu_inplace_cpu(const Tensor& self, int64_t diagonal) { return run(self, diagonal, false, true, kernel_cpu); }

}  // namespace
}  // namespace vt::triangle

VT_LIBRARY(vt, triangle) {
  m.def("tril(Tensor self, int diagonal=0) -> Tensor");
  m.def("triu(Tensor self, int diagonal=0) -> Tensor");
  m.def("tril_(Tensor self, int diagonal=0) -> Tensor");
  m.def("triu_(Tensor self, int diagonal=0) -> Tensor");
  m.impl("tril", vt::DispatchKey::CPU, &vt::triangle::tril_cpu);
  m.impl("triu", vt::DispatchKey::CPU, &vt::triangle::triu_cpu);
  m.impl("tril_", vt::DispatchKey::CPU, &vt::triangle::tril_inplace_cpu);
  m.impl("triu_", vt::DispatchKey::CPU, &vt::triangle::triu_inplace_cpu);
}
