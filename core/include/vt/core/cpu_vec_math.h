#pragma once
// Vectorised float32 transcendentals for the CPU kernels: exp, sigmoid, silu, tanh over dense arrays, and the
// row passes of a last-dim softmax. The scalar std::exp that the generic elementwise loop calls does not
// vectorise (glibc's vector expf needs -ffast-math), which left exp, sigmoid, tanh and softmax 2-7x torch's time
// (torch runs Sleef's vector functions); these functions are written so that the compiler vectorises them, and
// are compiled once per instruction set with the CPU picking one at load time (cpu_vec_math.cpp).
//
// Accuracy (Note [Vector exp]): exp is within 2 ulp of the correctly rounded value over the whole float range,
// subnormal results included; exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN, exp(0) = 1 exactly. sigmoid and
// silu are torch's vector formulas over it (1 / (1 + exp(-x)), x / (1 + exp(-x))); tanh is within 3 ulp, and
// exactly +-1 past |x| = 9.01, as torch's.
//
// Arrays may be the same array (y == x: in place); they must not overlap otherwise.
#include <cstdint>
#include <string_view>

namespace vt::cpu_math {

void exp(const float* x, float* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void silu(const float* x, float* y, int64_t n);
void tanh(const float* x, float* y, int64_t n);

// Softmax rows (scores read as x * scale). row_max skips NaN (it then makes the sum NaN) and is -inf for an empty
// row or one of only -inf. exp_sum writes y = exp(x * scale - shift), 0 where x * scale is -inf (so a row of only
// -inf sums to 0), and returns the sum; sum_exp returns the same sum without writing. scale_by: y *= s.
// log_softmax_row: y = (x * scale - shift) - log_sum.
float row_max(const float* x, int64_t n, float scale);
float exp_sum(const float* x, float* y, int64_t n, float scale, float shift);
float sum_exp(const float* x, int64_t n, float scale, float shift);
void scale_by(float* y, int64_t n, float s);
void log_softmax_row(const float* x, float* y, int64_t n, float scale, float shift, float log_sum);

// The instruction set the functions above run with: "avx512", "avx2" or "generic". set_isa picks one by name
// for tests and benchmarks (throws if the CPU lacks it); not thread-safe against running kernels.
const char* isa();
void set_isa(std::string_view name);

}  // namespace vt::cpu_math
