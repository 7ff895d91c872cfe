// JS values <-> IValues, checked against an op's schema. Mirrors the Python binding's conversions
// (core/bindings/types.cpp, ops.cpp): the same argument checks in the same order and the same messages, with
// JavaScript type names where Python's name a Python type.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "tensor_wrap.h"

namespace vtjs {

namespace {
std::string js_type(const Napi::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "Array";
  if (is_tensor(v)) return "Tensor";
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_bigint: return "bigint";
    case napi_function: return "function";
    default: return "object";
  }
}

int64_t to_int64(const Napi::Value& v, const char* op, const char* arg) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t i = v.As<Napi::BigInt>().Int64Value(&lossless);
    VT_CHECK_VALUE(lossless, op, "(): argument '", arg, "' value is out of the int64 range");
    return i;
  }
  VT_CHECK_TYPE(v.IsNumber(), op, "(): argument '", arg, "' must be int, not ", js_type(v));
  double d = v.As<Napi::Number>().DoubleValue();
  VT_CHECK_TYPE(std::isfinite(d) && d == std::trunc(d), op, "(): argument '", arg, "' must be int, not ", d);
  VT_CHECK_VALUE(std::fabs(d) <= 9007199254740991.0, op, "(): argument '", arg,
                 "' is beyond 2^53, where numbers lose integer precision; pass a BigInt");
  return int64_t(d);
}
}  // namespace

bool is_tensor(const Napi::Value& v) { return find_tensor(v.Env(), v, "tensor") != nullptr; }

const vt::Tensor& unwrap_tensor(const Napi::Value& v, const char* what) {
  const vt::Tensor* t = find_tensor(v.Env(), v, what);
  VT_CHECK_TYPE(t != nullptr, what, " must be a Tensor, not ", js_type(v));
  return *t;
}

vt::Scalar to_scalar(const Napi::Value& v, const char* op, const char* arg) {
  if (v.IsBoolean()) return vt::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return vt::Scalar(to_int64(v, op, arg));
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d == std::trunc(d) && std::fabs(d) <= 9007199254740991.0) return vt::Scalar(int64_t(d));
    return vt::Scalar(d);
  }
  if (v.IsObject() && v.As<Napi::Object>().Has("__vtFloat")) {  // vt.scalar.float(x): a floating scalar
    return vt::Scalar(v.As<Napi::Object>().Get("__vtFloat").As<Napi::Number>().DoubleValue());
  }
  if (is_tensor(v)) {
    const vt::Tensor& t = unwrap_tensor(v, arg);
    VT_CHECK(t.numel() == 1 && t.device().is_cpu(), op, "(): argument '", arg,
             "' must be a number or a one-element CPU tensor, got a tensor of shape ", vt::shape_str(t.sizes()));
    return vt::item_scalar(t);
  }
  VT_FAIL_KIND(Type, op, "(): argument '", arg, "' must be a number, not ", js_type(v));
}

vt::Tensor as_tensor_arg(const Napi::Value& v, const char* op, const char* arg) {
  if (const vt::Tensor* t = find_tensor(v.Env(), v, arg)) return *t;
  if (v.IsNumber() || v.IsBoolean() || v.IsBigInt() || (v.IsObject() && v.As<Napi::Object>().Has("__vtFloat"))) {
    vt::Scalar s = to_scalar(v, op, arg);
    return vt::scalar_to_tensor(s, s.natural_dtype());
  }
  VT_FAIL_KIND(Type, op, "(): argument '", arg, "' must be Tensor or a number, not ", js_type(v));
}

vt::ScalarType to_dtype(const Napi::Value& v) {
  VT_CHECK_TYPE(v.IsString(), "expected a dtype name such as 'float32', got ", js_type(v));
  return vt::parse_dtype(v.As<Napi::String>().Utf8Value());
}

vt::Device to_device(const Napi::Value& v) {
  if (v.IsNumber()) return vt::Device(vt::DeviceType::CUDA, int(v.As<Napi::Number>().Int32Value()));
  VT_CHECK_TYPE(v.IsString(), "expected a device such as 'cpu' or 'cuda:0', got ", js_type(v));
  return vt::parse_device(v.As<Napi::String>().Utf8Value());
}

std::vector<int64_t> to_int_list(const Napi::Value& v, const char* op, const char* arg) {
  if (v.IsNumber() || v.IsBigInt()) return {to_int64(v, op, arg)};
  VT_CHECK_TYPE(v.IsArray(), op, "(): argument '", arg, "' must be an array of ints, not ", js_type(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    VT_CHECK_TYPE(x.IsNumber() || x.IsBigInt(), op, "(): argument '", arg,
                  "' must be an array of ints, but found element of type ", js_type(x));
    out[i] = to_int64(x, op, arg);
  }
  return out;
}

vt::IValue to_ivalue(const Napi::Value& v, const vt::Argument& a, const vt::FunctionSchema& s) {
  const char* op = s.name.c_str();
  const char* arg = a.name.c_str();
  if (v.IsNull() || v.IsUndefined()) {
    VT_CHECK_TYPE(a.optional, op, "(): argument '", a.name, "' must not be None");
    return vt::IValue{};
  }
  switch (a.type) {
    case vt::ArgType::Tensor: return vt::IValue{as_tensor_arg(v, op, arg)};
    case vt::ArgType::TensorList: {
      VT_CHECK_TYPE(v.IsArray(), op, "(): argument '", a.name, "' must be a sequence of Tensors");
      Napi::Array arr = v.As<Napi::Array>();
      std::vector<vt::Tensor> ts;
      ts.reserve(arr.Length());
      for (uint32_t j = 0; j < arr.Length(); ++j) {
        Napi::Value x = arr.Get(j);
        if ((x.IsNull() || x.IsUndefined()) && a.optional_elements) ts.emplace_back();
        else if (is_tensor(x)) ts.push_back(unwrap_tensor(x, arg));
        else VT_FAIL_KIND(Type, op, "(): expected Tensor as element ", j, " in argument '", a.name, "', but got ", js_type(x));
      }
      return vt::IValue{std::move(ts)};
    }
    case vt::ArgType::Int: return vt::IValue{to_int64(v, op, arg)};
    case vt::ArgType::IntList: return vt::IValue{to_int_list(v, op, arg)};
    case vt::ArgType::Float:
      if (v.IsObject() && v.As<Napi::Object>().Has("__vtFloat")) return vt::IValue{to_scalar(v, op, arg).to_double()};
      VT_CHECK_TYPE(v.IsNumber(), op, "(): argument '", a.name, "' must be float");
      return vt::IValue{v.As<Napi::Number>().DoubleValue()};
    case vt::ArgType::Bool:
      VT_CHECK_TYPE(v.IsBoolean(), op, "(): argument '", a.name, "' must be bool, not ", js_type(v));
      return vt::IValue{v.As<Napi::Boolean>().Value()};
    case vt::ArgType::Scalar: return vt::IValue{to_scalar(v, op, arg)};
    case vt::ArgType::ScalarType: return vt::IValue{to_dtype(v)};
    case vt::ArgType::Device: return vt::IValue{to_device(v)};
    case vt::ArgType::Str:
      VT_CHECK_TYPE(v.IsString(), op, "(): argument '", a.name, "' must be str");
      return vt::IValue{v.As<Napi::String>().Utf8Value()};
  }
  VT_INTERNAL_ASSERT(false, "arg type");
}

namespace {
Napi::Value tensor_result(Napi::Env env, vt::Tensor&& t, bool handles) {
  if (!handles || !t.defined()) return wrap_tensor(env, std::move(t));
  return Napi::Number::New(env, put_tensor(std::move(t)));
}
}  // namespace

Napi::Value from_ivalue(Napi::Env env, vt::IValue&& v, bool handles) {
  return std::visit(
      [&](auto&& x) -> Napi::Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) return env.Null();
        else if constexpr (std::is_same_v<T, vt::Tensor>) return tensor_result(env, std::move(x), handles);
        else if constexpr (std::is_same_v<T, int64_t>) return Napi::Number::New(env, double(x));
        else if constexpr (std::is_same_v<T, double>) return Napi::Number::New(env, x);
        else if constexpr (std::is_same_v<T, bool>) return Napi::Boolean::New(env, x);
        else if constexpr (std::is_same_v<T, vt::Scalar>) {
          if (x.is_bool()) return Napi::Boolean::New(env, x.to_bool());
          if (x.is_integral()) return Napi::Number::New(env, double(x.to_int()));
          return Napi::Number::New(env, x.to_double());
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          Napi::Array a = Napi::Array::New(env, x.size());
          for (size_t i = 0; i < x.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(x[i])));
          return a;
        } else if constexpr (std::is_same_v<T, std::vector<vt::Tensor>>) {
          Napi::Array a = Napi::Array::New(env, x.size());
          for (size_t i = 0; i < x.size(); ++i) a.Set(uint32_t(i), tensor_result(env, std::move(x[i]), handles));
          return a;
        } else if constexpr (std::is_same_v<T, std::string>) return Napi::String::New(env, x);
        else if constexpr (std::is_same_v<T, vt::ScalarType>) return Napi::String::New(env, std::string(vt::dtype_name(x)));
        else return Napi::String::New(env, x.str());  // Device
      },
      std::move(v));
}

namespace {
// The stack of one call from the values given per schema argument (null where none was given: the default,
// or the "missing" error). `twice`: the first argument given both by position and by keyword, reported at its
// place among the arguments' own errors, as Python does.
vt::Stack stack_of(const vt::FunctionSchema& s, Napi::Env env, const std::vector<napi_value>& given,
                   size_t twice = SIZE_MAX) {
  vt::Stack stack;
  stack.reserve(s.args.size());
  for (size_t i = 0; i < s.args.size(); ++i) {
    const vt::Argument& a = s.args[i];
    VT_CHECK_TYPE(i != twice, s.name, "() got multiple values for argument '", a.name, "'");
    if (given[i] != nullptr) {
      stack.push_back(to_ivalue(Napi::Value(env, given[i]), a, s));
    } else {
      VT_CHECK_TYPE(a.default_value.has_value(), s.name, "() missing required argument '", a.name, "'");
      stack.push_back(*a.default_value);
    }
  }
  return stack;
}
}  // namespace

vt::Stack parse_args(const vt::FunctionSchema& s, const Napi::Array& args, const Napi::Value& kwargs) {
  size_t npos = 0;
  for (const vt::Argument& a : s.args) npos += a.kwarg_only ? 0 : 1;
  size_t nargs = args.Length();
  VT_CHECK_TYPE(nargs <= npos, s.name, "() takes ", npos, " positional argument(s) but ", nargs, " were given");
  std::vector<napi_value> given(s.args.size(), nullptr);
  for (size_t i = 0; i < nargs; ++i) given[i] = args.Get(uint32_t(i));
  // Keyword values by schema position, read once from the object's keys (usually one or two); unknown names
  // are reported after the arguments, where Python reports them.
  std::string unknown;
  size_t twice = SIZE_MAX;
  if (kwargs.IsObject() && !kwargs.IsNull()) {
    Napi::Object kw = kwargs.As<Napi::Object>();
    Napi::Array keys = kw.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      Napi::Value key = keys.Get(k);
      std::string name = key.ToString().Utf8Value();
      size_t i = 0;
      while (i < s.args.size() && s.args[i].name != name) ++i;
      if (i == s.args.size()) {
        if (unknown.empty()) unknown = name;
      } else {
        if (i < nargs) twice = std::min(twice, i);
        else given[i] = kw.Get(key);
      }
    }
  }
  vt::Stack stack = stack_of(s, args.Env(), given, twice);
  VT_CHECK_TYPE(unknown.empty(), s.name, "() got an unexpected keyword argument '", unknown, "'");
  return stack;
}

vt::Stack parse_in_order(const vt::FunctionSchema& s, const Napi::Array& args) {
  VT_CHECK_VALUE(args.Length() == s.args.size(), s.name, ": ", args.Length(), " values for ", s.args.size(),
                 " arguments");
  std::vector<napi_value> given(s.args.size(), nullptr);
  for (size_t i = 0; i < given.size(); ++i) {
    Napi::Value v = args.Get(uint32_t(i));
    if (!v.IsUndefined()) given[i] = v;
  }
  return stack_of(s, args.Env(), given);
}

Napi::Value results_to_js(Napi::Env env, vt::Stack&& s, bool handles) {
  if (s.empty()) return env.Undefined();
  if (s.size() == 1) return from_ivalue(env, std::move(s[0]), handles);
  Napi::Array out = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); ++i) out.Set(uint32_t(i), from_ivalue(env, std::move(s[i]), handles));
  return out;
}

}  // namespace vtjs
