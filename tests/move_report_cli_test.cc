// The move_report CLI: renders a verdict, refuses bad paths before any work and never writes
// over an existing file or an input, signs, checks the signature, and answers a tampered file,
// a contradictory verdict or an endless input with one readable line and exit status 1.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "gtest/gtest.h"
#include "sdk/bundle.h"
#include "sdk/fingerprint.h"
#include "sdk/ownership.h"
#include "tests/report_samples.h"

namespace move {
namespace {

struct CliRun {
  int rc;
  std::string out, err;
};

class MoveReportCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    dir_ = std::string(t ? t : "/tmp") + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    verdict_ = dir_ + "/verdict.json";
    Write(verdict_, testing::SampleCombinedJson("x"));
  }
  static void Write(const std::string& path, const std::string& contents) {
    std::ofstream(path, std::ios::binary) << contents;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  CliRun Cli(const std::string& args) {
    const std::string out = dir_ + "/cli.out", err = dir_ + "/cli.err";
    const int status = std::system(absl::StrCat("cli/move_report ", args, " > ", out, " 2> ", err).c_str());
    return CliRun{WEXITSTATUS(status), Read(out), Read(err)};
  }
  // Exit status 1 and exactly one line on stderr that contains `needle`.
  void ExpectOneLineError(const CliRun& r, const std::string& needle) {
    EXPECT_EQ(r.rc, 1) << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, needle)) << "wanted '" << needle << "' in: " << r.err;
  }
  std::string dir_, verdict_;
};

TEST_F(MoveReportCliTest, RendersAndNeverOverwrites) {
  const std::string html = dir_ + "/report.html";
  CliRun ok = Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --case_reference=4:26-cv-0012"));
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_TRUE(absl::StrContains(ok.out, "verdict: stolen")) << ok.out;
  const std::string page = Read(html);
  EXPECT_TRUE(absl::StrContains(page, "Case 4:26-cv-0012")) << page.substr(0, 2000);

  // The same inputs give the same bytes; an existing file is never replaced without --overwrite.
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", html)), "--html");
  EXPECT_EQ(Read(html), page);
  CliRun again = Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --case_reference=4:26-cv-0012 --overwrite"));
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_EQ(Read(html), page);

  // Never over an input, even with --overwrite.
  const std::string before = Read(verdict_);
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", verdict_, " --overwrite")), "--html");
  EXPECT_EQ(Read(verdict_), before);
}

TEST_F(MoveReportCliTest, ChecksEveryPathBeforeWork) {
  const std::string html = dir_ + "/report.html";
  ExpectOneLineError(Cli(absl::StrCat("--html=", html)), "--verdict: required");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_)), "--html: required");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", dir_, "/missing.json --html=", html)), "missing.json");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", dir_, "/no/such/folder/r.html")), "--html");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --signature=", dir_, "/s.json")),
                     "--signature: needs --sign_key");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --pdf=", dir_,
                                      "/r.pdf --chromium=/no/such/chromium")),
                     "chromium");
  ExpectOneLineError(Cli("--verdict=/dev/zero --html=" + html), "--verdict");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " stray")), "unexpected argument 'stray'");
  // None of the refused runs left a file behind.
  EXPECT_FALSE(std::filesystem::exists(html));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/r.pdf"));
}

TEST_F(MoveReportCliTest, RefusesAContradictoryVerdict) {
  VerificationReport r = testing::SampleBlackBoxReport("x");
  r.set_classifier_sound(false);  // still claims "stolen"
  Write(dir_ + "/edited.json", ReportToJson(r));
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", dir_, "/edited.json --html=", dir_, "/r.html")),
                     "claims theft but its classifier failed the soundness check");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/r.html"));
}

TEST_F(MoveReportCliTest, SignCheckAndTamper) {
  absl::StatusOr<SigningKey> key = GenerateSigningKey(), other = GenerateSigningKey();
  ASSERT_TRUE(key.ok() && other.ok());
  ASSERT_TRUE(SaveSigningKey(*key, dir_ + "/examiner.key").ok());
  ASSERT_TRUE(SaveSigningKey(*other, dir_ + "/other.key").ok());
  const std::string html = dir_ + "/report.html", sig = dir_ + "/report.html.sig.json";
  CliRun sign = Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --examiner='A. Examiner' --sign_key=", dir_,
                                 "/examiner.key"));
  ASSERT_EQ(sign.rc, 0) << sign.err;
  ASSERT_TRUE(std::filesystem::exists(sig));
  EXPECT_TRUE(absl::StrContains(sign.out, "\"format\": \"move.report_signature.v1\"")) << sign.out;

  CliRun check = Cli(absl::StrCat("--check_signature=", sig, " --examiner_key=", dir_, "/examiner.key"));
  EXPECT_EQ(check.rc, 0) << check.err;
  EXPECT_TRUE(absl::StrContains(check.out, "signature valid")) << check.out;
  EXPECT_TRUE(absl::StrContains(check.out, "the examiner's key")) << check.out;

  // Another examiner's key, an unsigned second signature over the first, a changed file.
  ExpectOneLineError(Cli(absl::StrCat("--check_signature=", sig, " --examiner_key=", dir_, "/other.key")), "key");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", html, " --overwrite --sign_key=", dir_, "/examiner.key")),
                     "--signature");
  ExpectOneLineError(Cli(absl::StrCat("--check_signature=", sig, " --verdict=", verdict_)), "give it alone");
  std::string page = Read(html);
  page[page.find("Finding")] = 'f';
  Write(html, page);
  ExpectOneLineError(Cli("--check_signature=" + sig), "report.html");

  // A signed file must sit beside the signature, where the check looks for it.
  std::filesystem::create_directories(dir_ + "/elsewhere");
  ExpectOneLineError(Cli(absl::StrCat("--verdict=", verdict_, " --html=", dir_, "/elsewhere/r.html --sign_key=", dir_,
                                      "/examiner.key --signature=", dir_, "/r.sig.json")),
                     "signature's folder");
}

}  // namespace
}  // namespace move
