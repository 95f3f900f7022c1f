// The red-team harness: trains a protected victim and its bundle, makes every stealing,
// multi-stage and adaptive attack of redteam/attacks.h plus independent models, examines each
// suspect with the bundle in white-box (where the bundle covers its architecture) and
// black-box mode (fixed m and sequential), and writes the results in the shape of the MOVE
// paper's Tables III/V.
//
//   move::redteam::HarnessConfig config = move::redteam::FullConfig();
//   absl::StatusOr<move::redteam::HarnessResult> r = move::redteam::RunHarness(config);
//   // config.out_dir: results.md, results.json, scores_whitebox.png, scores_blackbox.png,
//   //                 reports/<suspect>.{whitebox,blackbox,sequential}.json + transcripts
//
// Every model (victim, bundle population, suspects) is cached in config.cache_dir under the
// SHA-256 of everything that determines it (data, recipe, seed, attack, parent model), so a
// second run with the same settings trains nothing, and a run with one setting changed
// retrains only what depends on it.
#ifndef MOVE_REDTEAM_HARNESS_H_
#define MOVE_REDTEAM_HARNESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "redteam/attacks.h"
#include "sdk/dataset.h"
#include "sdk/fingerprint.h"
#include "sdk/label_agreement.h"
#include "sdk/verdict.h"

namespace move::redteam {

struct HarnessConfig {
  // Name shown in the tables ("quick", "full" or the caller's).
  std::string name = "full";
  // Fashion-MNIST directory (gzip IDX files).
  std::string data_dir = kDefaultFashionMnistDir;
  // The vendor's secret style image, and the adaptive attacker's own style image.
  std::string style_path = "testdata/style_leopard.png";
  std::string attacker_style_path = "testdata/style_pool.png";
  // Owner's training images (seeded subset); the next as many form the disjoint split that
  // attackers and independent models use. 0 test images = the whole test split.
  int64_t train_size = 15000;
  int64_t test_size = 0;
  int64_t styled_test_size = 1000;
  // Victim architecture, the attackers' student architecture, and the architectures of the
  // "wider" and "other architecture" independent models.
  std::string arch = "cnn";
  std::string student_arch = "cnn";
  std::string wider_arch = "cnn-w2";
  std::string other_arch = "wrn-16-1";
  // Training recipe of the victim, the bundle's populations, the students and independents.
  int epochs = 3;
  int batch_size = 128;
  double learning_rate = 0.05;
  // Embedding: transformation rate, style strength and style-engine fitting steps.
  double gamma = 0.1;
  double style_strength = 1.0;
  int64_t fit_steps = 300;
  // Bundle: watermarked/benign models per side, calibration models, verification samples.
  int population = 4;
  int calibration = 4;
  int verification_samples = 200;
  int train_samples = 600;
  int meta_epochs = 60;
  // Shadow architectures the bundle also trains populations of (white-box then covers them;
  // the black-box classifier learns from every architecture's populations).
  std::vector<std::string> shadow_architectures;
  // Decoy-styled benign members and calibration models per architecture
  // (BuildBundleOptions::decoy_members, decoy_calibration_models); the decoy styles are
  // move::DecoyStyleImage(1000 + i) and drawn into decoys.png.
  int decoys = 0;
  int decoy_calibration = 0;
  // Appearance-augmented calibration models per architecture
  // (BuildBundleOptions::augmented_calibration_models).
  int augmented_calibration = 0;
  // The black-box design (BuildBundleOptions::blackbox_design). Default: the SDK's.
  std::string blackbox_design = "style-contrast";
  // Examine suspects in white-box mode (the costliest verification on a CPU). Default: true.
  bool whitebox = true;
  // White-box: also report p at this small m (the paper's m = 10); 0 disables.
  int64_t whitebox_small_m = 10;
  // Black-box: fixed m (the bundle design's queries per sample each: 21 for style contrast,
  // 10 for the paper's), and the sequential test with its query cap (0 = the fixed test's).
  int64_t blackbox_m = 100;
  bool sequential = true;
  int64_t sequential_max_queries = 0;
  double alpha = 0.01;
  uint64_t seed = 0;
  // Independent models (never used by the bundle), spread over four kinds: owner's data with
  // another seed, the disjoint split, the wider net, the other architecture.
  int independents = 20;
  // Independent models of the kinds a style-specific line must clear, on the disjoint split
  // (their own data), in turn: a rival vendor's MOVE model (the watermark's engine, rate and
  // strength towards a procedural style the bundle never saw), an appearance-augmented model
  // (move::AugmentAppearance with an unseen seed) and a style-augmented one (three unseen
  // procedural styles, 10% of the images each). Never used by the bundle.
  int robust_independents = 0;
  // Stronger attackers: when > 0, extra rows train the query students (label-query,
  // logit-query, distillation on substitute data) and one independent control per kind of
  // data (owner's data, disjoint split) for this many epochs instead of the recipe's, to
  // show how detection depends on the attacker's effort (student fidelity).
  int strong_attacker_epochs = 0;
  // Offset of the independent models' seeds (and of the controls' benign model): a nonzero
  // value draws a fresh, held-out set of independents, e.g. to check a setting chosen by
  // looking at the default set.
  uint64_t independent_seed = 0;
  // Suspect groups to make.
  bool stealing = true;
  bool leaked_data = true;  // query attacks on the victim's (watermarked) training set
  bool zero_shot = true;    // the data-free rows (the costliest on a CPU)
  // Controls: the attacks that make unusual models (data-free students, RemovalNet, style
  // removal) run against a benign model of the owner's clean data instead of the victim.
  // They are independent models: a flag there comes from the attack, not the watermark.
  bool controls = true;
  bool multi_stage = true;
  bool adaptive = true;
  std::vector<double> benign_rates = {0.1, 0.5};
  AttackOptions attack;
  // UAP fingerprinting (sdk/fingerprint.h), the second line of evidence: the vendor makes
  // helper models with the attacks above on its own data (piracy students of the victim for
  // the encoder, independent models of its recipe for the encoder, held-out piracy models for
  // validation, held-out independents for the reference and calibration), all with seeds
  // disjoint from the suspects'. Every suspect is then also examined by fingerprint (fixed and
  // sequential) and by the combined verdict (Holm over the lines examined).
  bool fingerprint = true;
  // Label agreement on the victim's mistakes (sdk/label_agreement.h): built into the bundle
  // from the victim's errors on the test split and the bundle's own benign models (nothing is
  // trained for it); every suspect is examined by it and it joins the combined verdict.
  bool label_agreement = true;
  LabelAgreementBuildOptions label_agreement_options;
  // The vendor's query pool: train_size images of the domain that the victim was NOT trained
  // on (a held-out part of the vendor's data; here a third disjoint Fashion-MNIST split). The
  // piracy helpers query the victim with it, as an attacker with substitute data would, and
  // one independent helper kind trains on it with true labels, so that "trained on other
  // data" is not what the encoder learns. false: the piracy helpers query with the victim's
  // own (clean) training images, whose answers are nearly the true labels (stop 11's design,
  // which missed every query student on clean substitute data).
  bool fingerprint_query_pool = true;
  // With the query pool: also train the encoder on the piracy and independent helpers made
  // from the vendor's own data (twice the encoder's helper models; the held-out piracy and
  // calibration models stay those of the query-pool design).
  bool fingerprint_both_helper_sets = false;
  int fingerprint_piracy = 8;
  // Extra piracy helpers (label-query, logit-query, distillation in turn) trained for
  // fingerprint_long_piracy_epochs instead of the recipe's epochs: the vendor does not know
  // how long an attacker trains, so the encoder's piracy class spans that effort.
  int fingerprint_long_piracy = 3;
  int fingerprint_long_piracy_epochs = 8;
  int fingerprint_independents = 8;
  int fingerprint_held_out = 2;
  int fingerprint_calibration = 12;
  // Fingerprints per verification (2 x points_per_fingerprint queries each) and the
  // sequential test's query cap.
  int64_t fingerprints = 20;
  int64_t fingerprint_sequential_max_queries = 400;
  FingerprintBuildOptions fingerprint_options;
  std::string cache_dir = "out/redteam-cache";
  std::string out_dir = "out/redteam";
  std::string device = "cpu";
  bool show_progress = true;
  // How the run was started (recorded in the results).
  std::string command;
};

// Small settings that exercise every code path in a few minutes (the automated test).
HarnessConfig QuickConfig();
// The settings of the README's table (about an hour on 2 cores with an empty cache; zero-shot
// scaled to 400 rounds of 3 student steps).
HarnessConfig FullConfig();

struct MethodResult {
  bool examined = false;
  std::string note;  // why not examined, if so
  double delta_mu = 0, p_value = 1, log10_p = 0;
  double suspect_mean = 0;  // the suspect's mean score (label agreement: share of the victim's mistakes repeated)
  bool flagged = false;
  std::string verdict;
  Verdict outcome = VERDICT_UNSPECIFIED;
  int64_t queries = 0;
  bool in_range = true;  // the report's range check (suspect_in_range)
  double small_m_log10_p = 0;  // white-box at whitebox_small_m
  bool small_m_flagged = false;
  // The model-level test (report.proto model_level_*), and what the paired test alone (the
  // paper's rule, with the soundness and range checks) would have decided.
  bool model_level_tested = false;
  double model_level_log10_p = 0;
  bool model_level_reject = false;
  double model_level_score = 0;  // the suspect's value of the model-level statistic
  bool paired_flagged = false;
  std::vector<double> suspect_scores, reference_scores;
  // Wall-clock seconds of the verification (cost), and for the combined verdict the lines
  // that carried it.
  double seconds = 0;
  std::string decided_by;
  // Fingerprint line: top-class agreement with the victim on the clean and the UAP-perturbed
  // fingerprint points (report.proto fingerprint_*_agreement).
  double clean_agreement = 0, perturbed_agreement = 0;
};

struct HarnessRow {
  std::string name, group;  // group: source, stealing, multi-stage, adaptive, independent
  bool stolen = false;      // ground truth
  double clean_accuracy = 0, styled_accuracy = 0;
  MethodResult whitebox, blackbox, sequential;
  // UAP fingerprint (fixed number of fingerprints, sequential) and the combined verdict
  // (Holm over white-box where examined, black-box fixed m, fingerprint fixed).
  MethodResult fingerprint, fingerprint_sequential, combined;
  // Label agreement on the victim's mistakes (its score: the share of them repeated).
  MethodResult label_agreement;
  std::string model_path, model_key;
  bool from_cache = false;
};

struct HarnessResult {
  std::vector<HarnessRow> rows;
  double victim_clean_accuracy = 0, benign_clean_accuracy = 0;
  double victim_styled_accuracy = 0, benign_styled_accuracy = 0;
  int models_trained = 0, cache_hits = 0;
  double seconds = 0;
  std::string bundle_path, bundle_sha256;
  bool whitebox_sound = false, blackbox_sound = false;
  double whitebox_type1 = 0, whitebox_type2 = 0, blackbox_type1 = 0, blackbox_type2 = 0;
  // The fingerprint verifier: built, sound, validation errors, UAP fooling rates, victim's
  // positive control, and the helper models it cost.
  bool fingerprint_built = false, fingerprint_sound = false;
  double fingerprint_type1 = 0, fingerprint_type2 = 0, fingerprint_victim_log10_p = 0;
  std::vector<double> uap_fooling_rates;
  int fingerprint_helper_models = 0;
  int fingerprint_encoder_piracy = 0, fingerprint_encoder_independents = 0;  // models that trained the encoder
  double fingerprint_build_seconds = 0;
  // The label-agreement verifier: built, sound, leave-one-out Type-I, error images, benign models.
  bool label_agreement_built = false, label_agreement_sound = false;
  double label_agreement_type1 = 0;
  int label_agreement_errors = 0, label_agreement_benign_models = 0;
};

// 95% Wilson score interval of k successes in n trials.
std::pair<double, double> WilsonInterval(int k, int n);

// Runs the harness and writes its outputs (see the header comment). Errors name the step.
absl::StatusOr<HarnessResult> RunHarness(const HarnessConfig& config);

// The results as Markdown (what RunHarness writes to results.md).
std::string ResultsMarkdown(const HarnessConfig& config, const HarnessResult& result);

}  // namespace move::redteam

#endif  // MOVE_REDTEAM_HARNESS_H_
