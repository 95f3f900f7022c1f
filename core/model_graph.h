// The zoo's architectures as a small op graph that can also be run eagerly.
//
// Every zoo model is generated from this graph: the TorchScript forward() is its source form.
// Running the same graph eagerly from C++ lets the verifier see inside a forward pass (the
// inputs and outputs of every conv and linear layer) to compute per-sample weight gradients
// for a whole batch at once, which TorchScript hides.
#ifndef MOVE_CORE_MODEL_GRAPH_H_
#define MOVE_CORE_MODEL_GRAPH_H_

#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "sdk/model.h"

namespace move::core {

struct GraphOp {
  enum class Kind { kConv, kBatchNorm, kRelu, kAdd, kMaxPool, kMean, kLinear };
  Kind kind;
  // Value names: "x" is the input; every op defines `output`.
  std::string input, input2, output;
  // Parameter prefix: conv weight "<param>_w"; BatchNorm "<param>_{w,b,mean,var}";
  // linear "<param>_{w,b}".
  std::string param;
  int64_t stride = 1, padding = 0;
};

struct ModelGraph {
  std::vector<GraphOp> ops;
  std::string output;
  // Names and shapes of parameters and buffers, in registration order.
  std::vector<std::pair<std::string, std::vector<int64_t>>> parameters, buffers;
};

// The graph behind CreateModel(spec).
absl::StatusOr<ModelGraph> ModelGraphForSpec(const ModelSpec& spec);

// Recorded during RunGraph for every conv and linear op, in graph order.
struct LayerTrace {
  const GraphOp* op;
  at::Tensor input;   // the layer's input activation
  at::Tensor output;  // the layer's output (before any following op)
};

// Runs the graph eagerly in eval mode (BatchNorm uses running statistics) with tensors taken
// from `tensors` (parameter and buffer names as in ModelGraph). If `trace` is set, conv and
// linear inputs/outputs are recorded there.
at::Tensor RunGraph(const ModelGraph& graph, const std::map<std::string, at::Tensor>& tensors,
                    const at::Tensor& x, std::vector<LayerTrace>* trace);

}  // namespace move::core

#endif  // MOVE_CORE_MODEL_GRAPH_H_
