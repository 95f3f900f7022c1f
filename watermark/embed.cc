// move::EmbedDataset (implements sdk/embed.h).
#include <chrono>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/util/json_util.h>
#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/runtime.h"
#include "sdk/version.h"
#include "watermark/stylizer.h"
#include "watermark/texture_features.h"

namespace move {
namespace {

constexpr int64_t kMinStyleSize = 16;
// Seed offset of the feature net used to *measure* style distance, so the quality figure is
// not computed with the very features the stylizer was fitted against.
constexpr uint64_t kMeasureSeedOffset = 0x9e3779b97f4a7c15ULL;

absl::Status ValidateOptions(const EmbedDatasetOptions& o) {
  if (!(o.gamma > 0.0 && o.gamma <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("gamma: must be in (0, 1], got ", o.gamma));
  }
  if (!(o.style_strength > 0.0) || !std::isfinite(o.style_strength)) {
    return absl::InvalidArgumentError(absl::StrCat("style_strength: must be a positive finite number, got ", o.style_strength));
  }
  if (o.engine == StyleEngine::kAdaIn && o.style_strength > 1.0) {
    return absl::InvalidArgumentError(absl::StrCat("style_strength: AdaIN alpha must be in (0, 1], got ", o.style_strength));
  }
  if (o.engine == StyleEngine::kTexture) {
    const TextureEngineOptions& t = o.texture;
    if (t.fit_steps < 1) return absl::InvalidArgumentError("texture.fit_steps: must be >= 1");
    if (t.batch_size < 1) return absl::InvalidArgumentError("texture.batch_size: must be >= 1");
    if (!(t.learning_rate > 0) || !std::isfinite(t.learning_rate)) return absl::InvalidArgumentError("texture.learning_rate: must be > 0");
    if (t.channels < 1) return absl::InvalidArgumentError("texture.channels: must be >= 1");
    if (t.feature_filters < 1) return absl::InvalidArgumentError("texture.feature_filters: must be >= 1");
  }
  return absl::OkStatus();
}

absl::Status ValidateStyleImage(const at::Tensor& s) {
  if (!s.defined()) return absl::InvalidArgumentError("style_image: not set");
  if (s.dim() != 3 || s.size(0) != 3) {
    return absl::InvalidArgumentError(absl::StrCat("style_image: expected 3 x H x W (RGB), got shape [",
                                                   absl::StrJoin(s.sizes(), ","), "]"));
  }
  if (s.size(1) < kMinStyleSize || s.size(2) < kMinStyleSize) {
    return absl::InvalidArgumentError(absl::StrCat("style_image: ", s.size(1), "x", s.size(2),
                                                   " is too small (need at least ", kMinStyleSize, "x", kMinStyleSize, ")"));
  }
  if (s.scalar_type() != torch::kFloat32) return absl::InvalidArgumentError("style_image: expected float32");
  if (!torch::isfinite(s).all().item<bool>() || s.min().item<float>() < 0 || s.max().item<float>() > 1) {
    return absl::InvalidArgumentError("style_image: values must be finite and in [0, 1]");
  }
  return absl::OkStatus();
}

std::string DatasetSha256(const Dataset& d) {
  core::Sha256 h;
  h.UpdateTensor(d.images);
  h.UpdateTensor(d.labels);
  return h.HexDigest();
}

}  // namespace

absl::StatusOr<at::Tensor> EmbedResult::StyleImages(const at::Tensor& images) const {
  if (stylizer == nullptr) return absl::FailedPreconditionError("EmbedResult has no fitted stylizer");
  if (!images.defined() || images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3)) {
    return absl::InvalidArgumentError("images: expected N x C x H x W with C = 1 or 3");
  }
  at::Tensor rgb = images.size(1) == 1 ? images.expand({-1, 3, -1, -1}).contiguous() : images;
  return stylizer->Apply(rgb);
}

absl::StatusOr<EmbedResult> EmbedDataset(const Dataset& dataset, const at::Tensor& style_image,
                                         const EmbedDatasetOptions& options) {
  MOVE_RETURN_IF_ERROR(ValidateOptions(options));
  if (dataset.size() == 0) return absl::InvalidArgumentError("dataset: empty (0 samples)");
  MOVE_RETURN_IF_ERROR(ValidateDataset(dataset));
  MOVE_RETURN_IF_ERROR(ValidateStyleImage(style_image));
  MOVE_ASSIGN_OR_RETURN(c10::Device device, ResolveDevice(options.device));
  return core::GuardTorch("embedding watermark", [&]() -> absl::StatusOr<EmbedResult> {
    EmbedResult result;
    WatermarkRecord& rec = result.record;
    rec.set_format("move.watermark_record.v1");
    rec.set_sdk_version(kSdkVersion);
    rec.set_dataset_name(dataset.name);
    rec.set_dataset_size(dataset.size());
    rec.set_input_sha256(DatasetSha256(dataset));
    rec.set_gamma(options.gamma);
    rec.set_seed(options.seed);
    rec.set_style_strength(options.style_strength);
    rec.set_style_image_sha256(core::TensorSha256(style_image));
    rec.set_style_height(style_image.size(1));
    rec.set_style_width(style_image.size(2));
    rec.set_converted_to_rgb(dataset.channels() == 1);
    rec.set_num_threads(NumThreads());
    rec.set_device(options.device);
    rec.set_runtime(RuntimeDescription());

    Dataset out = ToRgb(dataset);
    out.images = out.images.clone();  // Never alias the caller's storage.
    out.name = absl::StrCat(dataset.name, "+move");

    // Pick round(gamma * N) samples (at least one) with a seeded permutation.
    const int64_t n = dataset.size();
    const int64_t k = std::max<int64_t>(1, std::llround(options.gamma * static_cast<double>(n)));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    at::Tensor picked = std::get<0>(
        torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, k).sort());
    result.picked_indices = picked;
    auto acc = picked.accessor<int64_t, 1>();
    for (int64_t i = 0; i < k; ++i) rec.add_picked_indices(acc[i]);

    at::Tensor content = out.images.index_select(0, picked);
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<watermark_internal::Stylizer> stylizer;
    if (options.engine == StyleEngine::kTexture) {
      watermark_internal::TextureFitOptions fit;
      fit.seed = options.seed;
      fit.style_strength = options.style_strength;
      fit.engine = options.texture;
      fit.device = device;
      fit.show_progress = options.show_progress;
      MOVE_ASSIGN_OR_RETURN(stylizer, watermark_internal::FitTextureStylizer(content, style_image, fit));
    } else {
      MOVE_ASSIGN_OR_RETURN(stylizer, watermark_internal::LoadAdaInStylizer(
                                          options.adain.encoder_path, options.adain.decoder_path,
                                          style_image, options.style_strength, device));
    }
    const auto t1 = std::chrono::steady_clock::now();
    MOVE_ASSIGN_OR_RETURN(at::Tensor styled, stylizer->Apply(content));
    const auto t2 = std::chrono::steady_clock::now();
    out.images.index_copy_(0, picked, styled);

    rec.set_engine(stylizer->Engine());
    for (const auto& [key, value] : stylizer->Parameters()) (*rec.mutable_engine_parameters())[key] = value;
    rec.set_engine_weights_sha256(stylizer->WeightsSha256());
    rec.set_transformed_sha256(core::TensorSha256(styled));
    rec.set_output_sha256(DatasetSha256(out));
    rec.set_seconds_fit(std::chrono::duration<double>(t1 - t0).count());
    rec.set_seconds_apply(std::chrono::duration<double>(t2 - t1).count());
    {
      torch::NoGradGuard no_grad;
      watermark_internal::RandomTextureNet measure(options.seed + kMeasureSeedOffset, 32, c10::Device(c10::kCPU));
      const int64_t m = std::min<int64_t>(k, 512);
      std::vector<at::Tensor> grams = measure.Grams(style_image.unsqueeze(0));
      rec.set_style_distance_before(measure.StyleDistance(content.narrow(0, 0, m), grams).mean().item<double>());
      rec.set_style_distance_after(measure.StyleDistance(styled.narrow(0, 0, m), grams).mean().item<double>());
    }
    result.dataset = std::move(out);
    result.stylizer = std::move(stylizer);
    return result;
  });
}

std::string WatermarkRecordToJson(const WatermarkRecord& record) {
  return core::ProtoToJson(record);
}

absl::StatusOr<EmbedDatasetOptions> EmbedOptionsFromRecord(const WatermarkRecord& record) {
  if (record.format() != "move.watermark_record.v1") {
    return absl::InvalidArgumentError(absl::StrCat("record.format: unknown format '", record.format(), "'"));
  }
  EmbedDatasetOptions o;
  o.gamma = record.gamma();
  o.seed = record.seed();
  o.style_strength = record.style_strength();
  o.device = record.device();
  const auto& p = record.engine_parameters();
  auto get = [&](const std::string& key) -> absl::StatusOr<std::string> {
    auto it = p.find(key);
    if (it == p.end()) return absl::InvalidArgumentError(absl::StrCat("record.engine_parameters: missing '", key, "'"));
    return it->second;
  };
  if (record.engine() == "texture") {
    o.engine = StyleEngine::kTexture;
    struct IntField { const char* key; int64_t* target; };
    for (IntField f : {IntField{"steps", &o.texture.fit_steps}, IntField{"batch_size", &o.texture.batch_size},
                       IntField{"channels", &o.texture.channels}, IntField{"feature_filters", &o.texture.feature_filters}}) {
      MOVE_ASSIGN_OR_RETURN(std::string v, get(f.key));
      if (!absl::SimpleAtoi(v, f.target)) {
        return absl::InvalidArgumentError(absl::StrCat("record.engine_parameters: '", f.key, "' is not an integer: ", v));
      }
    }
    MOVE_ASSIGN_OR_RETURN(std::string lr, get("learning_rate"));
    if (!absl::SimpleAtod(lr, &o.texture.learning_rate)) {
      return absl::InvalidArgumentError(absl::StrCat("record.engine_parameters: 'learning_rate' is not a number: ", lr));
    }
  } else if (record.engine() == "adain") {
    o.engine = StyleEngine::kAdaIn;
    MOVE_ASSIGN_OR_RETURN(o.adain.encoder_path, get("encoder"));
    MOVE_ASSIGN_OR_RETURN(o.adain.decoder_path, get("decoder"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("record.engine: unknown engine '", record.engine(), "'"));
  }
  return o;
}

absl::StatusOr<WatermarkRecord> LoadWatermarkRecord(const std::string& path) {
  MOVE_ASSIGN_OR_RETURN(std::string json, core::ReadFile(path));
  WatermarkRecord record;
  auto status = google::protobuf::util::JsonStringToMessage(json, &record);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": not a watermark record (", status.ToString(), ")"));
  }
  if (record.format() != "move.watermark_record.v1") {
    return absl::DataLossError(absl::StrCat(path, ": unknown record format '", record.format(), "'"));
  }
  return record;
}

absl::Status SaveWatermarkRecord(const WatermarkRecord& record, const std::string& path) {
  return core::WriteFileAtomically(path, WatermarkRecordToJson(record));
}

}  // namespace move
