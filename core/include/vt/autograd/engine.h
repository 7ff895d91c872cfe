#pragma once
// The backward engine: runs the graph behind some root tensors in reverse, accumulating gradients into leaves
// (backward) or handing them back for chosen inputs (grad). See Note [Backward engine] in engine.cpp.
#include <vector>

#include "vt/autograd/node.h"

namespace vt::autograd {

// torch.autograd.backward. grad_roots[i] may be undefined for a one-element root (a gradient of 1 is made).
// `inputs`, when not empty, limits accumulation to those tensors.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph, const std::vector<Tensor>& inputs = {});

// torch.autograd.grad: d(roots)/d(inputs), one result per input (undefined for an unused input when allow_unused).
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_roots, bool retain_graph, bool create_graph,
                         bool allow_unused);

// Whether a backward over several CUDA devices runs each device's nodes on a thread of that device (Note [Device
// workers] in src/autograd/device_workers.h); on unless VT_AUTOGRAD_DEVICE_THREADS=0 at start.
bool device_workers_enabled();
void set_device_workers_enabled(bool on);

}  // namespace vt::autograd
