// The quick red-team configuration end to end: every attack, both verification modes, the
// tables and pictures, and the model cache (a second run trains nothing and reproduces every
// figure).
#include "redteam/harness.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "sdk/runtime.h"

namespace move::redteam {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(HarnessTest, WilsonIntervalMatchesHandValues) {
  auto [lo, hi] = WilsonInterval(0, 20);
  EXPECT_DOUBLE_EQ(lo, 0.0);
  EXPECT_NEAR(hi, 0.1611, 1e-4);  // 3.8415 / (20 + 3.8415)
  auto [lo2, hi2] = WilsonInterval(5, 10);
  EXPECT_NEAR(lo2, 0.2366, 1e-4);
  EXPECT_NEAR(hi2, 0.7634, 1e-4);
}

TEST(HarnessTest, QuickConfigurationRunsEveryAttackAndReusesItsCache) {
  ASSERT_TRUE(SetNumThreads(2).ok());
  HarnessConfig c = QuickConfig();
  const std::string tmp = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  c.cache_dir = tmp + "/cache";
  c.out_dir = tmp + "/out";
  c.show_progress = false;
  absl::StatusOr<HarnessResult> r = RunHarness(c);
  ASSERT_TRUE(r.ok()) << r.status();
  // source + 7 stealing + 3 stronger query students + 2 leaked-data + 3 multi-stage + 4
  // adaptive + 4 independent + 3 rival-vendor / appearance- / style-augmented independent + 3
  // control + 2 longer-trained independent rows.
  ASSERT_EQ(r->rows.size(), 32u);
  EXPECT_EQ(r->rows[8].name, "label-query (4 epochs)");
  EXPECT_GT(r->models_trained, 20);
  const HarnessRow& victim = r->rows[0];
  EXPECT_EQ(victim.group, "source");
  EXPECT_TRUE(victim.whitebox.examined && victim.blackbox.examined && victim.sequential.examined);
  // The victim carries the feature: strong black-box evidence even at this scale.
  EXPECT_LT(victim.blackbox.log10_p, -2.0);
  // A bundle whose soundness check failed (likely with models this small) never claims theft.
  // The verdict rule: the paired test (with the soundness and range checks) and the
  // model-level test against the bundle's held-out benign models.
  EXPECT_TRUE(victim.blackbox.model_level_tested);
  if (r->blackbox_sound) EXPECT_TRUE(victim.blackbox.paired_flagged);
  for (const HarnessRow& row : r->rows) {
    for (const MethodResult* m : {&row.whitebox, &row.blackbox}) {
      if (m->examined) EXPECT_EQ(m->flagged, m->paired_flagged && m->model_level_reject) << row.name;
    }
  }
  int independents = 0, not_covered = 0;
  for (const HarnessRow& row : r->rows) {
    if (!r->whitebox_sound) EXPECT_FALSE(row.whitebox.flagged) << row.name;
    if (!r->blackbox_sound) EXPECT_FALSE(row.blackbox.flagged || row.sequential.flagged) << row.name;
    EXPECT_GT(row.clean_accuracy, 0.0) << row.name;
    EXPECT_TRUE(row.blackbox.examined) << row.name;
    EXPECT_TRUE(std::filesystem::exists(row.model_path)) << row.name;
    if (!row.stolen) ++independents;
    if (!row.whitebox.examined) {
      ++not_covered;
      EXPECT_EQ(row.whitebox.note, "architecture not covered") << row.name;
    }
  }
  EXPECT_EQ(independents, 12);
  int robust = 0;
  for (const HarnessRow& row : r->rows) {
    for (const char* kind : {"rival vendor's MOVE model (unseen style)", "appearance-augmented", "style-augmented"}) {
      if (row.name.find(kind) != std::string::npos) {
        ++robust;
        EXPECT_FALSE(row.stolen) << row.name;
        EXPECT_FALSE(row.combined.flagged) << row.name;  // a style-specific line clears them
      }
    }
  }
  EXPECT_EQ(robust, 3);
  // The fingerprint line and the combined verdict, on every row.
  EXPECT_TRUE(r->fingerprint_built);
  EXPECT_GT(r->fingerprint_helper_models, 10);
  // Piracy helpers: 4 students of the recipe's length + 1 trained longer, on the query pool.
  EXPECT_EQ(r->fingerprint_encoder_piracy, 5);
  EXPECT_EQ(r->fingerprint_encoder_independents, 4);
  ASSERT_EQ(r->uap_fooling_rates.size(), 1u);
  EXPECT_GT(r->uap_fooling_rates[0], 0.3);
  EXPECT_LT(r->fingerprint_victim_log10_p, -2.0);
  for (const HarnessRow& row : r->rows) {
    ASSERT_TRUE(row.fingerprint.examined && row.fingerprint_sequential.examined && row.combined.examined) << row.name;
    EXPECT_EQ(row.fingerprint.queries, c.fingerprints * 2 * c.fingerprint_options.points_per_fingerprint) << row.name;
    EXPECT_LE(row.fingerprint_sequential.queries, c.fingerprint_sequential_max_queries) << row.name;
    EXPECT_TRUE(row.fingerprint.model_level_tested) << row.name;
    EXPECT_GE(row.fingerprint.clean_agreement, 0.0) << row.name;
    EXPECT_LE(row.fingerprint.perturbed_agreement, 1.0) << row.name;
    if (row.name == "victim (source)") {
      EXPECT_DOUBLE_EQ(row.fingerprint.clean_agreement, 1.0);
      EXPECT_DOUBLE_EQ(row.fingerprint.perturbed_agreement, 1.0);
    }
    if (row.fingerprint.examined) {
      EXPECT_EQ(row.fingerprint.flagged, row.fingerprint.paired_flagged && row.fingerprint.model_level_reject) << row.name;
    }
    if (!r->fingerprint_sound) EXPECT_FALSE(row.fingerprint.flagged) << row.name;
    // Holm never claims theft that no line's own p supports at alpha.
    if (row.combined.flagged) {
      EXPECT_FALSE(row.combined.decided_by.empty()) << row.name;
      EXPECT_LE(row.combined.log10_p, std::log10(c.alpha) + 1e-9) << row.name;
    }
    EXPECT_GE(row.combined.queries, row.blackbox.queries + row.fingerprint.queries + row.label_agreement.queries)
        << row.name;
    // Label agreement: every row, the rule of both tests, nothing claimed from an unsound line.
    ASSERT_TRUE(row.label_agreement.examined) << row.name;
    EXPECT_TRUE(row.label_agreement.model_level_tested) << row.name;
    EXPECT_EQ(row.label_agreement.flagged, row.label_agreement.paired_flagged && row.label_agreement.model_level_reject)
        << row.name;
    if (!r->label_agreement_sound) {
      EXPECT_FALSE(row.label_agreement.flagged) << row.name;
    }
    if (row.name == "victim (source)") {
      EXPECT_GE(row.label_agreement.suspect_mean, 0.99);
    }
  }
  EXPECT_TRUE(r->label_agreement_built);
  EXPECT_GE(r->label_agreement_benign_models, 3);
  EXPECT_EQ(not_covered, 2);  // the wider net and the other architecture
  // Outputs.
  const std::string md = Read(c.out_dir + "/results.md");
  for (const HarnessRow& row : r->rows) EXPECT_NE(md.find(row.name), std::string::npos) << row.name;
  EXPECT_NE(md.find("| independent |"), std::string::npos);
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(Read(c.out_dir + "/results.json"), &json).ok());
  EXPECT_EQ(json.fields().at("suspects").list_value().values_size(), 32);
  EXPECT_EQ(json.fields().at("blackbox_false_positives").struct_value().fields().at("examined").number_value(), 12);
  EXPECT_EQ(json.fields().at("combined_false_positives").struct_value().fields().at("examined").number_value(), 12);
  EXPECT_TRUE(json.fields().at("fingerprint_query_pool").bool_value());
  EXPECT_NE(md.find("FP agreement clean / UAP"), std::string::npos);
  EXPECT_NE(md.find("### UAP fingerprint and combined verdict"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/reports/logit_query.combined.json"));
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/reports/logit_query.label-agreement.transcript.jsonl"));
  EXPECT_EQ(json.fields().at("label_agreement_false_positives").struct_value().fields().at("examined").number_value(), 12);
  EXPECT_NE(md.find("LA agreement"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/reports/logit_query.fingerprint.transcript.jsonl"));
  for (const char* png : {"/scores_whitebox.png", "/scores_blackbox.png"}) {
    EXPECT_GT(std::filesystem::file_size(c.out_dir + png), 100u) << png;
  }
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/reports/logit_query.blackbox.json"));
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/reports/logit_query.sequential.transcript.jsonl"));

  // Second run: everything from the cache, every figure the same.
  absl::StatusOr<HarnessResult> again = RunHarness(c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->models_trained, 0);
  ASSERT_EQ(again->rows.size(), r->rows.size());
  for (size_t i = 0; i < r->rows.size(); ++i) {
    const HarnessRow &a = r->rows[i], &b = again->rows[i];
    EXPECT_TRUE(b.from_cache) << b.name;
    EXPECT_EQ(a.model_key, b.model_key) << a.name;
    EXPECT_EQ(a.clean_accuracy, b.clean_accuracy) << a.name;
    EXPECT_EQ(a.whitebox.log10_p, b.whitebox.log10_p) << a.name;
    EXPECT_EQ(a.blackbox.log10_p, b.blackbox.log10_p) << a.name;
    EXPECT_EQ(a.sequential.queries, b.sequential.queries) << a.name;
    EXPECT_EQ(a.fingerprint.log10_p, b.fingerprint.log10_p) << a.name;
    EXPECT_EQ(a.label_agreement.log10_p, b.label_agreement.log10_p) << a.name;
    EXPECT_EQ(a.combined.log10_p, b.combined.log10_p) << a.name;
  }
}

}  // namespace
}  // namespace move::redteam
