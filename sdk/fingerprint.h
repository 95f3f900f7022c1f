// UAP fingerprinting: a second line of ownership evidence, made for models stolen through a
// prediction API (query stealing), which MOVE's external feature does not survive at the
// scales measured (README, "Red-team harness"). After Peng et al., "Fingerprinting Deep Neural
// Networks Globally via Universal Adversarial Perturbations" (CVPR 2022).
//
// The victim's universal adversarial perturbations (UAPs) characterise its decision
// boundary; models extracted from it share it far more than independent models do. A
// suspect's fingerprint is its probability vectors on a few points x (one per k-means cluster
// of the vendor's held-out images) and on x + UAP; an encoder trained with supervised
// contrastive learning on fingerprints of the victim and of piracy models (students the vendor
// made with the red-team attacks) against independent models maps them so that
// the cosine similarity to the victim's fingerprint separates the two. Verification compares
// the suspect's per-fingerprint similarity with a held-out independent reference's (one-sided
// paired t-test, or the anytime-valid sequential test) and with the calibration models'
// (model-level test), exactly like MOVE's rule; the bundle holds everything to reproduce it.
//
// Vendor (after training the victim; the bundle builder never sees the suspects). The piracy
// helpers are students of the victim that the vendor makes as a thief would (e.g. distilled
// with move::TrainOptions::teacher on images the victim never trained on); the independents
// and the calibration models can be the benign models move::BuildBundle already trained, so
// that this line is checked against the same null population (rival-vendor and
// appearance-augmented models included) as white-box and black-box:
//
//   move::TrainedModels trained;
//   absl::StatusOr<move::BundleContents> contents = move::BuildBundle(in, recipe, {}, nullptr, &trained);
//   move::FingerprintBuildInputs fin;
//   fin.victim = &victim; fin.point_pool = &vendor_train; fin.verification_pool = &vendor_test;
//   fin.piracy = {...};                                           // the students
//   for (auto& t : trained.benign) fin.independent.push_back({t.role, t.architecture, t.model});
//   for (auto& t : trained.held_out) fin.calibration.push_back({t.role, t.architecture, t.model, t.role});
//   absl::StatusOr<move::FingerprintVerifier> fv = move::BuildFingerprintVerifier(fin, {});
//   *contents->mutable_fingerprint() = *fv;  // then move::WriteBundle signs it with the rest
//
// examples/vendor_main.cc does exactly this (3 students and 1 independent on a query pool).
//
// Legal team:
//
//   absl::StatusOr<move::VerificationReport> fp = move::VerifyFingerprint(bundle, channel, {});
//   absl::StatusOr<move::CombinedVerdict> v = move::CombineEvidence({*move_report, *fp}, 0.01);
#ifndef MOVE_SDK_FINGERPRINT_H_
#define MOVE_SDK_FINGERPRINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/dataset.h"
#include "sdk/report.pb.h"

namespace move {

// A model that helps build the fingerprint verifier (never a suspect).
struct FingerprintModel {
  std::string name;
  std::string architecture;
  torch::jit::Module model;
  // Calibration models only: what the model stands for in the null population, one of
  // move::TrainedModel::role's values ("reference", "calibration", "benign population",
  // "rival-vendor calibration", "appearance-augmented calibration"); empty means
  // "calibration". Ignored for the other lists.
  std::string kind;
};

struct FingerprintBuildInputs {
  // The victim (its UAPs and fingerprint define the verifier).
  const torch::jit::Module* victim = nullptr;
  // The vendor's images for the UAPs and for the encoder's training fingerprints (RGB, in
  // [0, 1]; labels used only for the range check), and held-out images for the verification
  // fingerprints. They must not share images.
  const Dataset* point_pool = nullptr;
  const Dataset* verification_pool = nullptr;
  // Encoder training: models derived from the victim (students, fine-tuned copies), and
  // independent models (the vendor's recipe on its own clean data, other seeds, subsets,
  // architectures). At least 1 and 2.
  // Make the students as an attacker would: query the victim with images of the domain it
  // was NOT trained on (a held-out part of your data, or public data), and vary their
  // training length. On its own training images the victim answers nearly the true labels,
  // so students of those look like independent models and the encoder learns the wrong
  // contrast (README, "Measured: full configuration with fingerprints": every clean-data
  // query student missed that way). Train one kind of independent model on those same
  // held-out images with their true labels, so the data alone does not separate the classes.
  // More held-out independents in `calibration` give the model-level test more power (the
  // red-team harness uses 12).
  std::vector<FingerprintModel> piracy;
  std::vector<FingerprintModel> independent;
  // Validation only: piracy models the encoder never saw (their miss rate is the bundle's
  // Type-II estimate). May be empty.
  std::vector<FingerprintModel> held_out_piracy;
  // Held-out independent models: the first is the reference of the paired test, the others
  // the calibration models of the soundness check; all form the model-level test's benign
  // sample. At least 3. The line passes its soundness check only when the calibration
  // models (after the reference) include at least one rival-vendor model (benign, watermarked
  // by MOVE with another secret style) and one appearance-augmented model, and none of them
  // is flagged: models of those kinds are the independents most like a stolen one, and a
  // fingerprint checked only against plain benign models accused them (docs/
  // held-out-independents.md). move::TrainedModels::held_out holds both kinds, with their kind
  // in `role`.
  std::vector<FingerprintModel> calibration;
};

struct FingerprintBuildOptions {
  // UAPs (fingerprint j uses UAP j mod uaps), their L-infinity bound on [0, 1] pixels, and
  // the gradient-sign ascent that finds them (epochs over uap_images pool images, step).
  // Defaults: 2, 0.15, 8, 2000, 0.01.
  int uaps = 2;
  double epsilon = 0.15;
  int uap_epochs = 8;
  int64_t uap_images = 2000;
  double uap_step = 0.01;
  // Points per fingerprint (k-means clusters, one point from each). Default: 10.
  int points_per_fingerprint = 10;
  // Fingerprints per model for encoder training (from point_pool), and verification
  // fingerprints stored in the bundle (from verification_pool). Defaults: 60, 40.
  int train_fingerprints = 60;
  int verification_fingerprints = 40;
  // Encoder: hidden and output widths, full-batch Adam steps, learning rate, SupCon
  // temperature. Defaults: 128, 32, 300, 1e-3, 0.1.
  int64_t hidden = 128;
  int64_t embedding = 32;
  int encoder_steps = 300;
  double encoder_lr = 1e-3;
  double temperature = 0.1;
  // Level of the soundness check and of the validation figures. Default: 0.01.
  double alpha = 0.01;
  uint64_t seed = 0;
  bool show_progress = true;
};

// Computes the victim's UAPs, chooses the points, trains the encoder, tests the held-out
// models and returns the verifier (put it into BundleContents::fingerprint before signing).
// kInvalidArgument for missing inputs, too few models or bad options.
absl::StatusOr<FingerprintVerifier> BuildFingerprintVerifier(const FingerprintBuildInputs& inputs,
                                                             const FingerprintBuildOptions& options = {});

struct FingerprintVerifyOptions {
  // Fingerprints to use (each costs 2 x points_per_fingerprint queries); 0 = all in the
  // bundle. Default: 20 (the paper's figure).
  int64_t fingerprints = 20;
  double alpha = 0.01;
  // Seed of the fingerprint subset and of the query order. Default: 0.
  uint64_t seed = 0;
  // Sequential mode: the anytime-valid betting test after every fingerprint, stopping as soon
  // as p < alpha. Default: false.
  bool sequential = false;
  // Hard cap on images sent; 0 = what the fingerprints need. Default: 0.
  int64_t max_queries = 0;
  int64_t images_per_request = 50;
  bool accept_logits = false;
  // Transcript (JSON Lines) of every request and answer; must not exist yet. Empty: none.
  std::string transcript_path;
  bool show_progress = true;
  // Range check as in BlackBoxOptions (the suspect's accuracy on the clean points against the
  // reference's). Default: 0.5.
  double min_relative_accuracy = 0.5;
  // Consistency repeats as in BlackBoxOptions. Defaults: 0.05, 0.01.
  double repeat_share = 0.05;
  double repeat_tolerance = 0.01;
};

// Fingerprint verification of the suspect behind `channel` (mode "fingerprint" in the
// report). kFailedPrecondition if the bundle has no fingerprint verifier.
absl::StatusOr<VerificationReport> VerifyFingerprint(const OpenedBundle& bundle, SuspectChannel& channel,
                                                     const FingerprintVerifyOptions& options = {});

// Combines the reports of several lines of evidence on one suspect (white-box, black-box,
// fingerprint, label agreement) with Holm's step-down rule at `alpha`: the probability that an independent
// model is flagged by the combined verdict is at most alpha whatever the lines' dependence.
// Each line enters with the larger of its paired and model-level p-values, or p = 1 when the
// suspect is out of its range or answered inconsistently. A line whose classifier failed the
// bundle's soundness check leaves Holm's family (EvidenceLine::excluded_from_family): that is
// known from the bundle before the examination, so the guarantee holds over the remaining
// lines and an unsound line does not raise the bar for the sound ones. kInvalidArgument for no
// reports or alpha outside (0, 1).
absl::StatusOr<CombinedVerdict> CombineEvidence(const std::vector<VerificationReport>& reports, double alpha);

// The combined verdict as indented JSON.
std::string CombinedToJson(const CombinedVerdict& verdict);

}  // namespace move

#endif  // MOVE_SDK_FINGERPRINT_H_
