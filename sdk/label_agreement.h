// Label agreement on the victim's mistakes: a line of ownership evidence for models stolen
// through a prediction API that needs only the suspect's top-1 labels. After the "agreement on
// known hard samples" idea of Godinot et al. (AAAI 2025).
//
// Independent models make the same easy mistakes, but a model trained to imitate the victim
// (a label- or logit-query student, a distilled or fine-tuned copy) also repeats the victim's
// own ones. At build time the vendor evaluates the victim on images of its data that the
// victim never trained on and keeps some of those it misclassifies (the error set) with the
// victim's labels, and some it classifies correctly (covers). For every held-out benign model
// of the bundle (other seeds, rival vendors, appearance augmentation: the null population a
// court asks about) it records on each error image whether that model's label equals the
// victim's. Nothing is trained, so every benign model is held out.
//
// Verification asks the suspect for the error set and the covers in one shuffled batch (an
// endpoint cannot tell which images matter) through the same channels, transcript and
// consistency repeats as the other query lines; answers are reduced to their top class (a
// label-only API's one-hot answers, which black-box MOVE refuses, are taken as they are). The
// score of error image i is 1 when the suspect's label is the victim's, else 0. Theft is
// claimed only when both tests reject at alpha, as in MOVE's rule:
// - the model-level test (the unit that matters is a model): the suspect's statistic against
//   the benign models' on the same images, the one-sided prediction-interval t-test of
//   verifier/significance.h with n - 1 degrees of freedom. The statistic (default) is the
//   rarity-weighted agreement: every model makes the easy mistakes, so mistake i counts by
//   w_i = 1 - (share of the benign models that repeat it), and a model's statistic is
//   sum_i w_i a_i / sum_i w_i. A benign model's own value is computed with weights from the
//   other benign models only (leave-one-out), so no model chooses the weights it is scored
//   with; the suspect's uses all of them. Independent models then stay where the benign ones
//   are while a student, which repeats the victim's particular mistakes, moves away from them
//   (docs/label-agreement.md measures both). The plain share of mistakes repeated is kept
//   selectable (LabelAgreementStatistic::kMean) for comparison;
// - the paired test: the suspect's per-image agreement against the benign reference's on the
//   same images (one-sided paired t-test). With hundreds of images it alone would flag an
//   independent model that agrees a little more than the reference; it is the companion,
//   the model-level test the guard.
// The build-time soundness check applies that rule to every calibration model against the
// others (leave-one-out); a bundle whose check flags one gives "inconclusive", never "stolen".
// A suspect below min_relative_accuracy x the reference's accuracy on the covers (ordinary
// images the victim gets right; the error images are hard by construction) is outside the
// range the check vouches for (a weak model is wrong often, and often in the victim's
// direction): "inconclusive" too.
//
// Vendor (after move::BuildBundle, reusing the benign models it trained):
//
//   move::TrainedModels trained;
//   absl::StatusOr<move::BundleContents> contents = move::BuildBundle(in, recipe, {}, nullptr, &trained);
//   move::LabelAgreementBuildInputs la;
//   la.victim = &victim;
//   la.pool = &vendor_held_out;                    // images no benign model nor the victim trained on
//   for (auto& t : trained.held_out) la.benign.push_back({t.role, t.architecture, t.model});  // reference first
//   for (auto& t : trained.benign) la.benign.push_back({t.role, t.architecture, t.model});
//   absl::StatusOr<move::LabelAgreementVerifier> v = move::BuildLabelAgreementVerifier(la, {});
//   *contents->mutable_label_agreement() = *v;     // then move::WriteBundle signs it with the rest
//
// Legal team:
//
//   absl::StatusOr<move::VerificationReport> r = move::VerifyLabelAgreement(bundle, channel, {});
//   absl::StatusOr<move::CombinedVerdict> c = move::CombineEvidence({*move_report, *fp, *r}, 0.01);
#ifndef MOVE_SDK_LABEL_AGREEMENT_H_
#define MOVE_SDK_LABEL_AGREEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/dataset.h"
#include "sdk/fingerprint.h"
#include "sdk/report.pb.h"

namespace move {

struct LabelAgreementBuildInputs {
  // The victim, whose mistakes define the error set.
  const torch::jit::Module* victim = nullptr;
  // The vendor's images that neither the victim nor any benign model below trained on (RGB in
  // [0, 1], true labels), e.g. its test split. The victim's errors there form the error set.
  const Dataset* pool = nullptr;
  // Held-out benign models (FingerprintModel: name, architecture, model, kind): the first is
  // the paired test's reference, the others the calibration models of the soundness check;
  // all form the model-level test's benign sample. At least 3; the more, the more power. As
  // for the fingerprint line, the check passes only when the calibration models include a
  // rival-vendor and an appearance-augmented one (kind as in move::TrainedModel::role).
  std::vector<FingerprintModel> benign;
  // Validation only: models derived from the victim (their miss rate is the bundle's Type-II
  // estimate). May be empty.
  std::vector<FingerprintModel> held_out_piracy;
};

// The model-level test's statistic (see above). The bundle records it (method
// "label-agreement-v2" for kRarityWeighted, "label-agreement-v1" for kMean) and verification
// uses the one the soundness check was run with.
enum class LabelAgreementStatistic { kRarityWeighted, kMean };

struct LabelAgreementBuildOptions {
  // Error images kept (at most; all the victim makes in the pool when fewer) and covers.
  // Defaults: 800 and 200, so that a verification costs 1,000 label queries.
  int64_t errors = 800;
  int64_t covers = 200;
  // Level of the soundness check and of the validation figures. Default: 0.01.
  double alpha = 0.01;
  // Seed of the draw of errors and covers. Default: 0.
  uint64_t seed = 0;
  // Default: kRarityWeighted.
  LabelAgreementStatistic statistic = LabelAgreementStatistic::kRarityWeighted;
  bool show_progress = true;
};

// Evaluates the victim and every benign model on the pool (8-bit images, as sent), chooses the
// error set and the covers, runs the soundness check and returns the verifier (put it into
// BundleContents::label_agreement before signing). kInvalidArgument for missing inputs, fewer
// than 3 benign models, bad options, or a victim with fewer than 10 errors in the pool.
absl::StatusOr<LabelAgreementVerifier> BuildLabelAgreementVerifier(const LabelAgreementBuildInputs& inputs,
                                                                   const LabelAgreementBuildOptions& options = {});

struct LabelAgreementVerifyOptions {
  // Error images to ask (with the covers in the bundle's proportion); 0 = all. Default: 0.
  int64_t errors = 0;
  double alpha = 0.01;
  // Seed of the subset and of the query order. Default: 0.
  uint64_t seed = 0;
  // Hard cap on images sent (covers included); 0 = what the subset needs. Default: 0.
  int64_t max_queries = 0;
  int64_t images_per_request = 50;
  // Accept logits (softmax is applied; the top class is the same). Default: false.
  bool accept_logits = false;
  // Transcript (JSON Lines) of every request and answer; must not exist yet. Empty: none.
  std::string transcript_path;
  bool show_progress = true;
  // Range check: the suspect's accuracy on the covers asked against the reference's (on the
  // error images when the bundle has no covers). Default: 0.5.
  double min_relative_accuracy = 0.5;
  // Consistency repeats as in BlackBoxOptions. Defaults: 0.05, 0.01.
  double repeat_share = 0.05;
  double repeat_tolerance = 0.01;
};

// Label-agreement verification of the suspect behind `channel` (mode "label-agreement" in the
// report; suspect_scores are its per-image agreements, reference_scores the reference's).
// kFailedPrecondition if the bundle has no label-agreement verifier, kDataLoss for one whose
// data do not match their SHA-256 or shapes, kInvalidArgument for bad options,
// kResourceExhausted when max_queries does not cover the images.
absl::StatusOr<VerificationReport> VerifyLabelAgreement(const OpenedBundle& bundle, SuspectChannel& channel,
                                                        const LabelAgreementVerifyOptions& options = {});

}  // namespace move

#endif  // MOVE_SDK_LABEL_AGREEMENT_H_
