#include "core/model_graph.h"

#include <unordered_map>

#include <torch/torch.h>

namespace move::core {

at::Tensor RunGraph(const ModelGraph& graph, const std::map<std::string, at::Tensor>& tensors,
                    const at::Tensor& x, std::vector<LayerTrace>* trace) {
  std::unordered_map<std::string, at::Tensor> values;
  values["x"] = x;
  auto t = [&](const std::string& name) -> const at::Tensor& { return tensors.at(name); };
  for (const GraphOp& op : graph.ops) {
    const at::Tensor& in = values.at(op.input);
    at::Tensor out;
    switch (op.kind) {
      case GraphOp::Kind::kConv:
        out = torch::conv2d(in, t(op.param + "_w"), {}, op.stride, op.padding);
        break;
      case GraphOp::Kind::kBatchNorm:
        out = torch::batch_norm(in, t(op.param + "_w"), t(op.param + "_b"), t(op.param + "_mean"),
                                t(op.param + "_var"), /*training=*/false, 0.1, 1e-5, /*cudnn_enabled=*/false);
        break;
      case GraphOp::Kind::kRelu:
        out = torch::relu(in);
        break;
      case GraphOp::Kind::kAdd:
        out = in + values.at(op.input2);
        break;
      case GraphOp::Kind::kMaxPool:
        out = torch::max_pool2d(in, {2, 2}, {2, 2});
        break;
      case GraphOp::Kind::kMean:
        out = in.mean({2, 3});
        break;
      case GraphOp::Kind::kLinear:
        out = torch::linear(in, t(op.param + "_w"), t(op.param + "_b"));
        break;
    }
    if (trace != nullptr && (op.kind == GraphOp::Kind::kConv || op.kind == GraphOp::Kind::kLinear)) {
      trace->push_back(LayerTrace{&op, in, out});
    }
    values[op.output] = out;
  }
  return values.at(graph.output);
}

}  // namespace move::core
