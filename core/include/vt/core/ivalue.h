#pragma once
// IValue: one boxed argument or result on the dispatcher's boxed path (Python calls, Python overrides,
// plugins). Built-in ops called from C++ never box: see Note [Unboxed fast path] in dispatcher.h.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "vt/core/scalar.h"
#include "vt/core/tensor.h"

namespace vt {

using TensorList = std::span<const Tensor>;
using OptionalIntArrayRef = std::optional<IntArrayRef>;

using IValue = std::variant<std::monostate, Tensor, int64_t, double, bool, Scalar, std::vector<int64_t>,
                            std::vector<Tensor>, std::string, ScalarType, Device>;
using Stack = std::vector<IValue>;

// Schema argument types, one per C++ parameter type a kernel may take.
enum class ArgType : uint8_t { Tensor, TensorList, Int, IntList, Float, Bool, Scalar, ScalarType, Device, Str };
std::string_view arg_type_name(ArgType t);

namespace detail {
template <typename T> struct BoxTraits;
template <typename T> struct BoxTraits<const T&> : BoxTraits<T> {};
template <typename T> struct BoxTraits<std::optional<T>> {
  static constexpr ArgType type = BoxTraits<T>::type;
  static constexpr bool optional = true;
  static std::optional<T> unbox(IValue& v) {
    if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
    return BoxTraits<T>::unbox(v);
  }
  static IValue box(const std::optional<T>& v) { return v ? BoxTraits<T>::box(*v) : IValue{}; }
};
template <typename T, ArgType A, bool Opt = false> struct SimpleBox {
  static constexpr ArgType type = A;
  static constexpr bool optional = Opt;
  static T unbox(IValue& v) { return std::get<T>(v); }
  static IValue box(const T& v) { return IValue{v}; }
};
// A Tensor argument may be undefined, which is how "Tensor?" arrives (None).
template <> struct BoxTraits<Tensor> {
  static constexpr ArgType type = ArgType::Tensor;
  static constexpr bool optional = false;
  static Tensor unbox(IValue& v) {
    return std::holds_alternative<std::monostate>(v) ? Tensor() : std::get<Tensor>(v);
  }
  static IValue box(const Tensor& t) { return t.defined() ? IValue{t} : IValue{}; }
};
template <> struct BoxTraits<int64_t> : SimpleBox<int64_t, ArgType::Int> {};
template <> struct BoxTraits<double> : SimpleBox<double, ArgType::Float> {};
template <> struct BoxTraits<bool> : SimpleBox<bool, ArgType::Bool> {};
template <> struct BoxTraits<Scalar> : SimpleBox<Scalar, ArgType::Scalar> {};
template <> struct BoxTraits<ScalarType> : SimpleBox<ScalarType, ArgType::ScalarType> {};
template <> struct BoxTraits<Device> : SimpleBox<Device, ArgType::Device> {};
template <> struct BoxTraits<std::string> : SimpleBox<std::string, ArgType::Str> {};
template <> struct BoxTraits<std::string_view> {
  static constexpr ArgType type = ArgType::Str;
  static constexpr bool optional = false;
  static std::string_view unbox(IValue& v) { return std::get<std::string>(v); }
  static IValue box(std::string_view s) { return IValue{std::string(s)}; }
};
template <> struct BoxTraits<IntArrayRef> {
  static constexpr ArgType type = ArgType::IntList;
  static constexpr bool optional = false;
  static IntArrayRef unbox(IValue& v) { return std::get<std::vector<int64_t>>(v); }
  static IValue box(IntArrayRef r) { return IValue{std::vector<int64_t>(r.begin(), r.end())}; }
};
template <> struct BoxTraits<OptionalIntArrayRef> {
  static constexpr ArgType type = ArgType::IntList;
  static constexpr bool optional = true;
  static OptionalIntArrayRef unbox(IValue& v) {
    if (std::holds_alternative<std::monostate>(v)) return std::nullopt;
    return IntArrayRef(std::get<std::vector<int64_t>>(v));
  }
  static IValue box(OptionalIntArrayRef r) { return r ? BoxTraits<IntArrayRef>::box(*r) : IValue{}; }
};
template <> struct BoxTraits<TensorList> {
  static constexpr ArgType type = ArgType::TensorList;
  static constexpr bool optional = false;
  static TensorList unbox(IValue& v) { return std::get<std::vector<Tensor>>(v); }
  static IValue box(TensorList r) { return IValue{std::vector<Tensor>(r.begin(), r.end())}; }
};

// Results: nothing (ops that only mutate their arguments, "-> ()"), a Tensor, a tuple of Tensors, or a list of
// Tensors, pushed onto the stack one value each.
template <typename R> struct ReturnTraits;
template <> struct ReturnTraits<void> {
  static constexpr int count = 0;
  static void pop(Stack&) {}
};
template <> struct ReturnTraits<Tensor> {
  static constexpr int count = 1;
  static void push(Stack& s, Tensor r) { s.emplace_back(std::move(r)); }
  static Tensor pop(Stack& s) { return BoxTraits<Tensor>::unbox(s.at(0)); }
};
template <> struct ReturnTraits<std::vector<Tensor>> {
  static constexpr int count = 1;
  static void push(Stack& s, std::vector<Tensor> r) { s.emplace_back(std::move(r)); }
  static std::vector<Tensor> pop(Stack& s) { return std::get<std::vector<Tensor>>(s.at(0)); }
};
// A tuple of Tensors; an undefined member (an output a backward op was not asked for) travels as None.
template <typename... Ts> struct ReturnTraits<std::tuple<Ts...>> {
  static_assert((std::is_same_v<Ts, Tensor> && ...), "tuple results hold Tensors only");
  static constexpr int count = int(sizeof...(Ts));
  static void push(Stack& s, std::tuple<Ts...> r) {
    std::apply([&](auto&... t) { (s.emplace_back(BoxTraits<Tensor>::box(t)), ...); }, r);
  }
  static std::tuple<Ts...> pop(Stack& s) {
    return pop_at(s, std::index_sequence_for<Ts...>{});
  }
  template <size_t... I> static std::tuple<Ts...> pop_at(Stack& s, std::index_sequence<I...>) {
    return {BoxTraits<Tensor>::unbox(s.at(I))...};
  }
};
}  // namespace detail

}  // namespace vt
