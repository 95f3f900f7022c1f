// White-box MOVE end to end at a tiny scale: embed, train a victim, build and sign a bundle
// through a training recipe, then examine suspects with the API and with move_verify (an
// SDK-made suspect, a Python-made one, a foreign architecture, a tampered bundle).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sdk/bundle.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/ownership.h"
#include "sdk/runtime.h"
#include "sdk/train.h"

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
    bo.calibration_models = 1;
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
  EXPECT_EQ(c.verifiers(1).calibration_log10_p_size(), 1);
  const ArchitectureVerifier& v = c.verifiers(0);
  EXPECT_EQ(v.architecture(), "cnn");
  EXPECT_EQ(v.features().kind(), "whitebox-sign-gradient-relative");
  EXPECT_EQ(v.calibration_log10_p_size(), 1);
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
    EXPECT_EQ(r->stolen(), r->p_value() < 0.01);
  }
  o.m = 20;
  auto sub = VerifyWhiteBox(*b, world->victim_path, o);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->m(), 20);
  o.m = 61;
  EXPECT_EQ(VerifyWhiteBox(*b, world->victim_path, o).status().code(), absl::StatusCode::kInvalidArgument);
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
  EXPECT_NE(err.find("match none"), std::string::npos) << err;
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

}  // namespace
}  // namespace move
