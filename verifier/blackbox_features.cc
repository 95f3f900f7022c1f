#include "verifier/blackbox_features.h"

#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/torch_errors.h"

namespace move::verifier_internal {
namespace {

// Moves the image content down by `dy` and right by `dx` pixels, filling with zeros.
at::Tensor Shift(const at::Tensor& x, int64_t dy, int64_t dx) {
  const int64_t h = x.size(2), w = x.size(3);
  at::Tensor out = torch::zeros_like(x);
  out.narrow(2, dy, h - dy).narrow(3, dx, w - dx).copy_(x.narrow(2, 0, h - dy).narrow(3, 0, w - dx));
  return out;
}

}  // namespace

at::Tensor Quantize8Bit(const at::Tensor& images) {
  return images.to(torch::kFloat32).mul(255.0).round().clamp(0, 255).div(255.0);
}

absl::StatusOr<at::Tensor> AugmentFive(const at::Tensor& images, int64_t shift) {
  if (!images.defined() || images.dim() != 4) return absl::InvalidArgumentError("images: expected N x C x H x W");
  const int64_t limit = std::min(images.size(2), images.size(3)) / 2;
  if (shift < 1 || shift > limit) {
    return absl::InvalidArgumentError(absl::StrCat("shift: must be in [1, ", limit, "] pixels, got ", shift));
  }
  return core::GuardTorch("augmenting query images", [&]() -> absl::StatusOr<at::Tensor> {
    at::Tensor x = images.contiguous();
    return torch::stack({x, x.flip({3}), Shift(x, shift, shift), Shift(x, 0, shift), Shift(x, shift, 0)});
  });
}

absl::StatusOr<at::Tensor> ProbabilityDifferences(const at::Tensor& styled, const at::Tensor& clean) {
  if (!styled.defined() || !clean.defined() || styled.dim() != 3 || styled.sizes() != clean.sizes() ||
      styled.size(0) != kNumAugmentations) {
    return absl::InvalidArgumentError("probabilities: expected two 5 x N x K tensors of the same shape");
  }
  // (5, N, K) -> (N, 5, K) -> (N, 5K)
  at::Tensor d = (styled.to(torch::kFloat32) - clean.to(torch::kFloat32)).permute({1, 0, 2}).contiguous();
  return d.reshape({d.size(0), -1});
}

absl::StatusOr<at::Tensor> StyleContrastScores(const at::Tensor& secret, const at::Tensor& decoys,
                                               const at::Tensor& labels) {
  if (!secret.defined() || !decoys.defined() || !labels.defined() || secret.dim() != 3 ||
      secret.size(0) != kNumAugmentations || decoys.dim() != 4 || decoys.size(0) < 1 ||
      decoys.sizes().slice(1) != secret.sizes() || labels.dim() != 1 || labels.size(0) != secret.size(1)) {
    return absl::InvalidArgumentError(
        "probabilities: expected 5 x N x K (secret style), D x 5 x N x K (decoys) and N labels");
  }
  const int64_t k = secret.size(2);
  if (labels.numel() > 0 && (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= k)) {
    return absl::InvalidArgumentError(absl::StrCat("labels: must be in [0, ", k, ")"));
  }
  return core::GuardTorch("style-contrast scores", [&]() -> absl::StatusOr<at::Tensor> {
    const at::Tensor y = labels.to(torch::kInt64).view({1, -1, 1});
    // True-class probability, averaged over augmentations (and decoys): N each.
    const at::Tensor ps = secret.to(torch::kFloat64).gather(2, y.expand({secret.size(0), -1, 1})).squeeze(2).mean(0);
    const at::Tensor pd = decoys.to(torch::kFloat64)
                              .gather(3, y.unsqueeze(0).expand({decoys.size(0), decoys.size(1), -1, 1}))
                              .squeeze(3)
                              .mean(std::vector<int64_t>{0, 1});
    return ((1.0 + ps - pd) / 2.0).clamp(0, 1).to(torch::kFloat32);
  });
}

}  // namespace move::verifier_internal
