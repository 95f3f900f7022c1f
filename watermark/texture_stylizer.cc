// The built-in, weight-free style engine: a feed-forward stylizer fitted per style image
// with a texture loss in fixed random-filter features (watermark/texture_features.h).
//
// Per-image optimisation (Gatys-style) costs ~0.5 s per 32x32 image on two cores. Fitting one
// small network to the whole set of picked images (Johnson et al. 2016, Ulyanov et al. 2016)
// and applying it costs a fixed few seconds plus a fraction of a millisecond per image.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/torch_errors.h"
#include "watermark/stylizer.h"
#include "watermark/texture_features.h"

namespace move::watermark_internal {
namespace {

// conv3x3 -> InstanceNorm(affine) -> ReLU.
struct ConvInImpl : torch::nn::Module {
  ConvInImpl(int64_t cin, int64_t cout, int64_t stride)
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, cout, 3).stride(stride).padding(1)))),
        norm(register_module("norm", torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(cout).affine(true)))) {}
  at::Tensor forward(const at::Tensor& x, bool relu = true) {
    at::Tensor y = norm(conv(x));
    return relu ? torch::relu(y) : y;
  }
  torch::nn::Conv2d conv;
  torch::nn::InstanceNorm2d norm;
};
TORCH_MODULE(ConvIn);

struct StylizerNetImpl : torch::nn::Module {
  explicit StylizerNetImpl(int64_t c)
      : enc1(register_module("enc1", ConvIn(3, c, 1))),
        enc2(register_module("enc2", ConvIn(c, 2 * c, 2))),
        res1a(register_module("res1a", ConvIn(2 * c, 2 * c, 1))),
        res1b(register_module("res1b", ConvIn(2 * c, 2 * c, 1))),
        res2a(register_module("res2a", ConvIn(2 * c, 2 * c, 1))),
        res2b(register_module("res2b", ConvIn(2 * c, 2 * c, 1))),
        dec1(register_module("dec1", ConvIn(2 * c, c, 1))),
        out(register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(c + 3, 3, 3).padding(1)))) {}

  at::Tensor forward(const at::Tensor& x) {
    const int64_t h = x.size(2), w = x.size(3);
    at::Tensor e1 = enc1(x);
    at::Tensor e = enc2(e1);
    e = e + res1b(res1a(e), /*relu=*/false);
    e = e + res2b(res2a(e), /*relu=*/false);
    at::Tensor d = torch::upsample_nearest2d(e, std::vector<int64_t>{e.size(2) * 2, e.size(3) * 2}, c10::nullopt, c10::nullopt);
    d = d.narrow(2, 0, h).narrow(3, 0, w);
    d = dec1(d);
    // The input is concatenated before the last layer so fine content can pass straight through.
    return torch::sigmoid(out(torch::cat({d, (x - 0.5) * 2.0}, 1)));
  }

  ConvIn enc1, enc2, res1a, res1b, res2a, res2b, dec1;
  torch::nn::Conv2d out;
};
TORCH_MODULE(StylizerNet);

class TextureStylizer : public Stylizer {
 public:
  TextureStylizer(StylizerNet net, TextureFitOptions options, std::string weights_sha256)
      : net_(std::move(net)), options_(options), weights_sha256_(std::move(weights_sha256)) {}

  absl::StatusOr<at::Tensor> Apply(const at::Tensor& images) const override {
    return core::GuardTorch("applying texture stylizer", [&]() -> absl::StatusOr<at::Tensor> {
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> out;
      constexpr int64_t kBatch = 256;
      for (int64_t s = 0; s < images.size(0); s += kBatch) {
        at::Tensor x = images.narrow(0, s, std::min(kBatch, images.size(0) - s)).to(options_.device);
        out.push_back(net_->forward(x).to(torch::kCPU));
      }
      return torch::cat(out).contiguous();
    });
  }
  std::string Engine() const override { return "texture"; }
  std::map<std::string, std::string> Parameters() const override {
    return {{"seed", absl::StrCat(options_.seed)},
            {"style_strength", absl::StrCat(options_.style_strength)},
            {"steps", absl::StrCat(options_.engine.fit_steps)},
            {"batch_size", absl::StrCat(options_.engine.batch_size)},
            {"learning_rate", absl::StrCat(options_.engine.learning_rate)},
            {"channels", absl::StrCat(options_.engine.channels)},
            {"feature_filters", absl::StrCat(options_.engine.feature_filters)}};
  }
  std::string WeightsSha256() const override { return weights_sha256_; }

 private:
  mutable StylizerNet net_;
  TextureFitOptions options_;
  std::string weights_sha256_;
};

// Weight of the style term at style_strength 1. Measured on Fashion-MNIST with the leopard
// style (bench/embed_bench): weight 10 cut the style distance 32x but blurred garments into
// blobs; weight 3 still cuts it ~20x and keeps shapes recognisable, so 3 is the default.
constexpr double kStyleWeight = 3.0;

}  // namespace

absl::StatusOr<std::unique_ptr<Stylizer>> FitTextureStylizer(const at::Tensor& content,
                                                             const at::Tensor& style,
                                                             const TextureFitOptions& options) {
  return core::GuardTorch("fitting texture stylizer", [&]() -> absl::StatusOr<std::unique_ptr<Stylizer>> {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    StylizerNet net(options.engine.channels);
    {
      // Seeded re-initialisation, independent of LibTorch's global RNG.
      torch::NoGradGuard no_grad;
      for (auto& p : net->named_parameters()) {
        if (p.key().find("norm.weight") != std::string::npos) {
          p.value().fill_(1.0);
        } else if (p.value().dim() == 1) {
          p.value().zero_();
        } else {
          const double fan_in = static_cast<double>(p.value()[0].numel());
          const double bound = std::sqrt(3.0 / fan_in);
          p.value().uniform_(-bound, bound, gen);
        }
      }
    }
    net->to(options.device);
    RandomTextureNet features(options.seed ^ 0x5eed5eedULL, options.engine.feature_filters, options.device);
    std::vector<at::Tensor> style_grams;
    {
      torch::NoGradGuard no_grad;
      style_grams = features.Grams(style.unsqueeze(0).to(options.device));
    }
    torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(options.engine.learning_rate));
    core::Progress progress("fit stylizer", options.engine.fit_steps, options.show_progress);
    const int64_t n = content.size(0);
    const double style_weight = kStyleWeight * options.style_strength;
    for (int64_t step = 0; step < options.engine.fit_steps; ++step) {
      at::Tensor idx = torch::randint(0, n, {std::min(options.engine.batch_size, n)}, gen,
                                      torch::TensorOptions().dtype(torch::kInt64));
      at::Tensor x = content.index_select(0, idx).to(options.device);
      at::Tensor y = net->forward(x);
      at::Tensor content_loss = torch::zeros({}, x.options());
      {
        std::vector<at::Tensor> fy = features.ContentFeatures(y);
        std::vector<at::Tensor> fx;
        {
          torch::NoGradGuard no_grad;
          fx = features.ContentFeatures(x);
        }
        for (size_t i = 0; i < fy.size(); ++i) {
          content_loss = content_loss + (fy[i] - fx[i]).pow(2).mean() / (fx[i].pow(2).mean() + 1e-8);
        }
      }
      at::Tensor style_loss = features.StyleDistance(y, style_grams).mean();
      at::Tensor loss = content_loss + style_weight * style_loss;
      adam.zero_grad();
      loss.backward();
      adam.step();
      progress.Update(step + 1, absl::StrFormat("content %.3f style %.4f", content_loss.item<double>(),
                                                style_loss.item<double>()));
    }
    progress.Finish();
    net->eval();
    core::Sha256 h;
    for (const auto& p : net->named_parameters()) {
      h.Update(p.key());
      h.UpdateTensor(p.value());
    }
    return std::unique_ptr<Stylizer>(new TextureStylizer(net, options, h.HexDigest()));
  });
}

}  // namespace move::watermark_internal
