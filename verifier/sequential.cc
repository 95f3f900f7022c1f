#include "verifier/sequential.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace move::verifier_internal {

BettingTest::BettingTest(double alpha) : alpha_(alpha) {
  for (int i = 1; i <= 19; ++i) lambdas_.push_back(0.05 * i);
  log_wealth_.assign(lambdas_.size(), 0.0);
}

absl::Status BettingTest::Add(double d) {
  if (!std::isfinite(d) || d < -1 || d > 1) {
    return absl::InvalidArgumentError(absl::StrCat("paired difference must be in [-1, 1], got ", d));
  }
  for (size_t i = 0; i < lambdas_.size(); ++i) log_wealth_[i] += std::log1p(lambdas_[i] * d);
  ++n_;
  log10_max_wealth_ = std::max(log10_max_wealth_, log10_wealth());
  return absl::OkStatus();
}

double BettingTest::log10_wealth() const {
  // log of the mean of exp(log_wealth), computed stably.
  const double top = *std::max_element(log_wealth_.begin(), log_wealth_.end());
  double sum = 0;
  for (double lw : log_wealth_) sum += std::exp(lw - top);
  return (top + std::log(sum / log_wealth_.size())) / std::log(10.0);
}

double BettingTest::log10_p_value() const { return -std::max(0.0, log10_max_wealth_); }

double BettingTest::p_value() const { return std::pow(10.0, log10_p_value()); }

bool BettingTest::reject() const { return log10_max_wealth_ >= -std::log10(alpha_); }

}  // namespace move::verifier_internal
