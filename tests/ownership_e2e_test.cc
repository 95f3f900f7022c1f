// MOVE ownership verification end to end at a tiny scale: embed, train a victim, build and
// sign a bundle through a training recipe, then examine suspects with the API and with
// move_verify. White-box: an SDK-made suspect, a Python-made one, a foreign architecture, a
// tampered bundle. Black-box: every suspect channel (file, HTTP against the serving example on
// loopback, offline export/import), transcript replay, the sequential test and bad answers.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <google/protobuf/util/json_util.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/ownership.h"
#include "sdk/prediction_protocol.pb.h"
#include "sdk/runtime.h"
#include "sdk/serving.h"
#include "sdk/train.h"
#include "tests/hostile_models.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct World {
  Dataset train, test;
  EmbedResult wm;
  ModelSpec spec;
  SigningKey key;
  std::string victim_path, bundle_path;
  BundleContents contents;
};
World* world = nullptr;

absl::StatusOr<torch::jit::Module> Recipe(const ModelSpec& base, const Dataset& data, uint64_t seed) {
  ModelSpec spec = base;
  spec.seed = seed;
  absl::StatusOr<torch::jit::Module> m = CreateModel(spec);
  if (!m.ok()) return m.status();
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 64;
  o.seed = seed;
  o.show_progress = false;
  absl::StatusOr<TrainReport> r = TrainModel(*m, data, o);
  if (!r.ok()) return r.status();
  return m;
}

class WhiteBoxE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(SetNumThreads(2).ok());
    world = new World;
    World& w = *world;
    w.train = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain), 800, 1);
    w.test = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest), 300, 2);
    at::Tensor style = *LoadImage("testdata/style_leopard.png");
    EmbedDatasetOptions eo;
    eo.gamma = 0.2;
    eo.texture.fit_steps = 30;
    eo.show_progress = false;
    auto wm = EmbedDataset(w.train, style, eo);
    ASSERT_TRUE(wm.ok()) << wm.status();
    w.wm = *wm;
    w.spec = *ParseModelSpec("cnn");
    w.spec.in_channels = 3;
    auto victim = Recipe(w.spec, w.wm.dataset, 1);
    ASSERT_TRUE(victim.ok());
    w.victim_path = TempDir() + "/victim.pt";
    ASSERT_TRUE(SaveModel(*victim, w.victim_path).ok());
    TrainingRecipe recipe = [&](const ModelSpec& arch, const Dataset& d, uint64_t seed) { return Recipe(arch, d, seed); };
    BuildBundleInputs in;
    in.watermark = &w.wm;
    in.clean_train = &w.train;
    in.clean_test = &w.test;
    in.spec = w.spec;
    in.victim_model_path = w.victim_path;
    in.style_image = style;
    BuildBundleOptions bo;
    bo.population = 2;
    bo.calibration_models = 3;  // with the reference: 4 benign models per architecture for the model-level test
    bo.train_samples = 60;
    bo.verification_samples = 60;
    bo.meta_epochs = 20;
    bo.shadow_architectures = {"cnn-w2"};
    bo.show_progress = false;
    auto contents = BuildBundle(in, recipe, bo);
    ASSERT_TRUE(contents.ok()) << contents.status();
    w.contents = *contents;
    w.key = *GenerateSigningKey();
    ASSERT_TRUE(SaveSigningKey(w.key, TempDir() + "/vendor.key").ok());
    w.bundle_path = TempDir() + "/victim.move";
    ASSERT_TRUE(WriteBundle(w.contents, w.key, w.bundle_path).ok());
  }
};

TEST_F(WhiteBoxE2eTest, BundleHoldsWhatVerificationNeeds) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  ASSERT_TRUE(b.ok()) << b.status();
  const BundleContents& c = b->contents;
  ASSERT_EQ(c.verifiers_size(), 2);
  EXPECT_EQ(c.verifiers(1).architecture(), "cnn-w2");
  EXPECT_EQ(c.verifiers(1).calibration_log10_p_size(), 5);  // 3 benign, rival vendor, augmented
  const ArchitectureVerifier& v = c.verifiers(0);
  EXPECT_EQ(v.architecture(), "cnn");
  EXPECT_EQ(v.features().kind(), "whitebox-sign-gradient-relative");
  EXPECT_EQ(v.calibration_log10_p_size(), 5);
  EXPECT_EQ(v.benign_models(), 2);
  // Benign score tables for the model-level test: the reference, then the calibration models,
  // one score per verification sample.
  ASSERT_EQ(v.benign_scores_size(), 6);
  EXPECT_EQ(v.benign_scores(0).kind(), "reference");
  EXPECT_EQ(v.benign_scores(3).kind(), "calibration");
  EXPECT_EQ(v.benign_scores(4).kind(), "rival-vendor calibration");
  for (const auto& b : v.benign_scores()) EXPECT_EQ(b.scores_size(), 60);
  ASSERT_EQ(c.blackbox().benign_scores_size(), 11);  // reference + 5 calibration per architecture
  EXPECT_EQ(c.blackbox().benign_scores(10).architecture(), "cnn-w2");
  EXPECT_EQ(v.watermarked_models(), 2);
  EXPECT_FALSE(v.reference_model().empty());
  EXPECT_EQ(c.samples().labels().shape(0), 60);
  EXPECT_EQ(c.watermark_record().picked_indices_size(), 160);
  EXPECT_EQ(c.style_image_sha256(), world->wm.record.style_image_sha256());
  EXPECT_EQ(c.victim_model_sha256().size(), 64u);
  EXPECT_GE(v.type1_error(), 0.0);
}

TEST_F(WhiteBoxE2eTest, VerifiesTheVictimWithAFullReport) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  VerifyOptions o;
  o.reference_compatible = true;
  auto r = VerifyWhiteBox(*b, world->victim_path, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->m(), 60);
  EXPECT_EQ(r->architecture(), "cnn");
  EXPECT_TRUE(std::isfinite(r->log10_p_value()));
  EXPECT_EQ(r->suspect_sha256(), b->contents.victim_model_sha256());
  EXPECT_TRUE(r->signer_pinned());
  EXPECT_GT(r->reference_compatible_harmonic_p(), 0.0);
  // The same inputs give the same report (timings aside).
  auto again = VerifyWhiteBox(*b, world->victim_path, o);
  EXPECT_EQ(r->p_value(), again->p_value());
  EXPECT_EQ(r->delta_mu(), again->delta_mu());
  // A soundly-built classifier decides; an unsound one never claims theft.
  if (!r->classifier_sound()) {
    EXPECT_FALSE(r->stolen());
    EXPECT_NE(r->verdict().find("inconclusive"), std::string::npos);
  } else {
    EXPECT_EQ(r->stolen(), r->p_value() < 0.01 && r->model_level_reject());
  }
  // The model-level test ran on the 6 held-out benign models' mean scores over the same samples.
  EXPECT_TRUE(r->model_level_tested());
  ASSERT_EQ(r->benign_mean_scores_size(), 6);
  double ref_mean = 0;
  for (double x : r->reference_scores()) ref_mean += x / r->reference_scores_size();
  EXPECT_NEAR(r->benign_mean_scores(0), ref_mean, 1e-5);  // the stored table is the reference's
  EXPECT_EQ(r->model_level_benign_models(), 6);
  o.m = 20;
  auto sub = VerifyWhiteBox(*b, world->victim_path, o);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->m(), 20);
  o.m = 61;
  EXPECT_EQ(VerifyWhiteBox(*b, world->victim_path, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WhiteBoxE2eTest, ChanceLevelSuspectIsOutOfRangeInBothModes) {
  // An untrained model answers at chance level: far outside the competent models the
  // classifier was built and checked on. Whatever the scores say, no theft is claimed.
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  ASSERT_TRUE(b.ok());
  ModelSpec s = world->spec;
  s.seed = 99;
  torch::jit::Module untrained = *CreateModel(s);
  ASSERT_TRUE(RecalibrateBatchNorm(untrained, ToRgb(world->train), 5, 64).ok());
  const std::string path = TempDir() + "/untrained.pt";
  ASSERT_TRUE(SaveModel(untrained, path).ok());
  auto wb = VerifyWhiteBox(*b, path, {});
  ASSERT_TRUE(wb.ok()) << wb.status();
  EXPECT_FALSE(wb->suspect_in_range());
  EXPECT_FALSE(wb->stolen());
  EXPECT_LT(wb->suspect_clean_accuracy(), 0.5 * wb->reference_clean_accuracy());
  EXPECT_GT(wb->reference_clean_accuracy(), 0.4);
  auto channel = OpenModelChannel(path);
  ASSERT_TRUE(channel.ok());
  BlackBoxOptions bo;
  bo.m = 30;
  bo.show_progress = false;
  auto bb = VerifyBlackBox(*b, **channel, bo);
  ASSERT_TRUE(bb.ok()) << bb.status();
  EXPECT_FALSE(bb->suspect_in_range());
  EXPECT_FALSE(bb->stolen());
  // (The black-box accuracy comes from the suspect's own answers to the clean queries.)
  EXPECT_LT(bb->suspect_clean_accuracy(), 0.5 * bb->reference_clean_accuracy());
  // The victim is in range in both modes.
  auto victim = VerifyWhiteBox(*b, world->victim_path, {});
  ASSERT_TRUE(victim.ok());
  EXPECT_TRUE(victim->suspect_in_range());
  EXPECT_GT(victim->suspect_clean_accuracy(), 0.2);  // tiny victim, far above chance (0.1)
  // Disabled: the verdict is the test's alone.
  VerifyOptions off;
  off.min_relative_accuracy = 0;
  auto raw = VerifyWhiteBox(*b, path, off);
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(raw->suspect_in_range());
  off.min_relative_accuracy = 1.5;
  EXPECT_EQ(VerifyWhiteBox(*b, path, off).status().code(), absl::StatusCode::kInvalidArgument);
}

// The world's data and victim as bundle inputs (no style image).
BuildBundleInputs WorldInputs() {
  BuildBundleInputs in;
  in.watermark = &world->wm;
  in.clean_train = &world->train;
  in.clean_test = &world->test;
  in.spec = world->spec;
  in.victim_model_path = world->victim_path;
  return in;
}

// Signs `contents` with a fresh key into TempDir()/name and reads the bundle back.
absl::StatusOr<OpenedBundle> SignedRoundTrip(const BundleContents& contents, const std::string& name) {
  SigningKey key = *GenerateSigningKey();
  const std::string path = TempDir() + "/" + name;
  std::remove(path.c_str());
  if (absl::Status s = WriteBundle(contents, key, path); !s.ok()) return s;
  return ReadBundle(path, key.public_key);
}

// The victim examined black-box on 20 of a bundle's samples.
absl::StatusOr<VerificationReport> VictimOnTwentySamples(const OpenedBundle& b) {
  auto file = OpenModelChannel(world->victim_path);
  if (!file.ok()) return file.status();
  BlackBoxOptions o;
  o.m = 20;
  o.show_progress = false;
  return VerifyBlackBox(b, **file, o);
}

TEST_F(WhiteBoxE2eTest, StudentsNeedADistillationRecipe) {
  BuildBundleInputs in = WorldInputs();
  BuildBundleOptions bo;
  bo.student_members = 1;
  TrainingRecipe recipe = [](const ModelSpec& arch, const Dataset& d, uint64_t seed) { return Recipe(arch, d, seed); };
  auto r = BuildBundle(in, recipe, bo);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("distillation recipe"), std::string::npos) << r.status();
}

TEST(ValidateBuildBundleOptionsTest, NamesTheOptionBeforeAnyWork) {
  EXPECT_TRUE(ValidateBuildBundleOptions({}).ok());
  for (const auto& [name, change] : std::vector<std::pair<std::string, std::function<void(BuildBundleOptions&)>>>{
           {"population", [](BuildBundleOptions& o) { o.population = 1; }},
           {"calibration_models", [](BuildBundleOptions& o) { o.calibration_models = 0; }},
           {"alpha", [](BuildBundleOptions& o) { o.alpha = 1; }},
           {"verification_samples", [](BuildBundleOptions& o) { o.verification_samples = 1; }},
           {"contrast_decoys", [](BuildBundleOptions& o) { o.contrast_decoys = 17; }},
           {"blackbox_design", [](BuildBundleOptions& o) { o.blackbox_design = "magic"; }},
           {"train_samples", [](BuildBundleOptions& o) { o.train_samples = 5; }}}) {
    BuildBundleOptions o;
    change(o);
    const absl::Status s = ValidateBuildBundleOptions(o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(s.message().rfind(name, 0), 0u) << name << ": " << s;
  }
}

TEST_F(WhiteBoxE2eTest, DecoyMembersJoinTheBenignSideAndTheSoundnessCheck) {
  BuildBundleInputs in = WorldInputs();
  in.style_image = *LoadImage("testdata/style_leopard.png");
  BuildBundleOptions bo;
  bo.population = 2;
  bo.calibration_models = 1;
  bo.train_samples = 60;
  bo.verification_samples = 60;
  bo.meta_epochs = 20;
  bo.decoy_members = 1;
  bo.decoy_calibration_models = 1;
  bo.augmented_calibration_models = 1;
  bo.blackbox_design = "probability-difference";  // the paper's, kept selectable
  bo.show_progress = false;
  std::vector<at::Tensor> trained_on;
  TrainingRecipe recipe = [&](const ModelSpec& arch, const Dataset& d, uint64_t seed) {
    trained_on.push_back(d.images);
    return Recipe(arch, d, seed);
  };
  std::vector<at::Tensor> first_weights;  // of each model the recipe made, in order
  TrainingRecipe recording = [&](const ModelSpec& arch, const Dataset& d, uint64_t seed) -> absl::StatusOr<torch::jit::Module> {
    absl::StatusOr<torch::jit::Module> m = recipe(arch, d, seed);
    if (m.ok()) first_weights.push_back((*m->parameters().begin()).detach().cpu().clone());
    return m;
  };
  TrainedModels trained;
  auto c = BuildBundle(in, recording, bo, nullptr, &trained);
  ASSERT_TRUE(c.ok()) << c.status();
  // 2 + 2 population, reference, calibration, decoy member, rival-vendor calibration,
  // appearance-augmented calibration.
  ASSERT_EQ(trained_on.size(), 9u);
  // The benign models come back for other lines: the population's benign members, then the
  // null population in the benign table's order (reference first), each the model trained.
  ASSERT_EQ(trained.benign.size(), 2u);
  ASSERT_EQ(trained.held_out.size(), 4u);
  ASSERT_EQ(first_weights.size(), 9u);
  auto same = [&](const TrainedModel& t, int i) {
    return torch::equal((*t.model.parameters().begin()).detach().cpu(), first_weights[i]);
  };
  EXPECT_TRUE(same(trained.benign[0], 2));
  EXPECT_TRUE(same(trained.benign[1], 3));
  EXPECT_TRUE(same(trained.held_out[0], 4));
  EXPECT_TRUE(same(trained.held_out[1], 5));
  EXPECT_TRUE(same(trained.held_out[2], 7));  // after the decoy member
  EXPECT_TRUE(same(trained.held_out[3], 8));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(trained.held_out[i].role, c->verifiers(0).benign_scores(i).kind()) << i;
    EXPECT_EQ(trained.held_out[i].architecture, c->verifiers(0).architecture()) << i;
  }
  EXPECT_EQ(trained.benign[0].role, "benign population");
  // The decoy, rival and augmented models saw data that is neither the clean nor the
  // watermarked set, nor each other's.
  const at::Tensor clean = ToRgb(world->train).images, marked = world->wm.dataset.images;
  for (size_t i = 6; i < 9; ++i) {
    EXPECT_FALSE(torch::equal(trained_on[i], clean)) << i;
    EXPECT_FALSE(torch::equal(trained_on[i], marked)) << i;
  }
  EXPECT_FALSE(torch::equal(trained_on[6], trained_on[7]));
  EXPECT_FALSE(torch::equal(trained_on[7], trained_on[8]));
  const ArchitectureVerifier& v = c->verifiers(0);
  EXPECT_EQ(v.benign_models(), 3);  // 2 population + 1 decoy member
  EXPECT_EQ(v.watermarked_models(), 2);
  EXPECT_EQ(v.calibration_log10_p_size(), 3);  // benign, rival-vendor, appearance-augmented
  EXPECT_EQ(c->blackbox().features().kind(), "blackbox-probability-difference");
  EXPECT_EQ(c->blackbox().classifier().at("w1").shape(1), 50);
  EXPECT_EQ(c->blackbox().benign_models(), 3);
  EXPECT_EQ(c->blackbox().calibration_log10_p_size(), 3);
  ASSERT_EQ(v.benign_scores_size(), 4);
  EXPECT_EQ(v.benign_scores(2).kind(), "rival-vendor calibration");
  EXPECT_EQ(v.benign_scores(3).kind(), "appearance-augmented calibration");
  // The paper's design verifies through the same query path: 10 images per sample.
  {
    auto b = SignedRoundTrip(*c, "paper.move");
    ASSERT_TRUE(b.ok()) << b.status();
    auto r = VictimOnTwentySamples(*b);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->queries(), 200);
    EXPECT_EQ(r->feature_design(), "blackbox-probability-difference");
  }
  EXPECT_EQ(c->metadata().at("decoy_members"), "1");
  EXPECT_EQ(c->metadata().at("decoy_calibration_models"), "1");
  // Two decoy styles (member, calibration), recorded by hash, neither the secret.
  const std::vector<std::string> decoys = absl::StrSplit(c->metadata().at("decoy_style_sha256"), ',');
  ASSERT_EQ(decoys.size(), 2u);
  EXPECT_NE(decoys[0], decoys[1]);
  EXPECT_NE(decoys[0], c->style_image_sha256());
  // A flagged calibration model is named by kind.
  if (!v.sound()) EXPECT_NE(v.unsound_reason().find("benign"), std::string::npos);
}

// A constructed failure of the default soundness check: where the recipe is asked for the
// appearance-augmented calibration model (the dataset it is given says which), it trains on
// the training set with every image in the secret style instead. A null model that carries
// the secret style must make the lines that see it unsound, name its kind, and never let them
// claim theft.
TEST_F(WhiteBoxE2eTest, ACalibrationModelCarryingTheSecretMakesTheDefaultBundleUnsound) {
  BuildBundleInputs in = WorldInputs();
  in.style_image = *LoadImage("testdata/style_leopard.png");
  BuildBundleOptions bo;  // default null population: benign, rival vendor, appearance-augmented
  bo.population = 2;
  bo.calibration_models = 3;
  bo.train_samples = 60;
  bo.verification_samples = 60;
  bo.meta_epochs = 20;
  bo.show_progress = false;
  EmbedDatasetOptions all_styled;
  all_styled.gamma = 1.0;
  all_styled.texture.fit_steps = 30;
  all_styled.show_progress = false;
  auto secret_set = EmbedDataset(world->train, in.style_image, all_styled);
  ASSERT_TRUE(secret_set.ok()) << secret_set.status();
  int augmented_requests = 0;
  TrainingRecipe recipe = [&](const ModelSpec& arch, const Dataset& d, uint64_t seed) -> absl::StatusOr<torch::jit::Module> {
    if (d.name.find("appearance-augmented") != std::string::npos) {
      ++augmented_requests;
      return Recipe(arch, secret_set->dataset, seed);
    }
    return Recipe(arch, d, seed);
  };
  auto c = BuildBundle(in, recipe, bo);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(augmented_requests, 1);
  // The style-contrast line reads that model as carrying the secret style: unsound, named.
  EXPECT_FALSE(c->blackbox().sound());
  EXPECT_NE(c->blackbox().unsound_reason().find("appearance-augmented benign"), std::string::npos)
      << c->blackbox().unsound_reason();
  // The white-box line's gradient features may or may not see it at this scale; when they do,
  // the reason names it too.
  if (!c->verifiers(0).sound()) {
    EXPECT_NE(c->verifiers(0).unsound_reason().find("appearance-augmented benign"), std::string::npos)
        << c->verifiers(0).unsound_reason();
  }
  auto b = SignedRoundTrip(*c, "unsound_null.move");
  ASSERT_TRUE(b.ok()) << b.status();
  auto bb = VictimOnTwentySamples(*b);
  ASSERT_TRUE(bb.ok()) << bb.status();
  EXPECT_FALSE(bb->stolen());
  EXPECT_EQ(bb->verdict().rfind("inconclusive", 0), 0u) << bb->verdict();
  auto wb = VerifyWhiteBox(*b, world->victim_path, {});
  ASSERT_TRUE(wb.ok()) << wb.status();
  if (!c->verifiers(0).sound()) EXPECT_EQ(wb->verdict().rfind("inconclusive", 0), 0u) << wb->verdict();
}

TEST_F(WhiteBoxE2eTest, DecoyStylesAreCheckedBeforeAnyTraining) {
  BuildBundleInputs in = WorldInputs();
  in.style_image = *LoadImage("testdata/style_leopard.png");
  in.decoy_styles = {in.style_image};
  BuildBundleOptions bo;
  bo.decoy_members = 1;
  bo.show_progress = false;
  int trained = 0;
  TrainingRecipe recipe = [&](const ModelSpec& arch, const Dataset& d, uint64_t seed) {
    ++trained;
    return Recipe(arch, d, seed);
  };
  auto r = BuildBundle(in, recipe, bo);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("decoy_styles[0]: is the secret style image"), std::string::npos) << r.status();
  EXPECT_EQ(trained, 0);
  bo.decoy_members = -1;
  EXPECT_EQ(BuildBundle(in, recipe, bo).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WhiteBoxE2eTest, ModelLevelTestOverridesAPairedFlagWithinTheBenignSpread) {
  auto original = ReadBundle(world->bundle_path, world->key.public_key);
  auto base = VerifyWhiteBox(*original, world->victim_path, {});
  ASSERT_TRUE(base.ok());
  BundleContents c = world->contents;
  c.mutable_verifiers(0)->set_sound(true);
  // Calibration models that (as far as the table says) score as high as the victim: the
  // victim is then within what independent models reach, whatever the paired test says.
  for (int k = 1; k < c.verifiers(0).benign_scores_size(); ++k) {
    auto* scores = c.mutable_verifiers(0)->mutable_benign_scores(k)->mutable_scores();
    for (int i = 0; i < scores->size(); ++i) scores->Set(i, static_cast<float>(base->suspect_scores(i) * (0.9 + 0.1 * k)));
  }
  ASSERT_TRUE(WriteBundle(c, world->key, TempDir() + "/spread.move").ok());
  auto b = ReadBundle(TempDir() + "/spread.move", world->key.public_key);
  auto r = VerifyWhiteBox(*b, world->victim_path, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->model_level_tested());
  EXPECT_FALSE(r->model_level_reject());
  EXPECT_FALSE(r->stolen());
  EXPECT_EQ(r->p_value(), base->p_value());  // the paired test itself is unchanged
  if (r->p_value() < 0.01) {
    EXPECT_NE(r->verdict().find("within what independent models reach"), std::string::npos) << r->verdict();
  }
  // A bundle without tables (an older SDK's) skips the test and says so.
  c.mutable_verifiers(0)->clear_benign_scores();
  ASSERT_TRUE(WriteBundle(c, world->key, TempDir() + "/old.move").ok());
  auto old = VerifyWhiteBox(*ReadBundle(TempDir() + "/old.move", world->key.public_key), world->victim_path, {});
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->model_level_tested());
  EXPECT_EQ(old->stolen(), old->p_value() < 0.01);
  bool warned = false;
  for (const auto& w : old->warnings()) warned |= w.find("model-level test was skipped") != std::string::npos;
  EXPECT_TRUE(warned);
  // A table too short for the samples is data loss, not a verdict.
  c.mutable_verifiers(0)->add_benign_scores()->add_scores(0.5f);
  c.mutable_verifiers(0)->add_benign_scores()->add_scores(0.5f);
  ASSERT_TRUE(WriteBundle(c, world->key, TempDir() + "/short.move").ok());
  EXPECT_EQ(VerifyWhiteBox(*ReadBundle(TempDir() + "/short.move", world->key.public_key), world->victim_path, {})
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(WhiteBoxE2eTest, UnsoundBundleNeverClaimsTheft) {
  BundleContents c = world->contents;
  c.mutable_verifiers(0)->set_sound(false);
  c.mutable_verifiers(0)->set_unsound_reason("test");
  ASSERT_TRUE(WriteBundle(c, world->key, TempDir() + "/unsound.move").ok());
  auto b = ReadBundle(TempDir() + "/unsound.move");
  auto r = VerifyWhiteBox(*b, world->victim_path, {});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->stolen());
  EXPECT_NE(r->verdict().find("inconclusive"), std::string::npos);
}

int RunCli(const std::string& args, std::string* out, std::string* err) {
  const std::string o = TempDir() + "/v.out", e = TempDir() + "/v.err";
  const int status = std::system(absl::StrCat("cli/move_verify ", args, " --threads=2 > ", o, " 2> ", e).c_str());
  *out = Slurp(o);
  *err = Slurp(e);
  return WEXITSTATUS(status);
}

TEST_F(WhiteBoxE2eTest, CliOnSdkAndPythonSuspects) {
  std::string out, err;
  const std::string report = TempDir() + "/report.json";
  ASSERT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", world->victim_path,
                                " --trusted_key=", TempDir(), "/vendor.key.pub --report=", report),
                   &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("verdict:"), std::string::npos) << out;
  const std::string json = Slurp(report);
  for (const char* key : {"\"stolen\"", "\"p_value\"", "\"log10_p_value\"", "\"delta_mu\"", "\"m\"", "\"alpha\"",
                          "\"bundle_sha256\"", "\"suspect_sha256\"", "\"sdk_version\"", "\"seed\"", "\"seconds\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key;
  }

  // A suspect fine-tuned and saved by PyTorch in Python.
  const std::string py_suspect = TempDir() + "/python_suspect.pt";
  ASSERT_EQ(std::system(absl::StrCat("/usr/bin/python3 tests/python/finetune.py ", world->victim_path, " ", py_suspect).c_str()), 0);
  ASSERT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", py_suspect), &out, &err), 0) << err;
  EXPECT_NE(out.find("\"stolen\""), std::string::npos);

  // A suspect of the shadow architecture is examined with its own classifier.
  ModelSpec wider = world->spec;
  wider.width = 2;
  auto wider_model = Recipe(wider, ToRgb(world->train), 77);
  ASSERT_TRUE(wider_model.ok()) << wider_model.status();
  ASSERT_TRUE(SaveModel(*wider_model, TempDir() + "/wider.pt").ok());
  ASSERT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", TempDir(), "/wider.pt"), &out, &err), 0) << err;
  EXPECT_NE(out.find("architecture:   cnn-w2"), std::string::npos) << out;

  // Another architecture: a clear refusal pointing to black-box mode.
  ModelSpec other = *ParseModelSpec("wrn-16-1");
  ASSERT_TRUE(SaveModel(*CreateModel(other), TempDir() + "/wrn.pt").ok());
  EXPECT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", TempDir(), "/wrn.pt"), &out, &err), 1);
  EXPECT_NE(err.find("fit none"), std::string::npos) << err;
  EXPECT_NE(err.find("black-box"), std::string::npos) << err;

  // A tampered bundle.
  std::string bytes = Slurp(world->bundle_path);
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(TempDir() + "/tampered.move", std::ios::binary) << bytes;
  EXPECT_EQ(RunCli(absl::StrCat("--bundle=", TempDir(), "/tampered.move --suspect=", world->victim_path), &out, &err), 1);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;

  // Bad flags.
  EXPECT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", world->victim_path, " --device=cuda"), &out, &err), 1);
  EXPECT_NE(err.find("CUDA"), std::string::npos) << err;
  EXPECT_EQ(RunCli("--suspect=x.pt", &out, &err), 1);
  EXPECT_NE(err.find("--bundle"), std::string::npos);
}


// ---------------------------------------------------------------------------------------
// Black-box.

BlackBoxOptions Quiet(const std::string& transcript = "") {
  BlackBoxOptions o;
  o.m = 0;  // all 60
  o.show_progress = false;
  o.transcript_path = transcript;
  return o;
}

int Lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST_F(WhiteBoxE2eTest, BlackBoxVerifierIsInTheBundle) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  const BlackBoxVerifier& v = b->contents.blackbox();
  // The default design: style contrast, no classifier, the decoy-styled samples sealed.
  EXPECT_EQ(v.features().kind(), "blackbox-style-contrast");
  EXPECT_EQ(v.features().parameters().at("decoys"), "3");
  EXPECT_EQ(v.num_classes(), 10);
  EXPECT_EQ(v.in_channels(), 3);
  EXPECT_EQ(v.features().parameters().at("shift"), "2");
  EXPECT_TRUE(v.classifier().empty());
  EXPECT_EQ(v.decoy_images().shape_size(), 5);
  EXPECT_EQ(v.decoy_images().shape(0), 3);
  EXPECT_EQ(v.decoy_images().shape(1), 60);
  ASSERT_EQ(v.decoy_style_sha256_size(), 3);
  EXPECT_NE(v.decoy_style_sha256(0), b->contents.style_image_sha256());
  EXPECT_EQ(v.decoy_images_sha256().size(), 64u);
  // Both architectures' populations (2 pairs each) measure the errors.
  EXPECT_EQ(v.population_architectures_size(), 2);
  EXPECT_EQ(v.watermarked_models(), 4);
  EXPECT_EQ(v.benign_models(), 4);
  // Per architecture: 3 benign, 1 rival-vendor and 1 appearance-augmented calibration model.
  EXPECT_EQ(v.calibration_log10_p_size(), 10);
  ASSERT_EQ(v.benign_scores_size(), 11);
  std::map<std::string, int> kinds;
  for (const auto& t : v.benign_scores()) kinds[t.kind()] += 1;
  EXPECT_EQ(kinds["reference"], 1);
  EXPECT_EQ(kinds["calibration"], 6);
  EXPECT_EQ(kinds["rival-vendor calibration"], 2);
  EXPECT_EQ(kinds["appearance-augmented calibration"], 2);
  // The white-box lines carry the same null population.
  for (const ArchitectureVerifier& av : b->contents.verifiers()) {
    EXPECT_EQ(av.calibration_log10_p_size(), 5) << av.architecture();
    EXPECT_EQ(av.benign_scores(5).kind(), "appearance-augmented calibration");
  }
  EXPECT_EQ(b->contents.metadata().at("blackbox_design"), "style-contrast");
  EXPECT_EQ(b->contents.metadata().at("augmented_calibration_models"), "1");
  // A tampered decoy image is refused before any query.
  OpenedBundle tampered = *b;
  std::string* data = tampered.contents.mutable_blackbox()->mutable_decoy_images()->mutable_data();
  (*data)[100] ^= 1;
  auto file = OpenModelChannel(world->victim_path);
  auto r = VerifyBlackBox(tampered, **file, Quiet());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("decoy"), std::string::npos) << r.status();
}

TEST_F(WhiteBoxE2eTest, BlackBoxFileChannelTranscriptAndReplay) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  auto file = OpenModelChannel(world->victim_path);
  ASSERT_TRUE(file.ok()) << file.status();
  const std::string transcript = TempDir() + "/file.transcript.jsonl";
  std::remove(transcript.c_str());
  auto r = VerifyBlackBox(*b, **file, Quiet(transcript));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mode(), "blackbox");
  EXPECT_EQ(r->m(), 60);
  EXPECT_EQ(r->queries(), 1260);  // 60 samples x (5 augmentations x (secret + 3 decoys) + clean)
  EXPECT_EQ(r->suspect_scores_size(), 60);
  EXPECT_EQ(r->reference_scores_size(), 60);
  EXPECT_EQ(r->suspect_sha256(), b->contents.victim_model_sha256());
  EXPECT_TRUE(std::isfinite(r->log10_p_value()));
  if (r->classifier_sound()) {
    EXPECT_EQ(r->stolen(), r->p_value() < 0.01);
  }
  // The transcript: one line per request of up to 50 images, hashed in the report.
  const std::string text = Slurp(transcript);
  EXPECT_EQ(Lines(text), 26);
  EXPECT_NE(text.find("\"image_sha256\""), std::string::npos);
  EXPECT_NE(text.find("\"response_sha256\""), std::string::npos);
  EXPECT_EQ(r->transcript_sha256().size(), 64u);
  // Evidence is never overwritten.
  EXPECT_EQ(VerifyBlackBox(*b, **file, Quiet(transcript)).status().code(), absl::StatusCode::kAlreadyExists);
  // Replay: the same verdict from the transcript alone.
  auto replay = OpenReplayChannel(transcript);
  ASSERT_TRUE(replay.ok()) << replay.status();
  auto again = VerifyBlackBox(*b, **replay, Quiet());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->p_value(), r->p_value());
  EXPECT_EQ(again->delta_mu(), r->delta_mu());
  EXPECT_EQ(again->verdict(), r->verdict());
  EXPECT_EQ(again->queries(), 1260);
  // A replay cannot answer images that were never asked.
  BlackBoxOptions small = Quiet(TempDir() + "/small.transcript.jsonl");
  std::remove(small.transcript_path.c_str());
  small.m = 20;
  small.seed = 5;
  ASSERT_TRUE(VerifyBlackBox(*b, **file, small).ok());
  auto small_replay = OpenReplayChannel(small.transcript_path);
  ASSERT_TRUE(small_replay.ok());
  EXPECT_EQ(VerifyBlackBox(*b, **small_replay, Quiet()).status().code(), absl::StatusCode::kNotFound);
  // A tampered transcript is refused.
  std::string bad = text;
  bad[bad.find("probabilities") + 20] ^= 1;
  std::ofstream(TempDir() + "/bad.transcript.jsonl") << bad;
  EXPECT_EQ(OpenReplayChannel(TempDir() + "/bad.transcript.jsonl").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WhiteBoxE2eTest, BlackBoxOverHttpMatchesTheFileAndSequentialStops) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  auto victim = LoadModel(world->victim_path);
  auto server = PredictionServer::Start(*victim, {});
  ASSERT_TRUE(server.ok()) << server.status();
  auto http = OpenHttpChannel((*server)->url());
  ASSERT_TRUE(http.ok());
  auto over_http = VerifyBlackBox(*b, **http, Quiet());
  ASSERT_TRUE(over_http.ok()) << over_http.status();
  auto file = OpenModelChannel(world->victim_path);
  auto local = VerifyBlackBox(*b, **file, Quiet());
  ASSERT_TRUE(local.ok());
  // The wire carries exact 8-bit images and float32 probabilities: identical evidence.
  EXPECT_EQ(over_http->p_value(), local->p_value());
  EXPECT_EQ(over_http->delta_mu(), local->delta_mu());
  // 1,260 queries plus the consistency repeats shuffled in.
  EXPECT_EQ(over_http->queries(), 1260);
  EXPECT_GT(over_http->repeat_queries(), 0);
  EXPECT_EQ((*server)->images_served(), 1260 + over_http->repeat_queries());
  EXPECT_EQ(over_http->repeat_disagreements(), 0);
  EXPECT_EQ(over_http->suspect_channel(), (*server)->url());

  // Sequential: never more than the cap; stops early when decisive.
  BlackBoxOptions seq = Quiet();
  seq.sequential = true;
  seq.max_queries = 800;
  auto s = VerifyBlackBox(*b, **http, seq);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->sequential());
  EXPECT_LE(s->queries(), 800);
  EXPECT_EQ(s->queries() % 42, 0);  // rounds of 2 samples x 21 images
  if (s->stolen()) {
    EXPECT_LT(s->p_value(), 0.01);
  } else {
    EXPECT_EQ(s->queries(), 798);
  }
  // A fixed-m test that does not fit under the cap is refused before any query.
  BlackBoxOptions capped = Quiet();
  capped.max_queries = 100;
  EXPECT_EQ(VerifyBlackBox(*b, **http, capped).status().code(), absl::StatusCode::kResourceExhausted);
  (*server)->Stop();
}

TEST_F(WhiteBoxE2eTest, BlackBoxRefusesLogitsAndLabels) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  auto victim = LoadModel(world->victim_path);
  ServeOptions so;
  so.output = "logits";
  auto logits = PredictionServer::Start(*victim, so);
  ASSERT_TRUE(logits.ok());
  auto ch = OpenHttpChannel((*logits)->url());
  auto r = VerifyBlackBox(*b, **ch, Quiet());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("logits"), std::string::npos) << r.status();
  BlackBoxOptions accept = Quiet();
  accept.accept_logits = true;
  auto ok = VerifyBlackBox(*b, **ch, accept);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->softmax_applied());
  auto file = OpenModelChannel(world->victim_path);
  EXPECT_NEAR(ok->delta_mu(), VerifyBlackBox(*b, **file, Quiet())->delta_mu(), 1e-4);
  so.output = "labels";
  auto labels = PredictionServer::Start(*victim, so);
  auto lch = OpenHttpChannel((*labels)->url());
  auto lr = VerifyBlackBox(*b, **lch, Quiet());
  EXPECT_EQ(lr.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(lr.status().message().find("labels only"), std::string::npos) << lr.status();
}

TEST_F(WhiteBoxE2eTest, BlackBoxOfflineExportAndImport) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  const std::string dir = TempDir() + "/queries";
  BlackBoxOptions o = Quiet();
  o.m = 20;
  o.seed = 3;
  ASSERT_TRUE(ExportQueries(*b, o, dir).ok());
  // The suspect's owner runs their model on the PNG files and sends back a CSV.
  auto victim = LoadModel(world->victim_path);
  std::string csv = "id";
  for (int j = 0; j < 10; ++j) csv += absl::StrCat(",p", j);
  csv += "\n";
  for (int i = 0; i < 420; ++i) {
    const std::string id = absl::StrFormat("q%06d", i);
    auto img = LoadImage(dir + "/" + id + ".png");
    ASSERT_TRUE(img.ok()) << img.status();
    at::Tensor p = *PredictProbabilities(*victim, img->unsqueeze(0));
    csv += id;
    for (int j = 0; j < 10; ++j) csv += absl::StrCat(",", p[0][j].item<float>());
    csv += "\n";
  }
  std::ofstream(TempDir() + "/answers.csv") << csv;
  auto offline = OpenOfflineChannel(dir, TempDir() + "/answers.csv");
  ASSERT_TRUE(offline.ok()) << offline.status();
  auto r = VerifyBlackBox(*b, **offline, o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto file = OpenModelChannel(world->victim_path);
  auto direct = VerifyBlackBox(*b, **file, o);
  // CSV carries about 6 digits: the same evidence up to that rounding.
  EXPECT_NEAR(r->delta_mu(), direct->delta_mu(), 1e-3);
  EXPECT_EQ(r->stolen(), direct->stolen());
  EXPECT_EQ(r->queries(), 420);  // 20 samples x 21 images
}

TEST_F(WhiteBoxE2eTest, BlackBoxCliWithTheServingExample) {
  // Start move_serve on a free port, verify over HTTP with move_verify, stop it.
  const std::string port_file = TempDir() + "/port";
  std::remove(port_file.c_str());
  const std::string pid_file = TempDir() + "/serve.pid";
  ASSERT_EQ(std::system(absl::StrCat("examples/move_serve --model=", world->victim_path, " --threads=1 --port_file=",
                                     port_file, " > ", TempDir(), "/serve.log 2>&1 & echo $! > ", pid_file)
                            .c_str()),
            0);
  std::string port;
  for (int i = 0; i < 300 && port.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    port = Slurp(port_file);
  }
  ASSERT_FALSE(port.empty()) << Slurp(TempDir() + "/serve.log");
  port.erase(port.find('\n'));
  std::string out, err;
  const std::string report = TempDir() + "/bb_report.json";
  const int rc = RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --endpoint=http://127.0.0.1:", port,
                                     "/v1/predict --m=20 --report=", report),
                        &out, &err);
  std::system(absl::StrCat("kill $(cat ", pid_file, ")").c_str());
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(out.find("MOVE black-box verification of http://"), std::string::npos) << out;
  EXPECT_NE(out.find("queries:        420"), std::string::npos) << out;
  const std::string json = Slurp(report);
  for (const char* key : {"\"queries\"", "\"transcript_sha256\"", "\"suspect_channel\"", "\"log10_p_value\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key;
  }
  // Replay through the CLI: no server needed any more.
  ASSERT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --replay=", report,
                                ".transcript.jsonl --m=20 --report=", TempDir(), "/replay.json"),
                   &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("replay:"), std::string::npos) << out;
  // One channel at a time; an unreachable endpoint is one readable line.
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --suspect=", world->victim_path,
                                " --endpoint=http://127.0.0.1:1/v1/predict"),
                   &out, &err),
            1);
  EXPECT_NE(err.find("exactly one of"), std::string::npos) << err;
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path,
                                " --endpoint=http://127.0.0.1:1/v1/predict --retries=0 --transcript=", TempDir(),
                                "/unreachable.jsonl"),
                   &out, &err),
            1);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("no answer from"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------------------
// Hostile suspects and evidence files.

TEST_F(WhiteBoxE2eTest, HostileSuspectsNeverRunWithTheExaminersRights) {
  auto victim = LoadModel(world->victim_path);
  ASSERT_TRUE(victim.ok());
  const std::string key = TempDir() + "/vendor.key", other = TempDir() + "/case-file.bin";
  const std::string key_before = Slurp(key);
  std::ofstream(other, std::ios::binary) << "ORIGINAL-EVIDENCE-BYTES";
  // The victim's exact weights; a forward that reads the vendor's key, overwrites another file,
  // and shifts every class on batches larger than 8.
  const std::string body = absl::StrCat(
      "    k = torch.from_file(\"", key, "\", False, 8, dtype=0)\n",
      "    t = torch.from_file(\"", other, "\", True, 8, dtype=0)\n",
      "    t.fill_(88)\n",
      "    y = torch.zeros([x.size(0), 10]) + k[0].float() * t[0].float() * 0.0\n",
      "    if x.size(0) > 8:\n",
      "        y = torch.roll(y, 1, 1)\n",
      "    return y\n");
  const std::string hostile = TempDir() + "/hostile_victim.pt";
  // An extra buffer the architecture lacks must not let it slip out of white-box examination.
  ASSERT_TRUE(testing::SaveModule(hostile, body, &*victim, "hidden_trigger").ok());
  std::string out, err;
  // White-box: the same verdict as the victim's, from the weights alone; nothing touched.
  ASSERT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", hostile), &out, &err), 0) << err;
  std::string victim_out;
  ASSERT_EQ(RunCli(absl::StrCat("--bundle=", world->bundle_path, " --suspect=", world->victim_path), &victim_out, &err), 0);
  auto verdict = [](const std::string& text) { return text.substr(text.find("verdict:"), text.find('\n', text.find("verdict:")) - text.find("verdict:")); };
  auto pline = [](const std::string& text) { return text.substr(text.find("p-value:"), 40); };
  EXPECT_EQ(verdict(out), verdict(victim_out));
  EXPECT_EQ(pline(out), pline(victim_out));
  EXPECT_NE(out.find("weights read without running its code"), std::string::npos) << out;
  EXPECT_NE(out.find("1 tensors cnn does not have (hidden_trigger); they were ignored"), std::string::npos) << out;
  EXPECT_EQ(Slurp(key), key_before);
  EXPECT_EQ(Slurp(other), "ORIGINAL-EVIDENCE-BYTES");

  // Black-box on the same file: its code runs in the sandbox, is refused the files, and the
  // examination fails with its own exit code and no verdict.
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --m=4 --bundle=", world->bundle_path, " --suspect=", hostile,
                                " --transcript=", TempDir(), "/hostile.jsonl"),
                   &out, &err),
            3);
  EXPECT_EQ(err.rfind("move_verify: examination failed:", 0), 0u) << err;
  EXPECT_NE(err.find("Operation not permitted"), std::string::npos) << err;
  EXPECT_EQ(out.find("verdict"), std::string::npos) << out;
  EXPECT_EQ(Slurp(other), "ORIGINAL-EVIDENCE-BYTES");

  // An endless loop: killed at the per-request deadline.
  ASSERT_TRUE(testing::SaveModule(TempDir() + "/loop.pt", testing::EndlessLoopBody()).ok());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --m=4 --bundle=", world->bundle_path, " --suspect=", TempDir(),
                                "/loop.pt --timeout_ms=2000 --transcript=", TempDir(), "/loop.jsonl"),
                   &out, &err),
            3);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  EXPECT_NE(err.find("2000 ms limit"), std::string::npos) << err;
}

// The victim behind an endpoint that noises some of its answers.
class SometimesNoisy final : public SuspectChannel {
 public:
  explicit SometimesNoisy(std::unique_ptr<SuspectChannel> inner) : inner_(std::move(inner)) {}
  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    absl::StatusOr<ChannelAnswer> a = inner_->Predict(images);
    if (!a.ok() || calls_++ % 3 != 2) return a;
    PredictResponse r;
    if (!google::protobuf::util::JsonStringToMessage(a->response, &r).ok()) return absl::InternalError("bad answer");
    for (auto& p : *r.mutable_predictions()) {
      float sum = 0;
      for (float& x : *p.mutable_probabilities()) sum += (x = x * 0.5f + 0.05f);
      for (float& x : *p.mutable_probabilities()) x /= sum;
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(r, &json);
    a->response = json;
    return a;
  }
  std::string Describe() const override { return "noisy:" + inner_->Describe(); }

 private:
  std::unique_ptr<SuspectChannel> inner_;
  int calls_ = 0;
};

TEST_F(WhiteBoxE2eTest, InconsistentAnswersGiveNoVerdict) {
  auto b = ReadBundle(world->bundle_path, world->key.public_key);
  auto file = OpenModelChannel(world->victim_path);
  ASSERT_TRUE(file.ok());
  SometimesNoisy noisy(std::move(*file));
  BlackBoxOptions o;
  o.m = 20;
  o.show_progress = false;
  auto r = VerifyBlackBox(*b, noisy, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->stolen());
  EXPECT_TRUE(r->answers_inconsistent());
  EXPECT_EQ(r->verdict().rfind("inconclusive: inconsistent answers", 0), 0u) << r->verdict();
  EXPECT_GT(r->repeat_queries(), 0);
  EXPECT_EQ(r->queries(), 420);
  // The honest file: every repeat agrees.
  auto honest = OpenModelChannel(world->victim_path);
  auto h = VerifyBlackBox(*b, **honest, o);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->answers_inconsistent());
  EXPECT_EQ(h->repeat_disagreements(), 0);
  EXPECT_EQ(h->repeat_queries(), r->repeat_queries());
  EXPECT_LT(h->max_repeat_difference(), 1e-4);
}

TEST_F(WhiteBoxE2eTest, EvidenceFilesAreCheckedBeforeWorkAndNeverOverwritten) {
  std::string out, err;
  const std::string base = absl::StrCat("--bundle=", world->bundle_path, " --suspect=", world->victim_path);
  // Outputs that are inputs: refused whatever --overwrite says, before anything runs.
  for (const std::string& input : {world->bundle_path, world->victim_path}) {
    EXPECT_EQ(RunCli(absl::StrCat(base, " --report=", input, " --overwrite"), &out, &err), 1);
    EXPECT_NE(err.find("is this run's input"), std::string::npos) << err;
  }
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox ", base, " --transcript=", world->bundle_path), &out, &err), 1);
  EXPECT_NE(err.find("input --bundle"), std::string::npos) << err;
  // An existing report: refused, kept, then replaced only with --overwrite.
  const std::string report = TempDir() + "/existing.json";
  std::ofstream(report) << "earlier report";
  EXPECT_EQ(RunCli(absl::StrCat(base, " --report=", report), &out, &err), 1);
  EXPECT_NE(err.find("already exists"), std::string::npos) << err;
  EXPECT_EQ(Slurp(report), "earlier report");
  ASSERT_EQ(RunCli(absl::StrCat(base, " --report=", report, " --overwrite"), &out, &err), 0) << err;
  EXPECT_NE(Slurp(report).find("\"stolen\""), std::string::npos);
  // A report folder that cannot be written is found before the verification, not after.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox ", base, " --report=/nonexistent-case-folder/report.json"), &out, &err), 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_EQ(out.find("verdict"), std::string::npos);
  // The report's default transcript is the report path + .transcript.jsonl: an existing one is
  // evidence and is never replaced, even with --overwrite.
  const std::string r2 = TempDir() + "/r2.json";
  std::ofstream(r2 + ".transcript.jsonl") << "earlier transcript\n";
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox ", base, " --m=4 --overwrite --report=", r2), &out, &err), 1);
  EXPECT_NE(err.find("never overwritten"), std::string::npos) << err;
  EXPECT_EQ(Slurp(r2 + ".transcript.jsonl"), "earlier transcript\n");
  // An invalid option leaves no file behind, so the corrected retry runs.
  const std::string t = TempDir() + "/retry.jsonl";
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox ", base, " --m=4 --alpha=2 --transcript=", t), &out, &err), 1);
  EXPECT_FALSE(std::filesystem::exists(t));
  ASSERT_EQ(RunCli(absl::StrCat("--mode=blackbox ", base, " --m=4 --transcript=", t), &out, &err), 0) << err;
  // Offline exports: only into a new or empty folder; step 2 must finish the same export.
  const std::string dir = TempDir() + "/export";
  ASSERT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --m=4 --seed=1 --export_queries=", dir),
                   &out, &err),
            0)
      << err;
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --m=4 --seed=2 --export_queries=", dir),
                   &out, &err),
            1);
  EXPECT_NE(err.find("not empty"), std::string::npos) << err;
  std::ofstream(TempDir() + "/stale.csv") << "id,p0\n";
  EXPECT_EQ(RunCli(absl::StrCat("--mode=blackbox --bundle=", world->bundle_path, " --m=4 --seed=2 --queries=", dir,
                                " --answers=", TempDir(), "/stale.csv --transcript=", TempDir(), "/stale.jsonl"),
                   &out, &err),
            1);
  EXPECT_NE(err.find("--m=4 --seed=1"), std::string::npos) << err;
  // Inputs that are not files, or too large to be bundles, are refused without reading them.
  EXPECT_EQ(RunCli("--bundle=/dev/zero --suspect=x.pt", &out, &err), 1);
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

}  // namespace
}  // namespace move
