#pragma once
// Error discipline (STYLE principle 8). Two kinds of failure:
//   * user errors: bad shapes, dtypes, devices, indices. VT_CHECK* raise a vt::Error whose kind maps onto the
//     Python exception torch raises for the same mistake (RuntimeError, IndexError, TypeError, ValueError), and
//     whose message names the quantity that is wrong.
//   * internal bugs: VT_INTERNAL_ASSERT, which names file:line and asks for a report.
// The bindings translate ErrorKind to Python exception types; nothing below the bindings knows about Python.
#include <sstream>
#include <stdexcept>
#include <string>

namespace vt {

// Timeout: a bounded wait expired (a peer that never arrived in a collective); Python sees a TimeoutError.
enum class ErrorKind { Runtime, Index, Type, Value, NotImplemented, OutOfMemory, Timeout };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, str_cat(args...));
}
[[noreturn]] void internal_fail(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

}  // namespace vt

#define VT_CHECK_KIND(kind, cond, ...)                   \
  do {                                                   \
    if (!(cond)) [[unlikely]]                            \
      ::vt::detail::fail(::vt::ErrorKind::kind, __VA_ARGS__); \
  } while (0)

#define VT_CHECK(cond, ...) VT_CHECK_KIND(Runtime, cond, __VA_ARGS__)
#define VT_CHECK_INDEX(cond, ...) VT_CHECK_KIND(Index, cond, __VA_ARGS__)
#define VT_CHECK_TYPE(cond, ...) VT_CHECK_KIND(Type, cond, __VA_ARGS__)
#define VT_CHECK_VALUE(cond, ...) VT_CHECK_KIND(Value, cond, __VA_ARGS__)
#define VT_FAIL(...) ::vt::detail::fail(::vt::ErrorKind::Runtime, __VA_ARGS__)
#define VT_FAIL_KIND(kind, ...) ::vt::detail::fail(::vt::ErrorKind::kind, __VA_ARGS__)

#define VT_INTERNAL_ASSERT(cond, ...)                                                             \
  do {                                                                                            \
    if (!(cond)) [[unlikely]]                                                                     \
      ::vt::detail::internal_fail(__FILE__, __LINE__, #cond, ::vt::detail::str_cat("" __VA_ARGS__)); \
  } while (0)
