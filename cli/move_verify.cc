// move_verify: examines a suspect model with a signed MOVE verifier bundle.
//
//   move_verify --bundle=victim.move --suspect=suspect.pt [--trusted_key=vendor.key.pub]
//               [--mode=whitebox] [--m=0] [--alpha=0.01] [--seed=0] [--device=cpu]
//               [--threads=0] [--report=report.json] [--reference_compatible]
//
// Prints a human summary and writes the JSON report (atomically) to --report. Exit status 0
// when the examination ran, whatever the verdict; 1 with one readable line on stderr when it
// could not run.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "sdk/bundle.h"
#include "sdk/ownership.h"
#include "sdk/runtime.h"

ABSL_FLAG(std::string, bundle, "", "Signed verifier bundle (.move). Required.");
ABSL_FLAG(std::string, suspect, "", "Suspect TorchScript model file (from the SDK or PyTorch). Required.");
ABSL_FLAG(std::string, trusted_key, "", "Vendor's public key file; the bundle must be signed by it.");
ABSL_FLAG(std::string, mode, "whitebox", "whitebox (black-box mode is not built yet).");
ABSL_FLAG(int64_t, m, 0, "Verification samples to use; 0 = all in the bundle.");
ABSL_FLAG(double, alpha, 0.01, "Significance level of the one-sided paired t-test.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the sample subset when --m is below the bundle's set.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");
ABSL_FLAG(std::string, report, "", "Where to write the JSON report (default: print it).");
ABSL_FLAG(bool, reference_compatible, false,
          "Also report the reference code's 40 x (m = 10) harmonic-mean p (for comparison with published numbers only).");

namespace {

absl::Status Run() {
  if (absl::GetFlag(FLAGS_bundle).empty()) return absl::InvalidArgumentError("--bundle: required");
  if (absl::GetFlag(FLAGS_suspect).empty()) return absl::InvalidArgumentError("--suspect: required");
  if (absl::GetFlag(FLAGS_mode) != "whitebox") {
    return absl::UnimplementedError(absl::StrCat("--mode=", absl::GetFlag(FLAGS_mode),
                                                 ": only whitebox is available in this version"));
  }
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_RETURN_IF_ERROR(move::ResolveDevice(absl::GetFlag(FLAGS_device)).status());
  std::string trusted;
  if (!absl::GetFlag(FLAGS_trusted_key).empty()) {
    absl::StatusOr<std::string> pub = move::LoadPublicKey(absl::GetFlag(FLAGS_trusted_key));
    if (!pub.ok()) return absl::Status(pub.status().code(), absl::StrCat("--trusted_key: ", pub.status().message()));
    trusted = *pub;
  }
  MOVE_ASSIGN_OR_RETURN(move::OpenedBundle bundle, move::ReadBundle(absl::GetFlag(FLAGS_bundle), trusted));
  move::VerifyOptions options;
  options.m = absl::GetFlag(FLAGS_m);
  options.alpha = absl::GetFlag(FLAGS_alpha);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.device = absl::GetFlag(FLAGS_device);
  options.reference_compatible = absl::GetFlag(FLAGS_reference_compatible);
  MOVE_ASSIGN_OR_RETURN(move::VerificationReport r, move::VerifyWhiteBox(bundle, absl::GetFlag(FLAGS_suspect), options));

  std::printf("MOVE white-box verification of %s\n", absl::GetFlag(FLAGS_suspect).c_str());
  std::printf("  verdict:        %s\n", r.verdict().c_str());
  std::printf("  p-value:        %.3g (log10 %.2f), one-sided paired t-test, alpha %.3g, m = %lld\n", r.p_value(),
              r.log10_p_value(), r.alpha(), static_cast<long long>(r.m()));
  std::printf("  delta_mu:       %+.4f (%.0f%% CI %+.4f .. %+.4f); suspect %.3f vs reference %.3f\n", r.delta_mu(),
              100 * (1 - r.alpha()), r.delta_mu_ci_low(), r.delta_mu_ci_high(), r.suspect_mean_score(),
              r.reference_mean_score());
  std::printf("  architecture:   %s, features %s, classifier %s\n", r.architecture().c_str(), r.feature_design().c_str(),
              r.classifier_sound() ? "passed its soundness check" : "FAILED its soundness check");
  std::printf("  bundle sha256:  %s (signer %s..., %s)\n", r.bundle_sha256().c_str(), r.signer_fingerprint().substr(0, 16).c_str(),
              r.signer_pinned() ? "trusted key" : "not pinned");
  std::printf("  suspect sha256: %s\n", r.suspect_sha256().c_str());
  if (options.reference_compatible) {
    std::printf("  reference-compatible (40 draws of m = 10, Welch, harmonic mean; NOT the decision): p %.3g, delta_mu %+.4f\n",
                r.reference_compatible_harmonic_p(), r.reference_compatible_delta_mu());
  }
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
  const std::string json = move::ReportToJson(r);
  if (absl::GetFlag(FLAGS_report).empty()) {
    std::printf("%s", json.c_str());
  } else {
    MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(absl::GetFlag(FLAGS_report), json));
    std::printf("  report:         %s\n", absl::GetFlag(FLAGS_report).c_str());
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("move_verify --bundle=B --suspect=model.pt [--report=out.json]");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "move_verify: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
