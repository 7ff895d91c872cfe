#pragma once
// Vectorised float32 transcendentals for the CPU kernels - exp, log and their kin over dense arrays and the
// row passes of a last-dim softmax - and the floating sums of the reductions. The core is compiled for the
// baseline x86-64 (SSE2), and the scalar std::exp of the generic elementwise loop does not vectorise at all
// (glibc's vector expf needs -ffast-math): exp, sigmoid, tanh and softmax took 2-7x torch's time, which runs
// Sleef's vector functions, and a row sum folded one element at a time took 18x. These functions are written
// so that the compiler vectorises them, and are compiled once per instruction set with the CPU picking one
// at load time (core/src/ops/cpu_vec_math.cpp and cpu_vec_rows.cpp, their lanes in cpu_vec_lanes.h).
//
// Accuracy (Note [Vector exp]), measured against float64 over 6M inputs spanning the float range: exp and tanh
// within 1 ulp of the correctly rounded value, subnormal results included; sigmoid and silu (torch's vector
// formulas over that exp: 1 / (1 + exp(-x)), x / (1 + exp(-x))) within 2 ulp wherever 1 + exp(-x) is finite -
// torch's own errors, measured the same way. exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN, exp(0) = 1
// exactly; tanh is exactly +-1 past |x| = 9.01 and keeps the sign of -0, as torch's. log (Note [Vector log])
// within 1 ulp, log1p and expm1 2, logsigmoid 3, mish 4 (away from its underflowing tail below -20) - torch's
// are 1 ulp there; subnormal results are kept where torch's flush them to 0.
//
// Arrays may be the same array (y == x: in place); they must not overlap otherwise.
#include <cstdint>
#include <string_view>

namespace vt {
struct Half;
struct BFloat16;
}  // namespace vt

namespace vt::cpu_math {

void exp(const float* x, float* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void silu(const float* x, float* y, int64_t n);
void tanh(const float* x, float* y, int64_t n);
void erf(const float* x, float* y, int64_t n);  // Note [Vector erf]: within 1 ulp
// Exact gelu and its input gradient as the generic formulas over erf (float32 tensors take cpu_gelu.h instead).
void gelu(const float* x, float* y, int64_t n);
void gelu_backward(const float* g, const float* x, float* y, int64_t n);
// y[i] = x[i] ** e[i] (Note [Vector pow]: the correctly rounded power but within ~1e-13 of a rounding boundary;
// C's special cases).
void pow(const float* x, const float* e, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);  // gelu(approximate='tanh')
void log(const float* x, float* y, int64_t n);
void log1p(const float* x, float* y, int64_t n);
void expm1(const float* x, float* y, int64_t n);
void logsigmoid(const float* x, float* y, int64_t n);
void mish(const float* x, float* y, int64_t n);
void sin(const float* x, float* y, int64_t n);  // Note [Vector sin and cos]: libm's for arrays past |x| = 8192
void cos(const float* x, float* y, int64_t n);
// softplus(x; beta, threshold): x where beta x > threshold, else log1p(exp(beta x)) / beta; elu(x; alpha).
void softplus(const float* x, float* y, int64_t n, float beta, float threshold);
void elu(const float* x, float* y, int64_t n, float alpha);

// The 16-bit floats to and from float32 (round to nearest even; arrays must not overlap): the 16-bit paths of
// the CPU kernels compute in float32 buffers filled and emptied by these, as torch's compute 16-bit in float.
void to_float(const Half* x, float* y, int64_t n);
void to_float(const BFloat16* x, float* y, int64_t n);
void from_float(const float* x, Half* y, int64_t n);
void from_float(const float* x, BFloat16* y, int64_t n);

// Input gradients of gelu(approximate='tanh') and silu: y = dL/dx from g = dL/d(out) and the input x.
void gelu_tanh_backward(const float* g, const float* x, float* y, int64_t n);
void silu_backward(const float* g, const float* x, float* y, int64_t n);

// Softmax rows (scores read as x * scale). row_max skips NaN (it then makes the sum NaN) and is -inf for an empty
// row or one of only -inf. exp_sum writes y = exp(x * scale - shift), 0 where x * scale is -inf (so a row of only
// -inf sums to 0), and returns the sum; sum_exp returns the same sum without writing. scale_by: y *= s.
// log_softmax_row: y = (x * scale - shift) - log_sum.
float row_max(const float* x, int64_t n, float scale);
// The index of the first maximum (is_max) or minimum of x[0..n) (n >= 1), or of the first NaN if any: torch's
// max/min/argmax/argmin along a dim.
int64_t arg_extreme(const float* x, int64_t n, bool is_max);
// The maximum (is_max) or minimum of x[0..n) (n >= 1), NaN if there is one: torch's amax/amin of a row.
float row_extreme(const float* x, int64_t n, bool is_max);
// Row k of an arg-extreme across rows, elementwise: where best[i] is not NaN and x[i] is NaN or beats it (strictly),
// best[i] = x[i] and idx[i] = k; so after rows 0..k, the first extreme or the first NaN and its row.
void arg_extreme_step(float* best, int64_t* idx, const float* x, int64_t n, int64_t k, bool is_max);
float exp_sum(const float* x, float* y, int64_t n, float scale, float shift);
float sum_exp(const float* x, int64_t n, float scale, float shift);
void scale_by(float* y, int64_t n, float s);
void log_softmax_row(const float* x, float* y, int64_t n, float scale, float shift, float log_sum);

// Softmax backward rows from the forward's output `out`: y = scale * out * (g - dot) with dot = sum(g * out)
// (softmax), or y = scale * (g - exp(out) * dot) with dot = sum(g) (log_softmax). dot: sum(a * b) in double.
double dot(const float* a, const float* b, int64_t n);
void softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot, float scale);
void log_softmax_backward_row(const float* g, const float* out, float* y, int64_t n, float dot, float scale);

// Layer/rms norm rows (w, b may be null). norm_forward_row: mu = mean(x) (0 when rms), var = mean((x - mu)^2)
// summed in double, rs = 1 / sqrt(var + eps), y = (x - mu) rs w + b; writes *mu and *rs.
void norm_forward_row(const float* x, const float* w, const float* b, float* y, int64_t n, double eps, bool rms,
                      float* mu, float* rs);
// Layer/rms norm backward rows (w may be null: no weight). norm_backward_row: the input gradient
// y = rs (g w - c1 - xhat c2) with xhat = (x - mu) rs, c1 = mean(g w) (0 when rms), c2 = mean(g w xhat), the
// means summed in double. norm_affine_row: pw += g xhat, pb += g (either may be null).
void norm_backward_row(const float* g, const float* x, const float* w, float* y, int64_t n, float mu, float rs,
                       bool rms);
void norm_affine_row(const float* g, const float* x, float* pw, float* pb, int64_t n, float mu, float rs);

// The floating sums of the reductions, in double as vt's CPU reductions accumulate: sum returns x[0] + ... +
// x[n-1] (in a fixed lane order, the same for every call), accumulate adds x into acc elementwise (acc and x do
// not overlap).
double sum(const float* x, int64_t n);
double sum(const double* x, int64_t n);
double sum(const BFloat16* x, int64_t n);
// sum of float32 values converted from 16-bit ones: four added in float32 before the double lanes, as the
// bfloat16 sum does (Note [bfloat16 sums in float fours]).
double sum_from_16bit(const float* x, int64_t n);
// acc[r * acc_stride] += sum(x + r * stride, n) for each of rows rows: the row sums of a reduction in one call.
void sum_rows(double* acc, int64_t acc_stride, const float* x, int64_t rows, int64_t stride, int64_t n);
void sum_rows(double* acc, int64_t acc_stride, const double* x, int64_t rows, int64_t stride, int64_t n);
void sum_rows(double* acc, int64_t acc_stride, const BFloat16* x, int64_t rows, int64_t stride, int64_t n);
void accumulate(double* acc, const float* x, int64_t n);
void accumulate(double* acc, const double* x, int64_t n);
// acc[i] = max(acc[i], x[i]) (is_max) or the min, a NaN on either side winning: torch's amax/amin.
void accumulate_extreme(double* acc, const float* x, int64_t n, bool is_max);
// accumulate_extreme of rows rows of x (row r at x + r * stride) into acc[0..n).
void accumulate_extreme_rows(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n, bool is_max);
// acc[i] += x[i] + x[stride + i] + ... + x[(rows - 1) * stride + i], rows added eight at a time in double
// (16-bit rows in float32: Note [16-bit leading sums]).
void accumulate_rows(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n);
void accumulate_rows(double* acc, const double* x, int64_t rows, int64_t stride, int64_t n);
void accumulate_rows(double* acc, const BFloat16* x, int64_t rows, int64_t stride, int64_t n);
// accumulate_rows of float32 rows converted from 16-bit ones: each eight rows' tree in float32, then added in
// double (Note [16-bit leading sums]).
void accumulate_rows_in_float(double* acc, const float* x, int64_t rows, int64_t stride, int64_t n);

// The standard normals of Philox block pairs blk0 .. blk0 + blocks - 1 of stream (seed, offset), as NormalGen
// draws them (core/src/ops/factories_impl.h): zk[j] is the normal of element 4 (blk0 + j) + k before the mean
// and std are applied (Note [Vector Box-Muller] in cpu_vec_normal.cpp: the same bits on every instruction set).
void standard_normals(uint64_t seed, uint64_t offset, int64_t blk0, int64_t blocks, double* z0, double* z1, double* z2,
                      double* z3);

// The instruction set the functions above run with: "avx512", "avx2" or "generic". set_isa picks one by name
// for tests and benchmarks (throws if the CPU lacks it); not thread-safe against running kernels.
const char* isa();
void set_isa(std::string_view name);

}  // namespace vt::cpu_math
