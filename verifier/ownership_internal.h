// Pieces shared by white-box and black-box bundle building and verification.
#ifndef MOVE_VERIFIER_OWNERSHIP_INTERNAL_H_
#define MOVE_VERIFIER_OWNERSHIP_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/api/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/bundle.pb.h"
#include "sdk/ownership.h"
#include "sdk/report.pb.h"
#include "sdk/verdict.h"
#include "verifier/channels.h"
#include "verifier/sequential.h"
#include "verifier/verdict_internal.h"

namespace move::verifier_internal {

// Styled images, their clean originals and labels; for the style-contrast black-box design
// also the clean originals styled towards decoy styles (D x N x C x H x W).
struct SampleSet {
  at::Tensor styled, clean, labels;
  at::Tensor decoys;
};

// The models one architecture's verifier was built from.
struct PopulationModels {
  std::string architecture;
  std::vector<torch::jit::Module> watermarked, benign, calibration;
  // Students distilled from watermarked / benign members (training only, never validation).
  std::vector<torch::jit::Module> students_watermarked, students_benign;
  // Benign models trained on decoy-styled data (training only, on the benign side).
  std::vector<torch::jit::Module> decoys;
  // The benign-table kind of each calibration model: "calibration", "rival-vendor
  // calibration" or "appearance-augmented calibration" (sdk/bundle.proto, BenignScores).
  std::vector<std::string> calibration_kinds;
  torch::jit::Module reference;
  // The victim (for the victim's architecture) or a shadow victim; `is_victim` tells which.
  torch::jit::Module positive;
  bool is_victim = false;
};

// A suspect's weights in the SDK's own model of the bundle architecture they fit.
struct MatchedSuspect {
  const ArchitectureVerifier* verifier = nullptr;
  ModelSpec spec;
  torch::jit::Module model;
  // Tensors of the file the architecture does not have (ignored; reported).
  std::vector<std::string> unused;
};

// The first of the bundle's architectures whose SDK model finds all its parameters and
// buffers in `weights` by name and shape (extra tensors are listed in `unused`), with the
// weights loaded on `device`. kFailedPrecondition naming the architectures and why the first did not fit when
// none does; kInvalidArgument for unusable weights (NaN, non-float).
absl::StatusOr<MatchedSuspect> MatchArchitecture(const BundleContents& c, const ModelWeights& weights, c10::Device device);

// TorchScript archive bytes of a module, and back (eval mode, on `device`).
absl::StatusOr<std::string> ModuleBytes(const torch::jit::Module& m);
absl::StatusOr<torch::jit::Module> ModuleFromBytes(const std::string& bytes, c10::Device device);

std::vector<double> ToVector(const at::Tensor& t);

// The bundle's verification samples, checked against their SHA-256 (kDataLoss otherwise).
absl::StatusOr<SampleSet> LoadVerificationSamples(const BundleContents& c);
std::string VerificationSamplesSha(const at::Tensor& xs, const at::Tensor& xc, const at::Tensor& y);

// Indices (sorted) of the m samples out of `available` a verification with `seed` uses; all
// of them when m == available. kInvalidArgument for m outside [2, available].
absl::StatusOr<at::Tensor> VerificationSubset(int64_t available, int64_t m, uint64_t seed);

// The decision part of a report (r->m() must be set): Theorem 1's minimum m (warning when
// m is below it and `warn_below_minimum`), the verdict, and "inconclusive" instead of a theft
// claim when the classifier failed its soundness check. `which`: "white-box" or "black-box".
void Decide(bool reject, bool sound, const std::string& unsound_reason, const char* which, double type1, double type2,
            double alpha, bool warn_below_minimum, VerificationReport* r);

// The range check after Decide: records the accuracies and, when the suspect's clean
// accuracy is below min_relative x the reference's, turns a theft claim into "inconclusive"
// (a "not stolen" answer gets a warning instead).
// Model-level test of a decided report (see report.proto, model_level_*): the suspect's mean
// score against the mean scores of the bundle's held-out benign models over the same bundle
// sample indices. A paired-test "stolen" becomes "not stolen" when the model-level test does
// not reject. Bundles without benign scores: skipped with a warning. kDataLoss for a benign
// score table that does not cover the samples.
absl::Status ApplyModelLevelTest(const google::protobuf::RepeatedPtrField<BenignScores>& benign,
                                 const std::vector<int64_t>& sample_indices, double suspect_mean, double alpha,
                                 VerificationReport* r);

// The same test on statistics the caller computed: `benign_statistics[k]` is benign table
// entry k's (its kind and architecture are recorded beside it), `suspect_statistic` the
// suspect's, `statistic` their name in reports and verdicts ("mean score" above).
absl::Status ApplyModelLevelStatistic(const google::protobuf::RepeatedPtrField<BenignScores>& benign,
                                      const std::vector<double>& benign_statistics, double suspect_statistic,
                                      const std::string& statistic, double alpha, VerificationReport* r);

// The verdict rule's model-level half on benign table entry k (a calibration model): its mean
// score over all samples against the other entries' (leave-one-out). With fewer than 2
// others there is nothing to test against and the answer is true (the paired test alone
// decides, as before the model-level test existed). `log10_p` gets the test's log10 p (0 then).
bool LeaveOneOutModelLevelRejects(const google::protobuf::RepeatedPtrField<BenignScores>& table, int k, double alpha,
                                  double* log10_p);

// A leave-one-out model-level test with LeaveOneOutModelLevelRejects' contract: a line whose
// model-level statistic is not the mean score passes its own to CheckSoundness.
using LeaveOneOutTest = std::function<bool(const google::protobuf::RepeatedPtrField<BenignScores>& table, int k,
                                           double alpha, double* log10_p)>;

// One calibration model's scores for the soundness check.
struct CalibrationScores {
  at::Tensor scores;  // per verification sample, the bundle's order
  std::string kind;   // its benign-table kind (PopulationModels::calibration_kinds)
  std::string architecture;
};

// A calibration kind in words, for reasons and reports: "benign", "rival-vendor MOVE model
// (another secret style)" or "appearance-augmented benign".
std::string DescribeCalibrationKind(const std::string& kind);

// Whether `kind` names a benign model of the null population, as callers label their
// calibration models (move::TrainedModel::role): "", "reference", "calibration", "benign
// population", "rival-vendor calibration" or "appearance-augmented calibration".
bool IsNullPopulationKind(const std::string& kind);

// kInvalidArgument naming `what`[i] for the first of `kinds` that IsNullPopulationKind refuses.
absl::Status CheckNullPopulationKinds(const std::vector<std::string>& kinds, const std::string& what);

// The benign-table kind a calibration model labelled `kind` is recorded under: "calibration"
// for "" and "reference" (a reference of another architecture is a plain benign model), else
// `kind`.
std::string CalibrationKindOf(const std::string& kind);

// What keeps a line checked against calibration models of these kinds (the reference left
// out) from being sound before any model is tested: one reason per missing kind of the null
// population a court will ask about (a rival-vendor MOVE model, an appearance-augmented
// model). Empty when both are present.
std::vector<std::string> NullPopulationGaps(const std::vector<std::string>& calibration_kinds);

// The build-time soundness check of one line: appends each calibration model's scores to
// `table` (which already holds the reference's, first) and its paired log10 p against the
// reference to `calibration_log10_p`, then applies the verdict rule to each (the paired test
// and the leave-one-out model-level test `leave_one_out` must both reject for a flag). Returns "" when no
// calibration model is flagged, else the reason naming the first flagged one (index,
// architecture, kind).
absl::StatusOr<std::string> CheckSoundness(const std::vector<CalibrationScores>& calibration,
                                           const at::Tensor& reference_scores, double alpha,
                                           google::protobuf::RepeatedPtrField<BenignScores>* table,
                                           google::protobuf::RepeatedField<double>* calibration_log10_p,
                                           const LeaveOneOutTest& leave_one_out = LeaveOneOutModelLevelRejects);

// Appends the record of a model that took part in building a verifier (its role, name,
// architecture, the SHA-256 of its TorchScript bytes, the verdict rule's log10 p on it and
// whether the rule flagged it).
void AddModelRecord(const std::string& role, const std::string& name, const std::string& architecture,
                    const torch::jit::Module& model, double log10_p, bool flagged,
                    google::protobuf::RepeatedPtrField<FingerprintModelRecord>* records);

// Appends a held-out benign model's scores to a verifier's table.
void AddBenignScores(const at::Tensor& scores, const std::string& kind, const std::string& architecture,
                     google::protobuf::RepeatedPtrField<BenignScores>* table);

void ApplyRangeCheck(double suspect_accuracy, double reference_accuracy, double min_relative, VerificationReport* r);

// The statistics of a query-based report (black-box MOVE, fingerprint) from paired scores:
// delta_mu and its interval from the one-sided paired t-test; p from the betting test when
// `sequential` (with `sequential_test` as the test's name and a warning when the query cap
// stopped it), else from the t-test (its method + `fixed_test_suffix`); m, alpha and the mean
// scores. Returns whether the chosen test rejects at alpha.
absl::StatusOr<bool> SetQueryStatistics(const std::vector<double>& suspect, const std::vector<double>& reference,
                                        const BettingTest& betting, bool sequential, const std::string& sequential_test,
                                        const std::string& fixed_test_suffix, bool budget_stop, int64_t max_queries,
                                        double alpha, VerificationReport* r);

// The settings every query line shares, checked alike: kInvalidArgument unless alpha is in
// (0, 1), max_queries >= 0, images_per_request >= 1, the repeat share in [0, 0.5], the repeat
// tolerance and min_relative_accuracy in [0, 1]; the message names the setting.
absl::Status ValidateQueryOptions(double alpha, int64_t max_queries, int64_t images_per_request, double repeat_share,
                                  double repeat_tolerance, double min_relative_accuracy);

// The query record of such a report: queries and cap, mode, channel, softmax warning, the
// transcript's path and SHA-256 (when `transcript_path` is not empty), the suspect's hash and
// the consistency repeats; a client that saw a repeated image answered beyond its tolerance
// makes the report "inconclusive: inconsistent answers" whatever it said before.
absl::Status RecordQueries(const QueryClient& client, SuspectChannel& channel, const std::string& transcript_path,
                           int64_t max_queries, bool sequential, bool stopped_early, VerificationReport* r);

// Provenance of a report: bundle hash and signer, SDK version, seed, device, threads, seconds.
void FillProvenance(const OpenedBundle& bundle, uint64_t seed, const std::string& device,
                    std::chrono::steady_clock::time_point start, VerificationReport* r);

// Builds the black-box verifier from every architecture's populations (first entry: the
// victim's architecture, whose reference becomes the black-box reference).
absl::Status BuildBlackBoxVerifier(const std::vector<PopulationModels>& populations, const SampleSet& train,
                                   const SampleSet& verification, const BuildBundleOptions& options, uint64_t seed,
                                   BlackBoxVerifier* v);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_OWNERSHIP_INTERNAL_H_
