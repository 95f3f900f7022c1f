// The legal report in a real browser (Debian's headless Chromium): it renders (a screenshot
// that is not blank and shows the finding), it prints to PDF, and it loads nothing from
// anywhere, even when the suspect put markup into every string it could. A control page with
// the same markup unescaped and no Content-Security-Policy does reach the local server, so the
// test can see a fetch when there is one.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define STB_IMAGE_IMPLEMENTATION
#include "stb/stb_image.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "sdk/report.h"
#include "tests/report_samples.h"

namespace move {
namespace {

// Counts every request a page makes to 127.0.0.1.
class Sink {
 public:
  Sink() {
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> l(mu_);
      paths_.push_back(req.path);
      res.set_content("x", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Sink() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> paths() {
    std::lock_guard<std::mutex> l(mu_);
    return paths_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> paths_;
};

std::string Dir(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(t ? t : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void Write(const std::string& path, const std::string& contents) { std::ofstream(path, std::ios::binary) << contents; }

// Opens `page` in headless Chromium, with a screenshot and a network log; returns its exit code.
int OpenInChromium(const std::string& chromium, const std::string& dir, const std::string& page) {
  const std::string cmd = absl::StrCat(
      "cd '", dir, "' && HOME='", dir, "' timeout -s KILL 120 '", chromium,
      "' --headless --disable-gpu --no-first-run --no-default-browser-check --disable-extensions --disable-sync "
      "--disable-background-networking --disable-component-update --user-data-dir='", dir, "/profile' ",
      geteuid() == 0 ? "--no-sandbox " : "", "--window-size=1280,2000 --screenshot='", dir, "/shot.png' --log-net-log='", dir,
      "/net.json' 'file://", dir, "/", page, "' > '", dir, "/chromium.log' 2>&1");
  return std::system(cmd.c_str());
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> c = FindChromium();
    ASSERT_TRUE(c.ok()) << c.status() << " (tools/setup.sh installs it)";
    chromium_ = *c;
  }
  std::string chromium_;
  Sink sink_;
};

TEST_F(BrowserTest, ControlPageWithUnescapedMarkupDoesFetch) {
  const std::string dir = Dir("control");
  Write(dir + "/control.html", absl::StrCat("<!DOCTYPE html><html><body><p>control", testing::HostileMarkup(sink_.port()),
                                            "</p></body></html>"));
  ASSERT_EQ(OpenInChromium(chromium_, dir, "control.html"), 0) << core::ReadFile(dir + "/chromium.log").value_or("");
  EXPECT_FALSE(sink_.paths().empty()) << "the control page should have reached the local server";
  absl::StatusOr<std::string> net = core::ReadFile(dir + "/net.json");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(absl::StrContains(*net, absl::StrCat("127.0.0.1:", sink_.port()))) << "the network log should show the fetch";
}

TEST_F(BrowserTest, ReportRendersAndLoadsNothing) {
  const std::string dir = Dir("report");
  LegalReportOptions o;
  o.examiner = "A. Examiner";
  o.case_reference = "4:26-cv-0012";
  absl::StatusOr<std::string> html =
      RenderLegalReportHtml(testing::SampleCombinedJson(testing::HostileMarkup(sink_.port())), o);
  ASSERT_TRUE(html.ok()) << html.status();
  Write(dir + "/report.html", *html);
  ASSERT_EQ(OpenInChromium(chromium_, dir, "report.html"), 0) << core::ReadFile(dir + "/chromium.log").value_or("");

  EXPECT_TRUE(sink_.paths().empty()) << "the report made " << sink_.paths().size() << " requests, first " << sink_.paths()[0];
  absl::StatusOr<std::string> net = core::ReadFile(dir + "/net.json");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_FALSE(absl::StrContains(*net, absl::StrCat("127.0.0.1:", sink_.port())));

  int w = 0, h = 0, n = 0;
  unsigned char* px = stbi_load((dir + "/shot.png").c_str(), &w, &h, &n, 3);
  ASSERT_NE(px, nullptr) << "no screenshot";
  EXPECT_EQ(w, 1280);
  EXPECT_EQ(h, 2000);
  int64_t inked = 0, finding_red = 0;
  for (int64_t i = 0; i < int64_t{w} * h; ++i) {
    const int r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
    if (r < 200 || g < 200 || b < 200) ++inked;
    // The "stolen" finding's border and the suspect's bars (#b03a2e).
    if (std::abs(r - 0xb0) < 24 && std::abs(g - 0x3a) < 24 && std::abs(b - 0x2e) < 24) ++finding_red;
  }
  stbi_image_free(px);
  EXPECT_GT(inked, int64_t{w} * h / 50) << "the screenshot is (nearly) blank";
  EXPECT_GT(finding_red, 2000) << "the finding and the figures did not render";

  // Printed to PDF, still without a single request.
  PdfOptions p;
  ASSERT_TRUE(PrintHtmlToPdf(dir + "/report.html", dir + "/report.pdf", p).ok());
  absl::StatusOr<std::string> pdf = core::ReadFile(dir + "/report.pdf");
  ASSERT_TRUE(pdf.ok());
  EXPECT_TRUE(absl::StartsWith(*pdf, "%PDF-"));
  EXPECT_GT(pdf->size(), 20000u);
  EXPECT_TRUE(sink_.paths().empty());
  // Never over an existing file.
  EXPECT_EQ(PrintHtmlToPdf(dir + "/report.html", dir + "/report.pdf", p).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace move
