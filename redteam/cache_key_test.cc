#include "redteam/cache_key.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace move::redteam {
namespace {

// Every setting that can change a result changes the key; the others do not.
template <typename Options>
void ExpectEachChangeChangesTheKey(const std::vector<std::pair<const char*, std::function<void(Options*)>>>& changes,
                                   const std::vector<std::pair<const char*, std::function<void(Options*)>>>& neutral) {
  const Options base{};
  const std::string key = KeyOf(base);
  EXPECT_EQ(KeyOf(base), key) << "not deterministic";
  std::vector<std::string> seen = {key};
  for (const auto& [name, change] : changes) {
    Options o = base;
    change(&o);
    const std::string k = KeyOf(o);
    EXPECT_NE(k, key) << name << " does not change the key";
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_NE(seen[i], k) << name << " collides with another change";
    seen.push_back(k);
  }
  for (const auto& [name, change] : neutral) {
    Options o = base;
    change(&o);
    EXPECT_EQ(KeyOf(o), key) << name << " cannot change a result but changes the key";
  }
}

TEST(CacheKey, TrainOptions) {
  ExpectEachChangeChangesTheKey<TrainOptions>(
      {{"epochs", [](TrainOptions* o) { o->epochs = 11; }},
       {"batch_size", [](TrainOptions* o) { o->batch_size = 64; }},
       {"learning_rate (in the 7th digit)", [](TrainOptions* o) { o->learning_rate = 0.0500001; }},
       {"momentum", [](TrainOptions* o) { o->momentum = 0.8; }},
       {"weight_decay", [](TrainOptions* o) { o->weight_decay = 1e-4; }},
       {"crop_padding", [](TrainOptions* o) { o->crop_padding = 0; }},
       {"horizontal_flip", [](TrainOptions* o) { o->horizontal_flip = false; }},
       {"seed", [](TrainOptions* o) { o->seed = 1; }},
       {"batchnorm_recalibration_batches", [](TrainOptions* o) { o->batchnorm_recalibration_batches = 0; }},
       {"teacher", [](TrainOptions* o) { o->teacher = reinterpret_cast<torch::jit::Module*>(o); }},
       {"distillation_weight", [](TrainOptions* o) { o->distillation_weight = 0.5; }},
       {"temperature", [](TrainOptions* o) { o->temperature = 2; }},
       {"device", [](TrainOptions* o) { o->device = "cuda"; }}},
      {{"label", [](TrainOptions* o) { o->label = "other"; }},
       {"show_progress", [](TrainOptions* o) { o->show_progress = false; }},
       {"on_epoch", [](TrainOptions* o) { o->on_epoch = [](int, double, double) {}; }}});
}

TEST(CacheKey, ModelSpec) {
  ExpectEachChangeChangesTheKey<ModelSpec>({{"arch", [](ModelSpec* s) { s->arch = Architecture::kResNet18; }},
                                            {"in_channels", [](ModelSpec* s) { s->in_channels = 1; }},
                                            {"num_classes", [](ModelSpec* s) { s->num_classes = 100; }},
                                            {"depth", [](ModelSpec* s) { s->depth = 22; }},
                                            {"width", [](ModelSpec* s) { s->width = 2; }},
                                            {"seed", [](ModelSpec* s) { s->seed = 7; }}},
                                           {});
}

TEST(CacheKey, AttackOptions) {
  ExpectEachChangeChangesTheKey<AttackOptions>(
      {{"zero_shot_rounds", [](AttackOptions* o) { o->zero_shot_rounds = 5; }},
       {"zero_shot_student_steps", [](AttackOptions* o) { o->zero_shot_student_steps = 1; }},
       {"zero_shot_batch", [](AttackOptions* o) { o->zero_shot_batch = 64; }},
       {"zero_shot_latent", [](AttackOptions* o) { o->zero_shot_latent = 32; }},
       {"zero_shot_generator_lr", [](AttackOptions* o) { o->zero_shot_generator_lr = 2e-3; }},
       {"zero_shot_student_lr", [](AttackOptions* o) { o->zero_shot_student_lr = 0.2; }},
       {"benign_rate", [](AttackOptions* o) { o->benign_rate = 0.2; }},
       {"attacker_style", [](AttackOptions* o) { o->attacker_style = torch::zeros({3, 4, 4}); }},
       {"overwrite_gamma", [](AttackOptions* o) { o->overwrite_gamma = 0.2; }},
       {"style_fit_steps", [](AttackOptions* o) { o->style_fit_steps = 10; }},
       {"removal_consistency_weight", [](AttackOptions* o) { o->removal_consistency_weight = 2; }},
       {"removal_samples", [](AttackOptions* o) { o->removal_samples = 10; }},
       {"removal_iterations", [](AttackOptions* o) { o->removal_iterations = 10; }},
       {"removal_lr", [](AttackOptions* o) { o->removal_lr = 0.02; }},
       {"removal_kl_weight", [](AttackOptions* o) { o->removal_kl_weight = 2; }},
       {"removal_ce_weight", [](AttackOptions* o) { o->removal_ce_weight = 2; }},
       {"removal_latent_weight", [](AttackOptions* o) { o->removal_latent_weight = 2; }}},
      {});
  // The attacker's style enters by content, not by tensor identity.
  AttackOptions a, b;
  a.attacker_style = torch::ones({3, 4, 4});
  b.attacker_style = torch::ones({3, 4, 4});
  EXPECT_EQ(KeyOf(a), KeyOf(b));
}

TEST(CacheKey, BuildBundleOptions) {
  using O = BuildBundleOptions;
  ExpectEachChangeChangesTheKey<O>({{"population", [](O* o) { o->population = 5; }},
                                    {"student_members", [](O* o) { o->student_members = 1; }},
                                    {"calibration_models", [](O* o) { o->calibration_models = 5; }},
                                    {"train_samples", [](O* o) { o->train_samples = 601; }},
                                    {"verification_samples", [](O* o) { o->verification_samples = 201; }},
                                    {"feature_design", [](O* o) { o->feature_design = "sign"; }},
                                    {"shadow_architectures", [](O* o) { o->shadow_architectures = {"vgg11"}; }},
                                    {"decoy_members", [](O* o) { o->decoy_members = 1; }},
                                    {"decoy_calibration_models", [](O* o) { o->decoy_calibration_models = 2; }},
                                    {"augmented_calibration_models", [](O* o) { o->augmented_calibration_models = 2; }},
                                    {"victim_in_population", [](O* o) { o->victim_in_population = false; }},
                                    {"max_units", [](O* o) { o->max_units = 10; }},
                                    {"meta_epochs", [](O* o) { o->meta_epochs = 61; }},
                                    {"blackbox", [](O* o) { o->blackbox = false; }},
                                    {"blackbox_design", [](O* o) { o->blackbox_design = "probability-difference"; }},
                                    {"contrast_decoys", [](O* o) { o->contrast_decoys = 4; }},
                                    {"blackbox_shift", [](O* o) { o->blackbox_shift = 3; }},
                                    {"alpha", [](O* o) { o->alpha = 0.05; }},
                                    {"seed", [](O* o) { o->seed = 1; }}},
                                   {{"show_progress", [](O* o) { o->show_progress = false; }}});
  // A list is not its concatenation.
  O a, b;
  a.shadow_architectures = {"ab", "c"};
  b.shadow_architectures = {"a", "bc"};
  EXPECT_NE(KeyOf(a), KeyOf(b));
}

TEST(CacheKey, FingerprintAndLabelAgreementBuildOptions) {
  using F = FingerprintBuildOptions;
  ExpectEachChangeChangesTheKey<F>({{"uaps", [](F* o) { o->uaps = 3; }},
                                    {"epsilon", [](F* o) { o->epsilon = 0.1; }},
                                    {"uap_epochs", [](F* o) { o->uap_epochs = 9; }},
                                    {"uap_images", [](F* o) { o->uap_images = 100; }},
                                    {"uap_step", [](F* o) { o->uap_step = 0.02; }},
                                    {"points_per_fingerprint", [](F* o) { o->points_per_fingerprint = 11; }},
                                    {"train_fingerprints", [](F* o) { o->train_fingerprints = 61; }},
                                    {"verification_fingerprints", [](F* o) { o->verification_fingerprints = 41; }},
                                    {"hidden", [](F* o) { o->hidden = 64; }},
                                    {"embedding", [](F* o) { o->embedding = 16; }},
                                    {"encoder_steps", [](F* o) { o->encoder_steps = 301; }},
                                    {"encoder_lr", [](F* o) { o->encoder_lr = 2e-3; }},
                                    {"temperature", [](F* o) { o->temperature = 0.2; }},
                                    {"alpha", [](F* o) { o->alpha = 0.05; }},
                                    {"seed", [](F* o) { o->seed = 1; }}},
                                   {{"show_progress", [](F* o) { o->show_progress = false; }}});
  using L = LabelAgreementBuildOptions;
  ExpectEachChangeChangesTheKey<L>({{"errors", [](L* o) { o->errors = 100; }},
                                    {"covers", [](L* o) { o->covers = 100; }},
                                    {"alpha", [](L* o) { o->alpha = 0.05; }},
                                    {"seed", [](L* o) { o->seed = 1; }},
                                    {"statistic", [](L* o) { o->statistic = LabelAgreementStatistic::kMean; }}},
                                   {{"show_progress", [](L* o) { o->show_progress = false; }}});
}

}  // namespace
}  // namespace move::redteam
