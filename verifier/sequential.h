// An anytime-valid one-sided test on paired score differences (testing by betting).
//
// Each pair gives d = score(suspect) - score(reference) in [-1, 1]. Under H0 (the suspect's
// mean score is at most the reference's), every wealth process W_t = prod_i (1 + lambda d_i)
// with a fixed lambda in [0, 1) is a non-negative supermartingale, and so is their average
// over a grid of lambdas (a mixture). Ville's inequality gives P(sup_t W_t >= 1/alpha) <= alpha:
// the verifier may look after every pair and stop as soon as W_t >= 1/alpha, and
// p_t = min(1, 1 / max_{s<=t} W_s) is a valid p-value at any stopping time.
//
//   BettingTest test(0.01);
//   for (...) { test.Add(s - r); if (test.reject()) break; }
//   test.p_value(), test.log10_p_value()
#ifndef MOVE_VERIFIER_SEQUENTIAL_H_
#define MOVE_VERIFIER_SEQUENTIAL_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace move::verifier_internal {

class BettingTest {
 public:
  // Lambdas 0.05, 0.10, ..., 0.95 (19 bets), mixed with equal weights.
  explicit BettingTest(double alpha);

  // Adds one paired difference; kInvalidArgument outside [-1, 1] or not finite.
  absl::Status Add(double difference);

  int64_t n() const { return n_; }
  // log10 of the mixture wealth now, and of its running maximum.
  double log10_wealth() const;
  double log10_max_wealth() const { return log10_max_wealth_; }
  // Anytime-valid p-value min(1, 1 / max wealth) and its log10 (never underflows).
  double p_value() const;
  double log10_p_value() const;
  // max wealth >= 1 / alpha.
  bool reject() const;
  double alpha() const { return alpha_; }

 private:
  double alpha_;
  std::vector<double> lambdas_;
  std::vector<double> log_wealth_;  // natural log, per lambda
  double log10_max_wealth_ = 0;
  int64_t n_ = 0;
};

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_SEQUENTIAL_H_
