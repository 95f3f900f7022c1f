#include "verifier/meta_classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "gtest/gtest.h"

namespace move::verifier_internal {
namespace {

// Sign features where class 1 flips a block of coordinates with probability 0.8.
std::pair<at::Tensor, at::Tensor> Synthetic(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor x = torch::randint(0, 2, {n, 64}, gen).to(torch::kFloat32) * 2 - 1;
  at::Tensor y = torch::arange(n, torch::kInt64) % 2;
  at::Tensor flip = torch::rand({n, 16}, gen).lt(0.8).logical_and(y.unsqueeze(1).eq(1));
  x.narrow(1, 0, 16).copy_(torch::where(flip, torch::ones({n, 16}), x.narrow(1, 0, 16)));
  return {x, y};
}

TEST(MetaClassifierTest, LearnsAndGeneralises) {
  auto [x, y] = Synthetic(400, 1);
  MetaClassifierOptions o;
  o.epochs = 30;
  o.seed = 3;
  auto c = MetaClassifier::Train(x, y, o);
  ASSERT_TRUE(c.ok()) << c.status();
  auto [xt, yt] = Synthetic(400, 2);
  auto s = c->Score(xt);
  ASSERT_TRUE(s.ok());
  ClassifierErrors e = MeasureErrors(*s, yt);
  // Chance is 0.5; the Bayes error of this task is about 0.04.
  EXPECT_LT(e.type1, 0.2);
  EXPECT_LT(e.type2, 0.2);
  EXPECT_EQ(e.positives, 200);
}

TEST(MetaClassifierTest, StateRoundTripScoresIdentically) {
  auto [x, y] = Synthetic(100, 1);
  MetaClassifierOptions o;
  o.epochs = 3;
  auto c = MetaClassifier::Train(x, y, o);
  auto restored = MetaClassifier::FromState(c->State());
  ASSERT_TRUE(restored.ok());
  EXPECT_TRUE(torch::equal(*c->Score(x), *restored->Score(x)));
  // Deterministic for a seed.
  auto again = MetaClassifier::Train(x, y, o);
  EXPECT_TRUE(torch::equal(*c->Score(x), *again->Score(x)));
  auto state = c->State();
  state.erase("std");
  EXPECT_EQ(MetaClassifier::FromState(state).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(c->Score(torch::zeros({2, 5})).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetaClassifierTest, NormalisationIsAppliedWhenScoring) {
  // Scaling raw features must not change scores: L2 normalisation is part of the classifier.
  auto [x, y] = Synthetic(100, 1);
  MetaClassifierOptions o;
  o.epochs = 3;
  auto c = MetaClassifier::Train(x, y, o);
  EXPECT_TRUE(torch::allclose(*c->Score(x), *c->Score(x * 7.5), 1e-5, 1e-6));
}

TEST(MetaClassifierTest, OneClassIsRefused) {
  at::Tensor x = torch::rand({10, 4});
  EXPECT_EQ(MetaClassifier::Train(x, torch::zeros({10}, torch::kInt64), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace move::verifier_internal
