// The launch interface between the communicator (host) and the collective kernels (device).
//
// One kernel per rank and call, launched on that rank's device and current stream. Every rank's kernel gets
// every rank's buffer pointers (one process, unified addresses: no registration or exchange per call) and
// reads peers' memory directly; each rank writes only its own memory, except the barrier flags it sets on
// peers. See kernels.cu for the algorithms and device_sync.cuh for the flag protocol.
#pragma once

#include <cstdint>

#include "protocol.h"

namespace ring {

enum class Algo : int { Auto = 0, OneShot = 1, TwoShot = 2, Ring = 3 };
enum class Kind : int { AllReduce = 0, ReduceScatter = 1, AllGather = 2 };
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Rank r's communicator memory: [kMaxBlocks] ring progress counters, [kMaxBlocks][kMaxRanks] barrier flags,
// [kMaxBlocks] barrier epochs, the claim word (rank 0's is the one used), padding, then the staging buffer.
struct RankMem {
  uint64_t* progress;
  uint64_t* bar;
  uint64_t* epoch;
  unsigned* claim;
  void* scratch;
};
constexpr int64_t kFlagBytes = int64_t(sizeof(uint64_t)) * (kMaxBlocks * (kMaxRanks + 2) + 2);

struct Params {
  Kind kind;
  Algo algo;
  DType dtype;
  int op;             // a RedOp
  float scale;        // 1/nranks for avg
  int nranks, rank;
  bool in_place;      // all_reduce: the rank's input is its output
  bool vec16;         // every buffer is 16-byte aligned: 16-byte vector accesses
  int slices;         // ring: pipeline slices per chunk
  int64_t scratch_elems;  // one_shot in place: elements of the staging buffer (a multiple of 16 bytes)
  int64_t count;      // elements of each rank's input (all_reduce, all_gather) or output (reduce_scatter)
  const void* in[kMaxRanks];
  void* out[kMaxRanks];
  void* scratch[kMaxRanks];
  uint64_t* progress[kMaxRanks];
  uint64_t* bar[kMaxRanks];
  uint64_t* epoch;    // this rank's
  WaitCtx wait;
};

// Launches the kernel of p.algo/p.kind for one rank with `blocks` blocks of kThreads threads on `stream`.
constexpr int kThreads = 512;
const void* kernel_for(const Params& p);  // the __global__ function (for occupancy queries)
int launch(const Params& p, int blocks, void* stream);  // a cudaError_t

}  // namespace ring
