// move::EmbedDataset: the vendor's entry point. Start here.
//
// Re-renders a small fraction (gamma, default 10%) of a training set by neural style
// transfer toward a secret style image, keeping every label. A model trained on the result
// learns an external feature that only models derived from it carry (MOVE, Li et al.).
//
//   absl::StatusOr<move::Dataset> train =
//       move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTrain);
//   absl::StatusOr<at::Tensor> style = move::LoadImage("my_secret_style.png");
//   move::EmbedDatasetOptions options;
//   options.seed = 2024;                         // keep it: it is part of the evidence
//   absl::StatusOr<move::EmbedResult> wm = move::EmbedDataset(*train, *style, options);
//   // wm->dataset: train on this. wm->record: keep it secret, store it with the bundle.
//   // wm->StyleImages(test_images): style more images (e.g. verification samples).
//
// Same dataset, style image, options and thread count give a bit-identical dataset and record.
#ifndef MOVE_SDK_EMBED_H_
#define MOVE_SDK_EMBED_H_

#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/dataset.h"
#include "sdk/watermark_record.pb.h"

namespace move {

// Which neural style transfer renders the picked images.
enum class StyleEngine {
  // Built-in and weight-free: a small feed-forward stylizer is fitted to the picked images
  // with a texture loss in fixed random-filter features (Ustyuzhaninov et al. 2016), then
  // applied to them. Needs nothing but the style image.
  kTexture,
  // AdaIN (Huang & Belongie 2017) with an encoder and decoder supplied as TorchScript files.
  kAdaIn,
};

// Settings of the built-in texture engine.
struct TextureEngineOptions {
  // Optimisation steps when fitting the stylizer. Default: 300.
  int64_t fit_steps = 300;
  // Images per fitting step. Default: 16.
  int64_t batch_size = 16;
  // Adam learning rate of the fitting. Default: 0.01.
  double learning_rate = 0.01;
  // Channels of the stylizer's first layer (the middle layers have twice as many). Default: 32.
  int64_t channels = 32;
  // Random filters per kernel size (3, 5, 7, 11) in the texture feature net. Default: 32.
  int64_t feature_filters = 32;
};

// Settings of the AdaIN engine.
struct AdaInEngineOptions {
  // TorchScript encoder: N x 3 x H x W images in [0, 1] -> N x C x h x w features. Required.
  std::string encoder_path;
  // TorchScript decoder: features -> N x 3 x H x W images. Required.
  std::string decoder_path;
};

struct EmbedDatasetOptions {
  // Transformation rate: fraction of samples to style, in (0, 1]. At least one sample is
  // picked. Default: 0.1 (the paper's).
  double gamma = 0.1;
  // Seed of the sample picking and of the engine fitting. Default: 0.
  uint64_t seed = 0;
  // Style engine. Default: kTexture.
  StyleEngine engine = StyleEngine::kTexture;
  // Content/style balance, > 0. Texture engine: multiplier of the style loss (1 = the SDK's
  // default balance; smaller keeps more content). AdaIN: alpha, in (0, 1]. Default: 1.0.
  double style_strength = 1.0;
  TextureEngineOptions texture;
  AdaInEngineOptions adain;
  // "cpu", "cuda" or "cuda:N". Default: "cpu".
  std::string device = "cpu";
  // Whether to draw progress bars on stderr. Default: true.
  bool show_progress = true;
};

namespace watermark_internal {
class Stylizer;
}

// What EmbedDataset returns.
struct EmbedResult {
  // The watermarked dataset: 3-channel (grey input is converted), same labels and order as
  // the input, the picked samples replaced by their styled versions.
  Dataset dataset;
  // How the dataset was made; see sdk/watermark_record.proto.
  WatermarkRecord record;
  // Picked indices as an int64 tensor (same as record.picked_indices()).
  at::Tensor picked_indices;

  // Styles more images (N x C x H x W in [0, 1]; grey is converted) with the fitted engine,
  // e.g. held-out test images for verification. Returns N x 3 x H x W.
  absl::StatusOr<at::Tensor> StyleImages(const at::Tensor& images) const;

  // Internal: the fitted engine behind StyleImages.
  std::shared_ptr<const watermark_internal::Stylizer> stylizer;
};

// Watermarks `dataset` with `style_image` (3 x H x W float32 in [0, 1], at least 16 x 16; see
// move::LoadImage). kInvalidArgument naming the field for: gamma outside (0, 1], an empty or
// malformed dataset, a style image that is too small or not 3 x H x W in [0, 1], a
// style_strength out of range, bad engine options, or a device that does not exist.
absl::StatusOr<EmbedResult> EmbedDataset(const Dataset& dataset, const at::Tensor& style_image,
                                         const EmbedDatasetOptions& options = {});

// Rebuilds the options a record was made with (gamma, seed, engine and its parameters), so
// that EmbedDataset(dataset, style_image, *options) on the same inputs and thread count
// reproduces record.output_sha256(). kInvalidArgument for a record of another format or with
// unparsable engine parameters.
absl::StatusOr<EmbedDatasetOptions> EmbedOptionsFromRecord(const WatermarkRecord& record);

// A decoy style: a procedural texture (random oriented gratings and smooth noise, coloured
// by a random palette; 3 x size x size float32 in [0, 1]), the same for the same seed. Not
// for watermarking: BuildBundle trains benign models on data styled with decoys so that
// "robust to some style" is not read as "carries the secret style" (see
// BuildBundleOptions::decoy_members). kInvalidArgument for size outside [16, 1024].
absl::StatusOr<at::Tensor> DecoyStyleImage(uint64_t seed, int64_t size = 128);

// Ordinary appearance augmentation, as practitioners train with it (colour transfer and
// texture blending in the spirit of colour jitter, AugMix and style augmentation): a seeded
// fraction of the images is recoloured to the channel statistics of a random procedural
// texture (move::DecoyStyleImage) and blended with a random crop of it. Labels unchanged.
// BuildBundle trains benign calibration models on such data (see
// BuildBundleOptions::augmented_calibration_models): a model that is merely robust to
// changes of appearance must not be read as carrying the secret style.
struct AppearanceAugmentOptions {
  // Fraction of images changed, in (0, 1]. Default: 0.3.
  double fraction = 0.3;
  // Procedural textures the changed images draw from, in [1, 256]. Default: 16.
  int textures = 16;
  // Blend weight of the texture, drawn per image uniformly in [min_blend, max_blend] within
  // [0, 1]. Defaults: 0.2 and 0.5.
  double min_blend = 0.2;
  double max_blend = 0.5;
  // Seed of the choice of images, textures, crops and weights. Default: 0.
  uint64_t seed = 0;
};

// Returns `dataset` (converted to 3 channels) with the augmentation applied; the same for the
// same seed. kInvalidArgument naming the field for options out of range or an empty or
// malformed dataset.
absl::StatusOr<Dataset> AugmentAppearance(const Dataset& dataset, const AppearanceAugmentOptions& options = {});

// Parses a record written by SaveWatermarkRecord. kNotFound if missing, kDataLoss if the file
// is not a record.
absl::StatusOr<WatermarkRecord> LoadWatermarkRecord(const std::string& path);

// Serialises a record as indented JSON (protobuf's JSON mapping).
std::string WatermarkRecordToJson(const WatermarkRecord& record);

// Writes the record as JSON, atomically.
absl::Status SaveWatermarkRecord(const WatermarkRecord& record, const std::string& path);

}  // namespace move

#endif  // MOVE_SDK_EMBED_H_
