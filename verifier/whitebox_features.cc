#include "verifier/whitebox_features.h"

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"

namespace move::verifier_internal {
namespace {

// Pools a batch of per-sample weight gradients (N x shape) into N x dims.
at::Tensor Pool(const KeptParameter& p, const at::Tensor& g) {
  const int64_t n = g.size(0);
  switch (p.pool) {
    case KeptParameter::Pool::kKernelMax:
      return g.reshape({n, p.shape[0], p.shape[1], -1}).amax(3).reshape({n, -1});
    case KeptParameter::Pool::kInputMax:
      return g.amax(2);
    case KeptParameter::Pool::kNone:
      return g.reshape({n, -1});
  }
  return g;
}

c10::Device ModelDevice(const torch::jit::Module& m) {
  for (const auto& p : m.parameters()) return p.device();
  return c10::Device(c10::kCPU);
}

}  // namespace

std::vector<KeptParameter> SelectParameters(const core::ModelGraph& graph, int64_t max_units) {
  std::vector<KeptParameter> kept;
  for (const auto& [name, shape] : graph.parameters) {
    if (shape.size() == 4) {
      if (shape[0] * shape[1] > max_units) continue;
      kept.push_back({name, shape, KeptParameter::Pool::kKernelMax, shape[0] * shape[1]});
    } else if (shape.size() == 2) {
      if (shape[0] * shape[1] > max_units) {
        kept.push_back({name, shape, KeptParameter::Pool::kInputMax, shape[0]});
      } else {
        kept.push_back({name, shape, KeptParameter::Pool::kNone, shape[0] * shape[1]});
      }
    }
  }
  return kept;
}

absl::StatusOr<std::map<std::string, at::Tensor>> MatchTensors(const core::ModelGraph& graph,
                                                               const torch::jit::Module& model) {
  std::map<std::string, at::Tensor> out;
  std::vector<torch::jit::NameTensor> params, buffers;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) params.push_back(p);
  for (const auto& b : model.named_buffers(/*recurse=*/true)) buffers.push_back(b);
  auto match = [&](const std::vector<std::pair<std::string, std::vector<int64_t>>>& want,
                   const std::vector<torch::jit::NameTensor>& have, const char* what) -> absl::Status {
    if (want.size() != have.size()) {
      return absl::FailedPreconditionError(absl::StrCat("model has ", have.size(), " ", what, " but the architecture has ",
                                                        want.size()));
    }
    std::map<std::string, at::Tensor> by_name;
    for (const auto& h : have) by_name[h.name] = h.value;
    for (size_t i = 0; i < want.size(); ++i) {
      const auto& [name, shape] = want[i];
      auto it = by_name.find(name);
      at::Tensor t = it != by_name.end() ? it->second : have[i].value;
      if (t.sizes().vec() != shape) {
        return absl::FailedPreconditionError(absl::StrCat(what, " '", name, "' has shape [", absl::StrJoin(t.sizes(), ","),
                                                          "], the architecture needs [", absl::StrJoin(shape, ","), "]"));
      }
      out[name] = t.detach();
    }
    return absl::OkStatus();
  };
  MOVE_RETURN_IF_ERROR(match(graph.parameters, params, "parameters"));
  MOVE_RETURN_IF_ERROR(match(graph.buffers, buffers, "buffers"));
  return out;
}

absl::StatusOr<WhiteBoxExtractor> WhiteBoxExtractor::Create(const ModelSpec& spec, int64_t max_units) {
  if (max_units < 1) return absl::InvalidArgumentError("max_units: must be >= 1");
  WhiteBoxExtractor e;
  e.spec_ = spec;
  MOVE_ASSIGN_OR_RETURN(e.graph_, core::ModelGraphForSpec(spec));
  e.kept_ = SelectParameters(e.graph_, max_units);
  for (const auto& k : e.kept_) e.dim_ += k.dims;
  if (e.dim_ == 0) return absl::InvalidArgumentError("max_units: no parameter is kept; raise it");
  return e;
}

absl::StatusOr<at::Tensor> WhiteBoxExtractor::Extract(const torch::jit::Module& model, const at::Tensor& images,
                                                      const at::Tensor& labels, int64_t batch_size,
                                                      bool signs) const {
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size: must be >= 1");
  if (!images.defined() || images.dim() != 4 || !labels.defined() || labels.size(0) != images.size(0)) {
    return absl::InvalidArgumentError("images/labels: expected N x C x H x W images and N labels");
  }
  MOVE_ASSIGN_OR_RETURN(auto tensors, MatchTensors(graph_, model));
  return core::GuardTorch("extracting white-box features", [&]() -> absl::StatusOr<at::Tensor> {
    const c10::Device device = ModelDevice(model);
    std::map<std::string, int> kept_index;
    for (size_t i = 0; i < kept_.size(); ++i) kept_index[kept_[i].name] = static_cast<int>(i);
    std::vector<at::Tensor> batches;
    for (int64_t start = 0; start < images.size(0); start += batch_size) {
      const int64_t n = std::min(batch_size, images.size(0) - start);
      at::Tensor x = images.narrow(0, start, n).to(device).detach().requires_grad_(true);
      at::Tensor y = labels.narrow(0, start, n).to(device);
      std::vector<core::LayerTrace> trace;
      at::Tensor logits = core::RunGraph(graph_, tensors, x, &trace);
      if (start == 0) {
        torch::NoGradGuard no_grad;
        torch::jit::Module m = model.clone();
        m.eval();
        at::Tensor own = m.forward({x.detach()}).toTensor();
        if (!torch::allclose(own, logits.detach(), 1e-3, 1e-3)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "the model's forward() disagrees with architecture ", ModelSpecName(spec_),
              " (max logit difference ", (own - logits.detach()).abs().max().item<double>(),
              "); white-box features cannot be trusted for it"));
        }
      }
      at::Tensor loss = torch::nn::functional::cross_entropy(
          logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      std::vector<const core::LayerTrace*> layers;
      std::vector<at::Tensor> outputs;
      for (const auto& t : trace) {
        if (kept_index.count(t.op->param + "_w")) {
          layers.push_back(&t);
          outputs.push_back(t.output);
        }
      }
      std::vector<at::Tensor> grads = torch::autograd::grad({loss}, outputs);
      std::vector<at::Tensor> pooled(kept_.size());
      for (size_t i = 0; i < layers.size(); ++i) {
        const core::GraphOp& op = *layers[i]->op;
        const KeptParameter& p = kept_[kept_index.at(op.param + "_w")];
        at::Tensor a = layers[i]->input.detach();
        at::Tensor g = grads[i];
        if (op.kind == core::GraphOp::Kind::kConv) {
          const int64_t k = p.shape[2];
          at::Tensor u = torch::im2col(a, {k, k}, {1, 1}, {op.padding, op.padding}, {op.stride, op.stride});
          at::Tensor gw = torch::bmm(g.reshape({n, p.shape[0], -1}), u.transpose(1, 2));  // N x O x (C k k)
          pooled[kept_index.at(op.param + "_w")] = Pool(p, gw);
        } else if (p.pool == KeptParameter::Pool::kInputMax) {
          // max_i g_o a_i = g_o * (g_o >= 0 ? max_i a_i : min_i a_i)
          at::Tensor amax = a.amax(1, true), amin = a.amin(1, true);
          pooled[kept_index.at(op.param + "_w")] = torch::where(g >= 0, g * amax, g * amin);
        } else {
          pooled[kept_index.at(op.param + "_w")] = (g.unsqueeze(2) * a.unsqueeze(1)).reshape({n, -1});
        }
      }
      for (size_t i = 0; i < pooled.size(); ++i) {
        if (!pooled[i].defined()) {
          return absl::InternalError(absl::StrCat("no layer of the graph uses parameter ", kept_[i].name));
        }
      }
      at::Tensor raw = torch::cat(pooled, 1).detach();
      batches.push_back((signs ? torch::sign(raw) : raw).to(torch::kCPU));
    }
    return torch::cat(batches);
  });
}

absl::StatusOr<at::Tensor> WhiteBoxExtractor::ExtractOneByOne(const torch::jit::Module& model, const at::Tensor& images,
                                                              const at::Tensor& labels) const {
  return core::GuardTorch("extracting white-box features one by one", [&]() -> absl::StatusOr<at::Tensor> {
    torch::jit::Module m = model.clone();
    m.eval();
    std::map<std::string, at::Tensor> named;
    for (const auto& p : m.named_parameters()) named[p.name] = p.value;
    MOVE_ASSIGN_OR_RETURN(auto matched, MatchTensors(graph_, m));
    (void)matched;
    std::vector<at::Tensor> params;
    for (const auto& k : kept_) {
      auto it = named.find(k.name);
      if (it == named.end()) return absl::FailedPreconditionError(absl::StrCat("model has no parameter ", k.name));
      params.push_back(it->second);
    }
    const c10::Device device = ModelDevice(m);
    std::vector<at::Tensor> rows;
    for (int64_t i = 0; i < images.size(0); ++i) {
      at::Tensor x = images.narrow(0, i, 1).to(device);
      at::Tensor loss = torch::nn::functional::cross_entropy(m.forward({x}).toTensor(), labels.narrow(0, i, 1).to(device));
      std::vector<at::Tensor> grads = torch::autograd::grad({loss}, params);
      std::vector<at::Tensor> pooled;
      for (size_t j = 0; j < kept_.size(); ++j) pooled.push_back(Pool(kept_[j], grads[j].unsqueeze(0)));
      rows.push_back(torch::sign(torch::cat(pooled, 1)).to(torch::kCPU));
    }
    return torch::cat(rows);
  });
}

}  // namespace move::verifier_internal
