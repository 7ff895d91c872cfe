#pragma once
// TensorIterator: the shared machinery of elementwise ops and reductions.
//
// Given outputs and inputs it (1) broadcasts input shapes to one iteration shape, (2) computes the common dtype
// with PyTorch's promotion rules (dimensioned tensors > 0-dim tensors > wrapped Python numbers, by category),
// (3) casts inputs to it and allocates missing outputs (laid out like the inputs, as torch does), (4) checks
// that outputs do not partially overlap inputs or themselves, (5) orders dimensions so the fastest-moving
// (smallest-stride) dimension is innermost and (6) coalesces dimensions that are contiguous for every operand.
// Kernels then see a 2-D loop: `loop(data, strides, n0, n1)` with byte strides for the inner and outer dim of
// each operand (outputs first).
//
// Reductions: the output has the input's rank with size 1 on reduced dims (stride 0 there), so the same loop
// visits each (output, input) pair and the kernel accumulates. Casting outputs (compute in one dtype, store in
// another) is done with a temporary that for_each copies back.
//
// Not handled here: index-dependent ops (cumsum, argmax over a dim), which use lane loops (see lanes.h).
#include <vector>

#include "vt/core/function_ref.h"
#include "vt/core/parallel.h"
#include "vt/core/small_vec.h"
#include "vt/core/tensor.h"

namespace vt {

// Result type of an op over these operands, as torch.result_type computes it.
struct ResultTypeState {
  int8_t dim_result = -1, zero_result = -1, wrapped_result = -1;  // -1: undefined
  void update(const Tensor& t);
  ScalarType result() const;
};
ScalarType result_type(std::initializer_list<Tensor> ts);

inline constexpr size_t kMaxOperands = 8;

using Loop2d = FunctionRef<void(char** data, const int64_t* strides, int64_t n0, int64_t n1)>;

class TensorIterator;

class TensorIteratorConfig {
 public:
  TensorIteratorConfig& add_output(const Tensor& t);  // undefined: allocated by the iterator
  TensorIteratorConfig& add_input(const Tensor& t);
  TensorIteratorConfig& promote_inputs_to_common_dtype(bool v) { promote_ = v; return *this; }
  // Integer (and bool) common dtypes become the default float dtype: sqrt(int) -> float32.
  TensorIteratorConfig& promote_integer_inputs_to_float(bool v) { int_to_float_ = v; return *this; }
  // Dtype of allocated outputs when it differs from the computation dtype (comparisons produce bool).
  TensorIteratorConfig& output_dtype(ScalarType t) { out_dtype_ = int8_t(t); return *this; }
  // Compute in this dtype regardless of the inputs' (e.g. casts).
  TensorIteratorConfig& common_dtype(ScalarType t) { common_override_ = int8_t(t); return *this; }
  // Defined outputs may take a differently typed result (torch forbids float -> int in-place).
  TensorIteratorConfig& enforce_safe_casting_to_output(bool v) { safe_cast_ = v; return *this; }
  TensorIteratorConfig& check_all_same_dtype(bool v) { same_dtype_ = v; return *this; }
  // Whether inputs of another dtype are cast to the common dtype (off for kernels reading mixed dtypes).
  TensorIteratorConfig& cast_inputs(bool v) { cast_inputs_ = v; return *this; }
  TensorIteratorConfig& is_reduction(bool v) { reduction_ = v; return *this; }
  TensorIteratorConfig& check_mem_overlap(bool v) { overlap_ = v; return *this; }
  TensorIteratorConfig& name(const char* n) { name_ = n; return *this; }
  TensorIterator build();

 private:
  friend class TensorIterator;
  SmallVec<Tensor, kMaxOperands> outputs_, inputs_;
  bool promote_ = false, int_to_float_ = false, safe_cast_ = true, same_dtype_ = true, reduction_ = false,
       overlap_ = true, cast_inputs_ = true;
  int8_t out_dtype_ = -1, common_override_ = -1;
  const char* name_ = "op";
};

class TensorIterator {
 public:
  int ntensors() const { return int(ops_.size()); }
  int noutputs() const { return noutputs_; }
  int ndim() const { return int(shape_.size()); }
  int64_t numel() const { return numel_; }
  IntArrayRef shape() const { return shape_; }  // iteration order: dim 0 is innermost
  ScalarType common_dtype() const { return common_; }
  ScalarType dtype(int i) const { return ops_[size_t(i)].compute.dtype(); }
  // The user-visible output i (after any cast-back).
  const Tensor& output(int i = 0) const { return ops_[size_t(i)].original; }
  const Tensor& operand(int i) const { return ops_[size_t(i)].compute; }
  // Byte strides of operand i along iteration dim d.
  int64_t stride(int i, int d) const { return ops_[size_t(i)].strides[size_t(d)]; }
  bool is_contiguous_inner(int i) const;
  // Whether operand i has stride 0 throughout (a broadcast scalar).
  bool is_scalar(int i) const;
  Device device() const { return device_; }
  // Input i (0-based among inputs) as the caller passed it, before any cast.
  const Tensor& input_original(int i) const { return ops_[size_t(noutputs_ + i)].original; }
  // Whether input i (0-based among inputs) was passed as a Python number.
  bool input_is_wrapped_number(int i) const {
    const Tensor& t = ops_[size_t(noutputs_ + i)].original;
    return t.defined() && t.impl()->is_wrapped_number();
  }

  // Runs `loop` over the whole iteration space, in parallel where the size pays, then writes cast outputs back.
  void for_each(Loop2d loop, int64_t grain = kDefaultGrain);
  void serial_for_each(Loop2d loop, int64_t begin, int64_t end) const;
  // Reductions: runs `loop` split only along iteration dims where every output has nonzero stride, so no two
  // threads touch one output element.
  void reduce_for_each(Loop2d loop);
  void cast_outputs();

 private:
  friend class TensorIteratorConfig;
  struct Operand {
    Tensor original;  // what the caller sees (output) or passed (input)
    Tensor compute;   // what the loop reads/writes (a cast copy or temporary when dtypes differ)
    DimVector strides;
    bool is_output = false;
  };
  void build(TensorIteratorConfig& cfg);
  void compute_shape(TensorIteratorConfig& cfg);
  void compute_types(TensorIteratorConfig& cfg);
  bool try_trivial_layout();
  void reorder_dimensions();
  void allocate_outputs();
  void check_overlap();
  void permute_and_coalesce();

  SmallVec<Operand, kMaxOperands> ops_;  // inline: building an iterator allocates nothing itself
  int noutputs_ = 0;
  DimVector shape_;       // broadcast shape in user order, then iteration order after permute
  DimVector perm_;        // perm_[k]: user dim at iteration position k (0 = innermost)
  int64_t numel_ = 0;
  ScalarType common_ = ScalarType::Float32, out_dtype_ = ScalarType::Float32;
  Device device_;
  bool reduction_ = false;
  const char* name_ = "op";
};

// A 0-dim CPU tensor holding t's value as `dtype` (no dispatch); keeps the wrapped-number mark.
Tensor cast_scalar(const Tensor& t, ScalarType dtype);

// Broadcast shape of two shapes; RuntimeError naming both when they do not broadcast.
DimVector broadcast_shapes(IntArrayRef a, IntArrayRef b);

}  // namespace vt
