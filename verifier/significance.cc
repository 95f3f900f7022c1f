#include "verifier/significance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <boost/math/distributions/students_t.hpp>
#include <boost/math/special_functions/beta.hpp>

#include "absl/strings/str_cat.h"

namespace move::verifier_internal {
namespace {

constexpr double kLn10 = 2.302585092994045684;

absl::Status CheckInputs(absl::Span<const double> a, absl::Span<const double> b) {
  if (a.size() != b.size()) {
    return absl::InvalidArgumentError(absl::StrCat("scores: ", a.size(), " suspect scores but ", b.size(),
                                                   " reference scores; the test needs pairs"));
  }
  if (a.size() < 2) return absl::InvalidArgumentError(absl::StrCat("m: need at least 2 pairs, got ", a.size()));
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      return absl::InvalidArgumentError(absl::StrCat("scores: pair ", i, " is not finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

double Log10StudentTUpperTail(double t, double df) {
  if (t <= 0) {
    boost::math::students_t dist(df);
    return std::log10(boost::math::cdf(boost::math::complement(dist, t)));
  }
  boost::math::students_t dist(df);
  const double p = boost::math::cdf(boost::math::complement(dist, t));
  if (p > 1e-290) return std::log10(p);
  // P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2). For small x:
  // I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * sum_n [(a+b)_n / (a+1)_n] x^n.
  const double a = df / 2, b = 0.5;
  const double x = df / (df + t * t);
  double term = 1, sum = 1;
  for (int n = 0; n < 10000; ++n) {
    term *= (a + b + n) / (a + 1 + n) * x;
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  const double log_beta = std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
  const double ln_i = a * std::log(x) + b * std::log1p(-x) - std::log(a) - log_beta + std::log(sum);
  return (ln_i - std::log(2.0)) / kLn10;
}

absl::StatusOr<PairedTestResult> OneSidedPairedTTest(absl::Span<const double> suspect,
                                                     absl::Span<const double> reference, double alpha) {
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError(absl::StrCat("alpha: must be in (0, 1), got ", alpha));
  if (absl::Status s = CheckInputs(suspect, reference); !s.ok()) return s;
  PairedTestResult r;
  r.m = static_cast<int64_t>(suspect.size());
  r.alpha = alpha;
  std::vector<double> d(suspect.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = suspect[i] - reference[i];
  const double mean = std::accumulate(d.begin(), d.end(), 0.0) / d.size();
  double ss = 0;
  for (double v : d) ss += (v - mean) * (v - mean);
  r.delta_mu = mean;
  r.sd = std::sqrt(ss / (d.size() - 1));
  const double df = static_cast<double>(r.m - 1);
  boost::math::students_t dist(df);
  const double t_crit_one = boost::math::quantile(boost::math::complement(dist, alpha));
  const double t_crit_two = boost::math::quantile(boost::math::complement(dist, alpha / 2));
  const double se = r.sd / std::sqrt(static_cast<double>(r.m));
  // Differences equal to within rounding count as zero variance.
  const double scale = std::max(1.0, std::abs(mean));
  if (r.sd <= 1e-12 * scale) {
    // All differences equal: the t statistic is undefined (0/0 or d/0). Decide with the
    // exact sign test instead, which needs no variance: P(all m differences > 0 | H0) = 2^-m.
    r.method = "sign test (zero variance)";
    r.sd = 0;
    r.t = 0;
    r.ci_low = r.ci_high = r.lower_bound = mean;
    if (mean > 0) {
      r.log10_p_value = -static_cast<double>(r.m) * std::log10(2.0);
      r.p_value = std::pow(2.0, -static_cast<double>(r.m));
    } else {
      r.log10_p_value = 0;
      r.p_value = 1;
    }
  } else {
    r.method = "paired t-test";
    r.t = mean / se;
    r.log10_p_value = Log10StudentTUpperTail(r.t, df);
    r.p_value = std::pow(10.0, r.log10_p_value);  // may be 0 when below 1e-308; log10 keeps it
    r.ci_low = mean - t_crit_two * se;
    r.ci_high = mean + t_crit_two * se;
    r.lower_bound = mean - t_crit_one * se;
  }
  r.reject = r.log10_p_value < std::log10(alpha);
  return r;
}

absl::StatusOr<ModelLevelTestResult> ModelLevelTest(double suspect_mean, absl::Span<const double> benign_means,
                                                    double alpha) {
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError(absl::StrCat("alpha: must be in (0, 1), got ", alpha));
  if (benign_means.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat("benign_means: need at least 2 benign models, got ", benign_means.size()));
  }
  if (!std::isfinite(suspect_mean)) return absl::InvalidArgumentError("suspect_mean: not finite");
  for (double v : benign_means) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("benign_means: a value is not finite");
  }
  ModelLevelTestResult r;
  r.n = static_cast<int>(benign_means.size());
  r.suspect_mean = suspect_mean;
  r.benign_mean = std::accumulate(benign_means.begin(), benign_means.end(), 0.0) / r.n;
  double ss = 0;
  for (double v : benign_means) ss += (v - r.benign_mean) * (v - r.benign_mean);
  r.benign_sd = std::sqrt(ss / (r.n - 1));
  if (r.benign_sd <= 1e-12 * std::max(1.0, std::abs(r.benign_mean))) {
    r.method = "degenerate (benign models score identically)";
    r.benign_sd = 0;
    return r;
  }
  r.method = "prediction-interval t-test";
  r.t = (suspect_mean - r.benign_mean) / (r.benign_sd * std::sqrt(1.0 + 1.0 / r.n));
  r.log10_p_value = Log10StudentTUpperTail(r.t, r.n - 1);
  r.p_value = std::pow(10.0, r.log10_p_value);
  r.reject = r.log10_p_value < std::log10(alpha);
  return r;
}

absl::StatusOr<int64_t> MinimumSamples(double a1, double a2, double alpha) {
  if (!(a1 >= 0 && a1 <= 1) || !(a2 >= 0 && a2 <= 1)) {
    return absl::InvalidArgumentError("type1_error and type2_error: must be in [0, 1]");
  }
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError("alpha: must be in (0, 1)");
  const double gap = 1 - a1 - a2;
  if (gap <= 0) {
    return absl::FailedPreconditionError(absl::StrCat("meta-classifier errors (Type-I ", a1, ", Type-II ", a2,
                                                      ") sum to >= 1: no number of samples can reach alpha"));
  }
  const double spread = std::sqrt(a1 * (1 - a1) + a2 * (1 - a2));
  for (int64_t m = 2; m <= 10000000; m = m < 1000 ? m + 1 : m + m / 100) {
    boost::math::students_t dist(static_cast<double>(m - 1));
    const double t = boost::math::quantile(boost::math::complement(dist, alpha));
    if (std::sqrt(static_cast<double>(m - 1)) * gap > t * spread) return m;
  }
  return absl::FailedPreconditionError("meta-classifier too close to chance: more than 10^7 samples needed");
}

absl::StatusOr<ReferenceCompatibleReport> ReferenceCompatibleTest(absl::Span<const double> suspect,
                                                                  absl::Span<const double> reference,
                                                                  int draws, int64_t m, uint64_t seed) {
  if (absl::Status s = CheckInputs(suspect, reference); !s.ok()) return s;
  if (draws < 1) return absl::InvalidArgumentError("draws: must be >= 1");
  if (m < 2 || m > static_cast<int64_t>(suspect.size())) {
    return absl::InvalidArgumentError(absl::StrCat("m: must be in [2, ", suspect.size(), "]"));
  }
  std::mt19937_64 rng(seed);
  std::vector<size_t> idx(suspect.size());
  ReferenceCompatibleReport out;
  out.draws = draws;
  out.m = m;
  double inv_sum = 0, delta_sum = 0;
  for (int k = 0; k < draws; ++k) {
    std::iota(idx.begin(), idx.end(), 0);
    std::shuffle(idx.begin(), idx.end(), rng);
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < m; ++i) { ma += suspect[idx[i]]; mb += reference[idx[i]]; }
    ma /= m;
    mb /= m;
    double va = 0, vb = 0;
    for (int64_t i = 0; i < m; ++i) {
      va += (suspect[idx[i]] - ma) * (suspect[idx[i]] - ma);
      vb += (reference[idx[i]] - mb) * (reference[idx[i]] - mb);
    }
    va /= (m - 1);
    vb /= (m - 1);
    double p;
    const double se2 = va / m + vb / m;
    if (se2 <= 0) {
      p = ma == mb ? 1.0 : 0.0;
    } else {
      const double t = (ma - mb) / std::sqrt(se2);
      const double df = se2 * se2 / ((va / m) * (va / m) / (m - 1) + (vb / m) * (vb / m) / (m - 1));
      boost::math::students_t dist(df);
      p = 2 * boost::math::cdf(boost::math::complement(dist, std::abs(t)));
    }
    inv_sum += 1.0 / std::max(p, std::numeric_limits<double>::min());
    delta_sum += ma - mb;
  }
  out.harmonic_mean_p = draws / inv_sum;
  out.mean_delta_mu = delta_sum / draws;
  return out;
}

}  // namespace move::verifier_internal
