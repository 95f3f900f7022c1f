// Reading a verification report's decision as data: the Verdict and Line enums of
// sdk/report.proto, with the text of reports written before the enums existed.
//
//   absl::StatusOr<move::VerificationReport> r = move::VerifyBlackBox(...);
//   if (move::OutcomeOf(*r) == move::VERDICT_INCONCLUSIVE) { ... r->verdict() says why ... }
//   std::printf("%s: %s\n", std::string(move::LineTitle(move::LineOf(*r))).c_str(),
//               std::string(move::VerdictName(move::OutcomeOf(*r))).c_str());
//
// Every report this SDK writes sets `outcome` and `line`; a program that prints or counts
// verdicts reads them here rather than parsing the `verdict` text, which is for people.
#ifndef MOVE_SDK_VERDICT_H_
#define MOVE_SDK_VERDICT_H_

#include "absl/strings/string_view.h"
#include "sdk/report.pb.h"

namespace move {

// The decision: `outcome` where set; for an older report, read from its text ("stolen",
// "not stolen[: why]", "inconclusive[: why]"); VERDICT_UNSPECIFIED when the text is none of
// these.
Verdict OutcomeOf(const VerificationReport& report);
Verdict OutcomeOf(const EvidenceLine& line);
Verdict OutcomeOf(const CombinedVerdict& verdict);

// "stolen", "not stolen", "inconclusive"; "unknown" for VERDICT_UNSPECIFIED.
absl::string_view VerdictName(Verdict verdict);

// The line of evidence: `line` where set; for an older report, read from `mode` ("whitebox",
// "blackbox", "fingerprint", "label-agreement"); LINE_UNSPECIFIED for another mode.
Line LineOf(const VerificationReport& report);

// The line's short name as the combined verdict lists it: "white-box MOVE", "black-box MOVE",
// "UAP fingerprint", "label agreement"; "unknown line" for LINE_UNSPECIFIED.
absl::string_view LineTitle(Line line);

// What the model-level test compared for this suspect, and the suspect's value of it:
// `model_level_statistic` / `model_level_suspect_score`, or, for a report written before
// those fields, "mean score" and `suspect_mean_score` (the only statistic then). Meaningful
// only where `model_level_tested`.
absl::string_view ModelLevelStatisticOf(const VerificationReport& report);
double ModelLevelSuspectValueOf(const VerificationReport& report);

}  // namespace move

#endif  // MOVE_SDK_VERDICT_H_
