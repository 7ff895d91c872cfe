// Fused optimizer steps: the schemas, the shared argument checks (Rows, see fused_optim.h) and the CPU kernel.
// The CPU kernel lays the elements of all rows end to end and splits that one range over the thread pool, so
// a step over ~80 parameters of very different sizes is a single parallel region with balanced chunks (small
// parameters share a chunk instead of each paying a region of its own). The CUDA kernel is in
// cuda/fused_optim.cu.
#include "fused_optim.h"

#include <algorithm>

#include "vt/core/ops.h"
#include "vt/core/parallel.h"

namespace vt::optim {

Rows prepare_rows(const char* op, std::initializer_list<std::pair<const char*, TensorList>> lists) {
  Rows r;
  r.depth = int(lists.size());
  const std::pair<const char*, TensorList>* l = lists.begin();
  TensorList params = l[0].second;
  for (int d = 1; d < r.depth; ++d)
    VT_CHECK_VALUE(l[d].second.size() == params.size(), op, ": got ", params.size(), " params but ", l[d].second.size(),
                   " ", l[d].first, "; every list needs one tensor per parameter");
  if (params.empty()) return r;
  r.dtype = params[0].dtype();
  r.device = params[0].device();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    VT_CHECK_TYPE(is_floating(p.dtype()), op, ": params[", i, "] has dtype ", dtype_name(p.dtype()),
                  "; fused optimizers update floating-point parameters only");
    VT_CHECK_TYPE(p.dtype() == r.dtype, op, ": params[", i, "] has dtype ", dtype_name(p.dtype()), " but params[0] has ",
                  dtype_name(r.dtype), "; one fused step takes parameters of one dtype (group them by dtype)");
    VT_CHECK(p.device() == r.device, op, ": params[", i, "] is on ", p.device().str(), " but params[0] is on ",
             r.device.str(), "; one fused step takes parameters on one device (group them by device)");
    for (int d = 1; d < r.depth; ++d) {
      const Tensor& t = l[d].second[i];
      const char* name = l[d].first;
      VT_CHECK(DimVector(t.sizes()) == DimVector(p.sizes()), op, ": ", name, "[", i, "] has shape ", shape_str(t.sizes()),
               " but params[", i, "] has shape ", shape_str(p.sizes()));
      VT_CHECK_TYPE(t.dtype() == p.dtype(), op, ": ", name, "[", i, "] has dtype ", dtype_name(t.dtype()), " but params[",
                    i, "] has dtype ", dtype_name(p.dtype()));
      VT_CHECK(t.device() == p.device(), op, ": ", name, "[", i, "] is on ", t.device().str(), " but params[", i,
               "] is on ", p.device().str());
    }
    if (p.numel() == 0) continue;
    r.list_index.push_back(i);
    for (int d = 0; d < r.depth; ++d) {
      const Tensor& t = l[d].second[i];
      if (t.is_contiguous()) {
        r.tensors.push_back(t);
        continue;
      }
      // A non-contiguous gradient is read through a contiguous copy; a non-contiguous param or state is
      // updated in a contiguous stand-in and copied back after the kernel.
      Tensor c = ops::contiguous(t);
      r.tensors.push_back(c);
      if (d != 1) r.write_back.emplace_back(t, c);
    }
  }
  return r;
}

void finish_rows(const Rows& rows) {
  for (const auto& [original, stand_in] : rows.write_back) ops::copy_(original, stand_in);
  for (size_t i = 0; i < rows.rows(); ++i)
    for (int d = 0; d < rows.depth; ++d)
      if (d != 1) rows.at(i, d).bump_version();
}

}  // namespace vt::optim

namespace vt::cpu {

struct CpuMultiTensor {
  // Elements per chunk of the thread pool: an AdamW element reads 4 and writes 3 values.
  static constexpr int64_t kGrain = 16384;

  template <typename S, typename Step>
  static void apply(const optim::Rows& rows, const std::vector<typename Step::Extra>& per_row, const Step& step) {
    constexpr int D = Step::kDepth;
    using T = opmath_t<S>;
    VT_INTERNAL_ASSERT(rows.depth == D, "fused optimizer: row depth");
    // start[i], start[i + 1]: row i's place in the concatenated element range (rows are never empty).
    std::vector<int64_t> start(rows.rows() + 1, 0);
    for (size_t i = 0; i < rows.rows(); ++i) start[i + 1] = start[i] + rows.at(i, 0).numel();
    parallel_for(0, start.back(), kGrain, [&](int64_t begin, int64_t end) {
      size_t i = size_t(std::upper_bound(start.begin(), start.end(), begin) - start.begin()) - 1;
      for (; i < rows.rows() && start[i] < end; ++i) {
        S* ptr[D];
        for (int d = 0; d < D; ++d) ptr[d] = rows.at(i, d).template data<S>();
        const auto f = step.elem(per_row[i]);
        const int64_t hi = std::min(end, start[i + 1]) - start[i];
        for (int64_t k = std::max(begin, start[i]) - start[i]; k < hi; ++k) {
          T r[D];
          for (int d = 0; d < D; ++d) r[d] = T(ptr[d][k]);
          f(r);
          for (int d = 0; d < D; ++d)
            if (d != 1) ptr[d][k] = S(r[d]);  // list 1, the gradient, is read-only
        }
      }
    });
  }
};

}  // namespace vt::cpu

namespace vt {

VT_LIBRARY(vt, fused_optim) {
  // steps[i]: parameter i's step count including this update (torch's state["step"] after its increment).
  m.def("_fused_adamw_(Tensor[] params, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, int[] steps, *, "
        "float lr, float beta1, float beta2, float weight_decay, float eps, bool maximize=False) -> ()");
  // is_first_step: the momentum buffers are uninitialised and take the (decayed) gradient, as torch's first step.
  m.def("_fused_sgd_(Tensor[] params, Tensor[] grads, Tensor[] momentum_buffers, *, float lr, float momentum=0.0, "
        "float dampening=0.0, float weight_decay=0.0, bool nesterov=False, bool maximize=False, "
        "bool is_first_step=False) -> ()");
  optim::register_fused_optim<cpu::CpuMultiTensor>(m, DispatchKey::CPU);
}

}  // namespace vt
