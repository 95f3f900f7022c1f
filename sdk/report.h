// The legal report: move_verify's JSON verdict rendered for a court, and signed by the
// examiner.
//
//   absl::StatusOr<std::string> json = ...;  // what move_verify --report wrote
//   move::LegalReportOptions o;
//   o.examiner = "Dr. A. Examiner"; o.case_reference = "Case 4:26-cv-0012";
//   o.verdict_file_name = "verdict.json";
//   absl::StatusOr<std::string> html = move::RenderLegalReportHtml(*json, o);
//   absl::Status s = move::PrintHtmlToPdf("report.html", "report.pdf");   // headless Chromium
//   absl::StatusOr<move::ReportSignature> sig = move::SignReportFiles(
//       {{"verdict-json", "verdict.json"}, {"report-html", "report.html"}}, examiner_key, o);
//   s = move::CheckReportSignature(*sig, "/case/folder", examiner_public_key);
//
// The page is one self-contained HTML file: no script, no external resource of any kind (a
// Content-Security-Policy of default-src 'none' forbids the browser to fetch anything; the
// figures are inline SVG), and every string that came from the examination (the suspect's
// path, an endpoint's error text, warnings) is HTML-escaped, so a hostile suspect cannot make
// the report load, run or show anything. It states the claim in plain language, then each line
// of evidence with its p-values and what they mean, the score distributions as figures, the
// calibration population and the classifier's measured error rates, the chain of custody
// (bundle signer, SHA-256 of the bundle, the victim, the suspect or its transcript, UTC times,
// SDK version, the exact command line), the limitations, and how to reproduce the result. The
// same verdict and options give the same bytes.
#ifndef MOVE_SDK_REPORT_H_
#define MOVE_SDK_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sdk/bundle.h"
#include "sdk/report.pb.h"

namespace move {

// Parses what move_verify writes: a single line's report (move.report.v1) or a combined
// verdict (move.combined.v1). A single report comes back as a CombinedVerdict with no `lines`,
// `format` "move.report.v1" and the report as its one entry of `reports`. kInvalidArgument
// naming the problem for anything else (not JSON, unknown fields, another format, no report),
// for a figure that is not a finite number, and for a record whose decision does not follow
// from its own figures: "stolen" with a p-value above alpha, a failed soundness or range check,
// a model-level test that did not reject, Holm rejections that do not match `decided_by` or
// the thresholds, a p-value that disagrees with its log10. The page never states a finding
// its own numbers contradict.
absl::StatusOr<CombinedVerdict> ParseVerdictJson(absl::string_view json);

struct LegalReportOptions {
  // Who examined the suspect, and the court's or the firm's reference; shown on the first page.
  std::string examiner;
  std::string case_reference;
  // The verdict file's base name as it will be handed over (shown in the chain of custody with
  // the SHA-256 of the JSON the report was rendered from).
  std::string verdict_file_name = "verdict.json";
};

// The report as one self-contained HTML page (see the file comment). kInvalidArgument as
// ParseVerdictJson.
absl::StatusOr<std::string> RenderLegalReportHtml(absl::string_view verdict_json, const LegalReportOptions& options = {});

struct PdfOptions {
  // The browser; empty: "chromium" on the PATH (Debian's package `chromium`).
  std::string chromium;
  // Wall-clock limit for the browser; it is killed after it.
  int timeout_ms = 120000;
  // Replace an existing PDF (never an input); otherwise kAlreadyExists.
  bool overwrite = false;
};

// The Chromium binary PrintHtmlToPdf would run; kFailedPrecondition naming the package when
// there is none.
absl::StatusOr<std::string> FindChromium(const PdfOptions& options = {});

// Prints an HTML file to PDF with headless Chromium (A4, no header or footer). The browser gets
// a fresh profile in a temporary folder, no network (every host resolves to nothing, no proxy)
// and a fixed argument list; the PDF is written atomically, over an existing file only with
// `overwrite` (kAlreadyExists otherwise). kFailedPrecondition naming the package when Chromium is missing;
// kDeadlineExceeded when it runs past the limit; kInternal when it fails.
absl::Status PrintHtmlToPdf(const std::string& html_path, const std::string& pdf_path, const PdfOptions& options = {});

// A file to sign: its role ("verdict-json", "report-html", "report-pdf") and path.
struct FileToSign {
  std::string role;
  std::string path;
};

// Signs the files with the examiner's Ed25519 key (libsodium): the signature covers a canonical
// statement of every file's role, base name and SHA-256, the UTC time of signing, the examiner,
// the case reference and the SDK version (SignatureStatement). kNotFound / kInvalidArgument for
// a file that cannot be read, kInvalidArgument for no files or a malformed key.
absl::StatusOr<ReportSignature> SignReportFiles(const std::vector<FileToSign>& files, const SigningKey& key,
                                                const LegalReportOptions& options);

// The exact bytes the signature covers: one "key=<length>:<value>" line per field, so that no
// value (a name holding a newline, say) can be read as another field.
std::string SignatureStatement(const ReportSignature& signature);

// Checks a signature: every file, found by its name in `folder`, must still have the SHA-256
// signed (kDataLoss naming the file otherwise; kNotFound when one is missing), the signature
// must be valid for its public key (kUnauthenticated) and, when `trusted_public_key` (raw 32
// bytes) is given, made by that key (kPermissionDenied). kInvalidArgument for a malformed
// signature record.
absl::Status CheckReportSignature(const ReportSignature& signature, const std::string& folder,
                                  const std::string& trusted_public_key = "");

// The signature record as indented JSON, and back (kInvalidArgument naming the problem).
std::string ReportSignatureToJson(const ReportSignature& signature);
absl::StatusOr<ReportSignature> ParseReportSignatureJson(absl::string_view json);

}  // namespace move

#endif  // MOVE_SDK_REPORT_H_
