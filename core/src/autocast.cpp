// The autocast layer's kernels and its policy tables (vt/core/autocast.h): which dispatcher ops change
// precision inside an autocast region, per device type, and the one boxed kernel that applies a policy.
#include "vt/core/autocast.h"

#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "vt/autograd/grad_mode.h"
#include "vt/autograd/node.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt {
namespace {

using P = AutocastPolicy;
struct PolicyRow {
  std::string_view op;
  std::optional<P> cpu, cuda;
};

// torch's autocast op lists, restricted to the ops vibetensor's dispatcher defines (the Python composites get
// theirs in vibetensor/torch/amp/_composites.py). On CPU only the matrix products, prod and cross_entropy change:
// CPU kernels compute bfloat16 transcendentals, norms and softmax in float32 internally already.
constexpr P kLow = P::LowerPrecision, kF32 = P::Float32, kOpt = P::Float32OptDtype, kPromote = P::Promote;
const PolicyRow kPolicies[] = {
    {"vt::mm", kLow, kLow},
    {"vt::bmm", kLow, kLow},
    {"vt::_bmm_nd", kLow, kLow},
    {"vt::_linear_bias", kLow, kLow},
    {"vt::prod", kF32, kOpt},
    {"vt::cross_entropy", kF32, kF32},
    {"vt::acos", {}, kF32},
    {"vt::asin", {}, kF32},
    {"vt::cosh", {}, kF32},
    {"vt::sinh", {}, kF32},
    {"vt::tan", {}, kF32},
    {"vt::exp", {}, kF32},
    {"vt::expm1", {}, kF32},
    {"vt::log", {}, kF32},
    {"vt::log10", {}, kF32},
    {"vt::log2", {}, kF32},
    {"vt::log1p", {}, kF32},
    {"vt::reciprocal", {}, kF32},
    {"vt::rsqrt", {}, kF32},
    {"vt::pow", {}, kF32},
    {"vt::softplus", {}, kF32},
    {"vt::layer_norm", {}, kF32},
    {"vt::native_layer_norm", {}, kF32},
    {"vt::norm", {}, kF32},
    {"vt::logsumexp", {}, kF32},
    {"vt::softmax", {}, kOpt},
    {"vt::log_softmax", {}, kOpt},
    {"vt::cumsum", {}, kOpt},
    {"vt::cumprod", {}, kOpt},
    {"vt::sum", {}, kOpt},
    {"vt::atan2", {}, kPromote},
    {"vt::scatter_add", {}, kPromote},
};

// Note [Autocast eligibility]
bool eligible(const Tensor& t, DeviceType type) {
  return t.defined() && t.device().type == type && is_floating(t.dtype()) && t.dtype() != ScalarType::Float64;
}

template <typename F> void for_each_tensor(Stack& s, F&& f) {
  for (IValue& v : s) {
    if (auto* t = std::get_if<Tensor>(&v)) f(*t);
    else if (auto* ts = std::get_if<std::vector<Tensor>>(&v))
      for (Tensor& e : *ts) f(e);
  }
}

// The device type whose autocast settings apply: CUDA when any tensor argument is on a GPU (that is where the
// op runs), else CPU.
DeviceType call_device_type(Stack& s) {
  bool cuda = false;
  for_each_tensor(s, [&](const Tensor& t) { cuda = cuda || (t.defined() && t.device().is_cuda()); });
  return cuda ? DeviceType::CUDA : DeviceType::CPU;
}

// Note [Autocast cast cache]
struct CachedCast {
  Tensor source, cast;  // the source is held so that its address cannot be reused by another tensor meanwhile
  uint32_t version;
};
thread_local std::map<std::pair<const void*, ScalarType>, CachedCast> tls_cast_cache;
thread_local int tls_nesting = 0;

Tensor cast_to(const Tensor& t, ScalarType to, bool cacheable) {
  if (!cacheable || !tls_autocast.cache_enabled || !t.impl()->requires_grad() || !autograd::is_grad_enabled() ||
      !autograd::is_leaf(t))
    return ops::to_dtype(t, to);
  uint32_t version = t.storage()->version();
  auto key = std::make_pair(static_cast<const void*>(t.impl()), to);
  if (auto it = tls_cast_cache.find(key); it != tls_cast_cache.end() && it->second.version == version)
    return it->second.cast;
  Tensor cast = ops::to_dtype(t, to);
  tls_cast_cache[key] = CachedCast{t, cast, version};
  return cast;
}

void cast_eligible(Stack& s, DeviceType type, ScalarType to, bool cacheable = false) {
  for_each_tensor(s, [&](Tensor& t) {
    if (eligible(t, type) && t.dtype() != to) t = cast_to(t, to, cacheable);
  });
}

int first_tensor_index(const OperatorEntry& e) {
  const auto& args = e.schema().args;
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].type == ArgType::Tensor) return int(i);
  return -1;
}

int dtype_index(const OperatorEntry& e) {
  const auto& args = e.schema().args;
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].name == "dtype" && args[i].type == ArgType::ScalarType) return int(i);
  return -1;
}

void apply(const OperatorEntry& e, const PolicyRow& row, int dtype_arg, Stack& s) {
  DeviceType type = call_device_type(s);
  int k = type == DeviceType::CUDA ? 1 : 0;
  std::optional<P> policy = k ? row.cuda : row.cpu;
  if (tls_autocast.enabled[k] && policy) {
    switch (*policy) {
      case P::LowerPrecision: cast_eligible(s, type, tls_autocast.dtype[k], /*cacheable=*/true); break;
      case P::Float32: cast_eligible(s, type, ScalarType::Float32); break;
      case P::Float32OptDtype: {  // a dtype the caller gave is kept (torch: "ops called with dtype= are not eligible")
        int first = first_tensor_index(e);
        const Tensor* x = first >= 0 ? std::get_if<Tensor>(&s[size_t(first)]) : nullptr;
        if (dtype_arg >= 0 && std::holds_alternative<std::monostate>(s[size_t(dtype_arg)]) && x && eligible(*x, type))
          s[size_t(dtype_arg)] = ScalarType::Float32;
        break;
      }
      case P::Promote: {
        std::optional<ScalarType> widest;
        for_each_tensor(s, [&](const Tensor& t) {
          if (eligible(t, type)) widest = widest ? promote_types(*widest, t.dtype()) : t.dtype();
        });
        if (widest) cast_eligible(s, type, *widest);
        break;
      }
    }
  }
  AutocastSuspendGuard inner;  // Note [Autocast suspension]
  e.call_boxed(Layer::Autograd, s);
}

}  // namespace

int autocast_increment_nesting() { return ++tls_nesting; }

int autocast_decrement_nesting() {
  if (tls_nesting > 0 && --tls_nesting == 0) clear_autocast_cache();
  return tls_nesting;
}

void clear_autocast_cache() { tls_cast_cache.clear(); }

void install_autocast_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const PolicyRow& row : kPolicies) {
      OperatorEntry* e = Dispatcher::get().find(row.op);
      VT_INTERNAL_ASSERT(e != nullptr, "autocast policy for an op that is not defined: ", row.op);
      int dtype_arg = dtype_index(*e);
      VT_INTERNAL_ASSERT(dtype_arg >= 0 || (row.cpu != kOpt && row.cuda != kOpt), "autocast: ", row.op,
                         " has no dtype argument");
      auto k = std::make_unique<KernelFunction>();
      k->boxed = [e, &row, dtype_arg](Stack& s) { apply(*e, row, dtype_arg, s); };
      e->set_layer(Layer::Autocast, std::move(k));
    }
  });
}

}  // namespace vt
