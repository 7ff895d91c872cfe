#pragma once
// The one checking macro for CUDA runtime calls (STYLE principle 8): a failed call raises a vt::Error naming
// the call, the CUDA error and file:line; out-of-memory raises the OutOfMemory kind. The sticky error state
// is cleared so the process stays usable. Errors caused by an ongoing CUDA graph capture get a sentence saying
// what was illegal and what became of the capture (capture_hint).
#include <cuda_runtime.h>

#include "vt/core/error.h"

namespace vt::cuda::detail {
// "" for errors unrelated to stream capture.
inline const char* capture_hint(cudaError_t e) {
  switch (e) {
    case cudaErrorStreamCaptureUnsupported:
      return " (illegal while a CUDA graph is being captured: a synchronize, a blocking host<->device copy, an "
             "event query or another call that waits for the device cannot be recorded into a graph. The capture "
             "is now invalidated: end it (leave the vt.cuda.graph block, or reset() the graph) and move this call "
             "out of the captured region)";
    case cudaErrorStreamCaptureInvalidated:
      return " (the CUDA graph capture on this stream was invalidated by an earlier illegal call; end it (leave "
             "the vt.cuda.graph block, or reset() the graph) before using the stream again)";
    case cudaErrorStreamCaptureImplicit:
      return " (the legacy default stream was used while a blocking stream is capturing a CUDA graph, which would "
             "make it depend on the capture; the capture is invalidated. Capture on non-blocking streams "
             "(vt.cuda.Stream()) and keep other work off the default stream until the capture ends)";
    case cudaErrorCapturedEvent:
      return " (the event was recorded inside a CUDA graph capture: it cannot be queried or waited on by the host)";
    case cudaErrorStreamCaptureUnjoined:
      return " (work forked to another stream during the CUDA graph capture was not joined back: make the "
             "capturing stream wait_stream() the other before capture_end)";
    case cudaErrorStreamCaptureWrongThread:
      return " (a capture begun in global or thread_local mode must end on the thread that began it; use "
             "capture_error_mode=\"relaxed\" to end it elsewhere)";
    case cudaErrorStreamCaptureIsolation:
    case cudaErrorStreamCaptureMerge:
    case cudaErrorStreamCaptureUnmatched:
      return " (the streams of a CUDA graph capture were combined illegally; the capture is invalidated)";
    default:
      return "";
  }
}
}  // namespace vt::cuda::detail

#define VT_CUDA_CHECK(expr)                                                                                 \
  do {                                                                                                      \
    cudaError_t vt_cuda_err_ = (expr);                                                                      \
    if (vt_cuda_err_ != cudaSuccess) [[unlikely]] {                                                         \
      cudaGetLastError();                                                                                   \
      ::vt::detail::fail(vt_cuda_err_ == cudaErrorMemoryAllocation ? ::vt::ErrorKind::OutOfMemory           \
                                                                   : ::vt::ErrorKind::Runtime,              \
                         "CUDA error: ", cudaGetErrorString(vt_cuda_err_), " in ", #expr, " at ", __FILE__, \
                         ":", __LINE__, ::vt::cuda::detail::capture_hint(vt_cuda_err_));                    \
    }                                                                                                       \
  } while (0)
