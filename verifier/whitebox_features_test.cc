#include "verifier/whitebox_features.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"

namespace move::verifier_internal {
namespace {

ModelSpec Spec(const std::string& name, int64_t in_channels = 3) {
  ModelSpec s = *ParseModelSpec(name);
  s.in_channels = in_channels;
  s.num_classes = 10;
  s.seed = 5;
  return s;
}

TEST(WhiteBoxTest, DimensionsMatchTheReference) {
  EXPECT_EQ(WhiteBoxExtractor::Create(Spec("wrn-16-1"))->dim(), 22192);
  EXPECT_EQ(WhiteBoxExtractor::Create(Spec("resnet18"))->dim(), 16586);
}

// A model whose BatchNorm statistics are not the initial ones, so eval mode matters.
torch::jit::Module Trained(const ModelSpec& spec) {
  torch::jit::Module m = *CreateModel(spec);
  Dataset d;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  d.images = torch::rand({32, spec.in_channels, 16, 16}, gen);
  d.labels = torch::randint(0, 10, {32}, gen, torch::TensorOptions().dtype(torch::kInt64));
  d.num_classes = 10;
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 8;
  o.show_progress = false;
  EXPECT_TRUE(TrainModel(m, d, o).ok());
  return m;
}

class SignAgreementTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SignAgreementTest, BatchedAgreesWithOneByOne) {
  ASSERT_TRUE(SetNumThreads(2).ok());
  ModelSpec spec = Spec(GetParam());
  torch::jit::Module m = Trained(spec);
  auto e = WhiteBoxExtractor::Create(spec);
  ASSERT_TRUE(e.ok()) << e.status();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  at::Tensor x = torch::rand({12, 3, 16, 16}, gen);
  at::Tensor y = torch::randint(0, 10, {12}, gen, torch::TensorOptions().dtype(torch::kInt64));
  auto fast = e->Extract(m, x, y, /*batch_size=*/5);
  ASSERT_TRUE(fast.ok()) << fast.status();
  auto slow = e->ExtractOneByOne(m, x, y);
  ASSERT_TRUE(slow.ok()) << slow.status();
  ASSERT_EQ(fast->sizes(), slow->sizes());
  EXPECT_EQ(fast->size(1), e->dim());
  const double agreement = fast->eq(*slow).to(torch::kFloat64).mean().item<double>();
  EXPECT_GE(agreement, 0.999) << GetParam();
  // Features are signs, and not all the same.
  EXPECT_TRUE(fast->abs().le(1).all().item<bool>());
  EXPECT_GT(fast->eq(1).to(torch::kFloat64).mean().item<double>(), 0.05);
  EXPECT_GT(fast->eq(-1).to(torch::kFloat64).mean().item<double>(), 0.05);
}

INSTANTIATE_TEST_SUITE_P(Zoo, SignAgreementTest, ::testing::Values("cnn", "wrn-16-1", "resnet18", "vgg11"));

TEST(WhiteBoxTest, ForeignArchitectureIsRefused) {
  auto e = WhiteBoxExtractor::Create(Spec("cnn"));
  torch::jit::Module other = *CreateModel(Spec("wrn-16-1"));
  auto r = e->Extract(other, torch::rand({2, 3, 16, 16}), torch::zeros({2}, torch::kInt64));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(WhiteBoxTest, RenamedParametersMatchByOrderAndShape) {
  // A model with the zoo's architecture but other parameter names (as a PyTorch user might
  // define it) is matched by order and shape and gives the same features.
  ModelSpec spec = Spec("cnn");
  torch::jit::Module zoo = Trained(spec);
  torch::jit::Module renamed(c10::QualifiedName({"__torch__", "user", "Net"}));
  renamed.register_attribute("training", c10::BoolType::get(), false);
  renamed.register_attribute("bn_momentum", c10::FloatType::get(), 0.1);
  int i = 0;
  for (const auto& p : zoo.named_parameters()) renamed.register_parameter("p" + std::to_string(i++), p.value.clone(), false);
  i = 0;
  for (const auto& b : zoo.named_buffers()) renamed.register_buffer("b" + std::to_string(i++), b.value.clone());
  auto e = WhiteBoxExtractor::Create(spec);
  auto matched = MatchTensors(e->graph(), renamed);
  ASSERT_TRUE(matched.ok()) << matched.status();
  EXPECT_EQ(matched->size(), zoo.named_parameters().size() + zoo.named_buffers().size());
}

}  // namespace
}  // namespace move::verifier_internal
