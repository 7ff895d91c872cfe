#pragma once
// DimVector: sizes and strides of a tensor, held inline (no heap). vibetensor supports up to kMaxDims
// dimensions; asking for more is a user error raised where the shape is made.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "vt/core/error.h"

namespace vt {

inline constexpr int kMaxDims = 16;
using IntArrayRef = std::span<const int64_t>;

class DimVector {
 public:
  DimVector() = default;
  explicit DimVector(size_t n, int64_t fill = 0) { resize(n, fill); }
  DimVector(IntArrayRef r) { assign(r); }
  DimVector(std::initializer_list<int64_t> il) { assign(IntArrayRef(il.begin(), il.size())); }

  void assign(IntArrayRef r) {
    check_size(r.size());
    std::copy(r.begin(), r.end(), data_);
    size_ = int(r.size());
  }
  void resize(size_t n, int64_t fill = 0) {
    check_size(n);
    for (size_t i = size_t(size_); i < n; ++i) data_[i] = fill;
    size_ = int(n);
  }
  void push_back(int64_t v) {
    check_size(size_t(size_) + 1);
    data_[size_++] = v;
  }
  void insert(size_t pos, int64_t v) {
    check_size(size_t(size_) + 1);
    for (size_t i = size_t(size_); i > pos; --i) data_[i] = data_[i - 1];
    data_[pos] = v;
    ++size_;
  }
  void erase(size_t pos) {
    for (size_t i = pos; i + 1 < size_t(size_); ++i) data_[i] = data_[i + 1];
    --size_;
  }
  int64_t& operator[](size_t i) { return data_[i]; }
  int64_t operator[](size_t i) const { return data_[i]; }
  int64_t& back() { return data_[size_ - 1]; }
  size_t size() const { return size_t(size_); }
  bool empty() const { return size_ == 0; }
  int64_t* begin() { return data_; }
  int64_t* end() { return data_ + size_; }
  const int64_t* begin() const { return data_; }
  const int64_t* end() const { return data_ + size_; }
  const int64_t* data() const { return data_; }
  operator IntArrayRef() const { return IntArrayRef(data_, size_t(size_)); }
  bool operator==(const DimVector& o) const { return std::equal(begin(), end(), o.begin(), o.end()); }

 private:
  static void check_size(size_t n) {
    VT_CHECK(n <= size_t(kMaxDims), "tensors have at most ", kMaxDims, " dimensions, got ", n);
  }
  int64_t data_[kMaxDims];
  int size_ = 0;
};

// "[2, 3, 4]": shapes in messages look like torch's.
std::string shape_str(IntArrayRef s);
int64_t prod(IntArrayRef s);
// Wraps a possibly negative dim into [0, ndim); IndexError naming the range otherwise. A 0-dim tensor accepts
// dims -1 and 0, as in torch.
int64_t wrap_dim(int64_t dim, int64_t ndim);

}  // namespace vt
