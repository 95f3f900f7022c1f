// Tests for the model zoo (sdk/model.h).
#include <fstream>

#include <torch/script.h>
#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/model.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

class ZooTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooTest, BuildsRunsAndIsDeterministic) {
  auto spec = ParseModelSpec(GetParam());
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->in_channels = 3;
  spec->num_classes = 7;
  spec->seed = 3;
  EXPECT_EQ(ModelSpecName(*spec), GetParam());
  auto model = CreateModel(*spec);
  ASSERT_TRUE(model.ok()) << model.status();
  model->eval();
  at::Tensor x = torch::rand({2, 3, 28, 28});
  at::Tensor y = model->forward({x}).toTensor();
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7}));
  auto again = CreateModel(*spec);
  again->eval();
  EXPECT_TRUE(torch::equal(y, again->forward({x}).toTensor()));
  spec->seed = 4;
  auto other = CreateModel(*spec);
  other->eval();
  EXPECT_FALSE(torch::equal(y, other->forward({x}).toTensor()));
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooTest,
                         ::testing::Values("cnn", "cnn-w2", "resnet18", "wrn-16-1", "wrn-16-2",
                                           "wrn-28-1", "vgg11"));

TEST(ModelTest, ParameterCountsMatchTheArchitectures) {
  auto count = [](const std::string& name) {
    ModelSpec spec = *ParseModelSpec(name);
    spec.num_classes = 10;
    return CountParameters(*CreateModel(spec));
  };
  // Reference counts of the torchvision-style definitions (3 input channels, 10 classes).
  EXPECT_EQ(count("resnet18"), 11173962);
  EXPECT_EQ(count("wrn-16-1"), 175066);
  EXPECT_EQ(count("wrn-28-10"), 36479194);
}

TEST(ModelTest, BatchNormFollowsTrainAndEvalMode) {
  ModelSpec spec;
  spec.in_channels = 1;
  auto model = CreateModel(spec);
  ASSERT_TRUE(model.ok());
  at::Tensor x = torch::rand({8, 1, 16, 16});
  at::Tensor mean_before = model->attr("l1_bn_mean").toTensor().clone();
  // Eval mode: outputs of a sample do not depend on the rest of the batch, stats unchanged.
  model->eval();
  at::Tensor alone = model->forward({x.narrow(0, 0, 1)}).toTensor();
  at::Tensor in_batch = model->forward({x}).toTensor().narrow(0, 0, 1);
  EXPECT_TRUE(torch::allclose(alone, in_batch, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(mean_before, model->attr("l1_bn_mean").toTensor()));
  // Train mode: batch statistics are used and running stats move.
  model->train();
  at::Tensor train_out = model->forward({x}).toTensor().narrow(0, 0, 1);
  EXPECT_FALSE(torch::allclose(train_out, in_batch, 1e-4, 1e-5));
  EXPECT_FALSE(torch::equal(mean_before, model->attr("l1_bn_mean").toTensor()));
}

TEST(ModelTest, SaveLoadRoundTripAndErrors) {
  ModelSpec spec = *ParseModelSpec("wrn-16-1");
  auto model = CreateModel(spec);
  model->eval();
  const std::string path = TempDir() + "/wrn.pt";
  ASSERT_TRUE(SaveModel(*model, path).ok());
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  loaded->eval();
  at::Tensor x = torch::rand({3, 3, 32, 32});
  EXPECT_TRUE(torch::equal(model->forward({x}).toTensor(), loaded->forward({x}).toTensor()));
  EXPECT_EQ(loaded->attr("move_architecture").toStringRef(), "wrn-16-1");

  EXPECT_EQ(LoadModel(TempDir() + "/missing.pt").status().code(), absl::StatusCode::kNotFound);
  std::ofstream(TempDir() + "/garbage.pt") << "not a zip archive";
  auto garbage = LoadModel(TempDir() + "/garbage.pt");
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.status().message().find("garbage.pt"), std::string::npos);
}

TEST(ModelTest, PredictProbabilitiesBatchesAndRestoresMode) {
  auto model = CreateModel(ModelSpec{});
  model->train();
  at::Tensor x = torch::rand({10, 3, 20, 20});
  auto p = PredictProbabilities(*model, x, /*batch_size=*/3);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->sizes(), (std::vector<int64_t>{10, 10}));
  EXPECT_TRUE(torch::allclose(p->sum(1), torch::ones({10}), 1e-5, 1e-5));
  EXPECT_TRUE(model->is_training());
  EXPECT_EQ(PredictProbabilities(*model, torch::rand({3, 4})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ModelTest, BadSpecsAreInvalidArgument) {
  EXPECT_EQ(ParseModelSpec("resnet50").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelSpec("wrn-15-1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelSpec("cnn-wx").status().code(), absl::StatusCode::kInvalidArgument);
  ModelSpec spec;
  spec.num_classes = 1;
  auto m = CreateModel(spec);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("num_classes"), std::string::npos);
}

}  // namespace
}  // namespace move
