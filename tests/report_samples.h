// Verdicts for the legal-report tests: realistic figures, and strings a hostile suspect could
// have put into a report (its path, an endpoint's error text) that must never become markup.
#ifndef MOVE_TESTS_REPORT_SAMPLES_H_
#define MOVE_TESTS_REPORT_SAMPLES_H_

#include <string>

#include "sdk/report.pb.h"

namespace move::testing {

// A black-box line as move_verify writes it; `hostile` is put into every free-text field the
// suspect can influence (channel description, path, warnings, command line).
VerificationReport SampleBlackBoxReport(const std::string& hostile);

// A white-box line of the same examination.
VerificationReport SampleWhiteBoxReport(const std::string& hostile);

// Both lines combined under Holm, as move_verify's combined verdict, as JSON.
std::string SampleCombinedJson(const std::string& hostile);

// Markup that would make a browser fetch http://127.0.0.1:<port>/ were it ever rendered
// unescaped (an image, a style sheet, a script, a frame, a CSS url()).
std::string HostileMarkup(int port);

}  // namespace move::testing

#endif  // MOVE_TESTS_REPORT_SAMPLES_H_
