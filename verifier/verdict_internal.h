// Writing a report's decision: the enum, `stolen` and the text always together.
#ifndef MOVE_VERIFIER_VERDICT_INTERNAL_H_
#define MOVE_VERIFIER_VERDICT_INTERNAL_H_

#include <string>

#include "sdk/report.pb.h"

namespace move {
namespace verifier_internal {

// Sets `outcome`, `stolen` (outcome == VERDICT_STOLEN) and the `verdict` text.
void SetVerdict(Verdict outcome, std::string text, VerificationReport* report);

// Sets `line` and the matching `mode` text.
void SetLine(Line line, VerificationReport* report);

}  // namespace verifier_internal
}  // namespace move

#endif  // MOVE_VERIFIER_VERDICT_INTERNAL_H_
