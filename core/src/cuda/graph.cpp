// CUDA graph capture and replay over the caching allocator's private pools (vt/cuda/graph.h, Note
// [Graph-private pool]). The order of calls matters: the allocator learns of a capture before CUDA begins it,
// so from the first captured call on it makes no call that could invalidate the capture, and it forgets the
// capture only after CUDA ended it.
#include "vt/cuda/graph.h"

#include <cuda_runtime.h>

#include <atomic>

#include "vt/cuda/check.h"
#include "vt/cuda/device.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {

namespace {
std::atomic<uint64_t> g_pool_serial{1};  // pool ids are unique in the process; 0 means "none"

cudaStream_t as_stream(StreamId s) { return reinterpret_cast<cudaStream_t>(s); }

cudaStreamCaptureMode to_cuda(CaptureErrorMode m) {
  switch (m) {
    case CaptureErrorMode::ThreadLocal: return cudaStreamCaptureModeThreadLocal;
    case CaptureErrorMode::Relaxed: return cudaStreamCaptureModeRelaxed;
    default: return cudaStreamCaptureModeGlobal;
  }
}
}  // namespace

CaptureErrorMode parse_capture_error_mode(const std::string& text) {
  if (text == "global") return CaptureErrorMode::Global;
  if (text == "thread_local") return CaptureErrorMode::ThreadLocal;
  if (text == "relaxed") return CaptureErrorMode::Relaxed;
  VT_FAIL_KIND(Value, "capture_error_mode must be \"global\", \"thread_local\" or \"relaxed\", got \"", text, "\"");
}

MempoolId graph_pool_handle() { return {0, g_pool_serial++}; }

bool is_current_stream_capturing() {
  if (!is_available()) return false;
  int device = current_device();
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaError_t e = cudaStreamIsCapturing(as_stream(current_stream(device)), &status);
  if (e == cudaErrorStreamCaptureImplicit) {  // the legacy stream while a blocking stream captures: tied to it
    cudaGetLastError();
    return true;
  }
  VT_CUDA_CHECK(e);
  return status != cudaStreamCaptureStatusNone;  // an invalidated capture is still a capture until it ends
}

CUDAGraph::~CUDAGraph() {
  try {
    reset();
  } catch (...) {  // a destructor must not throw; the pool use is at worst kept (memory stays reserved)
  }
}

void CUDAGraph::capture_begin(MempoolId pool, CaptureErrorMode mode) {
  VT_CHECK(state_ != State::Capturing, "capture_begin: this graph is already capturing (nested capture_begin); ",
           "call capture_end() first");
  VT_CHECK(state_ != State::Ready, "capture_begin: this graph already holds a captured graph; reset() it, or use ",
           "a new CUDAGraph, to capture again");
  int device = current_device();
  StreamId stream = current_stream(device);
  VT_CHECK(stream != 0, "capture_begin: the current stream is the default (legacy) stream, which CUDA cannot ",
           "capture. Capture on a side stream: `with vt.cuda.graph(g):` does, or wrap capture_begin()/",
           "capture_end() in `with vt.cuda.stream(vt.cuda.Stream()):`");
  cudaStream_t s = as_stream(stream);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  VT_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
  VT_CHECK(status == cudaStreamCaptureStatusNone, "capture_begin: the current stream is already capturing another ",
           "graph (nested capture is not supported); end that capture first");
  MempoolId id = pool == kSharedPool ? MempoolId{g_pool_serial++, 0} : pool;
  CachingAllocator& alloc = device_allocator(device);
  alloc.begin_allocate_to_pool(id);  // before the capture begins: see the comment at the top of this file
  cudaError_t e = cudaStreamBeginCapture(s, to_cuda(mode));
  bool begun = e == cudaSuccess;
  unsigned long long capture_id = 0;
  if (begun) e = cudaStreamGetCaptureInfo(s, &status, &capture_id);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (begun) {  // begun but not queryable: end it again
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      cudaGetLastError();
      if (g) cudaGraphDestroy(g);
    }
    alloc.end_allocate_to_pool(id);
    alloc.release_pool(id);
    VT_CUDA_CHECK(e);
  }
  alloc.attach_capture(id, capture_id);
  state_ = State::Capturing;
  device_ = device;
  capture_stream_ = stream;
  pool_ = id;
  holds_pool_ = true;
}

void CUDAGraph::capture_end() {
  VT_CHECK(state_ == State::Capturing, state_ == State::Ready ? "capture_end: the capture has already ended"
                                                              : "capture_end: called without capture_begin");
  StreamId now = current_stream(device_);
  VT_CHECK(now == capture_stream_, "capture_end must be called on the stream the capture began on (stream ",
           capture_stream_, "), but the current stream is ", now);
  DeviceGuard guard(device_);
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(as_stream(capture_stream_), &graph);
  if (e == cudaErrorStreamCaptureWrongThread) VT_CUDA_CHECK(e);  // still capturing: the right thread may end it
  CachingAllocator& alloc = device_allocator(device_);
  alloc.end_allocate_to_pool(pool_);
  if (e != cudaSuccess || graph == nullptr) {
    cudaGetLastError();
    if (graph) cudaGraphDestroy(graph);
    state_ = State::Empty;
    holds_pool_ = false;
    alloc.release_pool(pool_);
    VT_FAIL("CUDA graph capture failed (", cudaGetErrorString(e), "): the capture was invalidated by a call that ",
            "is illegal while capturing (a synchronize, a blocking host<->device copy such as .cpu() or .item(), ",
            "an event query, or work on the legacy default stream)", detail::capture_hint(e),
            ". Nothing was recorded: the graph is empty and can capture again, and the stream is usable.");
  }
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, graph, 0);
  if (e != cudaSuccess) {
    cudaGetLastError();
    cudaGraphDestroy(graph);
    state_ = State::Empty;
    holds_pool_ = false;
    alloc.release_pool(pool_);
    VT_CUDA_CHECK(e);
  }
  graph_ = graph;  // kept (it is small) for num_nodes() and debug_dump()
  exec_ = exec;
  state_ = State::Ready;
}

void CUDAGraph::replay() {
  VT_CHECK(state_ == State::Ready, state_ == State::Capturing
                                       ? "replay() during capture: call capture_end() first"
                                       : "replay() before capture: capture_begin() and capture_end() first (or the "
                                         "graph was reset)");
  DeviceGuard guard(device_);
  StreamId stream = current_stream(device_);
  // Before the launch: the pool's memory must count as used on this stream from now on.
  device_allocator(device_).record_pool_use(pool_, stream);
  VT_CUDA_CHECK(cudaGraphLaunch(exec_, as_stream(stream)));
}

void CUDAGraph::end_failed_capture() noexcept {
  DeviceGuard guard(device_);
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(as_stream(capture_stream_), &graph);
  cudaGetLastError();
  if (graph) cudaGraphDestroy(graph);
  try {
    device_allocator(device_).end_allocate_to_pool(pool_);
  } catch (...) {
  }
  state_ = State::Empty;
}

void CUDAGraph::reset() {
  if (state_ == State::Capturing) end_failed_capture();
  if (exec_ || graph_) {
    DeviceGuard guard(device_);
    // Destroying is not a captured operation; relaxed mode keeps it from invalidating another thread's capture.
    // An exec still running is freed by CUDA when it completes.
    CaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    cudaGetLastError();
    exec_ = nullptr;
    graph_ = nullptr;
  }
  state_ = State::Empty;
  if (holds_pool_) {
    holds_pool_ = false;
    device_allocator(device_).release_pool(pool_);
  }
}

size_t CUDAGraph::num_nodes() const {
  if (!graph_) return 0;
  size_t n = 0;
  VT_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
  return n;
}

void CUDAGraph::debug_dump(const std::string& path) const {
  VT_CHECK(graph_, "debug_dump: no captured graph (capture_begin() and capture_end() first)");
  VT_CUDA_CHECK(cudaGraphDebugDotPrint(graph_, path.c_str(), cudaGraphDebugDotFlagsVerbose));
}

}  // namespace vt::cuda
