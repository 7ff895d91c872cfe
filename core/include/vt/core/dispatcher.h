#pragma once
// The dispatcher: op name -> schema + kernels. An op is defined once by a schema-lite string
//   def("vt::add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor")
// and gets kernels per backend key (CPU, CUDA, or Any for device-agnostic code such as views). Calls pass
// through up to four layers, outermost first: a Python override (vibetensor.library), autocast's casts (only ops
// with an autocast policy, only inside an autocast region: vt/core/autocast.h), an autograd wrapper, then the
// backend kernel chosen from the devices of the tensor arguments. A layer may redispatch to the next.
//
// Note [Unboxed fast path]
// Built-in ops are called from C++ with their real argument types (OperatorEntry::call). When no Python
// override is installed and the kernel was registered as a C++ function of the same signature, the call is a
// device check plus an indirect call: no boxing, no allocation, no lock. Boxed calls (Python's vt.ops, Python
// overrides, plugins) go through Stack and work for every kernel, because registering a C++ kernel also
// records a boxed adapter for it.
//
// Note [Dispatcher locking]
// Registration takes one mutex. Calls never do: kernel slots are atomic pointers to KernelFunctions that are
// never freed once published (a replaced kernel is kept alive), so a concurrent call sees either the old or the
// new kernel, both valid.
//
// Note [Reusable boxed kernels]
// Kept-alive kernels would grow without bound if a program re-registered a Python kernel in a loop. So a
// registrar that replaces its own kernel again and again (the Python bindings) makes one KernelFunction per
// slot whose callable it swaps in place under its own lock (the GIL), and puts that same object back with
// reinstall() after a removal: the replaced callable is freed, and no KernelFunction ever is.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include "vt/autograd/grad_mode.h"
#include "vt/core/autocast.h"
#include "vt/core/ivalue.h"
#include "vt/core/memory_overlap.h"
#include "vt/core/profiler.h"

namespace vt {

struct Argument {
  std::string name;
  ArgType type;
  bool optional = false;
  bool optional_elements = false;  // "Tensor?[]": elements may be None (index lists); "Tensor[]" never
  bool kwarg_only = false;
  std::optional<IValue> default_value;
};

struct FunctionSchema {
  std::string name;  // "vt::add"
  std::vector<Argument> args;
  std::vector<ArgType> returns;
  std::string text;
};
// Parses the schema-lite grammar; throws RuntimeError naming the offending text.
FunctionSchema parse_schema(std::string_view text);

enum class DispatchKey : uint8_t { CPU, CUDA, Any };
inline constexpr int kNumBackendKeys = 3;
std::string_view dispatch_key_name(DispatchKey k);

enum class Layer : uint8_t { Python, Autocast, Autograd, Backend };

// Which devices an op's tensor arguments may live on.
enum class DevicePolicy : uint8_t {
  SameDevice,  // all on one device; 0-dim CPU tensors (scalars) may join tensors of any device
  AnyDevice,   // the kernel checks devices itself (Fabric ops, cross-device copies)
};

// How an op takes part in autograd (Note [Autograd kernels] in vt/autograd/formula.h).
enum class OpKind : uint8_t {
  Primitive,  // gets an autograd kernel: its formula, or one whose backward says the derivative is missing
  Composite,  // runs with grad mode on and the ops it calls record the graph (torch's CompositeImplicitAutograd)
};

using BoxedFn = std::function<void(Stack&)>;

struct KernelFunction {
  void* unboxed = nullptr;
  const std::type_info* signature = nullptr;
  void (*boxed_adapter)(void* fn, Stack&) = nullptr;
  BoxedFn boxed;  // set for kernels that exist only boxed (Python overrides, plugins)

  void call_boxed(Stack& s) const { boxed ? boxed(s) : boxed_adapter(unboxed, s); }
};

class OperatorEntry;

namespace detail {
template <typename R, typename... Args, size_t... I>
void call_from_stack(void* fn, Stack& s, std::index_sequence<I...>) {
  auto f = reinterpret_cast<R (*)(Args...)>(fn);
  if constexpr (std::is_void_v<R>) {
    f(BoxTraits<std::decay_t<Args>>::unbox(s[I])...);
    s.clear();
  } else {
    R r = f(BoxTraits<std::decay_t<Args>>::unbox(s[I])...);
    s.clear();
    ReturnTraits<R>::push(s, std::move(r));
  }
}
template <typename R, typename... Args>
void boxed_adapter(void* fn, Stack& s) {
  VT_INTERNAL_ASSERT(s.size() == sizeof...(Args), "stack size");
  call_from_stack<R, Args...>(fn, s, std::index_sequence_for<Args...>{});
}

// Note [Autograd layer gate]
// The autograd layer runs only when grad mode is on and some tensor argument requires grad; every other call
// goes straight to its backend. The test is one flag load per tensor argument (Note [Requires-grad flag]), so
// ops on tensors outside autograd keep the unboxed fast path at its old cost.
inline bool needs_grad(const Tensor& t) { return t.defined() && t.impl()->requires_grad(); }
inline bool needs_grad(TensorList ts) {
  for (const Tensor& t : ts)
    if (needs_grad(t)) return true;
  return false;
}
template <typename T> bool needs_grad(const T&) { return false; }
bool needs_grad(const Stack& s);

// The argument shapes the profiler records (record_shapes): a tensor's sizes, each tensor of a list, [] for the
// rest, as torch's "Input Shapes".
using Shapes = std::vector<std::vector<int64_t>>;
inline void add_shape(Shapes& out, const Tensor& t) {
  out.emplace_back(t.defined() ? std::vector<int64_t>(t.sizes().begin(), t.sizes().end()) : std::vector<int64_t>{});
}
inline void add_shape(Shapes& out, TensorList ts) {
  for (const Tensor& t : ts) add_shape(out, t);
}
template <typename T> void add_shape(Shapes& out, const T&) { out.emplace_back(); }
template <typename... Args> Shapes arg_shapes(const Args&... args) {
  Shapes out;
  if (profiler::recording_shapes()) (add_shape(out, args), ...);
  return out;
}
Shapes stack_shapes(const Stack& s);

// Note [Cross-device calls]
// A SameDevice op whose tensor arguments live on several CUDA devices is an error (torch's message), unless a
// cross-device hook is installed and allows it: the Fabric layer installs one while a Fabric is open. The call
// then leaves the unboxed fast path: its arguments are boxed and handed to the hook, which picks the compute
// device (the `out` argument's, else the first tensor's), orders that device's current stream after the current
// streams of the other devices (events; the host never waits), stages operands that cannot be read through a
// peer mapping, runs the CUDA kernel there, and tells the allocator the remote memory was used on the compute
// stream. Kernels read remote operands through unified addresses, so no kernel knows it is cross-device. Calls
// on one device never look at the hook.
// What a cross-device call needs from its tensor arguments: each operand and the index of its schema argument.
struct TensorArg {
  const Tensor* tensor;
  int arg;
};
// Finishes an unboxed cross-device call when destroyed (after the kernel was queued): restores the device and
// tells the allocator the remote memory was used on the compute stream.
class CrossDeviceScope {
 public:
  virtual ~CrossDeviceScope() = default;
};
class CrossDeviceHook {
 public:
  virtual ~CrossDeviceHook() = default;
  // The unboxed path: when every remote operand can be read in place, orders the compute stream, makes the
  // compute device current and returns the scope that finishes the call; null when the call needs the boxed
  // run() (an operand must be staged, or no open Fabric covers the devices).
  virtual std::unique_ptr<CrossDeviceScope> begin(const OperatorEntry& op, const TensorArg* tensors, int n) = 0;
  // Runs `op`'s CUDA kernel on the boxed arguments `s`, which span several CUDA devices; false (nothing done)
  // when no open Fabric covers these devices.
  virtual bool run(const OperatorEntry& op, Stack& s) = 0;
};
// Installed by the Fabric layer; null by default.
void set_cross_device_hook(CrossDeviceHook* hook);
CrossDeviceHook* cross_device_hook();

// Finds the backend key from the devices of the arguments and enforces DevicePolicy::SameDevice.
class DeviceCollector {
 public:
  explicit DeviceCollector(const struct FunctionSchema* schema) : schema_(schema) {}
  void add(const Tensor& t, int arg);
  void add(TensorList ts, int arg) {
    for (const Tensor& t : ts) add(t, arg);
  }
  void add(const std::optional<Device>& d, int) {
    if (d && !explicit_device_) explicit_device_ = d;
  }
  void add(const Device& d, int) {
    if (!explicit_device_) explicit_device_ = d;
  }
  template <typename T> void add(const T&, int) {}
  void add_ivalue(const IValue& v, int arg);
  DispatchKey key(bool check_same) const;
  // The tensor arguments seen (up to kSeen; overflowed() beyond), for the unboxed cross-device path.
  static constexpr int kSeen = 8;
  const TensorArg* seen() const { return seen_; }
  int nseen() const { return nseen_; }
  bool overflowed() const { return nseen_ > kSeen; }
  // Non-scalar tensors on two or more devices, all of them CUDA (Note [Cross-device calls]).
  bool cross_cuda() const { return conflict_ && !cpu_tensor_ && device_->is_cuda(); }

 private:
  const FunctionSchema* schema_;
  std::optional<Device> device_, scalar_device_, explicit_device_;
  int device_arg_ = -1;
  bool any_cuda_ = false;
  bool cpu_tensor_ = false;  // a non-scalar CPU tensor takes part
  std::optional<std::pair<int, Device>> conflict_;
  TensorArg seen_[kSeen];
  int nseen_ = 0;
};
// Note [In-place overlap] (vt/core/memory_overlap.h): argument 0 is the written tensor (or list); every later
// tensor argument is checked against it. Arguments arrive in order, so argument 0 is recorded first.
class OverlapCheck {
 public:
  OverlapCheck(const InplacePolicy& p, const std::string& op) : policy_(p), op_(op) {}
  void add(const Tensor& t, int arg) { add(TensorList(&t, 1), arg); }
  void add(TensorList ts, int arg);
  template <typename T> void add(const T&, int) {}
  void add_ivalue(const IValue& v, int arg);

 private:
  const InplacePolicy& policy_;
  const std::string& op_;
  TensorList written_;
};
}  // namespace detail

class OperatorEntry {
 public:
  explicit OperatorEntry(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  const FunctionSchema& schema() const { return schema_; }
  bool has_schema() const { return has_schema_; }
  DevicePolicy policy() const { return policy_; }
  OpKind kind() const { return kind_; }

  // Typed call starting at `from`. Args are the exact parameter types of the op's C++ signature. A call from the
  // outermost layer is one profiler range while the profiler records (Note [Profiler cost when off]).
  template <typename R, typename... Args>
  R call(Layer from, Args... args) const {
    if (from == Layer::Python && profiler::active()) [[unlikely]] {
      profiler::Range range(name_, detail::arg_shapes(args...));
      return call_layers<R, Args...>(from, args...);
    }
    return call_layers<R, Args...>(from, args...);
  }
  template <typename R, typename... Args>
  R call(Args... args) const {
    return call<R, Args...>(Layer::Python, args...);
  }
  // Boxed call: the stack holds one IValue per schema argument (defaults already filled) and receives the
  // results. The stack is checked against the schema first (Note [Boxed argument check]).
  void call_boxed(Layer from, Stack& s) const;
  // The backend kernel of `key` on a boxed stack, with no device checks (for the cross-device hook).
  void call_backend_boxed(DispatchKey key, Stack& s) const { backend_kernel(key).call_boxed(s); }

  // Registration (Note [Dispatcher locking]); done through Library.
  void set_schema(FunctionSchema schema, DevicePolicy policy, OpKind kind = OpKind::Primitive);
  void set_backend(DispatchKey key, std::unique_ptr<KernelFunction> k, std::vector<std::pair<ArgType, bool>> sig,
                   int nreturns);
  void set_layer(Layer layer, std::unique_ptr<KernelFunction> k);  // null k removes the layer
  // A kernel that exists only boxed (Python, plugins); it replaces any kernel the key had.
  void set_boxed_backend(DispatchKey key, std::unique_ptr<KernelFunction> k);
  bool has_backend(DispatchKey key) const { return backend_[int(key)].load() != nullptr; }
  // The kernel installed in a slot (the Python or autograd layer, or a backend key when layer is Backend).
  const KernelFunction* installed(Layer layer, DispatchKey key) const;
  // Installs again a kernel this entry already owns (Note [Reusable boxed kernels]); false if it owns none such.
  bool reinstall(Layer layer, DispatchKey key, const KernelFunction* k);

 private:
  template <typename R, typename... Args>
  R call_layers(Layer from, Args... args) const {
    if (from <= Layer::Python) {
      if (const KernelFunction* k = python_.load(std::memory_order_acquire)) return call_boxed_typed<R>(*k, args...);
    }
    if (from <= Layer::Autocast) {  // the op's slot first: ops without a policy never read the thread-local state
      if (const KernelFunction* k = autocast_.load(std::memory_order_acquire); k && autocast_active()) [[unlikely]]
        return call_boxed_typed<R>(*k, args...);
    }
    if (from <= Layer::Autograd && (detail::needs_grad(args) || ...) && autograd::is_grad_enabled()) {
      if (const KernelFunction* k = autograd_.load(std::memory_order_acquire)) return invoke<R, Args...>(*k, args...);
    }
    detail::DeviceCollector dc(&schema_);
    int i = 0;
    (dc.add(args, i++), ...);
    if (inplace_.inplace && !inplace_.checked_by_op) [[unlikely]] {
      detail::OverlapCheck oc(inplace_, name_);
      int j = 0;
      (oc.add(args, j++), ...);
    }
    if (dc.cross_cuda() && policy_ == DevicePolicy::SameDevice) [[unlikely]] {
      if (detail::CrossDeviceHook* hook = detail::cross_device_hook(); hook && !dc.overflowed()) {
        if (auto scope = hook->begin(*this, dc.seen(), dc.nseen()))
          return invoke<R, Args...>(backend_kernel(DispatchKey::CUDA), args...);
      }
      Stack s;
      s.reserve(sizeof...(Args));
      (s.push_back(detail::BoxTraits<std::decay_t<Args>>::box(args)), ...);
      if (call_cross_device(s)) return detail::ReturnTraits<R>::pop(s);
    }
    return invoke<R, Args...>(backend_kernel(dc.key(policy_ == DevicePolicy::SameDevice)), args...);
  }
  void call_boxed_layers(Layer from, Stack& s) const;
  template <typename R, typename... Args>
  R invoke(const KernelFunction& k, Args... args) const {
    if (k.unboxed && *k.signature == typeid(R(Args...))) return reinterpret_cast<R (*)(Args...)>(k.unboxed)(args...);
    return call_boxed_typed<R>(k, args...);
  }
  template <typename R, typename... Args>
  R call_boxed_typed(const KernelFunction& k, Args... args) const {
    Stack s;
    s.reserve(sizeof...(Args));
    (s.push_back(detail::BoxTraits<std::decay_t<Args>>::box(args)), ...);
    k.call_boxed(s);
    return detail::ReturnTraits<R>::pop(s);
  }
  friend class Dispatcher;
  const KernelFunction& backend_kernel(DispatchKey key) const;
  std::atomic<const KernelFunction*>& slot(Layer layer);  // the slot of a layer above the backends
  bool call_cross_device(Stack& s) const;  // Note [Cross-device calls]
  // Callers hold the registration mutex.
  void set_schema_locked(FunctionSchema schema, DevicePolicy policy, OpKind kind);
  void set_boxed_backend_locked(DispatchKey key, std::unique_ptr<KernelFunction> k);
  void check_signature(const std::vector<std::pair<ArgType, bool>>& sig, int nreturns) const;

  std::string name_;
  FunctionSchema schema_;
  bool has_schema_ = false;
  DevicePolicy policy_ = DevicePolicy::SameDevice;
  OpKind kind_ = OpKind::Primitive;
  InplacePolicy inplace_;  // from the name, at set_schema (Note [In-place overlap])
  std::atomic<const KernelFunction*> backend_[kNumBackendKeys] = {};
  std::atomic<const KernelFunction*> autograd_{nullptr}, python_{nullptr}, autocast_{nullptr};
  std::vector<std::pair<ArgType, bool>> pending_signature_;  // from a kernel registered before the schema
  int pending_returns_ = -1;
  std::vector<std::unique_ptr<KernelFunction>> keep_alive_;
};

// One op of an all-or-nothing batch (Dispatcher::define_all): its schema and boxed kernels per key.
struct OpDefinition {
  FunctionSchema schema;
  DevicePolicy policy = DevicePolicy::SameDevice;
  OpKind kind = OpKind::Primitive;
  std::vector<std::pair<DispatchKey, std::unique_ptr<KernelFunction>>> kernels;
};

class Dispatcher {
 public:
  static Dispatcher& get();
  // The entry for "ns::op", created on first mention. Never invalidated.
  OperatorEntry& entry(std::string_view name);
  // Null when no op of that name has a schema.
  OperatorEntry* find(std::string_view name);
  std::vector<std::string> op_names();
  std::mutex& registration_mutex() { return mu_; }
  // Defines every op of `defs` with its kernels, or none: RuntimeError naming the first name already taken.
  void define_all(std::vector<OpDefinition> defs);
  // `listener` runs after each later op definition, outside the registration lock (autograd installs its
  // kernel this way, so ops defined after import get one too). Listeners are never removed.
  void on_define(std::function<void(OperatorEntry&)> listener);
  void notify_defined(OperatorEntry& e);

 private:
  std::mutex mu_, map_mu_, listeners_mu_;
  std::unordered_map<std::string, std::unique_ptr<OperatorEntry>> ops_;
  std::vector<std::function<void(OperatorEntry&)>> listeners_;
};

// Registration front end, used from static initialisers (VT_LIBRARY) and from plugins.
class Library {
 public:
  explicit Library(std::string ns) : ns_(std::move(ns)) {}
  Library& def(std::string_view schema, DevicePolicy policy = DevicePolicy::SameDevice, OpKind kind = OpKind::Primitive);
  Library& def(std::string_view schema, OpKind kind) { return def(schema, DevicePolicy::SameDevice, kind); }
  template <typename R, typename... Args>
  Library& impl(std::string_view name, DispatchKey key, R (*fn)(Args...)) {
    auto k = std::make_unique<KernelFunction>();
    k->unboxed = reinterpret_cast<void*>(fn);
    k->signature = &typeid(R(Args...));
    k->boxed_adapter = &detail::boxed_adapter<R, Args...>;
    std::vector<std::pair<ArgType, bool>> sig = {
        {detail::BoxTraits<std::decay_t<Args>>::type, detail::BoxTraits<std::decay_t<Args>>::optional}...};
    entry(name).set_backend(key, std::move(k), std::move(sig), detail::ReturnTraits<R>::count);
    return *this;
  }
  // Registers the same kernel for CPU and CUDA (ops whose code is device-agnostic).
  template <typename R, typename... Args>
  Library& impl_any(std::string_view name, R (*fn)(Args...)) {
    return impl(name, DispatchKey::Any, fn);
  }

 private:
  OperatorEntry& entry(std::string_view name);
  std::string ns_;
};

struct LibraryInit {
  LibraryInit(const char* ns, void (*fn)(Library&)) {
    Library lib(ns);
    fn(lib);
  }
};

// A handle to call op `name` with signature Fn from C++: looked up once, then unboxed calls.
template <typename Fn> class TypedOp;
template <typename R, typename... Args> class TypedOp<R(Args...)> {
 public:
  explicit TypedOp(std::string_view name) : entry_(&Dispatcher::get().entry(name)) {}
  R operator()(Args... args) const { return entry_->template call<R, Args...>(Layer::Python, args...); }
  R redispatch(Layer from, Args... args) const { return entry_->template call<R, Args...>(from, args...); }

 private:
  OperatorEntry* entry_;
};

}  // namespace vt

// Registers ops of namespace `ns` from a static initialiser. Files using it must be linked whole (the core is
// an OBJECT library for that reason).
#define VT_LIBRARY(ns, tag)                                              \
  static void vt_library_##tag(::vt::Library&);                          \
  static const ::vt::LibraryInit vt_library_init_##tag(#ns, &vt_library_##tag); \
  static void vt_library_##tag(::vt::Library& m)
