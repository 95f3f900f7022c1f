#include "tests/report_samples.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "sdk/fingerprint.h"
#include "sdk/ownership.h"

namespace move::testing {
namespace {

void FillCommon(VerificationReport* r, const std::string& hostile) {
  r->set_format("move.report.v1");
  r->set_alpha(0.01);
  r->set_classifier_sound(true);
  r->set_bundle_sha256("3f7a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f");
  r->set_signer_fingerprint("9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d");
  r->set_signer_pinned(true);
  r->set_sdk_version("0.1.0");
  r->set_seed(0);
  r->set_device("cpu");
  r->set_threads(2);
  r->set_bundle_created_at("2026-11-30T09:12:44Z");
  r->set_victim_model_sha256("aa11bb22cc33dd44ee55ff6677889900aa11bb22cc33dd44ee55ff6677889900");
  r->set_started_at("2026-12-06T10:02:11Z");
  r->set_finished_at("2026-12-06T10:03:52Z");
  r->set_suspect_path(hostile);
  r->add_warnings(absl::StrCat("the suspect said: ", hostile));
  for (const char* a : {"move_verify", "--mode=blackbox", "--bundle=case/victim.move", "--report=case/verdict.json"}) {
    r->add_command_line(a);
  }
  r->add_command_line(absl::StrCat("--endpoint=", hostile));
}

// Paired scores: the suspect around `suspect_mean`, the reference around `reference_mean`.
void FillScores(VerificationReport* r, int m, double suspect_mean, double reference_mean, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  double ss = 0, sr = 0;
  for (int i = 0; i < m; ++i) {
    const double s = std::clamp(suspect_mean + 0.12 * u(gen), 0.0, 1.0), q = std::clamp(reference_mean + 0.1 * u(gen), 0.0, 1.0);
    r->add_suspect_scores(s);
    r->add_reference_scores(q);
    ss += s, sr += q;
  }
  r->set_m(m);
  r->set_suspect_mean_score(ss / m);
  r->set_reference_mean_score(sr / m);
  r->set_delta_mu((ss - sr) / m);
  r->set_delta_mu_ci_low(r->delta_mu() - 0.03);
  r->set_delta_mu_ci_high(r->delta_mu() + 0.03);
}

void FillBenign(VerificationReport* r, double centre) {
  const char* kinds[] = {"reference", "calibration", "calibration", "calibration", "rival-vendor calibration",
                         "rival-vendor calibration", "appearance-augmented calibration", "appearance-augmented calibration"};
  const char* archs[] = {"cnn", "cnn", "resnet-mini", "cnn", "cnn", "resnet-mini", "cnn", "resnet-mini"};
  const double offsets[] = {0.00, 0.03, -0.02, 0.05, 0.07, 0.02, 0.08, -0.01};
  for (int i = 0; i < 8; ++i) {
    r->add_benign_mean_scores(centre + offsets[i]);
    r->add_benign_kinds(kinds[i]);
    r->add_benign_architectures(archs[i]);
  }
  r->set_model_level_tested(true);
  r->set_model_level_benign_models(8);
}

}  // namespace

VerificationReport SampleBlackBoxReport(const std::string& hostile) {
  VerificationReport r;
  FillCommon(&r, hostile);
  r.set_mode("blackbox");
  r.set_line(LINE_BLACK_BOX);
  r.set_stolen(true);
  r.set_verdict("stolen");
  r.set_outcome(VERDICT_STOLEN);
  r.set_test("one-sided paired t-test");
  r.set_feature_design("style-contrast");
  r.set_architecture("cnn");
  FillScores(&r, 100, 0.86, 0.21, 7);
  FillBenign(&r, 0.22);
  r.set_p_value(3.2e-41);
  r.set_log10_p_value(std::log10(3.2e-41));
  r.set_model_level_p_value(1.7e-7);
  r.set_model_level_log10_p_value(std::log10(1.7e-7));
  r.set_model_level_t(18.4);
  r.set_model_level_reject(true);
  r.set_classifier_type1_error(0.04);
  r.set_classifier_type2_error(0.11);
  r.set_minimum_m(14);
  r.set_suspect_clean_accuracy(0.81);
  r.set_reference_clean_accuracy(0.79);
  r.set_suspect_in_range(true);
  r.set_min_relative_accuracy(0.5);
  r.set_queries(2100);
  r.set_max_queries(2100);
  r.set_repeat_queries(105);
  r.set_repeat_disagreements(0);
  r.set_repeat_tolerance(0.01);
  r.set_suspect_channel(absl::StrCat("HTTP endpoint ", hostile));
  r.set_transcript_path("case/verdict.json.transcript.jsonl");
  r.set_transcript_sha256("5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f");
  r.set_seconds(101.4);
  return r;
}

VerificationReport SampleWhiteBoxReport(const std::string& hostile) {
  VerificationReport r;
  FillCommon(&r, hostile);
  r.set_mode("whitebox");
  r.set_line(LINE_WHITE_BOX);
  r.set_stolen(false);
  r.set_verdict("not stolen");
  r.set_outcome(VERDICT_NOT_STOLEN);
  r.set_test("one-sided paired t-test");
  r.set_feature_design("gradient-sign");
  r.set_architecture("cnn");
  FillScores(&r, 60, 0.55, 0.48, 11);
  FillBenign(&r, 0.5);
  r.set_p_value(0.004);
  r.set_log10_p_value(std::log10(0.004));
  r.set_model_level_p_value(0.31);
  r.set_model_level_log10_p_value(std::log10(0.31));
  r.set_classifier_type1_error(0.21);
  r.set_classifier_type2_error(0.18);
  r.set_minimum_m(40);
  r.set_suspect_clean_accuracy(0.80);
  r.set_reference_clean_accuracy(0.79);
  r.set_suspect_in_range(true);
  r.set_min_relative_accuracy(0.5);
  r.set_suspect_sha256("0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de");
  r.set_suspect_format("torchscript");
  r.set_seconds(12.2);
  return r;
}

std::string SampleCombinedJson(const std::string& hostile) {
  absl::StatusOr<CombinedVerdict> c = CombineEvidence({SampleBlackBoxReport(hostile), SampleWhiteBoxReport(hostile)}, 0.01);
  if (!c.ok()) return "";
  for (const std::string& a : c->reports(0).command_line()) c->add_command_line(a);
  c->set_started_at("2026-12-06T10:02:11Z");
  c->set_finished_at("2026-12-06T10:03:52Z");
  return CombinedToJson(*c);
}

std::string HostileMarkup(int port) {
  const std::string base = absl::StrCat("http://127.0.0.1:", port);
  return absl::StrCat("\"><img src=\"", base, "/img\"><link rel=stylesheet href=\"", base, "/css\"><script src=\"", base,
                      "/js\"></script><iframe src=\"", base, "/frame\"></iframe><div style=\"background:url(", base,
                      "/bg)\">x</div></pre></details><svg><image href=\"", base, "/svg\"/></svg>'");
}

}  // namespace move::testing
