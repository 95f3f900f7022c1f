// Style-transfer engines behind move::EmbedDataset.
//
// An engine is fitted once per style image (and, for the texture engine, once per set of
// content images), then applied to any number of images. Both engines are deterministic for
// fixed inputs, seed and thread count.
#ifndef MOVE_WATERMARK_STYLIZER_H_
#define MOVE_WATERMARK_STYLIZER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "absl/status/statusor.h"
#include "sdk/embed.h"

namespace move::watermark_internal {

class Stylizer {
 public:
  virtual ~Stylizer() = default;
  // Styles N x 3 x H x W images in [0, 1]; returns images of the same shape in [0, 1].
  virtual absl::StatusOr<at::Tensor> Apply(const at::Tensor& images) const = 0;
  // Engine name and parameters, for the watermark record.
  virtual std::string Engine() const = 0;
  virtual std::map<std::string, std::string> Parameters() const = 0;
  // SHA-256 over the engine's weights (fitted or loaded).
  virtual std::string WeightsSha256() const = 0;
};

// The public engine settings plus what EmbedDataset decides for the engine.
struct TextureFitOptions {
  TextureEngineOptions engine;
  uint64_t seed = 0;
  double style_strength = 1.0;
  c10::Device device = c10::Device(c10::kCPU);
  bool show_progress = true;
};

// Fits a small feed-forward stylizer (encoder, residual blocks, decoder, instance norm) so
// that its outputs on `content` (N x 3 x H x W) keep their random-feature content while
// their random-feature Gram matrices match those of `style` (3 x h x w).
absl::StatusOr<std::unique_ptr<Stylizer>> FitTextureStylizer(const at::Tensor& content,
                                                             const at::Tensor& style,
                                                             const TextureFitOptions& options);

// AdaIN (Huang & Belongie 2017) with a vendor-supplied TorchScript encoder (image -> features)
// and decoder (features -> image). alpha in [0, 1] blends the AdaIN target with the content
// features (1 = full style).
absl::StatusOr<std::unique_ptr<Stylizer>> LoadAdaInStylizer(const std::string& encoder_path,
                                                            const std::string& decoder_path,
                                                            const at::Tensor& style, double alpha,
                                                            c10::Device device);

}  // namespace move::watermark_internal

#endif  // MOVE_WATERMARK_STYLIZER_H_
