#include "verifier/sequential.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace move::verifier_internal {
namespace {

// Streams of paired differences under H0 (mean <= 0): the share of streams that EVER reject
// (looking after every pair, up to 500 pairs) must stay below alpha.
double FalseRejectionRate(double mean, double spread, int streams, double alpha) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> u(-spread, spread);
  int rejected = 0;
  for (int s = 0; s < streams; ++s) {
    BettingTest t(alpha);
    for (int i = 0; i < 500; ++i) {
      double d = std::clamp(mean + u(rng), -1.0, 1.0);
      EXPECT_TRUE(t.Add(d).ok());
      if (t.reject()) {
        ++rejected;
        break;
      }
    }
  }
  return static_cast<double>(rejected) / streams;
}

TEST(BettingTestTest, ErrorControlUnderTheNullWithContinuousMonitoring) {
  // Mean exactly 0, wide spread: the hardest null case.
  const double rate = FalseRejectionRate(0.0, 1.0, 2000, 0.05);
  EXPECT_LE(rate, 0.05 + 3 * std::sqrt(0.05 * 0.95 / 2000)) << rate;
  // Scores as of an independent model: both near 0, tiny noise.
  EXPECT_LE(FalseRejectionRate(0.0, 0.02, 2000, 0.01), 0.01 + 3 * std::sqrt(0.01 * 0.99 / 2000));
  // Suspect below the reference: essentially never.
  EXPECT_LE(FalseRejectionRate(-0.2, 0.5, 1000, 0.01), 0.002);
}

TEST(BettingTestTest, StopsQuicklyOnStrongEvidence) {
  BettingTest t(0.01);
  int n = 0;
  while (!t.reject() && n < 100) {
    ASSERT_TRUE(t.Add(0.8).ok());
    ++n;
  }
  EXPECT_TRUE(t.reject());
  EXPECT_LE(n, 12);  // wealth of lambda 0.95 grows 1.76x per pair: 1/alpha = 100 after 9 pairs (mixture: a few more)
  EXPECT_LT(t.p_value(), 0.01);
  EXPECT_NEAR(t.log10_p_value(), std::log10(t.p_value()), 1e-9);
}

TEST(BettingTestTest, PValueIsTheInverseOfTheRunningMaximumAndNeverUnderflows) {
  BettingTest t(0.01);
  ASSERT_TRUE(t.Add(1.0).ok());
  // One pair of +1: mixture wealth = mean(1 + lambda) over 0.05..0.95 = 1.5.
  EXPECT_NEAR(t.log10_wealth(), std::log10(1.5), 1e-12);
  EXPECT_NEAR(t.p_value(), 1 / 1.5, 1e-12);
  ASSERT_TRUE(t.Add(-1.0).ok());
  EXPECT_NEAR(t.p_value(), 1 / 1.5, 1e-12);  // the maximum is kept
  BettingTest big(0.01);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(big.Add(1.0).ok());
  EXPECT_LT(big.log10_p_value(), -1000);
  EXPECT_TRUE(std::isfinite(big.log10_p_value()));
}

TEST(BettingTestTest, RefusesDifferencesOutsideTheRange) {
  BettingTest t(0.01);
  EXPECT_EQ(t.Add(1.5).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Add(NAN).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.n(), 0);
}

}  // namespace
}  // namespace move::verifier_internal
