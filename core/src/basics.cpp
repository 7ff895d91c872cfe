// Small shared pieces of the tensor model: error plumbing, dtype names and promotion, device strings, shapes.
#include <array>
#include <cstdlib>
#include <new>

#include "cpu_allocator.h"
#include "vt/core/scalar.h"
#include "vt/core/tensor.h"
#include "vt/cuda/device.h"
#include "vt/cuda/memory.h"

namespace vt {

namespace detail {
void internal_fail(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(ErrorKind::Runtime, str_cat("internal error in vibetensor at ", file, ":", line, ": ", cond,
                                          msg.empty() ? "" : " (", msg, msg.empty() ? "" : ")",
                                          ". Please report this bug."));
}
}  // namespace detail

std::string_view dtype_name(ScalarType t) {
  constexpr std::array<std::string_view, kNumScalarTypes> names = {
      "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"};
  return names[size_t(t)];
}

ScalarType parse_dtype(std::string_view n) {
  if (n.starts_with("torch.")) n.remove_prefix(6);
  if (n.starts_with("vt.")) n.remove_prefix(3);
  for (int i = 0; i < kNumScalarTypes; ++i)
    if (dtype_name(ScalarType(i)) == n) return ScalarType(i);
  struct Alias { std::string_view name; ScalarType t; };
  constexpr Alias aliases[] = {{"float", ScalarType::Float32}, {"double", ScalarType::Float64},
                               {"half", ScalarType::Float16},  {"long", ScalarType::Int64},
                               {"int", ScalarType::Int32},     {"short", ScalarType::Int16}};
  for (const Alias& a : aliases)
    if (a.name == n) return a.t;
  VT_FAIL_KIND(Type, "unknown dtype '", n, "'; expected one of bool, uint8, int8, int16, int32, int64, float16, ",
               "bfloat16, float32, float64");
}

ScalarType promote_types(ScalarType a, ScalarType b) {
  using S = ScalarType;
  if (a == b) return a;
  if (a == S::Bool) return b;
  if (b == S::Bool) return a;
  if (is_floating(a) && is_floating(b)) {
    if ((a == S::Float16 && b == S::BFloat16) || (a == S::BFloat16 && b == S::Float16)) return S::Float32;
    return itemsize(a) >= itemsize(b) ? a : b;
  }
  if (is_floating(a)) return a;
  if (is_floating(b)) return b;
  // Both integral. uint8 is the only unsigned type: with a signed type of the same width it widens.
  if (a == S::UInt8 || b == S::UInt8) {
    S other = a == S::UInt8 ? b : a;
    return other == S::Int8 ? S::Int16 : other;
  }
  return itemsize(a) >= itemsize(b) ? a : b;
}

bool can_cast(ScalarType from, ScalarType to) {
  auto rank = [](ScalarType t) { return is_floating(t) ? 2 : is_integral(t, false) ? 1 : 0; };
  return rank(from) <= rank(to);
}

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return index < 0 ? "cuda" : "cuda:" + std::to_string(index);
}

Device parse_device(std::string_view s) {
  if (s == "cpu") return kCPU;
  if (s.starts_with("cuda")) {
    std::string_view rest = s.substr(4);
    if (rest.empty()) return Device(DeviceType::CUDA, -1);
    if (rest[0] == ':' && rest.size() > 1 && rest.size() <= 4) {
      int idx = 0;
      bool ok = true;
      for (char c : rest.substr(1)) ok = ok && c >= '0' && c <= '9', idx = idx * 10 + (c - '0');
      if (ok && idx < 128) return Device(DeviceType::CUDA, idx);
    }
  }
  VT_FAIL("invalid device string '", s, "': expected 'cpu', 'cuda' or 'cuda:N'");
}

std::string shape_str(IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t prod(IntArrayRef s) {
  int64_t n = 1;
  for (int64_t v : s) VT_CHECK(!__builtin_mul_overflow(n, v, &n), "shape ", shape_str(s), " has more elements than int64 holds");
  return n;
}

int64_t wrap_dim(int64_t dim, int64_t ndim) {
  int64_t n = ndim == 0 ? 1 : ndim;
  VT_CHECK_INDEX(dim >= -n && dim < n, "Dimension out of range (expected to be in range of [", -n, ", ", n - 1,
                 "], but got ", dim, ")");
  return dim < 0 ? dim + n : dim;
}

// ---- TensorImpl ----

TensorImpl::TensorImpl(std::shared_ptr<Storage> storage, ScalarType dtype, IntArrayRef sizes, IntArrayRef strides,
                       int64_t offset)
    : storage_(std::move(storage)), sizes_(sizes), strides_(strides), offset_(offset), dtype_(dtype) {
  refresh();
}

void TensorImpl::set_sizes_strides(IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  sizes_.assign(sizes);
  strides_.assign(strides);
  offset_ = offset;
  refresh();
}

// Note [Data assignment]: `param.data = t` (weight initialisation, EMA and the old Module._apply idiom) swaps
// what the tensor views but not what it is: the same Python object, the same AutogradMeta (requires_grad, a
// leaf's .grad and hooks), so optimizers and modules holding it see the new values. Views made before keep the
// old storage, as in torch.
void TensorImpl::set_data(const TensorImpl& other) {
  if (&other == this) return;
  storage_ = other.storage_;
  dtype_ = other.dtype_;
  sizes_ = other.sizes_;
  strides_ = other.strides_;
  offset_ = other.offset_;
  wrapped_number_ = false;
  refresh();
}

void TensorImpl::refresh() {
  numel_ = prod(sizes_);
  // Contiguous: strides are row-major for every dim of size > 1 (size-1 dims may have any stride).
  contiguous_ = true;
  int64_t expected = 1;
  for (int64_t d = int64_t(sizes_.size()) - 1; d >= 0; --d) {
    if (sizes_[size_t(d)] == 1) continue;
    if (strides_[size_t(d)] != expected) {
      contiguous_ = numel_ == 0;
      break;
    }
    expected *= sizes_[size_t(d)];
  }
}

DimVector contiguous_strides(IntArrayRef sizes) {
  DimVector st(sizes.size());
  int64_t s = 1;
  for (int64_t d = int64_t(sizes.size()) - 1; d >= 0; --d) {
    st[size_t(d)] = s;
    s *= std::max<int64_t>(sizes[size_t(d)], 1);
  }
  return st;
}

Tensor empty_tensor(IntArrayRef sizes, ScalarType dtype, Device device) {
  for (int64_t s : sizes) VT_CHECK(s >= 0, "negative dimension ", s, " in shape ", shape_str(sizes));
  int64_t n = prod(sizes);  // checked for overflow
  int64_t nbytes = 0;
  VT_CHECK(n <= (int64_t(1) << 48) && !__builtin_mul_overflow(n, itemsize(dtype), &nbytes), "absurd tensor size: ",
           shape_str(sizes), " has ", n, " elements");
  auto storage = allocate_storage(size_t(n * itemsize(dtype)), device);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dtype, sizes, contiguous_strides(sizes), 0));
}

Tensor make_view(const Tensor& base, IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(base.storage(), base.dtype(), sizes, strides, offset));
}

Tensor scalar_to_tensor(const Scalar& s, ScalarType dtype) {
  Tensor t = empty_tensor({}, dtype, kCPU);
  VT_DISPATCH_ALL(dtype, "scalar_to_tensor", [&] { *t.data<scalar_t>() = s.to<scalar_t>(); });
  t.impl()->set_wrapped_number(true);
  return t;
}

Scalar item_scalar(const Tensor& t) {
  VT_CHECK(t.numel() == 1 && t.device().is_cpu(), "expected a one-element CPU tensor, got shape ",
           shape_str(t.sizes()), " on ", t.device().str());
  return VT_DISPATCH_ALL(t.dtype(), "item", [&]() -> Scalar {
    scalar_t v = *t.data<scalar_t>();
    if constexpr (std::is_same_v<scalar_t, bool>) return Scalar(v);
    else if constexpr (std::is_integral_v<scalar_t>) return Scalar(int64_t(v));
    else return Scalar(double(opmath_t<scalar_t>(v)));
  });
}

// ---- storage ----

void Storage::refuse_inference_write() {  // Note [Inference tensors]
  VT_FAIL("Inplace update to inference tensor outside InferenceMode is not allowed. You can make a clone to get a "
          "normal tensor before doing inplace update.");
}

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device) {
  if (device.is_cuda()) return cuda::allocate_storage(nbytes, device);
  return std::make_shared<Storage>(cpu_alloc::allocate(nbytes), nbytes, kCPU);  // Note [CPU block cache]
}

}  // namespace vt
