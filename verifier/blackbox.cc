// Black-box bundle building and verification (implements sdk/blackbox.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/util/json_util.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/blackbox.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/prediction_protocol.pb.h"
#include "sdk/runtime.h"
#include "sdk/version.h"
#include "verifier/blackbox_features.h"
#include "verifier/channels.h"
#include "verifier/meta_classifier.h"
#include "verifier/ownership_internal.h"
#include "verifier/sequential.h"
#include "verifier/significance.h"

namespace move {
namespace verifier_internal {
namespace {

constexpr char kBlackBoxKind[] = "blackbox-probability-difference";
constexpr char kContrastKind[] = "blackbox-style-contrast";

MetaClassifierOptions BlackBoxClassifierOptions(int epochs, uint64_t seed, bool show_progress) {
  MetaClassifierOptions mo;
  mo.l2_normalize = false;  // the size of the probability shift is the signal
  mo.hidden_divisor1 = 2;   // d = 5K is small (50 for 10 classes): 5K -> 5K/2 -> 5K/4 -> 2
  mo.hidden_divisor2 = 4;
  mo.epochs = epochs;
  mo.seed = seed;
  mo.show_progress = show_progress;
  return mo;
}

// The 10 n query images of n samples, unshuffled: 5 augmentations of the styled images, then
// 5 of the clean ones (augmentation major).
absl::StatusOr<at::Tensor> QueryImages(const at::Tensor& styled, const at::Tensor& clean, int64_t shift) {
  MOVE_ASSIGN_OR_RETURN(at::Tensor as, AugmentFive(Quantize8Bit(styled), shift));
  MOVE_ASSIGN_OR_RETURN(at::Tensor ac, AugmentFive(Quantize8Bit(clean), shift));
  return core::GuardTorch("building query images", [&]() -> absl::StatusOr<at::Tensor> {
    const int64_t n = styled.size(0);
    return torch::cat({as.reshape({5 * n, styled.size(1), styled.size(2), styled.size(3)}),
                       ac.reshape({5 * n, styled.size(1), styled.size(2), styled.size(3)})})
        .contiguous();
  });
}

// Features from the 10 n x K probabilities of QueryImages' images.
absl::StatusOr<at::Tensor> FeaturesFromProbabilities(const at::Tensor& p, int64_t n) {
  const int64_t k = p.size(1);
  return ProbabilityDifferences(p.narrow(0, 0, 5 * n).reshape({5, n, k}), p.narrow(0, 5 * n, 5 * n).reshape({5, n, k}));
}

}  // namespace

// One black-box design over a set of samples: which images are sent for a sample and how the
// answers become its score. Building (local models), verification (the suspect's answers,
// the reference) and offline export all go through it, so they cannot disagree.
//
// Layouts of the query images of n samples, before the round's shuffle:
//   probability difference: 5 n styled (augmentation major), 5 n clean;          10 per sample
//   style contrast: 5 n secret-styled, D x 5 n decoy-styled (decoy major), n clean; 5 (1 + D) + 1
class QueryPlan {
 public:
  static QueryPlan ProbabilityDifference(SampleSet samples, int64_t shift, MetaClassifier classifier) {
    QueryPlan p(std::move(samples), shift);
    p.classifier_ = std::move(classifier);
    return p;
  }
  static QueryPlan StyleContrast(SampleSet samples, int64_t shift) { return QueryPlan(std::move(samples), shift); }

  bool contrast() const { return !classifier_.has_value(); }
  int64_t decoys() const { return contrast() ? samples_.decoys.size(0) : 0; }
  int64_t images_per_sample() const { return contrast() ? 5 * (1 + decoys()) + 1 : 10; }
  const SampleSet& samples() const { return samples_; }

  // The query images of samples `idx` (indices into samples()), unshuffled.
  absl::StatusOr<at::Tensor> Images(const at::Tensor& idx) const {
    const at::Tensor styled = samples_.styled.index_select(0, idx), clean = samples_.clean.index_select(0, idx);
    if (!contrast()) return QueryImages(styled, clean, shift_);
    std::vector<at::Tensor> parts;
    const int64_t n = idx.size(0);
    const auto flat = [&](const at::Tensor& a) { return a.reshape({5 * n, styled.size(1), styled.size(2), styled.size(3)}); };
    MOVE_ASSIGN_OR_RETURN(at::Tensor secret, AugmentFive(Quantize8Bit(styled), shift_));
    parts.push_back(flat(secret));
    for (int64_t d = 0; d < decoys(); ++d) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor a, AugmentFive(Quantize8Bit(samples_.decoys[d].index_select(0, idx)), shift_));
      parts.push_back(flat(a));
    }
    parts.push_back(Quantize8Bit(clean));
    return core::GuardTorch("building query images", [&]() -> absl::StatusOr<at::Tensor> { return torch::cat(parts).contiguous(); });
  }

  // Scores of samples `idx` from the probabilities of Images(idx), in the same order.
  absl::StatusOr<at::Tensor> Scores(const at::Tensor& p, const at::Tensor& idx) const {
    const int64_t n = idx.size(0), k = p.size(1);
    if (!contrast()) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor f, FeaturesFromProbabilities(p, n));
      return classifier_->Score(f);
    }
    return StyleContrastScores(p.narrow(0, 0, 5 * n).reshape({5, n, k}),
                               p.narrow(0, 5 * n, 5 * n * decoys()).reshape({decoys(), 5, n, k}),
                               samples_.labels.index_select(0, idx));
  }

  // The n x K answers to the unaugmented clean images among the probabilities of Images(idx).
  at::Tensor CleanAnswers(const at::Tensor& p, int64_t n) const {
    return p.narrow(0, contrast() ? 5 * n * (1 + decoys()) : 5 * n, n);
  }

  // Scores of a local model on every sample. The query images of all samples are built once
  // per plan (building scores every population and calibration model with them).
  absl::StatusOr<at::Tensor> ModelScores(const torch::jit::Module& model) const {
    const at::Tensor all = torch::arange(samples_.labels.size(0), torch::kInt64);
    if (!all_images_.defined()) {
      MOVE_ASSIGN_OR_RETURN(all_images_, Images(all));
    }
    torch::jit::Module m = model;
    MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(m, all_images_));
    return Scores(p, all);
  }

 private:
  QueryPlan(SampleSet samples, int64_t shift) : samples_(std::move(samples)), shift_(shift) {}
  SampleSet samples_;
  int64_t shift_;
  std::optional<MetaClassifier> classifier_;
  mutable at::Tensor all_images_;  // Images(all samples), on first use
};

namespace {

int64_t ShiftOf(const BlackBoxVerifier& v) {
  auto it = v.features().parameters().find("shift");
  int64_t shift = 0;
  if (it == v.features().parameters().end() || !absl::SimpleAtoi(it->second, &shift)) return 0;
  return shift;
}

// Probability difference: the paper's meta-classifier, trained on every architecture's
// populations (watermarked 1, benign 0) and validated on one held-out pair per architecture.
absl::StatusOr<QueryPlan> TrainProbabilityDifference(const std::vector<PopulationModels>& populations,
                                                     const SampleSet& train, const SampleSet& ver,
                                                     const BuildBundleOptions& o, uint64_t seed, BlackBoxVerifier* v) {
  const int64_t shift = o.blackbox_shift;
  std::vector<at::Tensor> train_x, train_y, val_x, val_y, extra_x, extra_y;
  const int64_t p = train.labels.size(0);
  int watermarked = 0, benign = 0;
  int64_t total = 0;
  for (const auto& pop : populations) total += 2 * pop.watermarked.size();
  core::Progress progress("black-box features", total, o.show_progress);
  int64_t done = 0;
  MOVE_ASSIGN_OR_RETURN(const at::Tensor q, QueryImages(train.styled, train.clean, shift));
  auto model_features = [&](const torch::jit::Module& model) -> absl::StatusOr<at::Tensor> {
    torch::jit::Module m = model;
    MOVE_ASSIGN_OR_RETURN(at::Tensor probs, PredictProbabilities(m, q));
    return FeaturesFromProbabilities(probs, p);
  };
  for (const auto& pop : populations) {
    for (size_t i = 0; i < pop.watermarked.size(); ++i) {
      const bool held_out = i + 1 == pop.watermarked.size();
      for (int label = 1; label >= 0; --label) {
        MOVE_ASSIGN_OR_RETURN(at::Tensor f, model_features(label ? pop.watermarked[i] : pop.benign[i]));
        (held_out ? val_x : train_x).push_back(f);
        (held_out ? val_y : train_y).push_back(torch::full({p}, label, torch::kInt64));
        (label ? watermarked : benign) += 1;
        progress.Update(++done);
      }
    }
    for (size_t j = 0; j < pop.students_watermarked.size(); ++j) {
      for (int label = 1; label >= 0; --label) {
        MOVE_ASSIGN_OR_RETURN(at::Tensor f, model_features(label ? pop.students_watermarked[j] : pop.students_benign[j]));
        train_x.push_back(f);
        train_y.push_back(torch::full({p}, label, torch::kInt64));
        (label ? watermarked : benign) += 1;
      }
    }
    for (const torch::jit::Module& d : pop.decoys) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor f, model_features(d));
      train_x.push_back(f);
      train_y.push_back(torch::zeros({p}, torch::kInt64));
      benign += 1;
    }
    if (pop.is_victim && o.victim_in_population) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor f, model_features(pop.positive));
      extra_x.push_back(f);
      extra_y.push_back(torch::ones({p}, torch::kInt64));
      watermarked += 1;
    }
  }
  progress.Finish();
  const MetaClassifierOptions mo = BlackBoxClassifierOptions(o.meta_epochs, seed, o.show_progress);
  MOVE_ASSIGN_OR_RETURN(MetaClassifier held_out, MetaClassifier::Train(torch::cat(train_x), torch::cat(train_y), mo));
  MOVE_ASSIGN_OR_RETURN(at::Tensor val_scores, held_out.Score(torch::cat(val_x)));
  const ClassifierErrors errors = MeasureErrors(val_scores, torch::cat(val_y));
  for (auto* list : {&val_x, &extra_x}) train_x.insert(train_x.end(), list->begin(), list->end());
  for (auto* list : {&val_y, &extra_y}) train_y.insert(train_y.end(), list->begin(), list->end());
  MOVE_ASSIGN_OR_RETURN(MetaClassifier classifier, MetaClassifier::Train(torch::cat(train_x), torch::cat(train_y), mo));
  for (const auto& [name, tensor] : classifier.State()) (*v->mutable_classifier())[name] = ToTensorProto(tensor);
  v->mutable_features()->set_kind(kBlackBoxKind);
  v->set_type1_error(errors.type1);
  v->set_type2_error(errors.type2);
  v->set_watermarked_models(watermarked);
  v->set_benign_models(benign);
  return QueryPlan::ProbabilityDifference(ver, shift, std::move(classifier));
}

// Style contrast: nothing is trained. The populations only measure the score's per-sample
// errors at the midpoint of their means (what Theorem 1's planner needs).
absl::StatusOr<QueryPlan> MeasureStyleContrast(const std::vector<PopulationModels>& populations, const SampleSet& ver,
                                               const BuildBundleOptions& o, BlackBoxVerifier* v) {
  if (!ver.decoys.defined() || ver.decoys.dim() != 5 || ver.decoys.size(1) != ver.styled.size(0)) {
    return absl::InternalError("style contrast: decoy-styled verification samples missing");
  }
  QueryPlan plan = QueryPlan::StyleContrast(ver, o.blackbox_shift);
  std::vector<at::Tensor> marked, benign;
  int64_t total = 0;
  for (const auto& pop : populations) total += pop.watermarked.size() + pop.benign.size();
  core::Progress progress("black-box style-contrast validation", total, o.show_progress);
  int64_t done = 0;
  for (const auto& pop : populations) {
    for (int label = 1; label >= 0; --label) {
      for (const torch::jit::Module& m : label ? pop.watermarked : pop.benign) {
        MOVE_ASSIGN_OR_RETURN(at::Tensor s, plan.ModelScores(m));
        (label ? marked : benign).push_back(s);
        progress.Update(++done);
      }
    }
  }
  progress.Finish();
  const at::Tensor sm = torch::cat(marked), sb = torch::cat(benign);
  const double threshold = (sm.mean().item<double>() + sb.mean().item<double>()) / 2;
  v->set_type1_error(sb.gt(threshold).to(torch::kFloat64).mean().item<double>());
  v->set_type2_error(sm.le(threshold).to(torch::kFloat64).mean().item<double>());
  v->set_watermarked_models(static_cast<int>(marked.size()));
  v->set_benign_models(static_cast<int>(benign.size()));
  FeatureSpec* fs = v->mutable_features();
  fs->set_kind(kContrastKind);
  (*fs->mutable_parameters())["decoys"] = absl::StrCat(plan.decoys());
  (*fs->mutable_parameters())["threshold"] = absl::StrFormat("%.6f", threshold);
  (*fs->mutable_parameters())["score"] =
      "(1 + mean_k p_y(A_k(secret-styled)) - mean_{d,k} p_y(A_k(decoy-styled))) / 2";
  *v->mutable_decoy_images() = ToTensorProto(ver.decoys);
  core::Sha256 h;
  h.UpdateTensor(ver.decoys);
  v->set_decoy_images_sha256(h.HexDigest());
  return plan;
}

}  // namespace

absl::Status BuildBlackBoxVerifier(const std::vector<PopulationModels>& populations, const SampleSet& train,
                                   const SampleSet& ver, const BuildBundleOptions& o, uint64_t seed,
                                   BlackBoxVerifier* v) {
  if (populations.empty()) return absl::InvalidArgumentError("black-box verifier: no populations");
  const int64_t shift = o.blackbox_shift;
  absl::StatusOr<QueryPlan> built = o.blackbox_design == "probability-difference"
                                        ? TrainProbabilityDifference(populations, train, ver, o, seed, v)
                                        : MeasureStyleContrast(populations, ver, o, v);
  MOVE_RETURN_IF_ERROR(built.status());
  const QueryPlan& plan = *built;
  const PopulationModels& home = populations[0];
  MOVE_ASSIGN_OR_RETURN(at::Tensor ref_scores, plan.ModelScores(home.reference));
  AddBenignScores(ref_scores, "reference", home.architecture, v->mutable_benign_scores());
  FeatureSpec* fs = v->mutable_features();
  (*fs->mutable_parameters())["shift"] = absl::StrCat(shift);
  (*fs->mutable_parameters())["augmentations"] = kAugmentationNames;
  (*fs->mutable_parameters())["quantisation"] = "8-bit";
  (*fs->mutable_parameters())["probabilities"] = "softmax of the model's outputs";
  {
    torch::jit::Module ref = home.reference;
    MOVE_ASSIGN_OR_RETURN(at::Tensor probe, PredictProbabilities(ref, ver.clean.narrow(0, 0, 1)));
    v->set_num_classes(probe.size(1));
  }
  v->set_in_channels(ver.styled.size(1));
  v->set_height(ver.styled.size(2));
  v->set_width(ver.styled.size(3));
  v->set_reference_architecture(home.architecture);
  MOVE_ASSIGN_OR_RETURN(std::string ref_bytes, ModuleBytes(home.reference));
  v->set_reference_model_sha256(core::Sha256Hex(ref_bytes));
  v->set_reference_model(std::move(ref_bytes));
  for (const auto& pop : populations) v->add_population_architectures(pop.architecture);
  // Soundness check: the verdict rule on every architecture's calibration models.
  std::vector<CalibrationScores> checked;
  for (const auto& pop : populations) {
    for (size_t i = 0; i < pop.calibration.size(); ++i) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor cs, plan.ModelScores(pop.calibration[i]));
      checked.push_back({cs, pop.calibration_kinds[i], pop.architecture});
    }
  }
  MOVE_ASSIGN_OR_RETURN(const std::string unsound,
                        CheckSoundness(checked, ref_scores, o.alpha, v->mutable_benign_scores(),
                                       v->mutable_calibration_log10_p()));
  v->set_sound(unsound.empty());
  v->set_unsound_reason(unsound);
  MOVE_ASSIGN_OR_RETURN(at::Tensor positive, plan.ModelScores(home.positive));
  MOVE_ASSIGN_OR_RETURN(PairedTestResult pt, OneSidedPairedTTest(ToVector(positive), ToVector(ref_scores), o.alpha));
  v->set_victim_log10_p(pt.log10_p_value);
  return absl::OkStatus();
}

absl::StatusOr<bool> SetQueryStatistics(const std::vector<double>& suspect, const std::vector<double>& reference,
                                        const BettingTest& betting, bool sequential, const std::string& sequential_test,
                                        const std::string& fixed_test_suffix, bool budget_stop, int64_t max_queries,
                                        double alpha, VerificationReport* r) {
  MOVE_ASSIGN_OR_RETURN(PairedTestResult t, OneSidedPairedTTest(suspect, reference, alpha));
  r->set_delta_mu(t.delta_mu);
  r->set_delta_mu_ci_low(t.ci_low);
  r->set_delta_mu_ci_high(t.ci_high);
  bool reject;
  if (sequential) {
    r->set_p_value(betting.p_value());
    r->set_log10_p_value(betting.log10_p_value());
    r->set_test(sequential_test);
    reject = betting.reject();
    if (budget_stop) r->add_warnings(absl::StrCat("stopped at the query cap (", max_queries, ") without decisive evidence"));
  } else {
    r->set_p_value(t.p_value);
    r->set_log10_p_value(t.log10_p_value);
    r->set_test(t.method + fixed_test_suffix);
    reject = t.reject;
  }
  const int64_t n = static_cast<int64_t>(suspect.size());
  r->set_m(n);
  r->set_alpha(alpha);
  double mean_s = 0, mean_r = 0;
  for (int64_t i = 0; i < n; ++i) mean_s += suspect[i] / n, mean_r += reference[i] / n;
  r->set_suspect_mean_score(mean_s);
  r->set_reference_mean_score(mean_r);
  return reject;
}

absl::Status ValidateQueryOptions(double alpha, int64_t max_queries, int64_t images_per_request, double repeat_share,
                                  double repeat_tolerance, double min_relative_accuracy) {
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError("alpha: must be in (0, 1)");
  if (max_queries < 0) return absl::InvalidArgumentError("max_queries: must be >= 0 (0 = what the examination needs)");
  if (images_per_request < 1) return absl::InvalidArgumentError("images_per_request: must be >= 1");
  if (!(repeat_share >= 0 && repeat_share <= 0.5)) return absl::InvalidArgumentError("repeat_share: must be in [0, 0.5]");
  if (!(repeat_tolerance >= 0 && repeat_tolerance <= 1)) {
    return absl::InvalidArgumentError("repeat_tolerance: must be in [0, 1]");
  }
  if (!(min_relative_accuracy >= 0 && min_relative_accuracy <= 1)) {
    return absl::InvalidArgumentError("min_relative_accuracy: must be in [0, 1]");
  }
  return absl::OkStatus();
}

absl::Status RecordQueries(const QueryClient& client, SuspectChannel& channel, const std::string& transcript_path,
                           int64_t max_queries, bool sequential, bool stopped_early, VerificationReport* r) {
  r->set_queries(client.queries());
  r->set_repeat_queries(client.repeats());
  r->set_repeat_disagreements(client.repeat_disagreements());
  r->set_max_repeat_difference(client.max_repeat_difference());
  r->set_repeat_tolerance(client.repeat_options().tolerance);
  if (client.repeat_disagreements() > 0) {
    // The same image answered two ways: the answers cannot be evidence either way.
    r->set_answers_inconsistent(true);
    SetVerdict(VERDICT_INCONCLUSIVE,
               absl::StrFormat("inconclusive: inconsistent answers (%d of %d repeated images answered differently, "
                               "up to %.3g apart in probability, tolerance %.3g); no verdict is drawn from them",
                               client.repeat_disagreements(), client.repeats(), client.max_repeat_difference(),
                               client.repeat_options().tolerance),
               r);
  } else if (client.repeats() == 0 && client.repeat_options().share > 0 && !channel.CanRepeat()) {
    r->add_warnings("offline answers hold one answer per image: whether the suspect answers consistently was not tested");
  }
  r->set_max_queries(max_queries);
  r->set_sequential(sequential);
  r->set_stopped_early(stopped_early);
  r->set_suspect_channel(channel.Describe());
  r->set_softmax_applied(client.softmax_applied());
  if (client.softmax_applied()) r->add_warnings("the suspect returned logits; softmax was applied (--accept_logits)");
  if (!transcript_path.empty()) {
    r->set_transcript_path(transcript_path);
    MOVE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(transcript_path));
    r->set_transcript_sha256(core::Sha256Hex(text));
  }
  r->set_suspect_sha256(channel.ModelSha256());
  return absl::OkStatus();
}

}  // namespace verifier_internal

namespace {

using namespace verifier_internal;  // NOLINT: this file implements them

// The bundle's black-box verifier, checked, and the plan over the m-subset of its samples.
struct Loaded {
  const BlackBoxVerifier* v = nullptr;
  at::Tensor indices;  // the subset's indices in the bundle's samples
  std::optional<QueryPlan> plan;
};

absl::Status ValidateOptions(const BlackBoxOptions& o) {
  MOVE_RETURN_IF_ERROR(ValidateQueryOptions(o.alpha, o.max_queries, o.images_per_request, o.repeat_share,
                                            o.repeat_tolerance, o.min_relative_accuracy));
  if (o.m < 0) return absl::InvalidArgumentError("m: must be >= 0 (0 = all samples)");
  if (o.pairs_per_round < 1) return absl::InvalidArgumentError("pairs_per_round: must be >= 1");
  return absl::OkStatus();
}

absl::StatusOr<Loaded> LoadForBlackBox(const OpenedBundle& bundle, const BlackBoxOptions& o) {
  MOVE_RETURN_IF_ERROR(ValidateOptions(o));
  const BundleContents& c = bundle.contents;
  if (!c.has_blackbox() || c.blackbox().features().kind().empty()) {
    return absl::FailedPreconditionError("the bundle has no black-box verifier (it was built with blackbox = false)");
  }
  Loaded l;
  l.v = &c.blackbox();
  const std::string& kind = l.v->features().kind();
  if (kind != kBlackBoxKind && kind != kContrastKind) {
    return absl::DataLossError(absl::StrCat("bundle: unknown black-box feature kind '", kind, "'"));
  }
  const int64_t shift = ShiftOf(*l.v);
  if (shift < 1) return absl::DataLossError("bundle: black-box feature spec lacks a valid 'shift'");
  MOVE_ASSIGN_OR_RETURN(SampleSet all, LoadVerificationSamples(c));
  if (all.styled.size(1) != l.v->in_channels() || all.styled.size(2) != l.v->height() ||
      all.styled.size(3) != l.v->width()) {
    return absl::DataLossError("bundle: verification samples do not have the black-box verifier's image shape");
  }
  const int64_t available = all.labels.size(0);
  MOVE_ASSIGN_OR_RETURN(at::Tensor idx, VerificationSubset(available, o.m == 0 ? available : o.m, o.seed));
  SampleSet subset{all.styled.index_select(0, idx), all.clean.index_select(0, idx), all.labels.index_select(0, idx), {}};
  l.indices = idx;
  if (kind == kContrastKind) {
    MOVE_ASSIGN_OR_RETURN(at::Tensor decoys, FromTensorProto(l.v->decoy_images()));
    core::Sha256 h;
    h.UpdateTensor(decoys);
    if (decoys.dim() != 5 || decoys.size(0) < 1 || decoys.sizes().slice(1) != all.styled.sizes() ||
        h.HexDigest() != l.v->decoy_images_sha256()) {
      return absl::DataLossError("bundle: black-box decoy images do not match the samples or their SHA-256");
    }
    subset.decoys = decoys.index_select(1, idx).contiguous();
    l.plan = QueryPlan::StyleContrast(std::move(subset), shift);
  } else {
    std::map<std::string, at::Tensor> state;
    for (const auto& [name, proto] : l.v->classifier()) {
      MOVE_ASSIGN_OR_RETURN(state[name], FromTensorProto(proto));
    }
    MOVE_ASSIGN_OR_RETURN(MetaClassifier classifier, MetaClassifier::FromState(state));
    if (classifier.dim() != 5 * l.v->num_classes()) {
      return absl::DataLossError("bundle: black-box classifier does not take 5K features");
    }
    l.plan = QueryPlan::ProbabilityDifference(std::move(subset), shift, std::move(classifier));
  }
  return l;
}

// Samples, in the order they are asked about, grouped into rounds.
std::vector<at::Tensor> Rounds(int64_t m, const BlackBoxOptions& o) {
  std::vector<at::Tensor> rounds;
  if (!o.sequential) {
    rounds.push_back(torch::arange(m, torch::kInt64));
    return rounds;
  }
  at::Tensor order = torch::randperm(m, at::make_generator<at::CPUGeneratorImpl>(o.seed * 7919 + 1),
                                     torch::TensorOptions().dtype(torch::kInt64));
  for (int64_t s = 0; s < m; s += o.pairs_per_round) rounds.push_back(order.narrow(0, s, std::min(o.pairs_per_round, m - s)));
  return rounds;
}

// The shuffle of one round's 10 n images: position j is sent as image perm[j].
at::Tensor RoundShuffle(int64_t images, uint64_t seed, size_t round) {
  return torch::randperm(images, at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + 104729ULL * (round + 1)),
                         torch::TensorOptions().dtype(torch::kInt64));
}


}  // namespace

absl::StatusOr<VerificationReport> VerifyBlackBox(const OpenedBundle& bundle, SuspectChannel& channel,
                                                  const BlackBoxOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  MOVE_ASSIGN_OR_RETURN(Loaded l, LoadForBlackBox(bundle, o));
  const BlackBoxVerifier& v = *l.v;
  const QueryPlan& plan = *l.plan;
  const int64_t m = plan.samples().labels.size(0), k = v.num_classes(), per = plan.images_per_sample();
  const int64_t max_queries = o.max_queries == 0 ? per * m : o.max_queries;
  if (!o.sequential && per * m > max_queries) {
    return absl::ResourceExhaustedError(absl::StrCat("max_queries: ", max_queries, " is below the ", per * m,
                                                     " queries m = ", m, " needs (", per,
                                                     " per sample); lower m or use --sequential"));
  }
  if (o.sequential && max_queries < per * std::min<int64_t>(o.pairs_per_round, m)) {
    return absl::ResourceExhaustedError(absl::StrCat("max_queries: ", max_queries, " does not cover one round of ",
                                                     per * std::min<int64_t>(o.pairs_per_round, m), " queries"));
  }
  MOVE_ASSIGN_OR_RETURN(c10::Device device, ResolveDevice(o.device));
  if (core::Sha256Hex(v.reference_model()) != v.reference_model_sha256()) {
    return absl::DataLossError("bundle: black-box reference model does not match its SHA-256");
  }
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module reference, ModuleFromBytes(v.reference_model(), device));
  MOVE_ASSIGN_OR_RETURN(at::Tensor ref_scores_t, plan.ModelScores(reference));
  const std::vector<double> ref_scores = ToVector(ref_scores_t);
  at::Tensor ref_clean_correct;
  {
    MOVE_ASSIGN_OR_RETURN(at::Tensor pr, PredictProbabilities(reference, Quantize8Bit(plan.samples().clean).to(device)));
    ref_clean_correct = pr.argmax(1).eq(plan.samples().labels).to(torch::kInt64);
  }

  // Every option is valid by now: the transcript is created only for a verification that runs.
  std::optional<TranscriptWriter> transcript;
  if (!o.transcript_path.empty()) {
    MOVE_ASSIGN_OR_RETURN(TranscriptWriter w, TranscriptWriter::Create(o.transcript_path));
    transcript.emplace(std::move(w));
  }
  QueryClient client(channel, transcript ? &*transcript : nullptr, k, o.images_per_request, o.accept_logits,
                     RepeatOptions{o.repeat_share, o.repeat_tolerance, o.seed});

  BettingTest betting(o.alpha);
  std::vector<double> suspect_scores, paired_ref;
  std::vector<int64_t> used_samples;  // bundle indices, in the order asked
  int64_t suspect_correct = 0, reference_correct = 0;
  const std::vector<at::Tensor> rounds = Rounds(m, o);
  core::Progress progress(absl::StrCat("black-box queries (", channel.Describe(), ")"), o.sequential ? max_queries : per * m,
                          o.show_progress);
  bool stopped_early = false, budget_stop = false;
  for (size_t r = 0; r < rounds.size(); ++r) {
    const at::Tensor idx = rounds[r];
    const int64_t n = idx.size(0);
    if (client.queries() + per * n > max_queries) {
      budget_stop = true;
      break;
    }
    MOVE_ASSIGN_OR_RETURN(at::Tensor images, plan.Images(idx));
    const at::Tensor perm = RoundShuffle(per * n, o.seed, r);
    MOVE_ASSIGN_OR_RETURN(at::Tensor answered, client.Ask(images.index_select(0, perm)));
    at::Tensor unshuffled = torch::empty_like(answered);
    unshuffled.index_copy_(0, perm, answered);
    const at::Tensor labels = plan.samples().labels.index_select(0, idx);
    suspect_correct += plan.CleanAnswers(unshuffled, n).argmax(1).eq(labels).sum().item<int64_t>();
    reference_correct += ref_clean_correct.index_select(0, idx).sum().item<int64_t>();
    MOVE_ASSIGN_OR_RETURN(at::Tensor s, plan.Scores(unshuffled, idx));
    const std::vector<double> sv = ToVector(s);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = ref_scores[idx[i].item<int64_t>()];
      suspect_scores.push_back(sv[i]);
      paired_ref.push_back(ref);
      used_samples.push_back(l.indices[idx[i].item<int64_t>()].item<int64_t>());
      MOVE_RETURN_IF_ERROR(betting.Add(sv[i] - ref));
    }
    progress.Update(client.queries(), o.sequential ? absl::StrFormat("p <= %.3g", betting.p_value()) : "");
    if (o.sequential && betting.reject()) {
      stopped_early = r + 1 < rounds.size();
      break;
    }
  }
  progress.Finish();
  const int64_t pairs = static_cast<int64_t>(suspect_scores.size());
  if (pairs < 2) return absl::ResourceExhaustedError("max_queries: too small for two samples");

  VerificationReport rep;
  rep.set_format("move.report.v1");
  SetLine(LINE_BLACK_BOX, &rep);
  rep.set_architecture("any (probabilities only)");
  rep.set_feature_design(v.features().kind());
  MOVE_ASSIGN_OR_RETURN(
      const bool reject,
      SetQueryStatistics(suspect_scores, paired_ref, betting, o.sequential,
                         "sequential betting test (anytime-valid; delta_mu interval from the t distribution, descriptive)",
                         "", budget_stop, max_queries, o.alpha, &rep));
  const double mean_s = rep.suspect_mean_score();
  Decide(reject, v.sound(), v.unsound_reason(), "black-box", v.type1_error(), v.type2_error(), o.alpha,
         /*warn_below_minimum=*/!(o.sequential && reject), &rep);
  MOVE_RETURN_IF_ERROR(ApplyModelLevelTest(v.benign_scores(), used_samples, mean_s, o.alpha, &rep));
  ApplyRangeCheck(static_cast<double>(suspect_correct) / pairs, static_cast<double>(reference_correct) / pairs,
                  o.min_relative_accuracy, &rep);
  MOVE_RETURN_IF_ERROR(RecordQueries(client, channel, o.transcript_path, max_queries, o.sequential, stopped_early, &rep));
  rep.mutable_suspect_scores()->Add(suspect_scores.begin(), suspect_scores.end());
  rep.mutable_reference_scores()->Add(paired_ref.begin(), paired_ref.end());
  FillProvenance(bundle, o.seed, o.device, start, &rep);
  return rep;
}

absl::StatusOr<int64_t> ExportQueries(const OpenedBundle& bundle, const BlackBoxOptions& options,
                                      const std::string& dir) {
  BlackBoxOptions o = options;
  o.sequential = false;
  MOVE_ASSIGN_OR_RETURN(Loaded l, LoadForBlackBox(bundle, o));
  const int64_t m = l.plan->samples().labels.size(0);
  MOVE_ASSIGN_OR_RETURN(at::Tensor images, l.plan->Images(torch::arange(m, torch::kInt64)));
  images = images.index_select(0, RoundShuffle(l.plan->images_per_sample() * m, o.seed, 0));
  // A new or empty folder only: stale images or a stale manifest beside the new ones could
  // be answered and accepted.
  MOVE_RETURN_IF_ERROR(core::CheckOutputFolder("export folder", dir, {}));
  MOVE_RETURN_IF_ERROR(core::MakeDirs(dir));
  QueryManifest manifest;
  manifest.set_format("move.queries.v1");
  manifest.set_bundle_sha256(bundle.file_sha256);
  manifest.set_num_classes(l.v->num_classes());
  manifest.set_m(m);
  manifest.set_seed(o.seed);
  for (int64_t i = 0; i < images.size(0); ++i) {
    QueryManifestEntry* q = manifest.add_queries();
    q->set_id(absl::StrFormat("q%06d", i));
    q->set_file(q->id() + ".png");
    q->set_image_sha256(core::TensorSha256(images[i].contiguous()));
    MOVE_RETURN_IF_ERROR(SavePng(absl::StrCat(dir, "/", q->file()), images[i]));
  }
  MOVE_RETURN_IF_ERROR(core::WriteNewFileAtomically(dir + "/manifest.json", core::ProtoToJson(manifest)));
  return images.size(0);
}

}  // namespace move
