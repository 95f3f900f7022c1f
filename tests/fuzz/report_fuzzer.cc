// Fuzz target: the legal report's inputs: a verdict file (move_verify's JSON, which the report
// quotes and draws) and an examiner's signature record. Beyond not crashing, the page rendered
// from any accepted verdict must be what its promises say: produced exactly when the verdict
// parses, and free of any script, embedded element or link, whatever strings the verdict holds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "sdk/report.h"

namespace {

void Fail(const char* what) {
  std::fprintf(stderr, "report_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  const bool parses = move::ParseVerdictJson(json).ok();
  absl::StatusOr<std::string> html = move::RenderLegalReportHtml(json);
  if (html.ok() != parses) Fail("RenderLegalReportHtml and ParseVerdictJson disagree on the input");
  if (html.ok()) {
    const std::string lower = absl::AsciiStrToLower(*html);
    for (const char* banned : {"<script", "<iframe", "<img", "<link", "<object", "<embed", "<image", "<use", "<meta http-equiv=\"refresh", "<base", "<form"}) {
      if (absl::StrContains(lower, banned)) Fail("the rendered page holds an element it must not");
    }
    // One style sheet, the page's own, in the head.
    if (lower.find("<style") != lower.rfind("<style")) Fail("the rendered page holds a second style sheet");
  }
  if (auto g = move::ParseReportSignatureJson(json); g.ok()) (void)move::SignatureStatement(*g);
  return 0;
}
