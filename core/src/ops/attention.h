#pragma once
// Fused attention: vt::_flash_attention(q, k, v, scale, causal) -> (out, lse) and its backward op.
//
// q [B, H, L, E], k and v [B, H, S, E]; out = softmax(q k^T * scale, causal-masked top-left as torch's is_causal)
// v in q's dtype, and lse [B, H, L] (float32; float64 for float64 inputs), the natural log of each row's softmax
// denominator, from which the backward rebuilds the probabilities without storing them. On CUDA, float16 and
// bfloat16 with E <= 128 run the tiled kernels of cuda/flash_attention.cu, float32 with E <= 64 those of
// cuda/flash_attention_f32.cu and _f32_bwd.cu; they never write the [L, S] scores to memory; on the CPU,
// float32 and the 16-bit types run the tiled forward of attention_cpu.cpp (the same online softmax over blocks
// of keys, and its backward); every other case (float64, wider heads on CUDA, an empty key sequence)
// runs the composite, which computes the same outputs from products and a softmax.
//
// F.scaled_dot_product_attention calls this op for the cases it covers (no attn_mask, no dropout, matching batch
// and head dims); its autograd formula (core/src/autograd/formulas_attention.cpp) calls the backward op, or, when
// the gradient's own graph is wanted, the differentiable composite backward.
#include <optional>
#include <tuple>

#include "vt/core/tensor.h"

namespace vt::attention {

// Shapes, dtypes and devices of (q, k, v): 4-D, one floating dtype, one device, equal batch and head dims, equal
// key and value lengths, one head dim. Raises naming the offending argument.
void check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, const char* op);

std::tuple<Tensor, Tensor> forward_composite(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                             bool causal);
// (dq, dk, dv) from grad_out, recomputing the probabilities from q and k with differentiable ops (so it also
// serves create_graph).
std::tuple<Tensor, Tensor, Tensor> backward_composite(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                      const Tensor& v, double scale, bool causal);

// The CPU's tiled forward (attention_cpu.cpp): float32, float16 and bfloat16 with a non-empty key sequence and
// head dim.
bool tiled_forward_applies(const Tensor& q, const Tensor& k);
std::tuple<Tensor, Tensor> tiled_forward_cpu(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                             bool causal);
// Its backward, from the forward's out and lse (float32) and grad_out of any dtype (cast to q's).
std::tuple<Tensor, Tensor, Tensor> tiled_backward_cpu(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                      const Tensor& v, const Tensor& out, const Tensor& lse,
                                                      double scale, bool causal);

// Note [Packed attention gradients]
// q, k and v are often views of one projection's output at a fixed step (qkv.unbind(0) after a permute, or
// qkv.split(C, -1) with the heads viewed out): the same sizes and strides, offsets o, o + d and o + 2d, the three
// together one dense block. The backward then writes dQ, dK and dV into one buffer of that block's layout at the
// same relative offsets, so that the unbind's or split's backward joins them as a view (Note [Adjacent gradient
// pieces]) and the reshape back to the projection's [B, T, 3 H E] is a view too: no stack, no strided copy.
struct PackedGrads {
  Tensor dq, dk, dv;
};
// The three gradient views into one new buffer when q, k and v are packed so; nullopt when they are not.
std::optional<PackedGrads> packed_grads(const Tensor& q, const Tensor& k, const Tensor& v);

// The float32 CUDA kernels (cuda/flash_attention_f32.cu, _f32_bwd.cu), head dims up to 64, called by the CUDA
// entry points with q, k, v unit-stride in the head dim, out/lse allocated (out sequence-major: Note
// [Sequence-major output]), and for the backward g and out unit-stride in the head dim, lse contiguous, dq/dk/dv
// dense or packed (Note [Packed attention gradients]); dq is zeroed there, by the kernel that computes delta,
// before the backward kernel adds into it.
void flash_forward_f32(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                       const Tensor& out, const Tensor& lse);
void flash_backward_f32(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, double scale, bool causal, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv);

std::tuple<Tensor, Tensor> flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                           bool causal);
std::tuple<Tensor, Tensor, Tensor> flash_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                            const Tensor& v, const Tensor& out, const Tensor& lse,
                                                            double scale, bool causal);

}  // namespace vt::attention
