#pragma once
// SmallVec: a vector with fixed inline capacity N and no heap, for the handful of operands an op has. Going
// past N is an internal error (callers bound their counts).
#include <cstddef>
#include <utility>

#include "vt/core/error.h"

namespace vt {

template <typename T, size_t N>
class SmallVec {
 public:
  void push_back(T v) {
    VT_INTERNAL_ASSERT(size_ < N, "SmallVec capacity exceeded");
    items_[size_++] = std::move(v);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return items_[i]; }
  const T& operator[](size_t i) const { return items_[i]; }
  T* begin() { return items_; }
  T* end() { return items_ + size_; }
  const T* begin() const { return items_; }
  const T* end() const { return items_ + size_; }

 private:
  T items_[N];
  size_t size_ = 0;
};

}  // namespace vt
