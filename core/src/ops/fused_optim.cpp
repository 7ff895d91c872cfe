// Fused optimizer steps: the schemas, the shared argument checks (Rows, see fused_optim.h) and the CPU kernel
// (cpu_multi_tensor.h). The CUDA kernel is in cuda/fused_optim.cu.
#include "cpu_multi_tensor.h"
#include "fused_optim.h"
#include "vt/core/ops.h"

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
    for (int d = 0; d < r.depth; ++d)
      if (d != 1) l[d].second[i].storage()->check_writable();  // finish_rows bumps after the kernel wrote
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

namespace vt {

VT_LIBRARY(vt, fused_optim) {
  // steps[i]: parameter i's step count including this update (torch's state["step"] after its increment).
  m.def("_fused_adamw_(Tensor[] params, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, int[] steps, *, "
        "float lr, float beta1, float beta2, float weight_decay, float eps, bool maximize=False) -> ()");
  // state_steps[i]: parameter i's step count before this update, a float32 tensor on its device that the op
  // increments (capturable: nothing step-dependent is computed on the host).
  m.def("_fused_adamw_capturable_(Tensor[] params, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, "
        "Tensor[] state_steps, *, float lr, float beta1, float beta2, float weight_decay, float eps, "
        "bool maximize=False) -> ()");
  // is_first_step: the momentum buffers are uninitialised and take the (decayed) gradient, as torch's first step.
  m.def("_fused_sgd_(Tensor[] params, Tensor[] grads, Tensor[] momentum_buffers, *, float lr, float momentum=0.0, "
        "float dampening=0.0, float weight_decay=0.0, bool nesterov=False, bool maximize=False, "
        "bool is_first_step=False) -> ()");
  optim::register_fused_optim<cpu::CpuMultiTensor>(m, DispatchKey::CPU);
}

}  // namespace vt
