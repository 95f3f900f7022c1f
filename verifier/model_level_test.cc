// The model-level half of the verdict rule (verifier/ownership_internal.h) on hand-made
// benign score tables: no models needed.
#include <vector>

#include <torch/torch.h>

#include "gtest/gtest.h"
#include "verifier/ownership_internal.h"

namespace move::verifier_internal {
namespace {

google::protobuf::RepeatedPtrField<BenignScores> Table(const std::vector<std::vector<float>>& rows) {
  google::protobuf::RepeatedPtrField<BenignScores> t;
  for (const auto& row : rows) {
    BenignScores* b = t.Add();
    b->set_kind(t.size() == 1 ? "reference" : "calibration");
    for (float x : row) b->add_scores(x);
  }
  return t;
}

TEST(ModelLevel, OverridesAPairedFlagWithinTheBenignSpreadAndKeepsOneAboveIt) {
  // Means over samples {0, 2}: 0.2, 0.3, 0.25, 0.35.
  const auto table = Table({{0.1f, 9.f, 0.3f}, {0.2f, 9.f, 0.4f}, {0.2f, 9.f, 0.3f}, {0.3f, 9.f, 0.4f}});
  VerificationReport within;
  within.set_stolen(true);
  within.set_verdict("stolen");
  within.set_p_value(1e-6);
  ASSERT_TRUE(ApplyModelLevelTest(table, {0, 2}, 0.33, 0.01, &within).ok());
  EXPECT_TRUE(within.model_level_tested());
  EXPECT_EQ(within.model_level_benign_models(), 4);
  ASSERT_EQ(within.benign_mean_scores_size(), 4);
  EXPECT_NEAR(within.benign_mean_scores(0), 0.2, 1e-6);  // sample 1 (9.0) is not used
  EXPECT_NEAR(within.benign_mean_scores(3), 0.35, 1e-6);
  EXPECT_FALSE(within.model_level_reject());
  EXPECT_FALSE(within.stolen());
  EXPECT_EQ(within.outcome(), VERDICT_NOT_STOLEN);
  EXPECT_NE(within.verdict().find("within what independent models reach"), std::string::npos) << within.verdict();

  VerificationReport above;
  above.set_stolen(true);
  above.set_verdict("stolen");
  ASSERT_TRUE(ApplyModelLevelTest(table, {0, 2}, 0.95, 0.01, &above).ok());
  EXPECT_TRUE(above.model_level_reject());
  EXPECT_TRUE(above.stolen());
  EXPECT_EQ(above.verdict(), "stolen");
  EXPECT_LT(above.model_level_log10_p_value(), -2);

  // A paired "not stolen" is never turned into a flag.
  VerificationReport not_flagged;
  ASSERT_TRUE(ApplyModelLevelTest(table, {0, 2}, 0.95, 0.01, &not_flagged).ok());
  EXPECT_FALSE(not_flagged.stolen());
}

// A line whose scores read robustness to appearance as the secret style: the benign
// calibration models sit with the reference, the rival vendor's MOVE model and the
// appearance-augmented model far above. The soundness check must fail, naming the kind.
TEST(Soundness, AStyleRobustCalibrationModelAboveTheBenignSpreadMakesTheLineUnsound) {
  const int64_t n = 40;
  auto around = [&](double mean, uint64_t seed) {
    torch::manual_seed(seed);
    return (torch::randn({n}) * 0.02 + mean).clamp(0, 1);
  };
  const at::Tensor reference = around(0.50, 1);
  google::protobuf::RepeatedPtrField<BenignScores> table;
  AddBenignScores(reference, "reference", "cnn", &table);
  std::vector<CalibrationScores> calibration = {{around(0.50, 2), "calibration", "cnn"},
                                                {around(0.50, 3), "calibration", "cnn"},
                                                {around(0.50, 4), "calibration", "cnn"},
                                                {around(0.50, 5), "calibration", "cnn"},
                                                {around(0.50, 6), "calibration", "cnn"}};
  google::protobuf::RepeatedField<double> log10_p;
  auto sound = CheckSoundness(calibration, reference, 0.01, &table, &log10_p);
  ASSERT_TRUE(sound.ok()) << sound.status();
  EXPECT_EQ(*sound, "");
  EXPECT_EQ(table.size(), 6);
  EXPECT_EQ(log10_p.size(), 5);

  for (const char* kind : {"appearance-augmented calibration", "rival-vendor calibration"}) {
    std::vector<CalibrationScores> with = calibration;
    with.push_back({around(0.90, 7), kind, "cnn-w2"});
    google::protobuf::RepeatedPtrField<BenignScores> t;
    AddBenignScores(reference, "reference", "cnn", &t);
    google::protobuf::RepeatedField<double> lp;
    auto unsound = CheckSoundness(with, reference, 0.01, &t, &lp);
    ASSERT_TRUE(unsound.ok()) << unsound.status();
    EXPECT_NE(unsound->find("calibration model 5 (cnn-w2, " + DescribeCalibrationKind(kind)), std::string::npos)
        << *unsound;
    EXPECT_NE(unsound->find("its mean score"), std::string::npos) << *unsound;
    EXPECT_EQ(unsound->find("not distinctive") != std::string::npos, std::string(kind) == "rival-vendor calibration") << *unsound;
    EXPECT_EQ(t.Get(6).kind(), kind);
    EXPECT_LT(lp.Get(5), -2);
  }
}

TEST(ModelLevel, OldBundlesAndShortTables) {
  VerificationReport r;
  r.set_stolen(true);
  ASSERT_TRUE(ApplyModelLevelTest(Table({}), {0}, 0.9, 0.01, &r).ok());
  EXPECT_FALSE(r.model_level_tested());
  EXPECT_TRUE(r.stolen());
  ASSERT_EQ(r.warnings_size(), 1);
  EXPECT_NE(r.warnings(0).find("skipped"), std::string::npos);
  VerificationReport s;
  EXPECT_EQ(ApplyModelLevelTest(Table({{0.1f}, {0.2f}}), {0, 1}, 0.9, 0.01, &s).code(), absl::StatusCode::kDataLoss);
}

TEST(ModelLevel, LeaveOneOutOnCalibrationModels) {
  const auto table = Table({{0.20f}, {0.30f}, {0.25f}, {0.35f}, {0.95f}});
  double log10_p = 1;
  EXPECT_FALSE(LeaveOneOutModelLevelRejects(table, 1, 0.01, &log10_p));
  EXPECT_LE(log10_p, 0);
  EXPECT_TRUE(LeaveOneOutModelLevelRejects(table, 4, 0.01, &log10_p));  // far above the other four
  EXPECT_LT(log10_p, -2);
  // Fewer than two others: nothing to compare with; the paired test alone decides.
  EXPECT_TRUE(LeaveOneOutModelLevelRejects(Table({{0.2f}, {0.3f}}), 1, 0.01, &log10_p));
  EXPECT_EQ(log10_p, 0);
}

}  // namespace
}  // namespace move::verifier_internal
