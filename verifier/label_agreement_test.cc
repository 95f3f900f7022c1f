// The label-agreement line on hand-made models whose every answer is known: each image
// carries its index in its first pixel and each model is a lookup table of labels, so the
// agreements, the tests' inputs and the verdicts can be worked out by hand.
#include "sdk/label_agreement.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/model.h"

namespace move {
namespace {

constexpr int64_t kImages = 200, kClasses = 10, kErrors = 60;

// Image i: 3 x 4 x 4, first pixel i / 255, the rest a pattern (so images are not blank).
at::Tensor PoolImages() {
  at::Tensor x = torch::rand({kImages, 3, 4, 4}, at::make_generator<at::CPUGeneratorImpl>(3));
  for (int64_t i = 0; i < kImages; ++i) x[i][0][0][0] = static_cast<float>(i) / 255.0f;
  return x;
}
at::Tensor Truth() { return torch::arange(kImages, torch::kInt64).remainder(kClasses); }

// A model that answers table[i] for image i (one-hot logits).
torch::jit::Module TableModel(const at::Tensor& table) {
  torch::jit::Module m("TableModel");
  m.register_buffer("table", table.to(torch::kInt64).contiguous());
  m.register_attribute("k", c10::IntType::get(), kClasses);
  m.define(R"(
    def forward(self, x):
        idx = torch.round(x[:, 0, 0, 0] * 255.0).long()
        lab = self.table[idx]
        return torch.one_hot(lab, self.k).float() * 10.0
  )");
  m.eval();
  return m;
}

// The victim: wrong (truth + 1) on images 0..kErrors-1, right elsewhere.
at::Tensor VictimTable() {
  at::Tensor t = Truth().clone();
  t.narrow(0, 0, kErrors).add_(1).remainder_(kClasses);
  return t;
}

// A model that agrees with the victim's wrong label on `agree` error images (every
// `stride`-th one, shifted by `offset`), answers truth + 2 on the other errors, and is right
// on `right_share` of the other images.
at::Tensor ModelTable(int agree, int offset, double right_share = 1.0) {
  const at::Tensor victim = VictimTable();
  at::Tensor t = Truth().clone();
  for (int64_t i = 0; i < kErrors; ++i) t[i] = (Truth()[i].item<int64_t>() + 2) % kClasses;
  for (int j = 0; j < agree; ++j) {
    const int64_t i = (offset + j * 7) % kErrors;  // 7 is coprime with 60: distinct images
    t[i] = victim[i];
  }
  const int64_t wrong = static_cast<int64_t>((1.0 - right_share) * (kImages - kErrors));
  for (int64_t i = kErrors; i < kErrors + wrong; ++i) t[i] = (Truth()[i].item<int64_t>() + 3) % kClasses;
  return t;
}

std::string TempPath(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return (std::filesystem::path(t != nullptr ? t : "/tmp") / name).string();
}

struct Fixture {
  Dataset pool;
  torch::jit::Module victim;
  LabelAgreementBuildInputs in;
  // The kinds the table models stand for: the reference, plain benign models, and last a
  // rival vendor's model and an appearance-augmented one (the null population's kinds).
  static std::string KindOf(size_t j, size_t n) {
    if (j == 0) return "reference";
    if (n >= 3 && j == n - 2) return "rival-vendor calibration";
    if (n >= 3 && j == n - 1) return "appearance-augmented calibration";
    return "calibration";
  }
  Fixture(const std::vector<int>& benign_agreements) {
    pool.images = PoolImages();
    pool.labels = Truth();
    pool.num_classes = kClasses;
    victim = TableModel(VictimTable());
    in.victim = &victim;
    in.pool = &pool;
    for (size_t j = 0; j < benign_agreements.size(); ++j) {
      in.benign.push_back({j == 0 ? "reference" : "calibration", "table",
                           TableModel(ModelTable(benign_agreements[j], static_cast<int>(3 * j))),
                           KindOf(j, benign_agreements.size())});
    }
  }
};

LabelAgreementBuildOptions Quiet() {
  LabelAgreementBuildOptions o;
  o.show_progress = false;
  o.covers = 40;
  return o;
}

// Verifies the suspect answering `table` through a model file channel.
VerificationReport Verify(const LabelAgreementVerifier& v, const at::Tensor& table, const std::string& name,
                          LabelAgreementVerifyOptions o = {}) {
  OpenedBundle b;
  *b.contents.mutable_label_agreement() = v;
  const std::string path = TempPath(name + ".pt");
  std::filesystem::remove(path);
  TableModel(table).save(path);
  absl::StatusOr<std::unique_ptr<SuspectChannel>> ch = OpenModelChannel(path);
  EXPECT_TRUE(ch.ok()) << ch.status();
  o.show_progress = false;
  absl::StatusOr<VerificationReport> r = VerifyLabelAgreement(b, **ch, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : VerificationReport();
}

TEST(LabelAgreementTest, BuildKeepsTheVictimsErrorsAndEveryBenignAgreement) {
  Fixture f({18, 20, 16, 19, 17});
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->method(), "label-agreement-v2");  // the rarity-weighted statistic, by default
  EXPECT_EQ(v->parameters().at("model_level_statistic"), "rarity-weighted agreement");
  EXPECT_EQ(v->pool_images(), kImages);
  EXPECT_DOUBLE_EQ(v->victim_error_rate(), static_cast<double>(kErrors) / kImages);
  const at::Tensor err = *FromTensorProto(v->error_images());
  const at::Tensor victim = *FromTensorProto(v->victim_labels());
  ASSERT_EQ(err.size(0), kErrors);  // fewer than the 800 asked for: all of them
  EXPECT_EQ((*FromTensorProto(v->cover_images())).size(0), 40);
  // Every error image is one the victim gets wrong, with the victim's label.
  for (int64_t i = 0; i < kErrors; ++i) {
    const int64_t id = std::lround(err[i][0][0][0].item<float>() * 255);
    EXPECT_LT(id, kErrors);
    EXPECT_EQ(victim[i].item<int64_t>(), VictimTable()[id].item<int64_t>());
  }
  ASSERT_EQ(v->benign_scores_size(), 5);
  const std::vector<int> expected = {18, 20, 16, 19, 17};
  for (int j = 0; j < 5; ++j) {
    double sum = 0;
    for (float s : v->benign_scores(j).scores()) sum += s;
    EXPECT_DOUBLE_EQ(sum, expected[j]) << j;
  }
  EXPECT_TRUE(v->sound()) << v->unsound_reason();
  EXPECT_EQ(v->type1_error(), 0);
  EXPECT_EQ(v->calibration_log10_p_size(), 4);
  EXPECT_EQ(v->models_size(), 5);
  // Deterministic: the same inputs and seed give the same verifier.
  absl::StatusOr<LabelAgreementVerifier> again = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sha256(), v->sha256());
}

TEST(LabelAgreementTest, FlagsACopyOfTheMistakesAndClearsAnIndependentModel) {
  Fixture f({18, 20, 16, 19, 17, 18, 21});
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->sound());

  const VerificationReport stolen = Verify(*v, ModelTable(52, 1), "student");
  EXPECT_EQ(stolen.mode(), "label-agreement");
  EXPECT_EQ(stolen.verdict(), "stolen");
  EXPECT_EQ(stolen.outcome(), VERDICT_STOLEN);
  EXPECT_EQ(stolen.line(), LINE_LABEL_AGREEMENT);
  EXPECT_EQ(stolen.m(), kErrors);
  EXPECT_EQ(stolen.queries(), kErrors + 40);  // errors and covers
  EXPECT_NEAR(stolen.suspect_mean_score(), 52.0 / kErrors, 1e-9);
  EXPECT_NEAR(stolen.reference_mean_score(), 18.0 / kErrors, 1e-9);
  EXPECT_TRUE(stolen.model_level_tested());
  EXPECT_EQ(stolen.model_level_benign_models(), 7);
  EXPECT_LT(stolen.model_level_log10_p_value(), -2);
  EXPECT_TRUE(stolen.suspect_in_range());
  // The range check reads the covers: both models classify every cover correctly.
  EXPECT_DOUBLE_EQ(stolen.suspect_clean_accuracy(), 1.0);
  EXPECT_DOUBLE_EQ(stolen.reference_clean_accuracy(), 1.0);

  // An independent model that agrees a little more than the reference: the paired test alone
  // might say so; the model-level test keeps it "not stolen".
  const VerificationReport independent = Verify(*v, ModelTable(22, 5), "independent");
  EXPECT_EQ(independent.verdict(), "not stolen");
  EXPECT_EQ(independent.outcome(), VERDICT_NOT_STOLEN);
  EXPECT_FALSE(independent.stolen());
  EXPECT_GT(independent.model_level_p_value(), 0.01);

  // The victim itself agrees everywhere.
  EXPECT_EQ(Verify(*v, VictimTable(), "victim").verdict(), "stolen");
}

// A model that answers the victim's wrong label on the error images `agree` (ids < kErrors),
// truth + 2 on the other error images, and is right elsewhere.
at::Tensor AgreeingOn(const std::vector<int64_t>& agree) {
  at::Tensor t = Truth().clone();
  for (int64_t i = 0; i < kErrors; ++i) t[i] = (Truth()[i].item<int64_t>() + 2) % kClasses;
  for (int64_t i : agree) t[i] = VictimTable()[i];
  return t;
}
std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> r;
  for (int64_t i = from; i < to; ++i) r.push_back(i);
  return r;
}
std::vector<int64_t> Plus(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(LabelAgreementTest, WithoutRivalOrAugmentedCalibrationModelsTheLineClaimsNothing) {
  Fixture f({10, 12, 11, 13, 10});
  for (FingerprintModel& m : f.in.benign) m.kind = "";
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->sound());
  EXPECT_NE(v->unsound_reason().find("no rival-vendor calibration model"), std::string::npos) << v->unsound_reason();
  EXPECT_NE(v->unsound_reason().find("no appearance-augmented calibration model"), std::string::npos);
  f.in.benign[2].kind = "rival";
  EXPECT_EQ(BuildLabelAgreementVerifier(f.in, Quiet()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LabelAgreementTest, MistakesEveryModelMakesCountForNothing) {
  // Every benign model repeats the victim's mistakes 0..19 (the easy ones) and a few of its
  // own: benign model j also repeats 20 + 2j .. 20 + 3j (j + 1 images, overlapping).
  Fixture f({});
  for (int j = 0; j < 5; ++j) {
    f.in.benign.push_back({j == 0 ? "reference" : "calibration", "table",
                           TableModel(AgreeingOn(Plus(Range(0, 20), Range(20 + 2 * j, 21 + 3 * j)))), Fixture::KindOf(j, 5)});
  }
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok()) << v.status();
  // By hand: on the 20 common mistakes every other benign model agrees, so w = 0 there. A
  // suspect that repeats exactly them scores 0 (its plain share is 20 / 60)...
  const VerificationReport common = Verify(*v, AgreeingOn(Range(0, 20)), "common");
  EXPECT_EQ(common.model_level_statistic(), "rarity-weighted agreement");
  EXPECT_NEAR(common.suspect_mean_score(), 20.0 / kErrors, 1e-12);
  EXPECT_NEAR(common.model_level_suspect_score(), 0.0, 1e-12);
  EXPECT_FALSE(common.stolen());
  // ...the victim scores exactly 1...
  EXPECT_NEAR(Verify(*v, VictimTable(), "victim").model_level_suspect_score(), 1.0, 1e-12);
  // ...and a suspect that also repeats mistakes 40..59, which no benign model makes (w = 1),
  // scores 20 / sum(w). The weights of mistakes 20..34 come from the 5 benign models' own sets
  // (j = 0: {20}, 1: {22, 23}, 2: {24..26}, 3: {26..29}, 4: {28..32}); mistakes 33..59: w = 1.
  std::vector<double> w(kErrors, 1.0);
  const std::vector<std::vector<int64_t>> own = {{20}, {22, 23}, {24, 25, 26}, {26, 27, 28, 29}, {28, 29, 30, 31, 32}};
  for (int64_t i = 0; i < 20; ++i) w[i] = 0;
  for (const auto& s : own) {
    for (int64_t i : s) w[i] -= 0.2;
  }
  double sum_w = 0;
  for (double x : w) sum_w += x;
  const VerificationReport rare = Verify(*v, AgreeingOn(Plus(Range(0, 20), Range(40, 60))), "rare");
  EXPECT_NEAR(rare.model_level_suspect_score(), 20.0 / sum_w, 1e-9);
  // Benign model 0's own statistic uses weights from models 1..4 only: its mistake 20 has
  // w = 1 there (no other model makes it), so it scores 1 / (sum over the others' weights).
  std::vector<double> w0(kErrors, 1.0);
  for (int64_t i = 0; i < 20; ++i) w0[i] = 0;
  for (size_t j = 1; j < own.size(); ++j) {
    for (int64_t i : own[j]) w0[i] -= 0.25;
  }
  double sum_w0 = 0;
  for (double x : w0) sum_w0 += x;
  ASSERT_EQ(rare.benign_mean_scores_size(), 5);
  EXPECT_NEAR(rare.benign_mean_scores(0), 1.0 / sum_w0, 1e-9);
  EXPECT_EQ(rare.verdict(), "stolen");
}

TEST(LabelAgreementTest, ThePlainShareStaysSelectable) {
  Fixture f({18, 20, 16, 19, 17, 18, 21});
  LabelAgreementBuildOptions o = Quiet();
  o.statistic = LabelAgreementStatistic::kMean;
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, o);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->method(), "label-agreement-v1");
  const VerificationReport r = Verify(*v, ModelTable(52, 1), "student-plain");
  EXPECT_EQ(r.model_level_statistic(), "mean score");
  EXPECT_NEAR(r.model_level_suspect_score(), 52.0 / kErrors, 1e-9);
  const std::vector<int> expected = {18, 20, 16, 19, 17, 18, 21};
  ASSERT_EQ(r.benign_mean_scores_size(), 7);
  for (int j = 0; j < 7; ++j) EXPECT_NEAR(r.benign_mean_scores(j), expected[j] / 60.0, 1e-9) << j;
  EXPECT_EQ(r.verdict(), "stolen");
  // An unknown method is refused, not guessed.
  OpenedBundle b;
  *b.contents.mutable_label_agreement() = *v;
  b.contents.mutable_label_agreement()->set_method("label-agreement-v9");
  const std::string path = TempPath("unknown-method.pt");
  std::filesystem::remove(path);
  TableModel(VictimTable()).save(path);
  std::unique_ptr<SuspectChannel> ch = *OpenModelChannel(path);
  LabelAgreementVerifyOptions quiet;
  quiet.show_progress = false;
  EXPECT_EQ(VerifyLabelAgreement(b, *ch, quiet).status().code(), absl::StatusCode::kDataLoss);
}

TEST(LabelAgreementTest, ACalibrationModelThatCopiesTheMistakesMakesTheLineUnsound) {
  // The fourth calibration model repeats 50 of the victim's 60 mistakes: the bundle's own
  // check flags it, and no suspect is then called stolen by this line.
  Fixture f({18, 20, 16, 19, 50, 17, 18});
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->sound());
  EXPECT_NE(v->unsound_reason().find("calibration model 3"), std::string::npos) << v->unsound_reason();
  EXPECT_GT(v->type1_error(), 0);
  const VerificationReport r = Verify(*v, ModelTable(58, 0), "student");
  EXPECT_FALSE(r.stolen());
  EXPECT_EQ(r.verdict().rfind("inconclusive", 0), 0u) << r.verdict();
  EXPECT_EQ(r.outcome(), VERDICT_INCONCLUSIVE);
  EXPECT_FALSE(r.classifier_sound());
}

TEST(LabelAgreementTest, AWeakSuspectIsOutOfRange) {
  Fixture f({18, 20, 16, 19, 17, 18, 21});
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok());
  // Agrees on most mistakes but is wrong on every cover: below half the reference's accuracy
  // there, so a flag would be outside the soundness check's range.
  const at::Tensor table = ModelTable(55, 0, /*right_share=*/0.0);
  const VerificationReport r = Verify(*v, table, "weak");
  EXPECT_FALSE(r.suspect_in_range());
  EXPECT_FALSE(r.stolen());
  EXPECT_EQ(r.verdict().rfind("inconclusive", 0), 0u) << r.verdict();
}

TEST(LabelAgreementTest, SubsetsBudgetsAndTampering) {
  Fixture f({18, 20, 16, 19, 17});
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(f.in, Quiet());
  ASSERT_TRUE(v.ok());
  LabelAgreementVerifyOptions o;
  o.errors = 30;
  const VerificationReport r = Verify(*v, ModelTable(52, 1), "subset", o);
  EXPECT_EQ(r.m(), 30);
  EXPECT_EQ(r.queries(), 30 + 20);  // covers in the bundle's proportion (40 of 60)
  // The smallest subset still draws two covers.
  LabelAgreementVerifyOptions two;
  two.errors = 2;
  const VerificationReport r2 = Verify(*v, ModelTable(52, 1), "two", two);
  EXPECT_EQ(r2.m(), 2);
  EXPECT_EQ(r2.queries(), 2 + 2);

  OpenedBundle b;
  *b.contents.mutable_label_agreement() = *v;
  const std::string path = TempPath("budget.pt");
  std::filesystem::remove(path);
  TableModel(VictimTable()).save(path);
  std::unique_ptr<SuspectChannel> ch = *OpenModelChannel(path);
  LabelAgreementVerifyOptions tight;
  tight.max_queries = 50;
  tight.show_progress = false;
  EXPECT_EQ(VerifyLabelAgreement(b, *ch, tight).status().code(), absl::StatusCode::kResourceExhausted);
  LabelAgreementVerifyOptions many;
  many.errors = 61;
  many.show_progress = false;
  EXPECT_EQ(VerifyLabelAgreement(b, *ch, many).status().code(), absl::StatusCode::kInvalidArgument);
  LabelAgreementVerifyOptions bad_alpha;
  bad_alpha.alpha = 1;
  EXPECT_EQ(VerifyLabelAgreement(b, *ch, bad_alpha).status().code(), absl::StatusCode::kInvalidArgument);

  // A changed victim label no longer matches the commitment.
  at::Tensor labels = *FromTensorProto(b.contents.label_agreement().victim_labels());
  labels[0] = (labels[0].item<int64_t>() + 1) % kClasses;
  *b.contents.mutable_label_agreement()->mutable_victim_labels() = ToTensorProto(labels);
  EXPECT_EQ(VerifyLabelAgreement(b, *ch, {}).status().code(), absl::StatusCode::kDataLoss);
  OpenedBundle empty;
  EXPECT_EQ(VerifyLabelAgreement(empty, *ch, {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LabelAgreementTest, RejectsBadBuildInputs) {
  Fixture f({18, 20, 16});
  LabelAgreementBuildInputs two = f.in;
  two.benign.pop_back();
  EXPECT_EQ(BuildLabelAgreementVerifier(two, Quiet()).status().code(), absl::StatusCode::kInvalidArgument);
  LabelAgreementBuildInputs none = f.in;
  none.pool = nullptr;
  EXPECT_EQ(BuildLabelAgreementVerifier(none, Quiet()).status().code(), absl::StatusCode::kInvalidArgument);
  LabelAgreementBuildOptions o = Quiet();
  o.errors = 5;
  EXPECT_EQ(BuildLabelAgreementVerifier(f.in, o).status().code(), absl::StatusCode::kInvalidArgument);
  // A victim that makes no mistakes has no error set.
  torch::jit::Module perfect = TableModel(Truth());
  LabelAgreementBuildInputs p = f.in;
  p.victim = &perfect;
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(p, Quiet());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("only 0 errors"), std::string::npos) << v.status();
}

}  // namespace
}  // namespace move
