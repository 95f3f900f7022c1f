// The legal report: parsing, escaping of hostile strings, self-containment, determinism, and
// the examiner's signature.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "gtest/gtest.h"
#include "sdk/bundle.h"
#include "sdk/fingerprint.h"
#include "sdk/ownership.h"
#include "sdk/report.h"
#include "tests/report_samples.h"

namespace move {
namespace {

using move::testing::HostileMarkup;
using move::testing::SampleBlackBoxReport;
using move::testing::SampleCombinedJson;

std::string TempDir(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(t ? t : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void Write(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

TEST(ParseVerdictJson, SingleAndCombined) {
  const std::string single = ReportToJson(SampleBlackBoxReport("x"));
  absl::StatusOr<CombinedVerdict> a = ParseVerdictJson(single);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->format(), "move.report.v1");
  EXPECT_EQ(a->lines_size(), 0);
  ASSERT_EQ(a->reports_size(), 1);
  EXPECT_TRUE(a->stolen());
  // The single line's p is the larger of its two tests'.
  EXPECT_DOUBLE_EQ(a->p_value(), 1.7e-7);

  absl::StatusOr<CombinedVerdict> b = ParseVerdictJson(SampleCombinedJson("x"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->lines_size(), 2);
  EXPECT_EQ(b->reports_size(), 2);
}

TEST(ParseVerdictJson, RejectsWhatIsNotAVerdict) {
  for (const char* bad : {"", "not json", "[]", "{\"format\": \"move.report.v2\"}", "{\"format\": \"move.report.v1\", \"nope\": 1}",
                          "{\"format\": \"move.combined.v1\"}", "{\"format\": \"move.combined.v1\", \"reports\": 3}"}) {
    absl::StatusOr<CombinedVerdict> v = ParseVerdictJson(bad);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    absl::StatusOr<std::string> h = RenderLegalReportHtml(bad);
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// Edits that would make the page state what its own figures contradict: each is refused, naming
// the problem, both by the parser and by the renderer.
TEST(ParseVerdictJson, RefusesRecordsThatContradictThemselves) {
  using Edit = void (*)(VerificationReport*);
  const std::pair<const char*, Edit> edits[] = {
      {"paired p-value", [](VerificationReport* r) { r->set_p_value(0.3), r->set_log10_p_value(std::log10(0.3)); }},
      {"recorded as not rejecting", [](VerificationReport* r) { r->set_model_level_reject(false); }},
      {"model-level test is recorded", [](VerificationReport* r) {
         r->set_model_level_p_value(0.2), r->set_model_level_log10_p_value(std::log10(0.2));
       }},
      {"soundness", [](VerificationReport* r) { r->set_classifier_sound(false); }},
      {"range check", [](VerificationReport* r) { r->set_suspect_in_range(false); }},
      {"inconsistent answers", [](VerificationReport* r) { r->set_answers_inconsistent(true); }},
      {"the verdict reads", [](VerificationReport* r) { r->set_verdict("not stolen"); }},
      {"the outcome is 'not stolen'", [](VerificationReport* r) { r->set_outcome(VERDICT_NOT_STOLEN); }},
      {"neither 'stolen'", [](VerificationReport* r) { r->set_stolen(false), r->set_verdict("probably fine"); }},
      {"its log10", [](VerificationReport* r) { r->set_log10_p_value(-2); }},
      {"not in [0, 1]", [](VerificationReport* r) { r->set_p_value(-1e-50); }},
      {"alpha", [](VerificationReport* r) { r->set_alpha(0); }},
      {"reference scores", [](VerificationReport* r) { r->add_suspect_scores(0.5); }},
      {"benign models", [](VerificationReport* r) { r->add_benign_mean_scores(0.5); }},
  };
  for (const auto& [needle, edit] : edits) {
    VerificationReport r = SampleBlackBoxReport("x");
    ASSERT_TRUE(ParseVerdictJson(ReportToJson(r)).ok());
    edit(&r);
    absl::StatusOr<CombinedVerdict> v = ParseVerdictJson(ReportToJson(r));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_TRUE(absl::StrContains(v.status().message(), needle)) << needle << ": " << v.status();
    EXPECT_EQ(RenderLegalReportHtml(ReportToJson(r)).status().code(), absl::StatusCode::kInvalidArgument) << needle;
  }

  // A combined verdict: each of its claims is checked against its lines and their reports.
  absl::StatusOr<CombinedVerdict> good = ParseVerdictJson(SampleCombinedJson("x"));
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_TRUE(good->stolen());
  using CEdit = void (*)(CombinedVerdict*);
  const std::pair<const char*, CEdit> cedits[] = {
      {"lines were rejected", [](CombinedVerdict* c) { c->set_stolen(false); }},
      {"decided_by", [](CombinedVerdict* c) { c->set_decided_by("white-box MOVE"); }},
      {"Holm threshold", [](CombinedVerdict* c) { c->mutable_lines(1)->set_holm_threshold(0.5); }},
      {"above its Holm threshold", [](CombinedVerdict* c) {
         for (auto& l : *c->mutable_lines()) l.set_rejected(true);
       }},
      {"smaller than its report", [](CombinedVerdict* c) {
         c->mutable_lines(0)->set_log10_p_value(-100), c->mutable_lines(0)->set_p_value(1e-100);
       }},
      {"marked usable", [](CombinedVerdict* c) {
         c->mutable_reports(0)->set_stolen(false), c->mutable_reports(0)->set_verdict("inconclusive: unsound");
         c->mutable_reports(0)->set_outcome(VERDICT_INCONCLUSIVE), c->mutable_lines(0)->set_outcome(VERDICT_INCONCLUSIVE);
         c->mutable_reports(0)->set_classifier_sound(false);
       }},
      {"although its classifier is sound", [](CombinedVerdict* c) { c->mutable_lines(0)->set_excluded_from_family(true); }},
      {"an unsound line is in Holm's family", [](CombinedVerdict* c) {
         c->mutable_reports(0)->set_stolen(false), c->mutable_reports(0)->set_verdict("inconclusive: unsound");
         c->mutable_reports(0)->set_outcome(VERDICT_INCONCLUSIVE), c->mutable_lines(0)->set_outcome(VERDICT_INCONCLUSIVE);
         c->mutable_reports(0)->set_classifier_sound(false);
         c->mutable_lines(0)->set_usable(false), c->mutable_lines(0)->set_rejected(false);
       }},
      {"the line records 'not stolen'", [](CombinedVerdict* c) { c->mutable_lines(0)->set_outcome(VERDICT_NOT_STOLEN); }},
      {"but its report is", [](CombinedVerdict* c) { c->mutable_lines(0)->set_line(LINE_LABEL_AGREEMENT); }},
      {"deciding lines", [](CombinedVerdict* c) { c->add_decided_by_lines(LINE_FINGERPRINT); }},
      {"the outcome is 'inconclusive'", [](CombinedVerdict* c) { c->set_outcome(VERDICT_INCONCLUSIVE); }},
      {"2 lines but 1 reports", [](CombinedVerdict* c) { c->mutable_reports()->RemoveLast(); }},
      {"line 1", [](CombinedVerdict* c) { c->mutable_reports(0)->set_model_level_reject(false); }},
  };
  for (const auto& [needle, edit] : cedits) {
    CombinedVerdict c = *good;
    edit(&c);
    absl::StatusOr<CombinedVerdict> v = ParseVerdictJson(CombinedToJson(c));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_TRUE(absl::StrContains(v.status().message(), needle)) << needle << ": " << v.status();
  }
}

TEST(ParseVerdictJson, RefusesNonFiniteFigures) {
  std::string json = ReportToJson(SampleBlackBoxReport("x"));
  for (const char* bad : {"\"NaN\"", "\"Infinity\"", "\"-Infinity\""}) {
    std::string j = json;
    const size_t at = j.find("\"delta_mu\":");
    ASSERT_NE(at, std::string::npos);
    const size_t end = j.find_first_of(",}", at);
    j.replace(at, end - at, absl::StrCat("\"delta_mu\":", bad));
    absl::StatusOr<CombinedVerdict> v = ParseVerdictJson(j);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(v.status().message(), "delta_mu is not a finite number")) << v.status();
  }
  VerificationReport r = SampleBlackBoxReport("x");
  r.set_suspect_scores(3, std::nan(""));
  absl::StatusOr<CombinedVerdict> v = ParseVerdictJson(ReportToJson(r));
  EXPECT_TRUE(absl::StrContains(v.status().message(), "suspect_scores[3] is not a finite number")) << v.status();
}

TEST(RenderLegalReportHtml, HostileStringsNeverBecomeMarkup) {
  const std::string hostile = HostileMarkup(9);
  LegalReportOptions o;
  o.examiner = "<b>Examiner</b>";
  o.case_reference = "</title><script>alert(1)</script>";
  absl::StatusOr<std::string> html = RenderLegalReportHtml(SampleCombinedJson(hostile), o);
  ASSERT_TRUE(html.ok()) << html.status();
  const std::string lower = absl::AsciiStrToLower(*html);
  for (const char* banned : {"<script", "<img", "<link", "<iframe", "<image", "<object", "<embed", "src=\"", "href=\"",
                             "src='", "href='", "style=\"", "@import", "<b>examiner"}) {
    EXPECT_FALSE(absl::StrContains(lower, banned)) << banned;
  }
  // The page's own style sheet fetches nothing either.
  const size_t style = lower.find("<style>"), style_end = lower.find("</style>");
  ASSERT_NE(style, std::string::npos);
  EXPECT_EQ(lower.substr(style, style_end - style).find("url("), std::string::npos);
  // The hostile text is there, shown as text.
  EXPECT_TRUE(absl::StrContains(*html, "&lt;img src=&quot;http://127.0.0.1:9/img&quot;&gt;"));
  EXPECT_TRUE(absl::StrContains(*html, "&lt;/title&gt;&lt;script&gt;"));
  // Nothing may be fetched, whatever slipped through.
  EXPECT_TRUE(absl::StrContains(*html, "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:;"));
}

TEST(RenderLegalReportHtml, StatesTheEvidenceAndItsCustody) {
  const std::string json = SampleCombinedJson("http://suspect.example/v1/predict");
  LegalReportOptions o;
  o.examiner = "A. Examiner";
  o.case_reference = "4:26-cv-0012";
  o.verdict_file_name = "verdict.json";
  absl::StatusOr<std::string> html = RenderLegalReportHtml(json, o);
  ASSERT_TRUE(html.ok()) << html.status();
  for (const char* expected :
       {"Finding: Derived from the vendor&#39;s model (stolen)", "Lines of evidence, combined", "Black-box MOVE", "White-box MOVE",
        "Holm", "Model-level test", "Chain of custody", "Limitations", "How to reproduce", "A. Examiner", "4:26-cv-0012",
        // bundle, signer, victim, transcript hashes
        "3f7a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f",
        "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d",
        "aa11bb22cc33dd44ee55ff6677889900aa11bb22cc33dd44ee55ff6677889900",
        "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", "2026-12-06T10:03:52Z",
        // the replay command rebuilt from the recorded command line
        "move_verify --mode=blackbox --bundle=case/victim.move --replay=case/verdict.json.transcript.jsonl --m=100",
        "rival vendor (another secret style)", "appearance-augmented benign", "Type-I 0.04", "<svg"}) {
    EXPECT_TRUE(absl::StrContains(*html, expected)) << expected;
  }
  // The verdict file's own hash is in the custody table.
  absl::StatusOr<std::string> again = RenderLegalReportHtml(json, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*html, *again) << "the same verdict and options must give the same bytes";
}

TEST(RenderLegalReportHtml, NamesTheLabelAgreementLine) {
  VerificationReport r = SampleBlackBoxReport("label");
  r.set_mode("label-agreement");
  r.set_feature_design("label-agreement-v1");
  r.set_suspect_mean_score(0.84);
  r.set_reference_mean_score(0.71);
  r.set_m(800);
  absl::StatusOr<std::string> html = RenderLegalReportHtml(ReportToJson(r), {});
  ASSERT_TRUE(html.ok()) << html.status();
  for (const char* expected : {"Label agreement on the victim", "misclassifies", "84.0%", "71.0%", "of the 800 images"}) {
    EXPECT_TRUE(absl::StrContains(*html, expected)) << expected;
  }
  // A rarity-weighted model-level test is shown as what it compared, with the suspect's
  // weighted value (not its plain share) beside the benign models'.
  r.set_feature_design("label-agreement-v2");
  r.set_model_level_statistic("rarity-weighted agreement");
  r.set_model_level_suspect_score(0.625);
  html = RenderLegalReportHtml(ReportToJson(r), {});
  ASSERT_TRUE(html.ok()) << html.status();
  for (const char* expected : {"Rarity-weighted agreement per model", "suspect&rsquo;s rarity-weighted agreement 0.625",
                               "weighted by how rarely the benign models repeat each mistake",
                               "<th>rarity-weighted agreement</th>"}) {
    EXPECT_TRUE(absl::StrContains(*html, expected)) << expected;
  }
}

TEST(RenderLegalReportHtml, InconclusiveAndNotStolenSayWhy) {
  VerificationReport r = SampleBlackBoxReport("x");
  r.set_stolen(false);
  r.set_verdict("inconclusive: inconsistent answers");
  r.set_outcome(VERDICT_INCONCLUSIVE);
  absl::StatusOr<std::string> html = RenderLegalReportHtml(ReportToJson(r));
  ASSERT_TRUE(html.ok());
  EXPECT_TRUE(absl::StrContains(*html, "Finding: Inconclusive"));
  EXPECT_TRUE(absl::StrContains(*html, "claims nothing: inconclusive: inconsistent answers"));
  r.set_verdict("not stolen");
  r.set_outcome(VERDICT_NOT_STOLEN);
  html = RenderLegalReportHtml(ReportToJson(r));
  ASSERT_TRUE(html.ok());
  EXPECT_TRUE(absl::StrContains(*html, "This is not proof of independence"));
  r.clear_outcome();  // a report written before the enum: read from its text
  html = RenderLegalReportHtml(ReportToJson(r));
  ASSERT_TRUE(html.ok());
  EXPECT_TRUE(absl::StrContains(*html, "This is not proof of independence"));
}

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    Write(dir_ + "/verdict.json", SampleCombinedJson("x"));
    Write(dir_ + "/report.html", "<!DOCTYPE html><p>report</p>");
    absl::StatusOr<SigningKey> k = GenerateSigningKey();
    ASSERT_TRUE(k.ok());
    key_ = *k;
    options_.examiner = "A. Examiner";
    options_.case_reference = "4:26-cv-0012";
  }
  absl::StatusOr<ReportSignature> Sign() {
    return SignReportFiles({{"verdict-json", dir_ + "/verdict.json"}, {"report-html", dir_ + "/report.html"}}, key_, options_);
  }
  std::string dir_;
  SigningKey key_;
  LegalReportOptions options_;
};

TEST_F(SignatureTest, RoundTripThroughJson) {
  absl::StatusOr<ReportSignature> g = Sign();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->files_size(), 2);
  EXPECT_EQ(g->files(1).name(), "report.html");
  EXPECT_EQ(g->signer_fingerprint(), KeyFingerprint(key_.public_key));
  absl::StatusOr<ReportSignature> back = ParseReportSignatureJson(ReportSignatureToJson(*g));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(CheckReportSignature(*back, dir_).ok());
  EXPECT_TRUE(CheckReportSignature(*back, dir_, key_.public_key).ok());
}

TEST_F(SignatureTest, ChangedFileIsDataLoss) {
  absl::StatusOr<ReportSignature> g = Sign();
  ASSERT_TRUE(g.ok());
  Write(dir_ + "/report.html", "<!DOCTYPE html><p>report, edited</p>");
  absl::Status s = CheckReportSignature(*g, dir_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "report.html")) << s;
  std::filesystem::remove(dir_ + "/report.html");
  EXPECT_EQ(CheckReportSignature(*g, dir_).code(), absl::StatusCode::kNotFound);
}

TEST_F(SignatureTest, AlteredRecordIsUnauthenticated) {
  absl::StatusOr<ReportSignature> g = Sign();
  ASSERT_TRUE(g.ok());
  for (int field = 0; field < 4; ++field) {
    ReportSignature t = *g;
    if (field == 0) t.set_examiner("Someone Else");
    if (field == 1) t.set_signed_at("2020-01-01T00:00:00Z");
    if (field == 2) t.mutable_files(0)->set_sha256(std::string(64, '0'));
    if (field == 3) t.mutable_files()->RemoveLast();
    EXPECT_EQ(CheckReportSignature(t, dir_).code(), absl::StatusCode::kUnauthenticated) << field;
  }
  // A name pretending to be two fields cannot collide with the real statement.
  ReportSignature a = *g, b = *g;
  a.set_examiner("x\ncase_reference=1:y");
  b.set_examiner("x");
  b.set_case_reference("y");
  EXPECT_NE(SignatureStatement(a), SignatureStatement(b));
}

TEST_F(SignatureTest, WrongExaminerKeyIsPermissionDenied) {
  absl::StatusOr<ReportSignature> g = Sign();
  ASSERT_TRUE(g.ok());
  absl::StatusOr<SigningKey> other = GenerateSigningKey();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(CheckReportSignature(*g, dir_, other->public_key).code(), absl::StatusCode::kPermissionDenied);
  // A record re-signed by another key over the same files is valid, but not the examiner's.
  absl::StatusOr<ReportSignature> forged =
      SignReportFiles({{"verdict-json", dir_ + "/verdict.json"}, {"report-html", dir_ + "/report.html"}}, *other, options_);
  ASSERT_TRUE(forged.ok());
  EXPECT_TRUE(CheckReportSignature(*forged, dir_).ok());
  EXPECT_EQ(CheckReportSignature(*forged, dir_, key_.public_key).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SignatureTest, BadInputs) {
  EXPECT_EQ(SignReportFiles({}, key_, options_).status().code(), absl::StatusCode::kInvalidArgument);
  SigningKey mixed = key_;
  absl::StatusOr<SigningKey> other = GenerateSigningKey();
  ASSERT_TRUE(other.ok());
  mixed.public_key = other->public_key;
  EXPECT_EQ(SignReportFiles({{"report-html", dir_ + "/report.html"}}, mixed, options_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignReportFiles({{"report-html", dir_ + "/missing.html"}}, key_, options_).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseReportSignatureJson("{\"format\": 1, \"x\": 2}").status().code(), absl::StatusCode::kInvalidArgument);
  ReportSignature empty;
  EXPECT_EQ(CheckReportSignature(empty, dir_).code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<ReportSignature> g = Sign();
  ASSERT_TRUE(g.ok());
  g->set_signature("zz");
  EXPECT_EQ(CheckReportSignature(*g, dir_).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PrintHtmlToPdf, MissingChromiumNamesThePackage) {
  const std::string dir = TempDir("nochromium");
  Write(dir + "/r.html", "<p>x</p>");
  PdfOptions o;
  o.chromium = "/nonexistent/chromium";
  absl::Status s = PrintHtmlToPdf(dir + "/r.html", dir + "/r.pdf", o);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "chromium")) << s;
  EXPECT_FALSE(std::filesystem::exists(dir + "/r.pdf"));
}

}  // namespace
}  // namespace move
