#include "verifier/blackbox_features.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace move::verifier_internal {
namespace {

TEST(BlackBoxFeaturesTest, AugmentationsMatchAHandComputation) {
  // One 1 x 3 x 4 image with values 1..12.
  at::Tensor x = torch::arange(1, 13, torch::kFloat32).reshape({1, 1, 3, 4});
  auto a = AugmentFive(x, 1);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->sizes(), (std::vector<int64_t>{5, 1, 1, 3, 4}));
  EXPECT_TRUE(torch::equal((*a)[0][0][0], x[0][0]));
  EXPECT_TRUE(torch::equal((*a)[1][0][0], torch::tensor({{4, 3, 2, 1}, {8, 7, 6, 5}, {12, 11, 10, 9}}, torch::kFloat32)));
  // Bottom-right: content moves down one row and right one column, zeros fill in.
  EXPECT_TRUE(torch::equal((*a)[2][0][0], torch::tensor({{0, 0, 0, 0}, {0, 1, 2, 3}, {0, 5, 6, 7}}, torch::kFloat32)));
  EXPECT_TRUE(torch::equal((*a)[3][0][0], torch::tensor({{0, 1, 2, 3}, {0, 5, 6, 7}, {0, 9, 10, 11}}, torch::kFloat32)));
  EXPECT_TRUE(torch::equal((*a)[4][0][0], torch::tensor({{0, 0, 0, 0}, {1, 2, 3, 4}, {5, 6, 7, 8}}, torch::kFloat32)));
}

TEST(BlackBoxFeaturesTest, DifferencesAreConcatenatedPerAugmentation) {
  // 5 augmentations x 2 samples x 3 classes.
  at::Tensor styled = torch::rand({5, 2, 3});
  at::Tensor clean = torch::rand({5, 2, 3});
  auto f = ProbabilityDifferences(styled, clean);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->sizes(), (std::vector<int64_t>{2, 15}));
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 5; ++k) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_FLOAT_EQ((*f)[n][k * 3 + c].item<float>(), styled[k][n][c].item<float>() - clean[k][n][c].item<float>());
      }
    }
  }
}

TEST(BlackBoxFeaturesTest, StyleContrastMatchesAHandComputation) {
  // 2 samples, 3 classes, 2 decoys. Sample 0 (label 2): the secret style gets 0.9 under every
  // augmentation, the decoys 0.3 and 0.5: (1 + 0.9 - 0.4) / 2 = 0.75. Sample 1 (label 0): the
  // secret 0.2, the decoys 0.6 and 0.8 under the identity only (else 0.2): mean decoy
  // (0.6 + 0.8 + 8 x 0.2) / 10 = 0.3, score (1 + 0.2 - 0.3) / 2 = 0.45.
  at::Tensor secret = torch::zeros({5, 2, 3});
  at::Tensor decoys = torch::zeros({2, 5, 2, 3});
  for (int k = 0; k < 5; ++k) {
    secret[k][0][2] = 0.9;
    secret[k][1][0] = 0.2;
    decoys[0][k][0][2] = 0.3;
    decoys[1][k][0][2] = 0.5;
    decoys[0][k][1][0] = k == 0 ? 0.6 : 0.2;
    decoys[1][k][1][0] = k == 0 ? 0.8 : 0.2;
  }
  auto s = StyleContrastScores(secret, decoys, torch::tensor({2, 0}, torch::kInt64));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->sizes(), (std::vector<int64_t>{2}));
  EXPECT_NEAR((*s)[0].item<float>(), 0.75, 1e-6);
  EXPECT_NEAR((*s)[1].item<float>(), 0.45, 1e-6);
  // Treating the secret style like the decoys scores exactly 0.5, whatever the accuracy: a
  // style-robust model is not rewarded for being robust.
  auto same = StyleContrastScores(secret, torch::stack({secret, secret}), torch::tensor({2, 0}, torch::kInt64));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_NEAR((*same)[0].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR((*same)[1].item<float>(), 0.5, 1e-6);
}

TEST(BlackBoxFeaturesTest, StyleContrastRefusesShapesThatDoNotFit) {
  const at::Tensor labels = torch::tensor({0, 1}, torch::kInt64);
  EXPECT_EQ(StyleContrastScores(torch::zeros({4, 2, 3}), torch::zeros({1, 4, 2, 3}), labels).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StyleContrastScores(torch::zeros({5, 2, 3}), torch::zeros({1, 5, 3, 3}), labels).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StyleContrastScores(torch::zeros({5, 2, 3}), torch::zeros({0, 5, 2, 3}), labels).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StyleContrastScores(torch::zeros({5, 2, 3}), torch::zeros({1, 5, 2, 3}), torch::tensor({0, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StyleContrastScores(torch::zeros({5, 2, 3}), torch::zeros({1, 5, 2, 3}), torch::tensor({0})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BlackBoxFeaturesTest, QuantisationGivesEightBitLevels) {
  at::Tensor x = torch::tensor({0.0f, 0.5f, 1.0f, 0.00196f, 0.998f});
  at::Tensor q = Quantize8Bit(x);
  EXPECT_TRUE(torch::equal(q.mul(255).round(), q.mul(255)));
  EXPECT_FLOAT_EQ(q[1].item<float>(), 128.0f / 255.0f);
  EXPECT_FLOAT_EQ(q[3].item<float>(), 0.0f);
}

TEST(BlackBoxFeaturesTest, BadInputsAreRefused) {
  EXPECT_EQ(AugmentFive(torch::zeros({1, 1, 8, 8}), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AugmentFive(torch::zeros({1, 1, 8, 8}), 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AugmentFive(torch::zeros({8, 8}), 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProbabilityDifferences(torch::zeros({4, 2, 3}), torch::zeros({4, 2, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProbabilityDifferences(torch::zeros({5, 2, 3}), torch::zeros({5, 2, 4})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace move::verifier_internal
