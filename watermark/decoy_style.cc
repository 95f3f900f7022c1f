// move::DecoyStyleImage: procedural textures that stand in for "some other style".
//
// A decoy is a band-quantised sum of random oriented gratings and smooth noise, coloured
// with a random palette: strong colours, edges and repeated structure, the things a Gram
// (texture) loss picks up, and nothing in common with any particular secret style. Used by
// BuildBundle to train benign models that are robust to styles in general, so that the
// verifier learns the secret style, not "style robustness".
#include <cmath>
#include <cstdint>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/torch_errors.h"
#include "sdk/embed.h"

namespace move {

absl::StatusOr<at::Tensor> DecoyStyleImage(uint64_t seed, int64_t size) {
  if (size < 16 || size > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("size: must be in [16, 1024], got ", size));
  }
  return core::GuardTorch("making a decoy style", [&]() -> absl::StatusOr<at::Tensor> {
    torch::NoGradGuard no_grad;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed * 2654435761ULL + 97);
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto uniform = [&](int64_t n, double lo, double hi) { return torch::rand({n}, gen, f32) * (hi - lo) + lo; };
    const at::Tensor coords = torch::arange(size, f32) / static_cast<double>(size);
    const at::Tensor y = coords.view({size, 1}).expand({size, size});
    const at::Tensor x = coords.view({1, size}).expand({size, size});
    // Gratings: 2-6 of them, 1.5-14 cycles per image, any orientation and phase.
    const int64_t gratings = 2 + torch::randint(5, {1}, gen).item<int64_t>();
    const at::Tensor freq = uniform(gratings, 1.5, 14.0), angle = uniform(gratings, 0.0, M_PI),
                     phase = uniform(gratings, 0.0, 2 * M_PI), amp = uniform(gratings, 0.3, 1.0);
    at::Tensor field = torch::zeros({size, size}, f32);
    for (int64_t k = 0; k < gratings; ++k) {
      const double fx = freq[k].item<double>() * std::cos(angle[k].item<double>());
      const double fy = freq[k].item<double>() * std::sin(angle[k].item<double>());
      field += amp[k].item<double>() * torch::sin(2 * M_PI * (fx * x + fy * y) + phase[k].item<double>());
    }
    // Smooth noise at a coarse and a middle scale.
    for (int64_t cells : {6, 24}) {
      at::Tensor noise = torch::randn({1, 1, cells, cells}, gen, f32);
      noise = torch::upsample_bicubic2d(noise, {size, size}, /*align_corners=*/false).view({size, size});
      field += noise * (cells == 6 ? 1.0 : 0.5);
    }
    field = (field - field.min()) / (field.max() - field.min() + 1e-6);
    // Palette: 3-5 colours, soft bands over the field.
    const int64_t colours = 3 + torch::randint(3, {1}, gen).item<int64_t>();
    const at::Tensor palette = torch::rand({colours, 3}, gen, f32);
    const at::Tensor centres = torch::linspace(0, 1, colours, f32).view({colours, 1, 1});
    const double width = 0.35 / static_cast<double>(colours);
    at::Tensor weights = torch::softmax(-(field.unsqueeze(0) - centres).pow(2) / (2 * width * width), 0);
    at::Tensor image = torch::einsum("khw,kc->chw", {weights, palette});
    image += 0.04 * torch::randn({3, size, size}, gen, f32);
    return image.clamp(0, 1).contiguous();
  });
}

}  // namespace move
