#pragma once
// Argument and result types of a kernel functor, shared by the CPU and CUDA elementwise loops: the loops read
// operands as the functor's argument types and write its result type, so a functor's signature is the contract
// with the iterator's operand dtypes (outputs first).
#include <cstddef>
#include <tuple>

namespace vt {

template <typename F> struct fn_traits : fn_traits<decltype(&F::operator())> {};
template <typename C, typename R, typename... A> struct fn_traits<R (C::*)(A...) const> {
  using result = R;
  using args = std::tuple<A...>;
  static constexpr int arity = int(sizeof...(A));
};
template <typename R, typename... A> struct fn_traits<R (*)(A...)> {
  using result = R;
  using args = std::tuple<A...>;
  static constexpr int arity = int(sizeof...(A));
};
template <typename F, size_t I> using fn_arg_t = std::tuple_element_t<I, typename fn_traits<F>::args>;

}  // namespace vt
