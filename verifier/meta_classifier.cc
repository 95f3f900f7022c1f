#include "verifier/meta_classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/progress.h"
#include "core/torch_errors.h"

namespace move::verifier_internal {
namespace {

at::Tensor L2(const at::Tensor& f, bool enabled) {
  at::Tensor x = f.to(torch::kFloat32);
  return enabled ? x / x.norm(2, 1, true).clamp_min(1e-12) : x;
}

// Bundles written before the option existed hold no "l2" entry: they were L2-normalised.
bool UsesL2(const std::map<std::string, at::Tensor>& state) {
  auto it = state.find("l2");
  return it == state.end() || it->second.item<double>() != 0;
}

}  // namespace

at::Tensor MetaClassifier::Forward(const at::Tensor& features, bool train, double dropout, at::Generator* gen) const {
  at::Tensor h = (L2(features, UsesL2(state_)) - state_.at("mean")) / state_.at("std");
  auto drop = [&](const at::Tensor& t) {
    if (!train || dropout <= 0) return t;
    at::Tensor keep = torch::rand(t.sizes(), *gen).ge(dropout).to(t.dtype());
    return t * keep / (1 - dropout);
  };
  h = drop(h);
  h = drop(torch::relu(torch::linear(h, state_.at("w1"), state_.at("b1"))));
  h = drop(torch::relu(torch::linear(h, state_.at("w2"), state_.at("b2"))));
  return torch::linear(h, state_.at("w3"), state_.at("b3"));
}

absl::StatusOr<MetaClassifier> MetaClassifier::Train(const at::Tensor& features, const at::Tensor& labels,
                                                     const MetaClassifierOptions& o) {
  if (!features.defined() || features.dim() != 2 || !labels.defined() || labels.dim() != 1 ||
      labels.size(0) != features.size(0)) {
    return absl::InvalidArgumentError("features/labels: expected N x d features and N labels");
  }
  if (features.size(0) < 2) return absl::InvalidArgumentError("features: need at least 2 samples");
  if (o.epochs < 1 || o.batch_size < 1 || o.hidden_divisor1 < 1 || o.hidden_divisor2 < 1) {
    return absl::InvalidArgumentError("meta-classifier options: epochs, batch_size and divisors must be >= 1");
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) return absl::InvalidArgumentError("dropout: must be in [0, 1)");
  return core::GuardTorch("training the meta-classifier", [&]() -> absl::StatusOr<MetaClassifier> {
    const at::Tensor y = labels.to(torch::kInt64);
    if (y.min().item<int64_t>() < 0 || y.max().item<int64_t>() > 1) {
      return absl::InvalidArgumentError("labels: must be 0 or 1");
    }
    if (y.eq(0).sum().item<int64_t>() == 0 || y.eq(1).sum().item<int64_t>() == 0) {
      return absl::InvalidArgumentError("labels: need examples of both classes");
    }
    const int64_t d = features.size(1);
    const int64_t h1 = std::max<int64_t>(2, d / o.hidden_divisor1);
    const int64_t h2 = std::max<int64_t>(2, d / o.hidden_divisor2);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    MetaClassifier c;
    c.state_["l2"] = torch::full({1}, o.l2_normalize ? 1.0 : 0.0);
    at::Tensor x = L2(features, o.l2_normalize);
    c.state_["mean"] = x.mean(0);
    c.state_["std"] = x.std(0).clamp_min(1e-6);
    auto init = [&](const std::string& name, int64_t out, int64_t in) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      c.state_["w" + name] = torch::empty({out, in}).uniform_(-bound, bound, gen).requires_grad_(true);
      c.state_["b" + name] = torch::empty({out}).uniform_(-bound, bound, gen).requires_grad_(true);
    };
    init("1", h1, d);
    init("2", h2, h1);
    init("3", 2, h2);
    std::vector<at::Tensor> params;
    for (const char* k : {"w1", "b1", "w2", "b2", "w3", "b3"}) params.push_back(c.state_[k]);
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(o.learning_rate).momentum(o.momentum).weight_decay(o.weight_decay));
    const int64_t n = features.size(0);
    core::Progress progress("train meta-classifier", o.epochs, o.show_progress);
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
      at::Tensor perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
      double loss_sum = 0;
      for (int64_t s = 0; s < n; s += o.batch_size) {
        at::Tensor idx = perm.narrow(0, s, std::min(o.batch_size, n - s));
        at::Tensor logits = c.Forward(features.index_select(0, idx), /*train=*/true, o.dropout, &gen);
        at::Tensor loss = torch::nn::functional::cross_entropy(logits, y.index_select(0, idx));
        sgd.zero_grad();
        loss.backward();
        sgd.step();
        loss_sum += loss.item<double>() * idx.size(0);
      }
      progress.Update(epoch + 1, absl::StrFormat("loss %.4f", loss_sum / n));
    }
    progress.Finish();
    for (auto& [k, v] : c.state_) v = v.detach();
    return c;
  });
}

absl::StatusOr<MetaClassifier> MetaClassifier::FromState(const std::map<std::string, at::Tensor>& state) {
  for (const char* k : {"mean", "std", "w1", "b1", "w2", "b2", "w3", "b3"}) {
    if (!state.count(k)) return absl::DataLossError(absl::StrCat("meta-classifier state lacks '", k, "'"));
  }
  if (state.count("l2") && state.at("l2").numel() != 1) return absl::DataLossError("meta-classifier state: bad 'l2' entry");
  const int64_t d = state.at("mean").size(0);
  if (state.at("std").size(0) != d || state.at("w1").dim() != 2 || state.at("w1").size(1) != d ||
      state.at("w2").size(1) != state.at("w1").size(0) || state.at("w3").size(1) != state.at("w2").size(0) ||
      state.at("w3").size(0) != 2) {
    return absl::DataLossError("meta-classifier state has inconsistent shapes");
  }
  MetaClassifier c;
  c.state_ = state;
  return c;
}

absl::StatusOr<at::Tensor> MetaClassifier::Score(const at::Tensor& features) const {
  if (!features.defined() || features.dim() != 2 || features.size(1) != dim()) {
    return absl::InvalidArgumentError(absl::StrCat("features: expected N x ", dim()));
  }
  return core::GuardTorch("scoring with the meta-classifier", [&]() -> absl::StatusOr<at::Tensor> {
    torch::NoGradGuard no_grad;
    return torch::softmax(Forward(features.to(torch::kCPU), false, 0, nullptr), 1).select(1, 1).contiguous();
  });
}

ClassifierErrors MeasureErrors(const at::Tensor& scores, const at::Tensor& labels) {
  ClassifierErrors e;
  at::Tensor pred = scores.ge(0.5);
  at::Tensor pos = labels.eq(1), neg = labels.eq(0);
  e.positives = pos.sum().item<int64_t>();
  e.negatives = neg.sum().item<int64_t>();
  if (e.negatives > 0) e.type1 = pred.logical_and(neg).sum().item<double>() / e.negatives;
  if (e.positives > 0) e.type2 = pred.logical_not().logical_and(pos).sum().item<double>() / e.positives;
  return e;
}

}  // namespace move::verifier_internal
