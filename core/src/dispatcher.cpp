// Dispatcher registration, schema checks and the boxed call path. The typed fast path lives in the header.
#include "vt/core/dispatcher.h"

#include <algorithm>

namespace vt {

std::string_view dispatch_key_name(DispatchKey k) {
  switch (k) {
    case DispatchKey::CPU: return "CPU";
    case DispatchKey::CUDA: return "CUDA";
    case DispatchKey::Any: return "Any";
  }
  return "?";
}

namespace detail {

bool needs_grad(const Stack& s) {
  for (const IValue& v : s) {
    if (auto* t = std::get_if<Tensor>(&v)) {
      if (needs_grad(*t)) return true;
    } else if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) {
      if (needs_grad(TensorList(*ts))) return true;
    }
  }
  return false;
}

void DeviceCollector::add(const Tensor& t, int arg) {
  if (!t.defined()) return;
  Device d = t.device();
  any_cuda_ = any_cuda_ || d.is_cuda();
  if (d.is_cpu() && t.dim() == 0) {  // CPU scalars may accompany tensors on any device
    if (!scalar_device_) scalar_device_ = d;
    return;
  }
  cpu_tensor_ = cpu_tensor_ || d.is_cpu();
  if (nseen_ < kSeen) seen_[nseen_] = {&t, arg};
  ++nseen_;
  if (!device_) {
    device_ = d;
    device_arg_ = arg;
  } else if (*device_ != d && !conflict_) {
    conflict_ = {arg, d};
  }
}

void DeviceCollector::add_ivalue(const IValue& v, int arg) {
  if (auto* t = std::get_if<Tensor>(&v)) add(*t, arg);
  else if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) add(TensorList(*ts), arg);
  else if (auto* d = std::get_if<Device>(&v)) add(*d, arg);
}

void OverlapCheck::add(TensorList ts, int arg) {
  if (arg == 0) {
    written_ = ts;
    for (const Tensor& w : ts)
      if (w.defined() && !policy_.self_may_overlap_itself) assert_no_internal_overlap(w, op_);
    return;
  }
  if (arg < 32 && (policy_.unchecked_args >> arg & 1)) return;
  const bool disjoint = arg < 32 && (policy_.disjoint_args >> arg & 1);
  for (const Tensor& w : written_)
    for (const Tensor& t : ts) {
      if (!w.defined() || !t.defined()) continue;
      if (disjoint) assert_no_overlap(w, t, op_);
      else assert_no_partial_overlap(w, t, op_);
    }
}

void OverlapCheck::add_ivalue(const IValue& v, int arg) {
  if (auto* t = std::get_if<Tensor>(&v)) add(*t, arg);
  else if (auto* ts = std::get_if<std::vector<Tensor>>(&v)) add(TensorList(*ts), arg);
}

DispatchKey DeviceCollector::key(bool check_same) const {
  if (check_same && conflict_) {
    auto argname = [&](int i) {
      return i >= 0 && size_t(i) < schema_->args.size() ? "'" + schema_->args[size_t(i)].name + "'" : "?";
    };
    VT_FAIL(schema_->name, ": expected all tensors to be on the same device, but found at least two devices, ",
            device_->str(), " (argument ", argname(device_arg_), ") and ", conflict_->second.str(), " (argument ",
            argname(conflict_->first), ")");
  }
  // Multi-device ops (copies) mixing CPU and CUDA tensors are the CUDA kernel's to handle.
  if (!check_same && any_cuda_) return DispatchKey::CUDA;
  std::optional<Device> d = device_ ? device_ : explicit_device_ ? explicit_device_ : scalar_device_;
  return d && d->is_cuda() ? DispatchKey::CUDA : DispatchKey::CPU;
}

}  // namespace detail

const KernelFunction& OperatorEntry::backend_kernel(DispatchKey key) const {
  const KernelFunction* k = backend_[int(key)].load(std::memory_order_acquire);
  if (!k) k = backend_[int(DispatchKey::Any)].load(std::memory_order_acquire);
  if (!k) [[unlikely]] {
    VT_FAIL_KIND(NotImplemented, name_, ": no kernel registered for the ", dispatch_key_name(key),
                 " backend", key == DispatchKey::CUDA ? " (CUDA kernels arrive with the CUDA runtime)" : "");
  }
  return *k;
}

// Note [Boxed argument check]
// Boxed callers (Python, Python kernels redispatching, plugins) build the stack themselves, so the kernels
// behind them could otherwise see a stack of the wrong length or an undefined tensor where the schema has none:
// a None inside a "Tensor[]" list (torch raises TypeError) would reach kernels that read every element. The
// check is a walk over the list arguments; the typed fast path needs none (C++ types fix the shape).
static void check_boxed_args(const FunctionSchema& schema, const Stack& s) {
  VT_CHECK_TYPE(s.size() == schema.args.size(), schema.name, "() takes ", schema.args.size(), " arguments but ",
                s.size(), " were given");
  for (size_t i = 0; i < s.size(); ++i) {
    const Argument& a = schema.args[i];
    if (a.type != ArgType::TensorList || a.optional_elements) continue;
    const auto* list = std::get_if<std::vector<Tensor>>(&s[i]);
    if (!list) continue;
    for (size_t j = 0; j < list->size(); ++j)
      VT_CHECK_TYPE((*list)[j].defined(), schema.name, "(): expected Tensor as element ", j, " in argument '",
                    a.name, "', but got None");
  }
}

void OperatorEntry::call_boxed(Layer from, Stack& s) const {
  check_boxed_args(schema_, s);
  if (from == Layer::Python && profiler::active()) [[unlikely]] {
    profiler::Range range(name_, detail::stack_shapes(s));
    return call_boxed_layers(from, s);
  }
  call_boxed_layers(from, s);
}

detail::Shapes detail::stack_shapes(const Stack& s) {
  Shapes out;
  if (!profiler::recording_shapes()) return out;
  for (const IValue& v : s) {
    if (auto* t = std::get_if<Tensor>(&v)) add_shape(out, *t);
    else if (auto* l = std::get_if<std::vector<Tensor>>(&v)) add_shape(out, TensorList(*l));
    else out.emplace_back();
  }
  return out;
}

void OperatorEntry::call_boxed_layers(Layer from, Stack& s) const {
  if (from <= Layer::Python) {
    if (const KernelFunction* k = python_.load(std::memory_order_acquire)) return k->call_boxed(s);
  }
  if (from <= Layer::Autocast) {
    if (const KernelFunction* k = autocast_.load(std::memory_order_acquire); k && autocast_active())
      return k->call_boxed(s);
  }
  if (from <= Layer::Autograd && detail::needs_grad(s) && autograd::is_grad_enabled()) {
    if (const KernelFunction* k = autograd_.load(std::memory_order_acquire)) return k->call_boxed(s);
  }
  detail::DeviceCollector dc(&schema_);
  for (size_t i = 0; i < s.size(); ++i) dc.add_ivalue(s[i], int(i));
  if (inplace_.inplace && !inplace_.checked_by_op) {
    detail::OverlapCheck oc(inplace_, name_);
    for (size_t i = 0; i < s.size(); ++i) oc.add_ivalue(s[i], int(i));
  }
  if (dc.cross_cuda() && policy_ == DevicePolicy::SameDevice && call_cross_device(s)) return;
  backend_kernel(dc.key(policy_ == DevicePolicy::SameDevice)).call_boxed(s);
}

namespace {
std::atomic<detail::CrossDeviceHook*> g_cross_device_hook{nullptr};
}
void detail::set_cross_device_hook(CrossDeviceHook* hook) { g_cross_device_hook.store(hook, std::memory_order_release); }
detail::CrossDeviceHook* detail::cross_device_hook() { return g_cross_device_hook.load(std::memory_order_acquire); }

bool OperatorEntry::call_cross_device(Stack& s) const {
  detail::CrossDeviceHook* hook = detail::cross_device_hook();
  return hook && hook->run(*this, s);
}

void OperatorEntry::check_signature(const std::vector<std::pair<ArgType, bool>>& sig, int nreturns) const {
  auto describe = [&]() {
    std::string out = "(";
    for (size_t i = 0; i < sig.size(); ++i) {
      out += (i ? ", " : "") + std::string(arg_type_name(sig[i].first)) + (sig[i].second ? "?" : "");
    }
    return out + ")";
  };
  bool ok = sig.size() == schema_.args.size();
  for (size_t i = 0; ok && i < sig.size(); ++i) {
    const Argument& a = schema_.args[i];
    // "Tensor?" arrives as a possibly undefined Tensor, so optionality of Tensors is not part of the C++ type.
    ok = a.type == sig[i].first && (a.type == ArgType::Tensor || a.optional == sig[i].second);
  }
  int expected_returns = 0;
  for (ArgType r : schema_.returns) expected_returns += 1, (void)r;
  ok = ok && expected_returns == nreturns;
  VT_CHECK(ok, "kernel for ", name_, " has C++ signature ", describe(), " returning ", nreturns,
           " value(s), which does not match the schema '", schema_.text, "'");
}

void OperatorEntry::set_schema_locked(FunctionSchema schema, DevicePolicy policy, OpKind kind) {
  VT_CHECK(!has_schema_, "operator ", name_, " is already defined (schema '", schema_.text, "')");
  if (pending_returns_ >= 0) {
    std::swap(schema_, schema);
    try {
      check_signature(pending_signature_, pending_returns_);
    } catch (...) {
      std::swap(schema_, schema);
      throw;
    }
  } else {
    schema_ = std::move(schema);
  }
  policy_ = policy;
  kind_ = kind;
  inplace_ = inplace_policy(name_);
  has_schema_ = true;
}

void OperatorEntry::set_schema(FunctionSchema schema, DevicePolicy policy, OpKind kind) {
  {
    std::lock_guard<std::mutex> g(Dispatcher::get().registration_mutex());
    set_schema_locked(std::move(schema), policy, kind);
  }
  Dispatcher::get().notify_defined(*this);
}

void OperatorEntry::set_backend(DispatchKey key, std::unique_ptr<KernelFunction> k,
                                std::vector<std::pair<ArgType, bool>> sig, int nreturns) {
  std::lock_guard<std::mutex> g(Dispatcher::get().registration_mutex());
  if (has_schema_) check_signature(sig, nreturns);
  else pending_signature_ = std::move(sig), pending_returns_ = nreturns;
  backend_[int(key)].store(k.get(), std::memory_order_release);
  keep_alive_.push_back(std::move(k));
}

void OperatorEntry::set_boxed_backend(DispatchKey key, std::unique_ptr<KernelFunction> k) {
  std::lock_guard<std::mutex> g(Dispatcher::get().registration_mutex());
  set_boxed_backend_locked(key, std::move(k));
}

void OperatorEntry::set_boxed_backend_locked(DispatchKey key, std::unique_ptr<KernelFunction> k) {
  VT_INTERNAL_ASSERT(k && k->boxed, "boxed kernel expected");
  backend_[int(key)].store(k.get(), std::memory_order_release);
  keep_alive_.push_back(std::move(k));
}

std::atomic<const KernelFunction*>& OperatorEntry::slot(Layer layer) {
  VT_INTERNAL_ASSERT(layer != Layer::Backend);
  return layer == Layer::Python ? python_ : layer == Layer::Autocast ? autocast_ : autograd_;
}

void OperatorEntry::set_layer(Layer layer, std::unique_ptr<KernelFunction> k) {
  VT_INTERNAL_ASSERT(layer != Layer::Backend);
  std::lock_guard<std::mutex> g(Dispatcher::get().registration_mutex());
  slot(layer).store(k.get(), std::memory_order_release);
  if (k) keep_alive_.push_back(std::move(k));
}

const KernelFunction* OperatorEntry::installed(Layer layer, DispatchKey key) const {
  if (layer == Layer::Backend) return backend_[int(key)].load(std::memory_order_acquire);
  return const_cast<OperatorEntry*>(this)->slot(layer).load(std::memory_order_acquire);
}

bool OperatorEntry::reinstall(Layer layer, DispatchKey key, const KernelFunction* k) {
  std::lock_guard<std::mutex> g(Dispatcher::get().registration_mutex());
  bool owned = std::any_of(keep_alive_.begin(), keep_alive_.end(), [&](const auto& p) { return p.get() == k; });
  if (!owned) return false;
  (layer == Layer::Backend ? backend_[int(key)] : slot(layer)).store(k, std::memory_order_release);
  return true;
}

Dispatcher& Dispatcher::get() {
  static Dispatcher* d = new Dispatcher();  // leaked on purpose: kernels may run during static destruction
  return *d;
}

OperatorEntry& Dispatcher::entry(std::string_view name) {
  std::lock_guard<std::mutex> g(map_mu_);
  auto it = ops_.find(std::string(name));
  if (it == ops_.end()) it = ops_.emplace(std::string(name), std::make_unique<OperatorEntry>(std::string(name))).first;
  return *it->second;
}

OperatorEntry* Dispatcher::find(std::string_view name) {
  std::lock_guard<std::mutex> g(map_mu_);
  auto it = ops_.find(std::string(name));
  return it == ops_.end() || !it->second->has_schema() ? nullptr : it->second.get();
}

std::vector<std::string> Dispatcher::op_names() {
  std::lock_guard<std::mutex> g(map_mu_);
  std::vector<std::string> names;
  for (auto& [n, e] : ops_)
    if (e->has_schema()) names.push_back(n);
  std::sort(names.begin(), names.end());
  return names;
}

void Dispatcher::define_all(std::vector<OpDefinition> defs) {
  std::vector<OperatorEntry*> entries;
  for (OpDefinition& d : defs) entries.push_back(&entry(d.schema.name));
  {
    std::lock_guard<std::mutex> g(mu_);
    for (size_t i = 0; i < defs.size(); ++i) {
      VT_CHECK(!entries[i]->has_schema(), "operator ", defs[i].schema.name, " is already defined (schema '",
               entries[i]->schema().text, "')");
      for (size_t j = 0; j < i; ++j)
        VT_CHECK(entries[j] != entries[i], "operator ", defs[i].schema.name, " is defined twice");
    }
    // Kernels first, then the schema that makes the op visible to find().
    for (size_t i = 0; i < defs.size(); ++i) {
      for (auto& [key, k] : defs[i].kernels) entries[i]->set_boxed_backend_locked(key, std::move(k));
      entries[i]->set_schema_locked(std::move(defs[i].schema), defs[i].policy, defs[i].kind);
    }
  }
  for (OperatorEntry* e : entries) notify_defined(*e);
}

void Dispatcher::on_define(std::function<void(OperatorEntry&)> listener) {
  std::lock_guard<std::mutex> g(listeners_mu_);
  listeners_.push_back(std::move(listener));
}

void Dispatcher::notify_defined(OperatorEntry& e) {
  std::vector<std::function<void(OperatorEntry&)>> ls;
  {
    std::lock_guard<std::mutex> g(listeners_mu_);
    ls = listeners_;
  }
  for (auto& l : ls) l(e);
}

OperatorEntry& Library::entry(std::string_view name) {
  std::string full = name.find("::") == std::string_view::npos ? ns_ + "::" + std::string(name) : std::string(name);
  return Dispatcher::get().entry(full);
}

Library& Library::def(std::string_view schema_text, DevicePolicy policy, OpKind kind) {
  FunctionSchema schema = parse_schema(schema_text);
  if (schema.name.find("::") == std::string::npos) schema.name = ns_ + "::" + schema.name;
  Dispatcher::get().entry(schema.name).set_schema(std::move(schema), policy, kind);
  return *this;
}

}  // namespace vt
