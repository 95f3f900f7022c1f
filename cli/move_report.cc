// move_report: renders move_verify's JSON verdict as the legal report, and signs it.
//
//   move_report --verdict=case/verdict.json --html=case/report.html [--pdf=case/report.pdf]
//               [--examiner="Dr. A. Examiner"] [--case_reference="4:26-cv-0012"]
//               [--sign_key=examiner.key] [--signature=case/report.sig.json] [--overwrite]
//   move_report --check_signature=case/report.sig.json [--examiner_key=examiner.key.pub]
//
// The HTML is one self-contained page (no script, nothing fetched from anywhere); the PDF is
// printed from it by headless Chromium (Debian's package `chromium`). With --sign_key (a key
// made by `move_bundle keygen`), the verdict, the HTML and the PDF are signed with the
// examiner's Ed25519 key; the signature record (JSON, default <html>.sig.json) names each file
// with its SHA-256 and must sit in the same folder as them. --check_signature verifies such a
// record against the files beside it and, with --examiner_key, that the examiner's key made it.
//
// Every output path is checked before any work; outputs are written atomically and never over
// an input, nor over an existing file without --overwrite (a signature never). Exit status 0 on
// success; 1 with one readable line on stderr otherwise.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "sdk/bundle.h"
#include "sdk/report.h"

ABSL_FLAG(std::string, verdict, "", "move_verify's JSON output (--report): a single report or a combined verdict.");
ABSL_FLAG(std::string, html, "", "Where to write the HTML report.");
ABSL_FLAG(std::string, pdf, "", "Where to write the PDF (printed from the HTML by headless Chromium); empty: no PDF.");
ABSL_FLAG(std::string, examiner, "", "The examiner's name, shown on the report and in the signature.");
ABSL_FLAG(std::string, case_reference, "", "The case reference, shown on the report and in the signature.");
ABSL_FLAG(std::string, sign_key, "", "The examiner's key pair (move_bundle keygen): sign the verdict, HTML and PDF.");
ABSL_FLAG(std::string, signature, "", "Where to write the signature record (default: <html>.sig.json); never replaced.");
ABSL_FLAG(bool, overwrite, false, "Replace an existing HTML or PDF (never an input, never a signature).");
ABSL_FLAG(std::string, check_signature, "", "Verify this signature record against the files beside it.");
ABSL_FLAG(std::string, examiner_key, "", "With --check_signature: the examiner's public key (.pub); the signer must be it.");
ABSL_FLAG(std::string, chromium, "", "The Chromium binary for the PDF (default: chromium on the PATH).");
ABSL_FLAG(int, pdf_timeout_ms, 120000, "Wall-clock limit for printing the PDF.");

namespace {

using move::core::NamedPath;

constexpr int64_t kMaxVerdictBytes = int64_t{256} << 20;

std::string Folder(const std::string& path) {
  std::error_code ec;
  return std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec).parent_path(), ec).string();
}

absl::Status CheckSignature() {
  const std::string path = absl::GetFlag(FLAGS_check_signature);
  MOVE_ASSIGN_OR_RETURN(const std::string json, move::core::ReadFile(path, 1 << 20));
  MOVE_ASSIGN_OR_RETURN(const move::ReportSignature g, move::ParseReportSignatureJson(json));
  std::string trusted;
  if (!absl::GetFlag(FLAGS_examiner_key).empty()) {
    absl::StatusOr<std::string> pub = move::LoadPublicKey(absl::GetFlag(FLAGS_examiner_key));
    if (!pub.ok()) return absl::Status(pub.status().code(), absl::StrCat("--examiner_key: ", pub.status().message()));
    trusted = *pub;
  }
  MOVE_RETURN_IF_ERROR(move::CheckReportSignature(g, Folder(path), trusted));
  std::printf("signature valid: signed %s by %s (key %s..., %s)\n", g.signed_at().c_str(),
              g.examiner().empty() ? "(no examiner named)" : g.examiner().c_str(), g.signer_fingerprint().substr(0, 16).c_str(),
              trusted.empty() ? "key not pinned: give --examiner_key to check whose it is" : "the examiner's key");
  if (!g.case_reference().empty()) std::printf("  case:    %s\n", g.case_reference().c_str());
  for (const auto& f : g.files()) std::printf("  %-13s %s  sha256 %s (unchanged)\n", (f.role() + ":").c_str(), f.name().c_str(), f.sha256().c_str());
  return absl::OkStatus();
}

absl::Status Render() {
  const std::string verdict = absl::GetFlag(FLAGS_verdict), html = absl::GetFlag(FLAGS_html), pdf = absl::GetFlag(FLAGS_pdf),
                    key_path = absl::GetFlag(FLAGS_sign_key);
  const bool overwrite = absl::GetFlag(FLAGS_overwrite);
  if (verdict.empty()) return absl::InvalidArgumentError("--verdict: required (move_verify's --report output)");
  if (html.empty()) return absl::InvalidArgumentError("--html: required");
  std::string signature = absl::GetFlag(FLAGS_signature);
  if (!key_path.empty() && signature.empty()) signature = html + ".sig.json";
  if (key_path.empty() && !signature.empty()) return absl::InvalidArgumentError("--signature: needs --sign_key");

  // Every path before any work.
  std::vector<NamedPath> taken = {{"--verdict", verdict}, {"--sign_key", key_path}};
  MOVE_RETURN_IF_ERROR(move::core::CheckOutputPath("--html", html, taken, overwrite));
  taken.push_back({"--html", html});
  MOVE_RETURN_IF_ERROR(move::core::CheckOutputPath("--pdf", pdf, taken, overwrite));
  taken.push_back({"--pdf", pdf});
  MOVE_RETURN_IF_ERROR(move::core::CheckOutputPath("--signature", signature, taken, /*overwrite=*/false));
  if (!signature.empty()) {
    const std::string folder = Folder(signature);
    for (const NamedPath& p : std::vector<NamedPath>{{"--verdict", verdict}, {"--html", html}, {"--pdf", pdf}}) {
      if (!p.path.empty() && Folder(p.path) != folder) {
        return absl::InvalidArgumentError(absl::StrCat(p.flag, "=", p.path, ": a signed file must be in the signature's folder (",
                                                       folder, "), where --check_signature looks for it"));
      }
    }
  }
  absl::StatusOr<std::string> json = move::core::ReadFile(verdict, kMaxVerdictBytes);
  if (!json.ok()) return absl::Status(json.status().code(), absl::StrCat("--verdict: ", json.status().message()));
  move::SigningKey key;
  if (!key_path.empty()) {
    absl::StatusOr<move::SigningKey> k = move::LoadSigningKey(key_path);
    if (!k.ok()) return absl::Status(k.status().code(), absl::StrCat("--sign_key: ", k.status().message()));
    key = *k;
  }
  move::PdfOptions pdf_options;
  pdf_options.chromium = absl::GetFlag(FLAGS_chromium);
  pdf_options.timeout_ms = absl::GetFlag(FLAGS_pdf_timeout_ms);
  pdf_options.overwrite = overwrite;
  // Fail before writing anything when the browser is missing.
  if (!pdf.empty()) MOVE_RETURN_IF_ERROR(move::FindChromium(pdf_options).status());

  move::LegalReportOptions o;
  o.examiner = absl::GetFlag(FLAGS_examiner);
  o.case_reference = absl::GetFlag(FLAGS_case_reference);
  o.verdict_file_name = std::filesystem::path(verdict).filename().string();
  absl::StatusOr<move::CombinedVerdict> parsed = move::ParseVerdictJson(*json);
  if (!parsed.ok()) return absl::Status(parsed.status().code(), absl::StrCat("--verdict=", verdict, ": ", parsed.status().message()));
  MOVE_ASSIGN_OR_RETURN(const std::string page, move::RenderLegalReportHtml(*json, o));
  MOVE_RETURN_IF_ERROR(overwrite ? move::core::WriteFileAtomically(html, page) : move::core::WriteNewFileAtomically(html, page));
  std::printf("legal report: %s\n  verdict: %s\n  html:    %s (sha256 %s)\n", verdict.c_str(), parsed->verdict().c_str(),
              html.c_str(), move::core::Sha256Hex(page).c_str());
  if (!pdf.empty()) {
    std::printf("  pdf:     printing with headless Chromium...\n");
    std::fflush(stdout);
    MOVE_RETURN_IF_ERROR(move::PrintHtmlToPdf(html, pdf, pdf_options));
    MOVE_ASSIGN_OR_RETURN(const std::string bytes, move::core::ReadFile(pdf));
    std::printf("  pdf:     %s (sha256 %s)\n", pdf.c_str(), move::core::Sha256Hex(bytes).c_str());
  }
  if (!key_path.empty()) {
    std::vector<move::FileToSign> files = {{"verdict-json", verdict}, {"report-html", html}};
    if (!pdf.empty()) files.push_back({"report-pdf", pdf});
    MOVE_ASSIGN_OR_RETURN(const move::ReportSignature g, move::SignReportFiles(files, key, o));
    const std::string record = move::ReportSignatureToJson(g);
    MOVE_RETURN_IF_ERROR(move::core::WriteNewFileAtomically(signature, record));
    std::printf("  signed:  %s (examiner key %s..., %d files, %s)\n", signature.c_str(), g.signer_fingerprint().substr(0, 16).c_str(),
                g.files_size(), g.signed_at().c_str());
    std::printf("%s", record.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "move_report --verdict=verdict.json --html=report.html [--pdf=report.pdf] [--sign_key=examiner.key]\n"
      "  or --check_signature=report.html.sig.json [--examiner_key=examiner.key.pub]");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  absl::Status s;
  if (rest.size() > 1) {
    s = absl::InvalidArgumentError(absl::StrCat("unexpected argument '", rest[1], "' (flags only; see --help)"));
  } else if (!absl::GetFlag(FLAGS_check_signature).empty()) {
    s = absl::GetFlag(FLAGS_verdict).empty() && absl::GetFlag(FLAGS_html).empty()
            ? CheckSignature()
            : absl::InvalidArgumentError("--check_signature: give it alone (with --examiner_key), not with --verdict or --html");
  } else {
    s = Render();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "move_report: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
