// White-box MOVE features: signs of per-sample loss gradients with respect to the weights
// (paper 001, Eq. 4), pooled as in the reference implementation.
//
// Layer selection and pooling (the reference's getgradients.py, recorded in the bundle):
//   - 1-D parameters (biases, BatchNorm) are dropped;
//   - a conv weight (out, in, k, k) with out * in > max_units is dropped; a kept one is
//     reshaped to (out, in, k*k) and max-pooled over k*k;
//   - a linear weight (out, in) with out * in > max_units is max-pooled over `in`; a smaller
//     one is kept whole;
//   - the pooled gradients are flattened, concatenated in parameter order, and their signs
//     taken (pooling happens on the raw gradient, before the sign).
// With max_units = 5000 this gives 22,192 dimensions for WRN-16-1 and 16,586 for CIFAR
// ResNet-18, as in the reference.
//
// Extraction is batched: the model's graph is run eagerly, the gradients of the summed loss
// with respect to each kept layer's output are taken once per batch, and per-sample weight
// gradients are formed from them and the layer inputs (unfold + batched matmul), for the kept
// layers only. BatchNorm is in eval mode, so samples are independent and these equal the
// per-sample gradients of a one-image-at-a-time loop.
#ifndef MOVE_VERIFIER_WHITEBOX_FEATURES_H_
#define MOVE_VERIFIER_WHITEBOX_FEATURES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "core/model_graph.h"
#include "sdk/model.h"

namespace move::verifier_internal {

struct KeptParameter {
  enum class Pool { kKernelMax, kInputMax, kNone };
  std::string name;
  std::vector<int64_t> shape;
  Pool pool;
  int64_t dims;  // features contributed
};

// Applies the selection rules above to a graph's parameters.
std::vector<KeptParameter> SelectParameters(const core::ModelGraph& graph, int64_t max_units);

// Maps a model's parameters and buffers onto `graph`'s names: by name where the model uses
// the zoo's names (any SDK model, also after a round trip through Python), otherwise by
// order and shape. kFailedPrecondition naming the first mismatch when the model does not
// have the graph's architecture.
absl::StatusOr<std::map<std::string, at::Tensor>> MatchTensors(const core::ModelGraph& graph,
                                                               const torch::jit::Module& model);

class WhiteBoxExtractor {
 public:
  static absl::StatusOr<WhiteBoxExtractor> Create(const ModelSpec& spec, int64_t max_units = 5000);

  // Returns N x dim float features in {-1, 0, 1} for `images` (N x C x H x W) with their
  // true `labels`, computed in batches on the model's device. The model's own forward is
  // checked against the graph on the first batch (kFailedPrecondition if they disagree).
  // With `signs` = false the pooled raw gradients are returned instead of their signs (for
  // coarser features built on them, e.g. per-layer norms).
  absl::StatusOr<at::Tensor> Extract(const torch::jit::Module& model, const at::Tensor& images,
                                     const at::Tensor& labels, int64_t batch_size = 32,
                                     bool signs = true) const;

  // The same features computed the slow way: one image at a time, autograd over the
  // TorchScript module's own parameters. For tests and benchmarks.
  absl::StatusOr<at::Tensor> ExtractOneByOne(const torch::jit::Module& model, const at::Tensor& images,
                                             const at::Tensor& labels) const;

  int64_t dim() const { return dim_; }
  const std::vector<KeptParameter>& kept() const { return kept_; }
  const core::ModelGraph& graph() const { return graph_; }
  const ModelSpec& spec() const { return spec_; }

 private:
  ModelSpec spec_;
  core::ModelGraph graph_;
  std::vector<KeptParameter> kept_;
  int64_t dim_ = 0;
};

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_WHITEBOX_FEATURES_H_
