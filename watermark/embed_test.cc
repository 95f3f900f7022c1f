// Tests for move::EmbedDataset (sdk/embed.h) on real Fashion-MNIST images.
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

class EmbedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(SetNumThreads(2).ok());
    auto train = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
    ASSERT_TRUE(train.ok()) << train.status();
    data_ = new Dataset(*SampleSubset(*train, 300, 3));
    style_ = new at::Tensor(*LoadImage("testdata/style_leopard.png"));
  }
  static EmbedDatasetOptions Quick() {
    EmbedDatasetOptions o;
    o.seed = 42;
    o.texture.fit_steps = 40;
    o.show_progress = false;
    return o;
  }
  static Dataset* data_;
  static at::Tensor* style_;
};
Dataset* EmbedTest::data_ = nullptr;
at::Tensor* EmbedTest::style_ = nullptr;

TEST_F(EmbedTest, PicksGammaKeepsLabelsAndTouchesOnlyPickedSamples) {
  auto r = EmbedDataset(*data_, *style_, Quick());
  ASSERT_TRUE(r.ok()) << r.status();
  const WatermarkRecord& rec = r->record;
  ASSERT_EQ(rec.picked_indices_size(), 30);  // 10% of 300
  for (int i = 1; i < rec.picked_indices_size(); ++i) {
    EXPECT_LT(rec.picked_indices(i - 1), rec.picked_indices(i));  // sorted, unique
  }
  EXPECT_TRUE(torch::equal(r->dataset.labels, data_->labels));
  EXPECT_EQ(r->dataset.channels(), 3);
  EXPECT_TRUE(rec.converted_to_rgb());
  Dataset rgb = ToRgb(*data_);
  at::Tensor picked_mask = torch::zeros({data_->size()}, torch::kBool);
  picked_mask.index_fill_(0, r->picked_indices, true);
  at::Tensor untouched = picked_mask.logical_not().nonzero().squeeze(1);
  EXPECT_TRUE(torch::equal(r->dataset.images.index_select(0, untouched), rgb.images.index_select(0, untouched)));
  at::Tensor diff = (r->dataset.images.index_select(0, r->picked_indices) -
                     rgb.images.index_select(0, r->picked_indices)).abs().flatten(1).mean(1);
  EXPECT_GT(diff.min().item<float>(), 0.02f) << "every picked image must actually change";
  // Input not modified.
  EXPECT_EQ(data_->channels(), 1);
}

TEST_F(EmbedTest, BitIdenticalForSameInputsAndSeed) {
  auto a = EmbedDataset(*data_, *style_, Quick());
  auto b = EmbedDataset(*data_, *style_, Quick());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::equal(a->dataset.images, b->dataset.images));
  EXPECT_EQ(a->record.output_sha256(), b->record.output_sha256());
  EXPECT_EQ(a->record.transformed_sha256(), b->record.transformed_sha256());
  EXPECT_EQ(a->record.engine_weights_sha256(), b->record.engine_weights_sha256());
  EmbedDatasetOptions other = Quick();
  other.seed = 43;
  auto c = EmbedDataset(*data_, *style_, other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->record.output_sha256(), c->record.output_sha256());
  EXPECT_FALSE(torch::equal(a->picked_indices, c->picked_indices));
}

TEST_F(EmbedTest, RecordSaysHowToReproduce) {
  auto r = EmbedDataset(*data_, *style_, Quick());
  ASSERT_TRUE(r.ok());
  const WatermarkRecord& rec = r->record;
  EXPECT_EQ(rec.format(), "move.watermark_record.v1");
  EXPECT_EQ(rec.dataset_size(), 300);
  EXPECT_EQ(rec.seed(), 42u);
  EXPECT_DOUBLE_EQ(rec.gamma(), 0.1);
  EXPECT_EQ(rec.engine(), "texture");
  EXPECT_EQ(rec.engine_parameters().at("steps"), "40");
  EXPECT_EQ(rec.num_threads(), 2);
  EXPECT_EQ(rec.style_image_sha256().size(), 64u);
  EXPECT_EQ(rec.input_sha256().size(), 64u);
  std::string json = WatermarkRecordToJson(rec);
  EXPECT_NE(json.find("\"picked_indices\""), std::string::npos);
  EXPECT_NE(json.find("\"style_image_sha256\""), std::string::npos);
  const std::string path = TempDir() + "/record.json";
  ASSERT_TRUE(SaveWatermarkRecord(rec, path).ok());

  // The saved record alone is enough to reproduce the set bit for bit.
  auto loaded = LoadWatermarkRecord(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto options = EmbedOptionsFromRecord(*loaded);
  ASSERT_TRUE(options.ok()) << options.status();
  options->show_progress = false;
  auto again = EmbedDataset(*data_, *style_, *options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->record.output_sha256(), rec.output_sha256());
  EXPECT_TRUE(torch::equal(again->dataset.images, r->dataset.images));

  std::ofstream(TempDir() + "/not_a_record.json") << "{\"gamma\": \"high\"}";
  EXPECT_EQ(LoadWatermarkRecord(TempDir() + "/not_a_record.json").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(LoadWatermarkRecord(TempDir() + "/none.json").status().code(), absl::StatusCode::kNotFound);
  WatermarkRecord other = rec;
  other.set_engine("oil-paint");
  EXPECT_EQ(EmbedOptionsFromRecord(other).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EmbedTest, StyleMovesTowardTheStyleImage) {
  EmbedDatasetOptions o = Quick();
  o.texture.fit_steps = 120;
  auto r = EmbedDataset(*data_, *style_, o);
  ASSERT_TRUE(r.ok());
  // Measured with a feature net seeded independently of the fitting.
  EXPECT_GT(r->record.style_distance_before(), 5 * r->record.style_distance_after())
      << r->record.style_distance_before() << " vs " << r->record.style_distance_after();
}

TEST_F(EmbedTest, StyleImagesMatchesEmbeddedImages) {
  auto r = EmbedDataset(*data_, *style_, Quick());
  ASSERT_TRUE(r.ok());
  at::Tensor originals = data_->images.index_select(0, r->picked_indices.narrow(0, 0, 5));
  auto styled = r->StyleImages(originals);
  ASSERT_TRUE(styled.ok());
  EXPECT_TRUE(torch::equal(*styled, r->dataset.images.index_select(0, r->picked_indices.narrow(0, 0, 5))));
}

TEST_F(EmbedTest, GammaExtremes) {
  EmbedDatasetOptions o = Quick();
  o.gamma = 1.0;
  o.texture.fit_steps = 2;
  auto all = EmbedDataset(*data_, *style_, o);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->record.picked_indices_size(), 300);
  o.gamma = 1e-6;
  auto one = EmbedDataset(*data_, *style_, o);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->record.picked_indices_size(), 1);
}

void ExpectInvalid(const absl::StatusOr<EmbedResult>& r, const std::string& field) {
  ASSERT_FALSE(r.ok()) << "expected an error about " << field;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status();
}

TEST_F(EmbedTest, BadOptionsAreInvalidArgumentNamingTheField) {
  for (double gamma : {0.0, -0.1, 1.5, std::nan("")}) {
    EmbedDatasetOptions o = Quick();
    o.gamma = gamma;
    ExpectInvalid(EmbedDataset(*data_, *style_, o), "gamma");
  }
  EmbedDatasetOptions o = Quick();
  o.style_strength = 0;
  ExpectInvalid(EmbedDataset(*data_, *style_, o), "style_strength");
  o = Quick();
  o.texture.fit_steps = 0;
  ExpectInvalid(EmbedDataset(*data_, *style_, o), "texture.fit_steps");
  o = Quick();
  o.device = "tpu";
  ExpectInvalid(EmbedDataset(*data_, *style_, o), "device");
  o = Quick();
  o.engine = StyleEngine::kAdaIn;
  ExpectInvalid(EmbedDataset(*data_, *style_, o), "adain.encoder_path");

  Dataset empty = *data_;
  empty.images = data_->images.narrow(0, 0, 0);
  empty.labels = data_->labels.narrow(0, 0, 0);
  ExpectInvalid(EmbedDataset(empty, *style_, Quick()), "dataset");

  ExpectInvalid(EmbedDataset(*data_, torch::rand({3, 8, 8}), Quick()), "too small");
  ExpectInvalid(EmbedDataset(*data_, torch::rand({1, 32, 32}), Quick()), "style_image");
  ExpectInvalid(EmbedDataset(*data_, torch::rand({4, 32, 32}), Quick()), "style_image");
  ExpectInvalid(EmbedDataset(*data_, torch::rand({3, 32, 32}) * 3, Quick()), "style_image");
  ExpectInvalid(EmbedDataset(*data_, at::Tensor(), Quick()), "style_image");
}

// Writes a TorchScript module with a single forward body.
std::string SaveScript(const std::string& name, const std::string& body,
                       const std::vector<std::pair<std::string, at::Tensor>>& params) {
  torch::jit::Module m(c10::QualifiedName({"__torch__", "test", name}));
  for (const auto& [pname, value] : params) m.register_parameter(pname, value, false);
  m.define("def forward(self, x):\n    return " + body + "\n");
  const std::string path = TempDir() + "/" + name + ".pt";
  m.save(path);
  return path;
}

TEST_F(EmbedTest, AdaInWithIdentityNetworksMatchesChannelStatistics) {
  // With identity encoder and decoder, AdaIN at alpha 1 gives each channel the style image's
  // mean and standard deviation: a hand-checkable case of the engine's arithmetic.
  const std::string enc = SaveScript("IdentityEnc", "x", {});
  const std::string dec = SaveScript("IdentityDec", "x", {});
  EmbedDatasetOptions o = Quick();
  o.engine = StyleEngine::kAdaIn;
  o.adain.encoder_path = enc;
  o.adain.decoder_path = dec;
  // A style with values well inside [0, 1] so the final clamp does not bite.
  at::Tensor style = 0.3 + 0.4 * torch::rand({3, 32, 32}, at::make_generator<at::CPUGeneratorImpl>(1));
  style.select(0, 0).mul_(0.5);
  auto r = EmbedDataset(*data_, style, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->record.engine(), "adain");
  // Pick an image with enough contrast and compare channel statistics.
  at::Tensor out = r->dataset.images.index_select(0, r->picked_indices);
  at::Tensor out_mean = out.mean({2, 3}).mean(0);
  at::Tensor style_mean = style.mean({1, 2});
  EXPECT_TRUE(torch::allclose(out_mean, style_mean, 0, 0.05)) << out_mean << style_mean;

  // alpha < 1 keeps part of the content.
  o.style_strength = 0.5;
  auto half = EmbedDataset(*data_, style, o);
  ASSERT_TRUE(half.ok());
  EXPECT_FALSE(torch::equal(half->dataset.images, r->dataset.images));
}

TEST_F(EmbedTest, AdaInBadNetworksGiveClearErrors) {
  EmbedDatasetOptions o = Quick();
  o.engine = StyleEngine::kAdaIn;
  o.adain.encoder_path = TempDir() + "/missing_encoder.pt";
  o.adain.decoder_path = SaveScript("IdDec2", "x", {});
  auto missing = EmbedDataset(*data_, *style_, o);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("adain.encoder_path"), std::string::npos);

  // A decoder that halves the resolution does not give images back.
  o.adain.encoder_path = SaveScript("IdEnc3", "x", {});
  o.adain.decoder_path = SaveScript("HalfDec", "torch.avg_pool2d(x, [2, 2])", {});
  auto shape = EmbedDataset(*data_, *style_, o);
  EXPECT_EQ(shape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(shape.status().message().find("decoder"), std::string::npos);
}

}  // namespace
}  // namespace move

namespace move {
namespace {

TEST_F(EmbedTest, DecoyStylesAreDeterministicDistinctAndUsableAsStyles) {
  auto a = DecoyStyleImage(1), a2 = DecoyStyleImage(1), b = DecoyStyleImage(2);
  ASSERT_TRUE(a.ok() && a2.ok() && b.ok()) << a.status();
  EXPECT_EQ(a->sizes(), (std::vector<int64_t>{3, 128, 128}));
  EXPECT_TRUE(torch::equal(*a, *a2));
  EXPECT_GT((*a - *b).abs().mean().item<double>(), 0.05);
  EXPECT_GE(a->min().item<double>(), 0.0);
  EXPECT_LE(a->max().item<double>(), 1.0);
  // Texture, not a flat colour: spatial contrast in every decoy of a few seeds.
  for (uint64_t s = 0; s < 5; ++s) {
    auto d = DecoyStyleImage(s, 64);
    ASSERT_TRUE(d.ok());
    EXPECT_GT(d->std().item<double>(), 0.08) << "seed " << s;
  }
  // And the style engine can move images towards it.
  EmbedDatasetOptions o = Quick();
  o.texture.fit_steps = 120;
  auto r = EmbedDataset(*data_, *a, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->record.style_distance_before(), 2 * r->record.style_distance_after())
      << r->record.style_distance_before() << " vs " << r->record.style_distance_after();
  EXPECT_EQ(DecoyStyleImage(0, 8).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EmbedTest, AppearanceAugmentationChangesTheChosenFractionAndKeepsLabels) {
  AppearanceAugmentOptions o;
  o.seed = 7;
  auto a = AugmentAppearance(*data_, o), a2 = AugmentAppearance(*data_, o);
  ASSERT_TRUE(a.ok() && a2.ok()) << a.status();
  EXPECT_TRUE(torch::equal(a->images, a2->images));  // same seed, same data
  EXPECT_TRUE(torch::equal(a->labels, data_->labels));
  EXPECT_EQ(a->images.size(1), 3);
  EXPECT_NE(a->name.find("appearance-augmented"), std::string::npos);
  const Dataset rgb = ToRgb(*data_);
  const at::Tensor changed = (a->images - rgb.images).abs().amax({1, 2, 3}).gt(1e-6);
  EXPECT_EQ(changed.sum().item<int64_t>(), 90);  // 30% of 300
  EXPECT_GE(a->images.min().item<double>(), 0.0);
  EXPECT_LE(a->images.max().item<double>(), 1.0);
  // Colour, not only brightness: the changed grey images are grey no more.
  const at::Tensor picked = changed.nonzero().squeeze(1);
  const at::Tensor x = a->images.index_select(0, picked);
  EXPECT_GT((x.select(1, 0) - x.select(1, 1)).abs().mean().item<double>(), 0.02);
  o.seed = 8;
  auto b = AugmentAppearance(*data_, o);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(torch::equal(a->images, b->images));
  AppearanceAugmentOptions bad;
  bad.fraction = 0;
  EXPECT_EQ(AugmentAppearance(*data_, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.min_blend = 0.6;
  bad.max_blend = 0.5;
  auto r = AugmentAppearance(*data_, bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("min_blend"), std::string::npos) << r.status();
  bad = {};
  bad.textures = 0;
  EXPECT_EQ(AugmentAppearance(*data_, bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AugmentAppearance(Dataset{}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace move
