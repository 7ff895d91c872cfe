// The collective kernels. Each block of each rank owns one contiguous range of the buffer (a channel) and
// meets the same block of the other ranks through its own flags, so blocks never wait on each other within a
// rank (Note [Monotonic flags]). Ranks pull: they read peers' memory and write only their own, so a rank's
// kernel ends only after every peer has finished reading it (Note [Stream order covers peer reads]).
//
//   one_shot   all_reduce: every rank reads all n inputs of its range and reduces them in rank order 0..n-1
//              (the same order everywhere: bit-identical outputs). In place, inputs are first staged in the
//              communicator's scratch (each block through its own slot, a slot at a time), since a rank overwrites its input while
//              peers still read it.
//   two_shot   all_reduce: the range is split in n parts; rank r reduces part r from all inputs (reduce-
//              scatter), then copies part p from rank p (all-gather). 2(n-1)/n of the buffer crosses links.
//   ring       all_reduce: each range is split in n chunks, each chunk in `slices` slices; in 2(n-1) steps a
//              rank adds its chunk to the partial sum its ring predecessor left, then copies finished chunks
//              from it, slice by slice, so every step streams behind the previous one. Any link pattern with
//              a Hamiltonian ring works, and each chunk is reduced once (bit-identical outputs).
//   reduce_scatter / all_gather: the direct versions (rank r reads part r from all / every part from its owner).
//
// Note [Stream order covers peer reads]
// A rank's kernel returns only after every rank that reads its memory has finished reading (final barrier,
// or for the ring the successor's last progress flag). So anything queued after the collective on a rank's
// stream - freeing the input, overwriting it - is ordered after all peer reads, and the caching allocator needs
// no record_stream for peers.
#include <cuda_runtime.h>

#include "device_sync.cuh"
#include "kernels.h"
#include "vector_ops.cuh"

namespace ring {
namespace {

__device__ __forceinline__ int64_t split(int64_t n, int64_t parts, int64_t i) { return n * i / parts; }

// Element range [lo, hi) of part i of `parts` of [0, count), boundaries on whole vectors.
template <int kVec>
struct Ranges {
  int64_t count, units;
  __device__ explicit Ranges(int64_t c) : count(c), units((c + kVec - 1) / kVec) {}
  __device__ int64_t elem(int64_t unit) const { return unit * kVec < count ? unit * kVec : count; }
  __device__ void block_share(int64_t& lo, int64_t& hi) const {  // this block's part of [0, count)
    lo = elem(split(units, gridDim.x, blockIdx.x)), hi = elem(split(units, gridDim.x, blockIdx.x + 1));
  }
};

template <typename T, int kVec>
struct Reducer {
  using V = VecOps<T, kVec>;
  using S = VecOps<T, 1>;

  static constexpr int kBatch = 4;  // vectors in flight per thread: loads of a batch are issued before its stores

  // dst[i] = op over r of srcs[r][i] (r in 0..n-1, that order), scaled for avg, for i in [lo, hi).
  __device__ static void reduce(const T* const* srcs, int n, T* dst, int64_t lo, int64_t hi, RedOp op, float s) {
    const int64_t nvec = (hi - lo) / kVec, stride = blockDim.x;
    int64_t v = threadIdx.x;
    for (; v + (kBatch - 1) * stride < nvec; v += kBatch * stride) {
      typename V::Acc acc[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) acc[u] = V::widen(V::load(srcs[0] + lo + (v + u * stride) * kVec));
#pragma unroll
      for (int r = 1; r < kMaxRanks; ++r) {
        if (r >= n) break;
        typename V::Frag f[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) f[u] = V::load(srcs[r] + lo + (v + u * stride) * kVec);
#pragma unroll
        for (int u = 0; u < kBatch; ++u) V::combine(acc[u], V::widen(f[u]), op);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (op == RedOp::Avg) V::scale(acc[u], s);
        V::store(dst + lo + (v + u * stride) * kVec, V::narrow(acc[u]));
      }
    }
    for (; v < nvec; v += stride) V::store(dst + lo + v * kVec, V::narrow(sum_at<V>(srcs, n, lo + v * kVec, op, s)));
    for (int64_t i = lo + nvec * kVec + threadIdx.x; i < hi; i += stride)
      S::store(dst + i, S::narrow(sum_at<S>(srcs, n, i, op, s)));
  }

  template <typename W>
  __device__ static typename W::Acc sum_at(const T* const* srcs, int n, int64_t i, RedOp op, float s) {
    typename W::Acc a = W::widen(W::load(srcs[0] + i));
#pragma unroll
    for (int r = 1; r < kMaxRanks; ++r)
      if (r < n) W::combine(a, W::widen(W::load(srcs[r] + i)), op);
    if (op == RedOp::Avg) W::scale(a, s);
    return a;
  }

  __device__ static void copy(const T* src, T* dst, int64_t lo, int64_t hi) {
    const int64_t nvec = (hi - lo) / kVec, stride = blockDim.x;
    int64_t v = threadIdx.x;
    for (; v + (kBatch - 1) * stride < nvec; v += kBatch * stride) {
      typename V::Frag f[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) f[u] = V::load(src + lo + (v + u * stride) * kVec);
#pragma unroll
      for (int u = 0; u < kBatch; ++u) V::store(dst + lo + (v + u * stride) * kVec, f[u]);
    }
    for (; v < nvec; v += stride) V::store(dst + lo + v * kVec, V::load(src + lo + v * kVec));
    for (int64_t i = lo + nvec * kVec + threadIdx.x; i < hi; i += stride) S::store(dst + i, S::load(src + i));
  }
};

template <typename T>
__device__ __forceinline__ const T* in_of(const Params& p, int r) { return static_cast<const T*>(p.in[r]); }
template <typename T>
__device__ __forceinline__ T* out_of(const Params& p, int r) { return static_cast<T*>(p.out[r]); }

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) one_shot(Params p) {
  using R = Reducer<T, kVec>;
  const Ranges<kVec> g(p.count);
  const int64_t u0 = split(g.units, gridDim.x, blockIdx.x), u1 = split(g.units, gridDim.x, blockIdx.x + 1);
  // In place, block b stages its range through its own slot of the scratch, a slot at a time (stage, meet,
  // reduce, meet): slots never move between rounds, so a block restages only what its own peers have read.
  const int64_t slot = p.in_place ? (p.scratch_elems / kVec / gridDim.x > 0 ? p.scratch_elems / kVec / gridDim.x : 1)
                                  : (u1 > u0 ? u1 - u0 : 1);
  const int64_t rounds = (u1 - u0 + slot - 1) / slot;
  const int64_t slot_base = int64_t(blockIdx.x) * slot * kVec;
  const uint64_t e = p.epoch[blockIdx.x];
  for (int64_t k = 0; k < rounds; ++k) {
    const int64_t lo = g.elem(u0 + k * slot), hi = g.elem(u0 + (k + 1) * slot < u1 ? u0 + (k + 1) * slot : u1);
    const T* srcs[kMaxRanks];  // element i of this round is srcs[r][i - lo]
    for (int r = 0; r < p.nranks; ++r)
      srcs[r] = p.in_place ? static_cast<const T*>(p.scratch[r]) + slot_base : in_of<T>(p, r) + lo;
    if (p.in_place) R::copy(in_of<T>(p, p.rank) + lo, static_cast<T*>(p.scratch[p.rank]) + slot_base, 0, hi - lo);
    if (!barrier(p.bar, p.nranks, e + 2 * k + 1, p.wait, int(2 * k))) return;
    R::reduce(srcs, p.nranks, out_of<T>(p, p.rank) + lo, 0, hi - lo, RedOp(p.op), p.scale);
    if (!barrier(p.bar, p.nranks, e + 2 * k + 2, p.wait, int(2 * k + 1))) return;
  }
  if (threadIdx.x == 0) p.epoch[blockIdx.x] = e + 2 * rounds;
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) two_shot(Params p) {
  using R = Reducer<T, kVec>;
  const Ranges<kVec> g(p.count);
  const int64_t u0 = split(g.units, gridDim.x, blockIdx.x), u1 = split(g.units, gridDim.x, blockIdx.x + 1);
  auto part = [&](int r, int64_t& lo, int64_t& hi) {
    lo = g.elem(u0 + split(u1 - u0, p.nranks, r)), hi = g.elem(u0 + split(u1 - u0, p.nranks, r + 1));
  };
  const T* srcs[kMaxRanks];
  for (int r = 0; r < p.nranks; ++r) srcs[r] = in_of<T>(p, r);
  const uint64_t e = p.epoch[blockIdx.x];
  if (!barrier(p.bar, p.nranks, e + 1, p.wait, 0)) return;
  int64_t lo, hi;
  part(p.rank, lo, hi);  // reduce-scatter: in place, only this rank reads its own part r
  R::reduce(srcs, p.nranks, out_of<T>(p, p.rank), lo, hi, RedOp(p.op), p.scale);
  if (!barrier(p.bar, p.nranks, e + 2, p.wait, 1)) return;
  for (int k = 1; k < p.nranks; ++k) {  // all-gather, starting at the next rank to spread the reads
    const int r = (p.rank + k) % p.nranks;
    part(r, lo, hi);
    R::copy(out_of<T>(p, r), out_of<T>(p, p.rank), lo, hi);
  }
  if (!barrier(p.bar, p.nranks, e + 3, p.wait, 2)) return;
  if (threadIdx.x == 0) p.epoch[blockIdx.x] = e + 3;
}

// Ring step t of rank r works on chunk (r - t - 1) mod n while reducing (t < n - 1), then on chunk
// (r - (t - n + 1)) mod n while gathering: exactly the chunk its predecessor finished at step t - 1. Progress
// counter of block b: base + 1 once the rank's input is readable, base + 1 + t * slices + j + 1 after slice j of
// step t; base + 1 + 2(n-1) * slices at the end, the next call's base.
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) ring_all_reduce(Params p) {
  using R = Reducer<T, kVec>;
  const int n = p.nranks, prev = (p.rank + n - 1) % n, next = (p.rank + 1) % n, S = p.slices;
  const Ranges<kVec> g(p.count);
  const int64_t u0 = split(g.units, gridDim.x, blockIdx.x), u1 = split(g.units, gridDim.x, blockIdx.x + 1);
  uint64_t* mine = p.progress[p.rank] + blockIdx.x;
  const uint64_t* before = p.progress[prev] + blockIdx.x;
  const uint64_t base = *mine;
  signal(mine, base + 1);
  const T* own_in = in_of<T>(p, p.rank);
  T* own_out = out_of<T>(p, p.rank);
  const int steps = 2 * (n - 1);
  for (int t = 0; t < steps; ++t) {
    const bool reducing = t < n - 1;
    const int c = reducing ? (p.rank - t - 1 + 2 * n) % n : (p.rank - (t - n + 1) + 2 * n) % n;
    const int64_t c0 = u0 + split(u1 - u0, n, c), c1 = u0 + split(u1 - u0, n, c + 1);
    for (int j = 0; j < S; ++j) {
      const uint64_t need = t == 0 ? base + 1 : base + 1 + uint64_t(t - 1) * S + j + 1;
      if (!block_wait(before, need, p.wait, t, prev)) return;
      const int64_t lo = g.elem(c0 + split(c1 - c0, S, j)), hi = g.elem(c0 + split(c1 - c0, S, j + 1));
      if (reducing) {
        const T* srcs[kMaxRanks] = {own_in, t == 0 ? in_of<T>(p, prev) : out_of<T>(p, prev)};
        const bool last = t == n - 2;
        R::reduce(srcs, 2, own_out, lo, hi, RedOp(last || p.op != int(RedOp::Avg) ? p.op : int(RedOp::Sum)),
                  p.scale);
      } else {
        R::copy(out_of<T>(p, prev), own_out, lo, hi);
      }
      signal(mine, base + 1 + uint64_t(t) * S + j + 1);
    }
  }
  // The successor reads this rank until its own last slice: wait for it (Note [Stream order covers peer reads]).
  block_wait(p.progress[next] + blockIdx.x, base + 1 + uint64_t(steps) * S, p.wait, steps, next);
}

// out[r][i] = op over p of in[p][r * count + i]
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) reduce_scatter(Params p) {
  using R = Reducer<T, kVec>;
  int64_t lo, hi;
  Ranges<kVec>(p.count).block_share(lo, hi);
  const T* srcs[kMaxRanks];
  for (int r = 0; r < p.nranks; ++r) srcs[r] = in_of<T>(p, r) + p.rank * p.count;
  const uint64_t e = p.epoch[blockIdx.x];
  if (!barrier(p.bar, p.nranks, e + 1, p.wait, 0)) return;
  R::reduce(srcs, p.nranks, out_of<T>(p, p.rank), lo, hi, RedOp(p.op), p.scale);
  if (!barrier(p.bar, p.nranks, e + 2, p.wait, 1)) return;
  if (threadIdx.x == 0) p.epoch[blockIdx.x] = e + 2;
}

// out[r][q * count + i] = in[q][i]
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) all_gather(Params p) {
  using R = Reducer<T, kVec>;
  int64_t lo, hi;
  Ranges<kVec>(p.count).block_share(lo, hi);
  const uint64_t e = p.epoch[blockIdx.x];
  if (!barrier(p.bar, p.nranks, e + 1, p.wait, 0)) return;
  T* dst = out_of<T>(p, p.rank);
  for (int k = 0; k < p.nranks; ++k) {
    const int q = (p.rank + k) % p.nranks;
    if (in_of<T>(p, q) != dst + q * p.count) R::copy(in_of<T>(p, q), dst + q * p.count, lo, hi);
  }
  if (!barrier(p.bar, p.nranks, e + 2, p.wait, 1)) return;
  if (threadIdx.x == 0) p.epoch[blockIdx.x] = e + 2;
}

template <typename T, int kVec>
const void* pick(const Params& p) {
  if (p.kind == Kind::ReduceScatter) return reinterpret_cast<const void*>(&reduce_scatter<T, kVec>);
  if (p.kind == Kind::AllGather) return reinterpret_cast<const void*>(&all_gather<T, kVec>);
  if (p.algo == Algo::OneShot) return reinterpret_cast<const void*>(&one_shot<T, kVec>);
  if (p.algo == Algo::TwoShot) return reinterpret_cast<const void*>(&two_shot<T, kVec>);
  return reinterpret_cast<const void*>(&ring_all_reduce<T, kVec>);
}

template <typename T>
const void* pick_vec(const Params& p) {
  return p.vec16 ? pick<T, 16 / int(sizeof(T))>(p) : pick<T, 1>(p);
}

}  // namespace

const void* kernel_for(const Params& p) {
  switch (p.dtype) {
    case DType::F32: return pick_vec<float>(p);
    case DType::F16: return pick_vec<cutlass::half_t>(p);
    case DType::BF16: return pick_vec<cutlass::bfloat16_t>(p);
  }
  return nullptr;
}

int launch(const Params& p, int blocks, void* stream) {
  Params copy = p;
  void* args[] = {&copy};
  return int(cudaLaunchKernel(kernel_for(p), dim3(unsigned(blocks)), dim3(kThreads), args, 0,
                              static_cast<cudaStream_t>(stream)));
}

}  // namespace ring
