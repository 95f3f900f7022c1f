// Verdicts as enums (sdk/verdict.h) and the one place a report's decision is written.
#include "sdk/verdict.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "verifier/verdict_internal.h"

namespace move {
namespace {

Verdict FromText(bool stolen, absl::string_view text) {
  if (stolen) return VERDICT_STOLEN;
  if (absl::StartsWith(text, "inconclusive")) return VERDICT_INCONCLUSIVE;
  if (text == "not stolen" || absl::StartsWith(text, "not stolen:")) return VERDICT_NOT_STOLEN;
  return VERDICT_UNSPECIFIED;
}

}  // namespace

Verdict OutcomeOf(const VerificationReport& report) {
  return report.outcome() != VERDICT_UNSPECIFIED ? report.outcome() : FromText(report.stolen(), report.verdict());
}

Verdict OutcomeOf(const EvidenceLine& line) {
  return line.outcome() != VERDICT_UNSPECIFIED ? line.outcome() : FromText(line.verdict() == "stolen", line.verdict());
}

Verdict OutcomeOf(const CombinedVerdict& verdict) {
  return verdict.outcome() != VERDICT_UNSPECIFIED ? verdict.outcome() : FromText(verdict.stolen(), verdict.verdict());
}

absl::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case VERDICT_STOLEN: return "stolen";
    case VERDICT_NOT_STOLEN: return "not stolen";
    case VERDICT_INCONCLUSIVE: return "inconclusive";
    default: return "unknown";
  }
}

Line LineOf(const VerificationReport& report) {
  if (report.line() != LINE_UNSPECIFIED) return report.line();
  if (report.mode() == "whitebox") return LINE_WHITE_BOX;
  if (report.mode() == "blackbox") return LINE_BLACK_BOX;
  if (report.mode() == "fingerprint") return LINE_FINGERPRINT;
  if (report.mode() == "label-agreement") return LINE_LABEL_AGREEMENT;
  return LINE_UNSPECIFIED;
}

absl::string_view LineTitle(Line line) {
  switch (line) {
    case LINE_WHITE_BOX: return "white-box MOVE";
    case LINE_BLACK_BOX: return "black-box MOVE";
    case LINE_FINGERPRINT: return "UAP fingerprint";
    case LINE_LABEL_AGREEMENT: return "label agreement";
    default: return "unknown line";
  }
}

absl::string_view ModelLevelStatisticOf(const VerificationReport& report) {
  return report.model_level_statistic().empty() ? absl::string_view("mean score")
                                                : absl::string_view(report.model_level_statistic());
}

double ModelLevelSuspectValueOf(const VerificationReport& report) {
  return report.model_level_statistic().empty() ? report.suspect_mean_score() : report.model_level_suspect_score();
}

namespace verifier_internal {

void SetVerdict(Verdict outcome, std::string text, VerificationReport* report) {
  report->set_outcome(outcome);
  report->set_stolen(outcome == VERDICT_STOLEN);
  report->set_verdict(std::move(text));
}

void SetLine(Line line, VerificationReport* report) {
  report->set_line(line);
  switch (line) {
    case LINE_WHITE_BOX: report->set_mode("whitebox"); break;
    case LINE_BLACK_BOX: report->set_mode("blackbox"); break;
    case LINE_FINGERPRINT: report->set_mode("fingerprint"); break;
    case LINE_LABEL_AGREEMENT: report->set_mode("label-agreement"); break;
    default: report->set_mode(""); break;
  }
}

}  // namespace verifier_internal
}  // namespace move
