// move::AugmentAppearance: colour transfer and texture blending towards procedural textures.
#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"

namespace move {

absl::StatusOr<Dataset> AugmentAppearance(const Dataset& dataset, const AppearanceAugmentOptions& o) {
  if (!(o.fraction > 0 && o.fraction <= 1)) return absl::InvalidArgumentError("fraction: must be in (0, 1]");
  if (o.textures < 1 || o.textures > 256) return absl::InvalidArgumentError("textures: must be in [1, 256]");
  if (!(o.min_blend >= 0 && o.min_blend <= o.max_blend && o.max_blend <= 1)) {
    return absl::InvalidArgumentError("min_blend, max_blend: need 0 <= min_blend <= max_blend <= 1");
  }
  if (!dataset.images.defined() || dataset.images.dim() != 4 || dataset.size() < 1 ||
      dataset.images.size(0) != dataset.size()) {
    return absl::InvalidArgumentError("dataset: expected N x C x H x W images with N labels, N >= 1");
  }
  Dataset out = ToRgb(dataset);
  const int64_t n = out.size(), h = out.images.size(2), w = out.images.size(3);
  const int64_t side = std::max<int64_t>(16, 2 * std::max(h, w));
  std::vector<at::Tensor> textures;
  for (int t = 0; t < o.textures; ++t) {
    MOVE_ASSIGN_OR_RETURN(at::Tensor tex, DecoyStyleImage(o.seed * 7919ULL + 104729ULL + t, side));
    textures.push_back(tex);
  }
  MOVE_RETURN_IF_ERROR(core::GuardTorch("augmenting appearance", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed * 6364136223846793005ULL + 1442695040888963407ULL);
    const int64_t count = std::max<int64_t>(1, std::llround(o.fraction * static_cast<double>(n)));
    const at::Tensor picked =
        torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, count);
    const at::Tensor which = torch::randint(o.textures, {count}, gen, torch::TensorOptions().dtype(torch::kInt64));
    const at::Tensor oy = torch::randint(side - h + 1, {count}, gen, torch::TensorOptions().dtype(torch::kInt64));
    const at::Tensor ox = torch::randint(side - w + 1, {count}, gen, torch::TensorOptions().dtype(torch::kInt64));
    const at::Tensor blend =
        torch::rand({count}, gen, torch::TensorOptions().dtype(torch::kFloat32)) * (o.max_blend - o.min_blend) + o.min_blend;
    at::Tensor images = out.images.clone();
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = picked[j].item<int64_t>();
      const at::Tensor tex = textures[which[j].item<int64_t>()]
                                 .narrow(1, oy[j].item<int64_t>(), h)
                                 .narrow(2, ox[j].item<int64_t>(), w);
      const at::Tensor x = images[i];
      // Colour transfer: each channel takes the texture's mean and spread.
      const at::Tensor xm = x.mean({1, 2}, true), xs = x.std({1, 2}, false, true) + 1e-3;
      const at::Tensor tm = tex.mean({1, 2}, true), ts = tex.std({1, 2}, false, true);
      const at::Tensor recoloured = (x - xm) / xs * ts + tm;
      const double b = blend[j].item<double>();
      images[i].copy_(((1 - b) * recoloured + b * tex).clamp(0, 1));
    }
    out.images = images.contiguous();
    return absl::OkStatus();
  }));
  out.name = absl::StrCat(dataset.name, " (appearance-augmented)");
  return out;
}

}  // namespace move
