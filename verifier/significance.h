// Hypothesis tests of MOVE's verification step (paper 000, Sec. 4.3; 001, Eq. 5-6).
//
//   // scores of suspect and benign reference on the same m styled images
//   absl::StatusOr<PairedTestResult> r = OneSidedPairedTTest(suspect, reference, 0.01);
//   if (r->reject) { ... claim: mu_S > mu_B ... }
//
// p-values are also kept as log10 so that overwhelming evidence (p < 1e-308) does not
// underflow to 0. No result is ever NaN: degenerate cases are decided explicitly and say so.
#ifndef MOVE_VERIFIER_SIGNIFICANCE_H_
#define MOVE_VERIFIER_SIGNIFICANCE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace move::verifier_internal {

struct PairedTestResult {
  // Number of pairs m.
  int64_t m = 0;
  // delta_mu = mean(suspect - reference): the paper's "confidence".
  double delta_mu = 0;
  // Standard deviation of the differences (m - 1 denominator).
  double sd = 0;
  // t statistic (delta_mu / (sd / sqrt(m))); 0 when sd is 0.
  double t = 0;
  // One-sided p-value of H0: mu_S <= mu_B against H1: mu_S > mu_B, and its log10.
  double p_value = 1;
  double log10_p_value = 0;
  // Two-sided (1 - alpha) confidence interval of delta_mu and the one-sided lower bound.
  double ci_low = 0, ci_high = 0, lower_bound = 0;
  double alpha = 0.01;
  // p < alpha.
  bool reject = false;
  // Which test produced p: "paired t-test" or, when all differences are equal (zero
  // variance), "sign test (zero variance)": p = 2^-m if they are all positive, else 1.
  std::string method;
};

// One-sided paired t-test (Student's t with m - 1 degrees of freedom, Boost.Math).
// kInvalidArgument if the spans differ in length, m < 2, a score is not finite, or alpha is
// not in (0, 1).
absl::StatusOr<PairedTestResult> OneSidedPairedTTest(absl::Span<const double> suspect,
                                                     absl::Span<const double> reference,
                                                     double alpha);

// Model-level test: is the suspect's mean score above what independent models reach?
//
// The paired test above asks whether the suspect scores higher than ONE benign reference on
// the same samples; with m = 100 samples even a small systematic difference between two
// unrelated models is "significant", so it cannot by itself tell a stolen model from an
// independent one that happens to score a little higher (measured in the red-team harness:
// another architecture and a style-robust benign model were flagged at p 1e-6). This test
// takes the model, not the sample, as the unit: given the mean scores of n >= 2 held-out
// benign models on the same samples (the reference and the calibration models, stored in the
// bundle), it is the one-sided prediction-interval t-test
//   t = (suspect_mean - mean(benign)) / (sd(benign) sqrt(1 + 1/n)),  df = n - 1,
// exact when benign mean scores are normal and the suspect, were it independent, would be
// one more draw from them. Few benign models give few degrees of freedom: evidence must then
// be large to count, which is the honest price of a small calibration set.
struct ModelLevelTestResult {
  int n = 0;                   // benign models
  double benign_mean = 0;      // their mean score
  double benign_sd = 0;        // their standard deviation (n - 1 denominator)
  double suspect_mean = 0;
  double t = 0;
  double p_value = 1, log10_p_value = 0;
  bool reject = false;
  // "prediction-interval t-test", or "degenerate (benign models score identically)" when
  // their sd is 0: then nothing is claimed (p = 1).
  std::string method;
};
// kInvalidArgument for fewer than 2 benign means, a non-finite value or alpha outside (0, 1).
absl::StatusOr<ModelLevelTestResult> ModelLevelTest(double suspect_mean, absl::Span<const double> benign_means,
                                                    double alpha);

// log10 of the upper tail P(T > t) of Student's t with `df` degrees of freedom, accurate
// far below the smallest double (e.g. t = 1e4, df = 9 gives about -32).
double Log10StudentTUpperTail(double t, double df);

// Theorem 1 of paper 000: the smallest m (>= 2) with
//   sqrt(m - 1) (1 - a1 - a2) > t_{1-alpha, m-1} sqrt(a1 (1 - a1) + a2 (1 - a2)),
// i.e. the number of verification samples that lets a meta-classifier with Type-I error a1
// and Type-II error a2 reject H0 at level alpha. kFailedPrecondition when a1 + a2 >= 1 (the
// classifier is no better than chance, no m suffices); kInvalidArgument for errors outside
// [0, 1] or alpha outside (0, 1).
absl::StatusOr<int64_t> MinimumSamples(double type1_error, double type2_error, double alpha);

// The reference implementation's report, for comparison with published numbers only: `draws`
// random subsets of `m` pairs (seeded), a two-sided Welch t-test on each, the harmonic mean of
// their p-values and the mean delta_mu. Not the paper's test; not used for decisions.
struct ReferenceCompatibleReport {
  int draws = 0;
  int64_t m = 0;
  double harmonic_mean_p = 1;
  double mean_delta_mu = 0;
};
absl::StatusOr<ReferenceCompatibleReport> ReferenceCompatibleTest(absl::Span<const double> suspect,
                                                                  absl::Span<const double> reference,
                                                                  int draws, int64_t m, uint64_t seed);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_SIGNIFICANCE_H_
