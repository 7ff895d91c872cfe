#pragma once
// CUDA graphs: record the kernels and copies a stream queues into a graph once, then launch the whole graph
// with one call. A CUDAGraph captures on the current stream of the current device, which must not be the
// legacy default stream (CUDA forbids capturing it; vt.cuda.graph captures on a side stream). Tensors the
// captured work touches keep their addresses in the graph: replay() reruns the same work on the same memory,
// so new inputs are written into the tensors used at capture time ("static" inputs and outputs).
//
// Memory allocated during the capture comes from a private pool of the caching allocator (Note
// [Graph-private pool] in vt/cuda/caching_allocator.h): the graph holds a use of that pool from capture_begin
// until reset() or destruction; graphs sharing a pool id (graph_pool_handle(), or another graph's pool())
// must be replayed in capture order.
//
// States: empty -> capturing (capture_begin) -> ready (capture_end) -> empty (reset). A capture that fails
// (an illegal call invalidated it, or capture_end raised) leaves the graph empty and its stream usable. Not
// thread-safe: one graph is driven by one thread (as in torch). Not handled: graph update (cudaGraphExecUpdate),
// conditional nodes, capture across devices.
#include <cstdint>
#include <string>

#include "vt/cuda/caching_allocator.h"

struct CUgraph_st;      // cudaGraph_t
struct CUgraphExec_st;  // cudaGraphExec_t

namespace vt::cuda {

// How a capture restricts "potentially unsafe" CUDA calls elsewhere (cudaStreamCaptureMode): Global forbids them
// in every thread while the capture runs, ThreadLocal only in the capturing thread, Relaxed nowhere.
enum class CaptureErrorMode { Global, ThreadLocal, Relaxed };
// "global" | "thread_local" | "relaxed"; ValueError naming the argument otherwise.
CaptureErrorMode parse_capture_error_mode(const std::string& text);

// A fresh pool id for graphs that should share memory (torch.cuda.graph_pool_handle()).
MempoolId graph_pool_handle();
// Whether the current stream of the current device is capturing (false without a CUDA device).
bool is_current_stream_capturing();

class CUDAGraph {
 public:
  CUDAGraph() = default;
  ~CUDAGraph();  // as reset(), never throws
  CUDAGraph(const CUDAGraph&) = delete;
  CUDAGraph& operator=(const CUDAGraph&) = delete;

  // pool: kSharedPool for a pool of this graph's own, else a pool id to share.
  void capture_begin(MempoolId pool = kSharedPool, CaptureErrorMode mode = CaptureErrorMode::Global);
  void capture_end();
  // Launches the graph on the current stream of the graph's device.
  void replay();
  // Drops the captured graph and the pool use; ends (and discards) a capture still in progress.
  void reset();
  // The private pool's id ((0, 0) before the first capture_begin).
  MempoolId pool() const { return pool_; }
  bool is_capturing() const { return state_ == State::Capturing; }
  bool is_ready() const { return state_ == State::Ready; }
  size_t num_nodes() const;
  // Writes the graph as Graphviz DOT (cudaGraphDebugDotPrint).
  void debug_dump(const std::string& path) const;

 private:
  enum class State { Empty, Capturing, Ready };
  void end_failed_capture() noexcept;  // leaves capture mode, discards what was captured, drops the pool use
  State state_ = State::Empty;
  int device_ = -1;
  StreamId capture_stream_ = 0;
  MempoolId pool_ = kSharedPool;
  bool holds_pool_ = false;
  CUgraph_st* graph_ = nullptr;
  CUgraphExec_st* exec_ = nullptr;
};

}  // namespace vt::cuda
