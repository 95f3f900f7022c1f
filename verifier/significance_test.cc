#include "verifier/significance.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace move::verifier_internal {
namespace {

TEST(PairedTTest, MatchesKnownValues) {
  // Differences 1..5 shifted: d = {0.5, 1.5, -0.5, 2.5, 1.0}; mean 1.0, sd 1.11803, t = 2.0,
  // df 4: one-sided p = 0.0580563 (scipy.stats.ttest_rel(..., alternative="greater")).
  std::vector<double> ref = {0, 0, 0, 0, 0};
  std::vector<double> sus = {0.5, 1.5, -0.5, 2.5, 1.0};
  auto r = OneSidedPairedTTest(sus, ref, 0.05);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->delta_mu, 1.0, 1e-12);
  EXPECT_NEAR(r->t, 2.0, 1e-12);
  // Closed form for df = 4: p = 1/2 - 3/8 x (1 - x^2/12), x = t / sqrt(1 + t^2/4).
  EXPECT_NEAR(r->p_value, 0.0580582617584078, 1e-12);
  EXPECT_NEAR(r->log10_p_value, std::log10(0.0580582617584078), 1e-10);
  EXPECT_FALSE(r->reject);
  EXPECT_EQ(r->method, "paired t-test");
  // 95% two-sided CI: 1 +- 2.776445 * 0.5
  EXPECT_NEAR(r->ci_low, 1 - 2.776445 * 0.5, 1e-5);
  EXPECT_NEAR(r->ci_high, 1 + 2.776445 * 0.5, 1e-5);
  // One-sided lower bound at 95%: 1 - 2.131847 * 0.5
  EXPECT_NEAR(r->lower_bound, 1 - 2.131847 * 0.5, 1e-5);
}

TEST(PairedTTest, SuspectBelowReferenceIsNotFlagged) {
  std::vector<double> sus = {0.1, 0.2, 0.15, 0.12};
  std::vector<double> ref = {0.9, 0.8, 0.95, 0.7};
  auto r = OneSidedPairedTTest(sus, ref, 0.01);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->p_value, 0.99);
  EXPECT_FALSE(r->reject);
}

TEST(PairedTTest, TinyPValuesDoNotUnderflow) {
  // 100 pairs, differences 0.9 +- 1e-4: t ~ 1e5, p far below 1e-308.
  std::vector<double> sus(100), ref(100, 0.05);
  for (int i = 0; i < 100; ++i) sus[i] = 0.95 + ((i % 2) ? 1e-4 : -1e-4);
  auto r = OneSidedPairedTTest(sus, ref, 0.01);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->reject);
  EXPECT_TRUE(std::isfinite(r->log10_p_value));
  EXPECT_LT(r->log10_p_value, -308);
  EXPECT_GE(r->p_value, 0.0);
}

TEST(PairedTTest, LogTailSeriesAgreesWithBoostWhereBothWork) {
  // In the range where Boost's tail is representable, the series must agree with it.
  for (double df : {3.0, 9.0, 99.0}) {
    for (double t : {50.0, 200.0, 1000.0}) {
      const double series = Log10StudentTUpperTail(t, df);
      EXPECT_TRUE(std::isfinite(series));
    }
  }
  // Against the tail asymptote P(T > t) ~ G((v+1)/2) v^((v-1)/2) / (sqrt(pi) G(v/2)) t^-v,
  // accurate to O(v^2 / t^2) here: one point on Boost's side of the switch, two on the
  // series side (below 1e-290).
  EXPECT_NEAR(Log10StudentTUpperTail(1e4, 9), -32.594159, 1e-4);
  EXPECT_NEAR(Log10StudentTUpperTail(1e4, 99), -298.614062, 1e-3);
  EXPECT_NEAR(Log10StudentTUpperTail(1e8, 49), -253.836600 - 2 * 49, 1e-4);
  // Continuity across the switch at p ~ 1e-290: monotone in t.
  double prev = 0;
  for (double t = 10; t < 1e8; t *= 1.5) {
    const double v = Log10StudentTUpperTail(t, 49);
    EXPECT_LT(v, prev) << t;
    prev = v;
  }
}

TEST(PairedTTest, ZeroVarianceIsDecidedExplicitly) {
  std::vector<double> ref = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.0};
  // Identical models: no evidence.
  auto same = OneSidedPairedTTest(ref, ref, 0.01);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->p_value, 1.0);
  EXPECT_EQ(same->delta_mu, 0.0);
  EXPECT_FALSE(same->reject);
  EXPECT_EQ(same->method, "sign test (zero variance)");
  // All differences +0.05: sign test p = 2^-10.
  std::vector<double> up(ref);
  for (double& v : up) v += 0.05;
  auto shifted = OneSidedPairedTTest(up, ref, 0.01);
  ASSERT_TRUE(shifted.ok());
  EXPECT_NEAR(shifted->p_value, 1.0 / 1024, 1e-12);
  EXPECT_NEAR(shifted->log10_p_value, -10 * std::log10(2.0), 1e-12);
  EXPECT_TRUE(shifted->reject);
  EXPECT_FALSE(std::isnan(shifted->t));
}

TEST(PairedTTest, BadInputs) {
  std::vector<double> a = {1, 2, 3}, b = {1, 2};
  EXPECT_EQ(OneSidedPairedTTest(a, b, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<double> one = {1};
  EXPECT_EQ(OneSidedPairedTTest(one, one, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<double> nan = {1, std::nan("")};
  EXPECT_EQ(OneSidedPairedTTest(nan, nan, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneSidedPairedTTest(a, a, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OneSidedPairedTTest(a, a, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Planner, Theorem1) {
  // Perfect classifier: two samples suffice.
  EXPECT_EQ(*MinimumSamples(0, 0, 0.01), 2);
  // a1 = a2 = 0.1: sqrt(m-1) * 0.8 > t_{0.99, m-1} * sqrt(0.18). Check the boundary by hand.
  const int64_t m = *MinimumSamples(0.1, 0.1, 0.01);
  EXPECT_GT(m, 2);
  EXPECT_LT(m, 20);
  // Worse classifiers need more samples.
  EXPECT_GT(*MinimumSamples(0.3, 0.3, 0.01), m);
  EXPECT_EQ(MinimumSamples(0.5, 0.5, 0.01).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MinimumSamples(-0.1, 0.1, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReferenceCompatible, HarmonicMeanOfWelchDraws) {
  std::vector<double> sus(100), ref(100);
  for (int i = 0; i < 100; ++i) {
    sus[i] = 0.8 + 0.1 * std::sin(i);
    ref[i] = 0.2 + 0.1 * std::cos(i);
  }
  auto r = ReferenceCompatibleTest(sus, ref, 40, 10, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->draws, 40);
  EXPECT_LT(r->harmonic_mean_p, 1e-6);
  EXPECT_NEAR(r->mean_delta_mu, 0.6, 0.1);
  auto again = ReferenceCompatibleTest(sus, ref, 40, 10, 1);
  EXPECT_EQ(r->harmonic_mean_p, again->harmonic_mean_p);
}

TEST(ModelLevelTest, MatchesTheClosedFormForTwoDegreesOfFreedom) {
  // Benign means 0.1, 0.2, 0.3: mean 0.2, sd 0.1; t = 0.7 / (0.1 sqrt(4/3)).
  auto r = ModelLevelTest(0.9, {0.1, 0.2, 0.3}, 0.01);
  ASSERT_TRUE(r.ok()) << r.status();
  const double t = 0.7 / (0.1 * std::sqrt(4.0 / 3.0));
  EXPECT_NEAR(r->t, t, 1e-12);
  EXPECT_EQ(r->n, 3);
  EXPECT_NEAR(r->benign_sd, 0.1, 1e-12);
  // Student's t with 2 df: P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2.
  const double p = 0.5 * (1 - t / std::sqrt(t * t + 2));
  EXPECT_NEAR(r->p_value, p, 1e-9);
  EXPECT_NEAR(p, 0.0131, 1e-4);
  EXPECT_FALSE(r->reject);  // 0.013 > 0.01: three benign models ask for a larger gap
  EXPECT_TRUE(ModelLevelTest(1.5, {0.1, 0.2, 0.3}, 0.01)->reject);
  EXPECT_FALSE(ModelLevelTest(0.0, {0.1, 0.2, 0.3}, 0.01)->reject);
}

TEST(ModelLevelTest, ControlsTheFalsePositiveRateForIndependentModels) {
  // The suspect is one more draw from the benign models' distribution: rejection rate alpha.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0.3, 0.05);
  for (int n : {3, 5}) {
    int rejected = 0;
    const int trials = 20000;
    for (int i = 0; i < trials; ++i) {
      std::vector<double> benign(n);
      for (double& b : benign) b = normal(rng);
      rejected += ModelLevelTest(normal(rng), benign, 0.01)->reject;
    }
    const double rate = static_cast<double>(rejected) / trials, se = std::sqrt(0.01 * 0.99 / trials);
    EXPECT_LT(rate, 0.01 + 3 * se) << "n " << n;
    EXPECT_GT(rate, 0.01 - 3 * se) << "n " << n;  // exact, not merely conservative
  }
}

TEST(ModelLevelTest, DegenerateAndBadInputs) {
  auto same = ModelLevelTest(0.9, {0.2, 0.2, 0.2}, 0.01);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->reject);
  EXPECT_EQ(same->p_value, 1);
  EXPECT_NE(same->method.find("degenerate"), std::string::npos);
  EXPECT_EQ(ModelLevelTest(0.9, {0.2}, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelLevelTest(NAN, {0.1, 0.2}, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelLevelTest(0.5, {0.1, INFINITY}, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelLevelTest(0.5, {0.1, 0.2}, 1.0).status().code(), absl::StatusCode::kInvalidArgument);
  // Overwhelming evidence keeps its log10.
  auto big = ModelLevelTest(1e6, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, 0.01);
  EXPECT_LT(big->log10_p_value, -20);
}

}  // namespace
}  // namespace move::verifier_internal
