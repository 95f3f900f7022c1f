#include "redteam/cache_key.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/hash.h"

namespace move::redteam {
namespace {

// Size guards: a new field changes the struct's size and stops the build here. Add the field
// to its KeyOf below (or to the list of fields left out, in the header), then update the size.
// The sizes are those of the toolchain the project builds with (libstdc++ on x86-64).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(TrainOptions) == 184, "TrainOptions changed: update KeyOf(TrainOptions)");
static_assert(sizeof(ModelSpec) == 48, "ModelSpec changed: update KeyOf(ModelSpec)");
static_assert(sizeof(AttackOptions) == 128, "AttackOptions changed: update KeyOf(AttackOptions)");
static_assert(sizeof(BuildBundleOptions) == 184, "BuildBundleOptions changed: update KeyOf(BuildBundleOptions)");
static_assert(sizeof(FingerprintBuildOptions) == 120, "FingerprintBuildOptions changed: update KeyOf(FingerprintBuildOptions)");
static_assert(sizeof(LabelAgreementBuildOptions) == 40, "LabelAgreementBuildOptions changed: update KeyOf(LabelAgreementBuildOptions)");
#endif

class KeyWriter {
 public:
  explicit KeyWriter(const char* name) : text_(absl::StrCat(name, "{")) {}
  KeyWriter& Add(const char* name, double v) { return Raw(name, absl::StrFormat("%.17g", v)); }
  KeyWriter& Add(const char* name, int v) { return Raw(name, absl::StrCat(v)); }
  KeyWriter& Add(const char* name, int64_t v) { return Raw(name, absl::StrCat(v)); }
  KeyWriter& Add(const char* name, uint64_t v) { return Raw(name, absl::StrCat(v)); }
  KeyWriter& Add(const char* name, bool v) { return Raw(name, v ? "true" : "false"); }
  KeyWriter& Add(const char* name, const std::string& v) { return Raw(name, absl::StrCat(v.size(), ":", v)); }
  KeyWriter& Add(const char* name, const std::vector<std::string>& v) {
    std::string s = absl::StrCat(v.size(), "[");
    for (const std::string& x : v) absl::StrAppend(&s, x.size(), ":", x, ",");
    return Raw(name, s + "]");
  }
  KeyWriter& Add(const char* name, const at::Tensor& t) { return Raw(name, t.defined() ? core::TensorSha256(t) : "none"); }
  std::string Done() { return text_ + "}"; }

 private:
  KeyWriter& Raw(const char* name, const std::string& v) {
    absl::StrAppend(&text_, name, "=", v, ";");
    return *this;
  }
  std::string text_;
};

}  // namespace

std::string KeyOf(const TrainOptions& o) {
  return KeyWriter("TrainOptions")
      .Add("epochs", o.epochs)
      .Add("batch_size", o.batch_size)
      .Add("learning_rate", o.learning_rate)
      .Add("momentum", o.momentum)
      .Add("weight_decay", o.weight_decay)
      .Add("crop_padding", o.crop_padding)
      .Add("horizontal_flip", o.horizontal_flip)
      .Add("seed", o.seed)
      .Add("batchnorm_recalibration_batches", o.batchnorm_recalibration_batches)
      .Add("teacher", o.teacher != nullptr)
      .Add("distillation_weight", o.distillation_weight)
      .Add("temperature", o.temperature)
      .Add("device", o.device)
      .Done();
}

std::string KeyOf(const ModelSpec& s) {
  return KeyWriter("ModelSpec")
      .Add("arch", static_cast<int>(s.arch))
      .Add("in_channels", s.in_channels)
      .Add("num_classes", s.num_classes)
      .Add("depth", s.depth)
      .Add("width", s.width)
      .Add("seed", s.seed)
      .Done();
}

std::string KeyOf(const AttackOptions& o) {
  return KeyWriter("AttackOptions")
      .Add("zero_shot_rounds", o.zero_shot_rounds)
      .Add("zero_shot_student_steps", o.zero_shot_student_steps)
      .Add("zero_shot_batch", o.zero_shot_batch)
      .Add("zero_shot_latent", o.zero_shot_latent)
      .Add("zero_shot_generator_lr", o.zero_shot_generator_lr)
      .Add("zero_shot_student_lr", o.zero_shot_student_lr)
      .Add("benign_rate", o.benign_rate)
      .Add("attacker_style", o.attacker_style)
      .Add("overwrite_gamma", o.overwrite_gamma)
      .Add("style_fit_steps", o.style_fit_steps)
      .Add("removal_consistency_weight", o.removal_consistency_weight)
      .Add("removal_samples", o.removal_samples)
      .Add("removal_iterations", o.removal_iterations)
      .Add("removal_lr", o.removal_lr)
      .Add("removal_kl_weight", o.removal_kl_weight)
      .Add("removal_ce_weight", o.removal_ce_weight)
      .Add("removal_latent_weight", o.removal_latent_weight)
      .Done();
}

std::string KeyOf(const BuildBundleOptions& o) {
  return KeyWriter("BuildBundleOptions")
      .Add("population", o.population)
      .Add("student_members", o.student_members)
      .Add("calibration_models", o.calibration_models)
      .Add("train_samples", o.train_samples)
      .Add("verification_samples", o.verification_samples)
      .Add("feature_design", o.feature_design)
      .Add("shadow_architectures", o.shadow_architectures)
      .Add("decoy_members", o.decoy_members)
      .Add("decoy_calibration_models", o.decoy_calibration_models)
      .Add("augmented_calibration_models", o.augmented_calibration_models)
      .Add("victim_in_population", o.victim_in_population)
      .Add("max_units", o.max_units)
      .Add("meta_epochs", o.meta_epochs)
      .Add("blackbox", o.blackbox)
      .Add("blackbox_design", o.blackbox_design)
      .Add("contrast_decoys", o.contrast_decoys)
      .Add("blackbox_shift", o.blackbox_shift)
      .Add("alpha", o.alpha)
      .Add("seed", o.seed)
      .Done();
}

std::string KeyOf(const FingerprintBuildOptions& o) {
  return KeyWriter("FingerprintBuildOptions")
      .Add("uaps", o.uaps)
      .Add("epsilon", o.epsilon)
      .Add("uap_epochs", o.uap_epochs)
      .Add("uap_images", o.uap_images)
      .Add("uap_step", o.uap_step)
      .Add("points_per_fingerprint", o.points_per_fingerprint)
      .Add("train_fingerprints", o.train_fingerprints)
      .Add("verification_fingerprints", o.verification_fingerprints)
      .Add("hidden", o.hidden)
      .Add("embedding", o.embedding)
      .Add("encoder_steps", o.encoder_steps)
      .Add("encoder_lr", o.encoder_lr)
      .Add("temperature", o.temperature)
      .Add("alpha", o.alpha)
      .Add("seed", o.seed)
      .Done();
}

std::string KeyOf(const LabelAgreementBuildOptions& o) {
  return KeyWriter("LabelAgreementBuildOptions")
      .Add("errors", o.errors)
      .Add("covers", o.covers)
      .Add("alpha", o.alpha)
      .Add("seed", o.seed)
      .Add("statistic", static_cast<int>(o.statistic))
      .Done();
}

}  // namespace move::redteam
