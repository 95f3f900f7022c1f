// move_redteam: the red-team harness (redteam/harness.h) from the command line.
//
//   bazel run //redteam:move_redteam -- --config=full        # the README's table
//   bazel run //redteam:move_redteam -- --config=quick       # a few minutes, every code path
//
// Flags left at their defaults keep the chosen configuration's value; the study of when the
// external feature survives query stealing varies --style_strength, --gamma, --epochs,
// --train_size and --student_arch.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "redteam/harness.h"
#include "sdk/runtime.h"

ABSL_FLAG(std::string, config, "full", "quick or full.");
ABSL_FLAG(std::string, out, "", "Output directory (default out/redteam or out/redteam-quick).");
ABSL_FLAG(std::string, cache, "", "Model cache directory (default out/redteam-cache or out/redteam-quick-cache).");
ABSL_FLAG(int64_t, train_size, 0, "Owner's training images (0 = the configuration's).");
ABSL_FLAG(int, epochs, 0, "Training epochs of the recipe (0 = the configuration's).");
ABSL_FLAG(double, gamma, 0, "Transformation rate in (0, 1] (0 = the configuration's).");
ABSL_FLAG(double, style_strength, 0, "Style strength > 0 (0 = the configuration's).");
ABSL_FLAG(std::string, arch, "", "Victim architecture (empty = the configuration's).");
ABSL_FLAG(std::string, student_arch, "", "Attackers' student architecture (empty = the configuration's).");
ABSL_FLAG(int, independents, -1, "Independent models (-1 = the configuration's).");
ABSL_FLAG(int, robust_independents, -1,
          "Rival-vendor, appearance- and style-augmented independent models (-1 = the configuration's).");
ABSL_FLAG(int64_t, zero_shot_rounds, 0, "Zero-shot generator/student rounds (0 = the configuration's).");
ABSL_FLAG(bool, stealing, true, "Make the stealing attacks (copy, distillation, fine-tuning, query attacks).");
ABSL_FLAG(bool, adaptive, true, "Make the adaptive attacks.");
ABSL_FLAG(bool, zero_shot, true, "Make the data-free (zero-shot) rows, the costliest on a CPU.");
ABSL_FLAG(bool, leaked_data, true, "Make the query attacks that use the victim's leaked (watermarked) training set.");
ABSL_FLAG(bool, multi_stage, true, "Make the multi-stage attacks.");
ABSL_FLAG(std::vector<std::string>, shadow, {},
          "Shadow architectures the bundle also covers (e.g. cnn-w2,wrn-16-1; 'none' for none; empty = the "
          "configuration's: none for quick, cnn-w2,wrn-16-1 for full); each adds populations to train.");
ABSL_FLAG(int, decoys, -1, "Decoy-styled benign members per architecture in the bundle (-1 = the configuration's).");
ABSL_FLAG(int, decoy_calibration, -1,
          "Rival-vendor calibration models (MOVE with another secret style) per architecture (-1 = the configuration's).");
ABSL_FLAG(int, augmented_calibration, -1,
          "Appearance-augmented calibration models per architecture (-1 = the configuration's).");
ABSL_FLAG(std::string, blackbox_design, "style-contrast",
          "Black-box design of the bundle: style-contrast or probability-difference (the paper's).");
ABSL_FLAG(uint64_t, independent_seed, 0, "Offset of the independent models' seeds: nonzero draws a fresh, held-out set.");
ABSL_FLAG(std::string, wider_arch, "", "Architecture of the 'wider net' independents (empty = the configuration's).");
ABSL_FLAG(std::string, other_arch, "", "Architecture of the 'other architecture' independents (empty = the configuration's).");
ABSL_FLAG(bool, whitebox, true, "Examine suspects in white-box mode (the costliest verification on a CPU).");
ABSL_FLAG(bool, fingerprint, true, "Build the UAP fingerprint verifier and examine suspects with it and the combined verdict.");
ABSL_FLAG(bool, label_agreement, true,
          "Build the label-agreement line into the bundle (the victim's mistakes on the test split, the bundle's benign "
          "models as its null) and examine suspects with it.");
ABSL_FLAG(bool, fingerprint_both_helper_sets, false,
          "With the query pool, also train the fingerprint encoder on the helpers made from the vendor's own data.");
ABSL_FLAG(int32_t, strong_attacker_epochs, -1,
          "Extra rows: query students and independent controls trained this many epochs (0 = none; -1 = the config's).");
ABSL_FLAG(int32_t, fingerprint_long_piracy, -1,
          "Extra fingerprint piracy helpers trained longer (label/logit/distillation students; -1 = the config's).");
ABSL_FLAG(bool, fingerprint_query_pool, true,
          "The fingerprint helpers' piracy students query the victim with a third disjoint split (the vendor's query pool) "
          "instead of the victim's own training images.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of data splits, embedding and every model.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");

namespace {

std::string UserPath(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd == nullptr || path.empty() || path[0] == '/') return path;
  return absl::StrCat(cwd, "/", path);
}

// A count flag where -1 means "the configuration's": below -1 is an error, not the default.
absl::Status CountOrDefault(const char* name, int value, int* field) {
  if (value < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": must be >= 0, or -1 for the configuration's, got ", value));
  }
  if (value >= 0) *field = value;
  return absl::OkStatus();
}

absl::Status Run(const std::string& command) {
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_RETURN_IF_ERROR(move::ResolveDevice(absl::GetFlag(FLAGS_device)).status());
  const std::string which = absl::GetFlag(FLAGS_config);
  move::redteam::HarnessConfig c;
  if (which == "quick") {
    c = move::redteam::QuickConfig();
  } else if (which == "full") {
    c = move::redteam::FullConfig();
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--config: expected quick or full, got '", which, "'"));
  }
  c.command = command;
  if (!absl::GetFlag(FLAGS_out).empty()) c.out_dir = absl::GetFlag(FLAGS_out);
  if (!absl::GetFlag(FLAGS_cache).empty()) c.cache_dir = absl::GetFlag(FLAGS_cache);
  c.out_dir = UserPath(c.out_dir);
  c.cache_dir = UserPath(c.cache_dir);
  // Shipped style images are found from the repository root, also under `bazel run`.
  if (const char* cwd = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    c.style_path = absl::StrCat(cwd, "/", c.style_path);
    c.attacker_style_path = absl::StrCat(cwd, "/", c.attacker_style_path);
  }
  if (absl::GetFlag(FLAGS_train_size) < 0) return absl::InvalidArgumentError("--train_size: must be >= 0");
  if (absl::GetFlag(FLAGS_train_size) > 0) c.train_size = absl::GetFlag(FLAGS_train_size);
  if (absl::GetFlag(FLAGS_epochs) < 0) return absl::InvalidArgumentError("--epochs: must be >= 0");
  if (absl::GetFlag(FLAGS_epochs) > 0) c.epochs = absl::GetFlag(FLAGS_epochs);
  const double gamma = absl::GetFlag(FLAGS_gamma);
  if (gamma < 0 || gamma > 1) return absl::InvalidArgumentError("--gamma: must be in (0, 1]");
  if (gamma > 0) c.gamma = gamma;
  if (absl::GetFlag(FLAGS_style_strength) < 0) return absl::InvalidArgumentError("--style_strength: must be > 0");
  if (absl::GetFlag(FLAGS_style_strength) > 0) c.style_strength = absl::GetFlag(FLAGS_style_strength);
  if (!absl::GetFlag(FLAGS_arch).empty()) c.arch = absl::GetFlag(FLAGS_arch);
  if (!absl::GetFlag(FLAGS_student_arch).empty()) c.student_arch = absl::GetFlag(FLAGS_student_arch);
  MOVE_RETURN_IF_ERROR(CountOrDefault("independents", absl::GetFlag(FLAGS_independents), &c.independents));
  MOVE_RETURN_IF_ERROR(
      CountOrDefault("robust_independents", absl::GetFlag(FLAGS_robust_independents), &c.robust_independents));
  if (absl::GetFlag(FLAGS_zero_shot_rounds) < 0) return absl::InvalidArgumentError("--zero_shot_rounds: must be >= 0");
  if (absl::GetFlag(FLAGS_zero_shot_rounds) > 0) c.attack.zero_shot_rounds = absl::GetFlag(FLAGS_zero_shot_rounds);
  c.stealing = absl::GetFlag(FLAGS_stealing);
  c.adaptive = absl::GetFlag(FLAGS_adaptive);
  c.zero_shot = absl::GetFlag(FLAGS_zero_shot);
  c.leaked_data = absl::GetFlag(FLAGS_leaked_data);
  c.multi_stage = absl::GetFlag(FLAGS_multi_stage);
  c.seed = absl::GetFlag(FLAGS_seed);
  MOVE_RETURN_IF_ERROR(CountOrDefault("decoys", absl::GetFlag(FLAGS_decoys), &c.decoys));
  MOVE_RETURN_IF_ERROR(CountOrDefault("decoy_calibration", absl::GetFlag(FLAGS_decoy_calibration), &c.decoy_calibration));
  MOVE_RETURN_IF_ERROR(
      CountOrDefault("augmented_calibration", absl::GetFlag(FLAGS_augmented_calibration), &c.augmented_calibration));
  c.blackbox_design = absl::GetFlag(FLAGS_blackbox_design);
  c.independent_seed = absl::GetFlag(FLAGS_independent_seed);
  c.whitebox = absl::GetFlag(FLAGS_whitebox);
  c.fingerprint = absl::GetFlag(FLAGS_fingerprint);
  c.label_agreement = absl::GetFlag(FLAGS_label_agreement);
  c.fingerprint_query_pool = absl::GetFlag(FLAGS_fingerprint_query_pool);
  c.fingerprint_both_helper_sets = absl::GetFlag(FLAGS_fingerprint_both_helper_sets);
  if (absl::GetFlag(FLAGS_fingerprint_long_piracy) >= 0) c.fingerprint_long_piracy = absl::GetFlag(FLAGS_fingerprint_long_piracy);
  if (absl::GetFlag(FLAGS_strong_attacker_epochs) >= 0) c.strong_attacker_epochs = absl::GetFlag(FLAGS_strong_attacker_epochs);
  if (!absl::GetFlag(FLAGS_wider_arch).empty()) c.wider_arch = absl::GetFlag(FLAGS_wider_arch);
  if (!absl::GetFlag(FLAGS_other_arch).empty()) c.other_arch = absl::GetFlag(FLAGS_other_arch);
  if (const std::vector<std::string> shadow = absl::GetFlag(FLAGS_shadow); !shadow.empty()) {
    c.shadow_architectures = shadow == std::vector<std::string>{"none"} ? std::vector<std::string>{} : shadow;
  }
  c.device = absl::GetFlag(FLAGS_device);
  MOVE_ASSIGN_OR_RETURN(move::redteam::HarnessResult r, move::redteam::RunHarness(c));
  std::printf("\n%s\nwrote %s/{results.md, results.json, scores_whitebox.png, scores_blackbox.png, reports/}\n",
              move::redteam::ResultsMarkdown(c, r).c_str(), c.out_dir.c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Runs every stealing and adaptive attack against a MOVE-protected model and tabulates "
                               "white-box and black-box verification.");
  std::vector<std::string> args(argv, argv + argc);
  args[0] = "move_redteam";
  const std::string command = absl::StrJoin(args, " ");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run(command);
  if (!s.ok()) {
    std::fprintf(stderr, "move_redteam: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
