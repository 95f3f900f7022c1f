// AdaIN style transfer (Huang & Belongie 2017) with vendor-supplied TorchScript networks.
//
// The paper's MOVE uses AdaIN with a VGG-19 encoder and a trained decoder. Nothing is
// downloaded at run time: the vendor exports both networks as TorchScript files (e.g. from
// the public AdaIN weights with torch.jit.trace) and passes their paths.
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/hash.h"
#include "core/torch_errors.h"
#include "sdk/model.h"
#include "watermark/stylizer.h"

namespace move::watermark_internal {
namespace {

// Channel-wise mean and std over spatial positions (N x C x 1 x 1 each).
std::pair<at::Tensor, at::Tensor> MeanStd(const at::Tensor& f) {
  at::Tensor flat = f.flatten(2);
  at::Tensor mean = flat.mean(2).unsqueeze(2).unsqueeze(3);
  at::Tensor std = (flat.var(2, /*unbiased=*/false) + 1e-5).sqrt().unsqueeze(2).unsqueeze(3);
  return {mean, std};
}

std::string ModuleSha256(const torch::jit::Module& m) {
  core::Sha256 h;
  for (const auto& p : m.named_parameters()) {
    h.Update(p.name);
    h.UpdateTensor(p.value);
  }
  for (const auto& b : m.named_buffers()) {
    h.Update(b.name);
    h.UpdateTensor(b.value);
  }
  return h.HexDigest();
}

class AdaInStylizer : public Stylizer {
 public:
  AdaInStylizer(torch::jit::Module encoder, torch::jit::Module decoder, at::Tensor style_mean,
                at::Tensor style_std, double alpha, c10::Device device, std::string encoder_path,
                std::string decoder_path)
      : encoder_(std::move(encoder)), decoder_(std::move(decoder)), style_mean_(style_mean),
        style_std_(style_std), alpha_(alpha), device_(device),
        encoder_path_(std::move(encoder_path)), decoder_path_(std::move(decoder_path)) {
    weights_sha256_ = core::Sha256Hex(ModuleSha256(encoder_) + ModuleSha256(decoder_));
  }

  absl::StatusOr<at::Tensor> Apply(const at::Tensor& images) const override {
    return core::GuardTorch("applying AdaIN", [&]() -> absl::StatusOr<at::Tensor> {
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> out;
      constexpr int64_t kBatch = 128;
      for (int64_t s = 0; s < images.size(0); s += kBatch) {
        at::Tensor x = images.narrow(0, s, std::min(kBatch, images.size(0) - s)).to(device_);
        at::Tensor fc = encoder_.forward({x}).toTensor();
        auto [mc, sc] = MeanStd(fc);
        at::Tensor t = (fc - mc) / sc * style_std_ + style_mean_;
        t = alpha_ * t + (1 - alpha_) * fc;
        at::Tensor y = decoder_.forward({t}).toTensor();
        if (y.sizes() != x.sizes()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "AdaIN decoder output shape [", absl::StrJoin(y.sizes(), ","),
              "] differs from the input image shape [", absl::StrJoin(x.sizes(), ","), "]"));
        }
        if (!torch::isfinite(y).all().item<bool>()) {
          return absl::InvalidArgumentError("AdaIN decoder produced NaN or infinite pixels");
        }
        // The decoder is unconstrained; pixels are clamped to the valid image range, as the
        // AdaIN reference code does when saving images.
        out.push_back(y.clamp(0.0, 1.0).to(torch::kCPU));
      }
      return torch::cat(out).contiguous();
    });
  }
  std::string Engine() const override { return "adain"; }
  std::map<std::string, std::string> Parameters() const override {
    return {{"alpha", absl::StrCat(alpha_)},
            {"encoder", encoder_path_},
            {"decoder", decoder_path_},
            {"encoder_sha256", ModuleSha256(encoder_)},
            {"decoder_sha256", ModuleSha256(decoder_)}};
  }
  std::string WeightsSha256() const override { return weights_sha256_; }

 private:
  mutable torch::jit::Module encoder_;
  mutable torch::jit::Module decoder_;
  at::Tensor style_mean_, style_std_;
  double alpha_;
  c10::Device device_;
  std::string encoder_path_, decoder_path_, weights_sha256_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Stylizer>> LoadAdaInStylizer(const std::string& encoder_path,
                                                            const std::string& decoder_path,
                                                            const at::Tensor& style, double alpha,
                                                            c10::Device device) {
  if (encoder_path.empty()) return absl::InvalidArgumentError("adain.encoder_path: required for the AdaIN engine");
  if (decoder_path.empty()) return absl::InvalidArgumentError("adain.decoder_path: required for the AdaIN engine");
  auto encoder = LoadModel(encoder_path, device);
  if (!encoder.ok()) return absl::Status(encoder.status().code(), absl::StrCat("adain.encoder_path: ", encoder.status().message()));
  auto decoder = LoadModel(decoder_path, device);
  if (!decoder.ok()) return absl::Status(decoder.status().code(), absl::StrCat("adain.decoder_path: ", decoder.status().message()));
  return core::GuardTorch("preparing AdaIN", [&]() -> absl::StatusOr<std::unique_ptr<Stylizer>> {
    encoder->eval();
    decoder->eval();
    torch::NoGradGuard no_grad;
    at::Tensor fs = encoder->forward({style.unsqueeze(0).to(device)}).toTensor();
    if (fs.dim() != 4) {
      return absl::InvalidArgumentError(absl::StrCat("adain.encoder_path: encoder must return N x C x H x W features, got ",
                                                     fs.dim(), " dimensions"));
    }
    auto [ms, ss] = MeanStd(fs);
    return std::unique_ptr<Stylizer>(new AdaInStylizer(*std::move(encoder), *std::move(decoder), ms, ss,
                                                       alpha, device, encoder_path, decoder_path));
  });
}

}  // namespace move::watermark_internal
