#pragma once
// Fused multi-tensor optimizer steps: vt::_fused_adamw_ and vt::_fused_sgd_ update every parameter of a group
// in one op (one parallel region on the CPU, a few multi-tensor launches on CUDA) instead of ~11 small ops per
// parameter. This header holds what the CPU and CUDA kernels share, so they cannot drift apart:
//  - Rows: the checked operands. Row i is (param i, grad i, state i...), all contiguous with the param's shape,
//    dtype and device, so element k of a row is element k of each of its tensors. A backend only walks rows.
//  - the per-element updates (AdamWStep, SgdStep), in torch's order of operations, computed in opmath (float
//    for 16-bit params) on values loaded from the row; hyperparameters arrive already folded on the host in
//    double (1 - lr * wd, lr / (1 - beta1^t), ...) and are rounded once to opmath, as torch's eager path
//    rounds its Python-number scalars.
//  - the op front ends, templated on a backend Launch (cpu::CpuMultiTensor, cuda::CudaMultiTensor) with
//      template <typename S, typename Step> static void apply(const Rows&, const std::vector<typename
//      Step::Extra>& per_row, const Step&);
//    which runs Step::elem(per_row[i]) over every element of row i. By convention list 1 (the gradient) is
//    read-only and every other list is written back.
// Capturable AdamW (vt::_fused_adamw_capturable_, torch's capturable=True) keeps each step count in a float32
// tensor on the param's device: the op increments the counts with one multi-tensor launch and the update reads
// them there, so the host bakes no step-dependent number into a captured CUDA graph and every replay is the next
// step. Not handled: sparse gradients, AMSGrad, gradient scaling (grad_scale / found_inf).
#include <cmath>
#include <initializer_list>
#include <utility>
#include <vector>

#include "vt/core/dispatcher.h"

namespace vt::optim {

struct Rows {
  int depth = 0;                  // lists per row: params, grads, then optimizer state
  std::vector<Tensor> tensors;    // [rows * depth], row-major
  std::vector<size_t> list_index; // the caller's list position of each row (empty tensors have no row)
  std::vector<std::pair<Tensor, Tensor>> write_back;  // (caller's non-contiguous tensor, contiguous stand-in)
  ScalarType dtype = ScalarType::Float32;
  Device device = kCPU;

  size_t rows() const { return list_index.size(); }
  const Tensor& at(size_t row, int list) const { return tensors[row * size_t(depth) + size_t(list)]; }
};

// Checks the lists of one fused step (equal lengths; floating params on one device; every other tensor of
// the param's shape, dtype and device) and builds the rows. Errors name the op, the list, the index and the
// shapes. Lists after the first two are optimizer state and are written.
Rows prepare_rows(const char* op, std::initializer_list<std::pair<const char*, TensorList>> lists);
// After the kernel: copies contiguous stand-ins back into the caller's tensors and bumps the version of every
// written tensor.
void finish_rows(const Rows& rows);

struct NoExtra {  // per-row data of the steps that need none
  char unused = 0;
};

// ---- AdamW: r = {param, grad, exp_avg, exp_avg_sq} ----
struct AdamWTensor {  // per parameter, on the host in double: its step t decides the bias corrections
  double step_size;   // lr / (1 - beta1^t)
  double bias2_sqrt;  // sqrt(1 - beta2^t)
  const float* step = nullptr;  // capturable: t read from the device (the two above are then computed there)
};

template <typename T> struct AdamWElem {
  T decay, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step_size, bias2_sqrt;
  bool maximize;
  VT_HOST_DEVICE void operator()(T* r) const {
    T g = maximize ? -r[1] : r[1];
    T p = r[0] * decay;  // decoupled weight decay: p *= 1 - lr * wd
    T m = beta1 * r[2] + one_minus_beta1 * g;
    T v = beta2 * r[3] + one_minus_beta2 * g * g;
    T denom = std::sqrt(v) / bias2_sqrt + eps;
    r[0] = p - step_size * m / denom;
    r[2] = m;
    r[3] = v;
  }
};

template <typename T> struct AdamWStep {
  using Extra = AdamWTensor;
  static constexpr int kDepth = 4;
  AdamWElem<T> base;  // step_size and bias2_sqrt filled per tensor
  double lr, beta1, beta2;  // for a step count read on the device, in double as the host path computes
  VT_HOST_DEVICE AdamWElem<T> elem(const AdamWTensor& e) const {
    AdamWElem<T> r = base;
    double step_size = e.step_size, bias2_sqrt = e.bias2_sqrt;
    if (e.step) {
      double t = double(*e.step);
      step_size = lr / (1 - std::pow(beta1, t));
      bias2_sqrt = std::sqrt(1 - std::pow(beta2, t));
    }
    r.step_size = T(step_size);
    r.bias2_sqrt = T(bias2_sqrt);
    return r;
  }
};

// Capturable steps: r = {step count}, a float32 scalar per parameter, incremented before the update reads it.
struct IncrementStep {
  using Extra = NoExtra;
  static constexpr int kDepth = 1;
  VT_HOST_DEVICE IncrementStep elem(const NoExtra&) const { return *this; }
  VT_HOST_DEVICE void operator()(float* r) const { r[0] = r[0] + 1.0f; }
};

// ---- SGD: r = {param, grad} or, with momentum, {param, grad, momentum_buffer} ----
template <typename T, bool Momentum> struct SgdStep {
  using Extra = NoExtra;
  static constexpr int kDepth = Momentum ? 3 : 2;
  T lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, maximize, first_step;  // first_step: the buffer is uninitialised and becomes the gradient
  VT_HOST_DEVICE SgdStep elem(const NoExtra&) const { return *this; }
  VT_HOST_DEVICE void operator()(T* r) const {
    T g = maximize ? -r[1] : r[1];
    if (weight_decay != T(0)) g = g + weight_decay * r[0];
    if constexpr (Momentum) {
      T buf = first_step ? g : r[2] * momentum + one_minus_dampening * g;
      r[2] = buf;
      g = nesterov ? g + momentum * buf : buf;
    }
    r[0] = r[0] - lr * g;
  }
};

// ---- op front ends ----
template <typename Launch>
void adamw_launch(const Rows& rows, const std::vector<AdamWTensor>& per_row, double lr, double beta1, double beta2,
                  double weight_decay, double eps, bool maximize) {
  VT_DISPATCH_FLOATING(rows.dtype, "_fused_adamw_", [&] {
    using T = opmath_t<scalar_t>;
    AdamWStep<T> step{{T(1 - lr * weight_decay), T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(eps), T(0), T(1),
                       maximize},
                      lr, beta1, beta2};
    Launch::template apply<scalar_t>(rows, per_row, step);
  });
  finish_rows(rows);
}

template <typename Launch>
void fused_adamw_(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs, IntArrayRef steps,
                  double lr, double beta1, double beta2, double weight_decay, double eps, bool maximize) {
  VT_CHECK_VALUE(steps.size() == params.size(), "_fused_adamw_: got ", steps.size(), " steps for ", params.size(),
                 " params; pass one step count per parameter");
  VT_CHECK_VALUE(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "_fused_adamw_: betas must be in [0, 1), got (",
                 beta1, ", ", beta2, ")");
  for (size_t i = 0; i < steps.size(); ++i)
    VT_CHECK_VALUE(steps[i] >= 1, "_fused_adamw_: steps[", i, "] is ", steps[i],
                   "; a step count includes this update, so it starts at 1");
  Rows rows = prepare_rows("_fused_adamw_", {{"params", params}, {"grads", grads}, {"exp_avgs", exp_avgs},
                                             {"exp_avg_sqs", exp_avg_sqs}});
  if (rows.rows() == 0) return;
  std::vector<AdamWTensor> per_row(rows.rows());
  for (size_t i = 0; i < rows.rows(); ++i) {
    double t = double(steps[rows.list_index[i]]);
    per_row[i] = {lr / (1 - std::pow(beta1, t)), std::sqrt(1 - std::pow(beta2, t))};
  }
  adamw_launch<Launch>(rows, per_row, lr, beta1, beta2, weight_decay, eps, maximize);
}

// state_steps[i]: parameter i's step count before this update, a float32 scalar on its device; incremented here.
template <typename Launch>
void fused_adamw_capturable_(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                             TensorList state_steps, double lr, double beta1, double beta2, double weight_decay,
                             double eps, bool maximize) {
  const char* op = "_fused_adamw_capturable_";
  VT_CHECK_VALUE(state_steps.size() == params.size(), op, ": got ", state_steps.size(), " state_steps for ",
                 params.size(), " params; pass one step tensor per parameter");
  VT_CHECK_VALUE(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, op, ": betas must be in [0, 1), got (", beta1,
                 ", ", beta2, ")");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& s = state_steps[i];
    VT_CHECK_VALUE(s.defined() && s.dtype() == ScalarType::Float32 && s.numel() == 1 && s.is_contiguous(), op,
                   ": state_steps[", i, "] must be a float32 tensor of one element");
    VT_CHECK_VALUE(!params[i].defined() || s.device() == params[i].device(), op, ": state_steps[", i, "] is on ",
                   s.device().str(), " but params[", i, "] is on ", params[i].device().str());
  }
  Rows rows = prepare_rows(op, {{"params", params}, {"grads", grads}, {"exp_avgs", exp_avgs},
                                {"exp_avg_sqs", exp_avg_sqs}});
  if (params.empty()) return;
  // Every count steps, an empty param's too (as torch's), before the update reads them.
  Rows step_rows = prepare_rows(op, {{"state_steps", state_steps}});
  Launch::template apply<float>(step_rows, std::vector<NoExtra>(step_rows.rows()), IncrementStep{});
  finish_rows(step_rows);
  if (rows.rows() == 0) return;
  std::vector<AdamWTensor> per_row(rows.rows());
  for (size_t i = 0; i < rows.rows(); ++i) per_row[i] = {0.0, 1.0, state_steps[rows.list_index[i]].data<float>()};
  adamw_launch<Launch>(rows, per_row, lr, beta1, beta2, weight_decay, eps, maximize);
}

template <typename Launch>
void fused_sgd_(TensorList params, TensorList grads, TensorList momentum_buffers, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov, bool maximize, bool is_first_step) {
  VT_CHECK_VALUE(!nesterov || (momentum > 0 && dampening == 0),
                 "_fused_sgd_: Nesterov momentum requires a momentum and zero dampening");
  bool with_momentum = momentum != 0;
  VT_CHECK_VALUE(with_momentum || momentum_buffers.empty(), "_fused_sgd_: momentum is 0 but ",
                 momentum_buffers.size(), " momentum buffers were passed; pass none");
  Rows rows = with_momentum ? prepare_rows("_fused_sgd_", {{"params", params}, {"grads", grads},
                                                           {"momentum_buffers", momentum_buffers}})
                            : prepare_rows("_fused_sgd_", {{"params", params}, {"grads", grads}});
  if (rows.rows() == 0) return;
  std::vector<NoExtra> per_row(rows.rows());
  VT_DISPATCH_FLOATING(rows.dtype, "_fused_sgd_", [&] {
    using T = opmath_t<scalar_t>;
    auto run = [&](auto step) {
      step.lr = T(lr), step.momentum = T(momentum), step.one_minus_dampening = T(1 - dampening);
      step.weight_decay = T(weight_decay), step.nesterov = nesterov, step.maximize = maximize;
      step.first_step = is_first_step;
      Launch::template apply<scalar_t>(rows, per_row, step);
    };
    if (with_momentum) run(SgdStep<T, true>{});
    else run(SgdStep<T, false>{});
  });
  finish_rows(rows);
}

template <typename Launch> void register_fused_optim(Library& m, DispatchKey key) {
  m.impl("_fused_adamw_", key, &fused_adamw_<Launch>);
  m.impl("_fused_adamw_capturable_", key, &fused_adamw_capturable_<Launch>);
  m.impl("_fused_sgd_", key, &fused_sgd_<Launch>);
}

}  // namespace vt::optim
