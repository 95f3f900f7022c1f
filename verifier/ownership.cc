// White-box bundle building and verification (implements sdk/ownership.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/util/json_util.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/proto_json.h"
#include "core/progress.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/ownership.h"
#include "sdk/runtime.h"
#include "sdk/version.h"
#include "verifier/meta_classifier.h"
#include "verifier/ownership_internal.h"
#include "verifier/significance.h"
#include "verifier/whitebox_features.h"

namespace move {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

using verifier_internal::MetaClassifier;
using verifier_internal::WhiteBoxExtractor;

constexpr char kSignKind[] = "whitebox-sign-gradient";
constexpr char kRelativeKind[] = "whitebox-sign-gradient-relative";

absl::StatusOr<std::string> KindForDesign(const std::string& design) {
  if (design == "sign") return std::string(kSignKind);
  if (design == "sign-relative") return std::string(kRelativeKind);
  return absl::InvalidArgumentError(absl::StrCat("feature_design: expected 'sign' or 'sign-relative', got '", design, "'"));
}

// Features of `model` on styled images `xs` (and their clean originals `xc`) with labels `y`.
absl::StatusOr<at::Tensor> Features(const std::string& kind, const WhiteBoxExtractor& extractor,
                                    const torch::jit::Module& model, const at::Tensor& xs, const at::Tensor& xc,
                                    const at::Tensor& y) {
  MOVE_ASSIGN_OR_RETURN(at::Tensor gs, extractor.Extract(model, xs, y, 32, /*signs=*/false));
  if (kind == kSignKind) return torch::sign(gs);
  MOVE_ASSIGN_OR_RETURN(at::Tensor gc, extractor.Extract(model, xc, y, 32, /*signs=*/false));
  return torch::sign(gs) * torch::sign(gc);
}

std::vector<std::string> ParameterShapes(const torch::jit::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.parameters()) out.push_back(absl::StrJoin(p.sizes(), "x"));
  return out;
}

}  // namespace

namespace verifier_internal {

std::vector<double> ToVector(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

absl::StatusOr<std::string> ModuleBytes(const torch::jit::Module& m) {
  return core::GuardTorch("serialising model", [&]() -> absl::StatusOr<std::string> {
    std::ostringstream out;
    m.save(out);
    return out.str();
  });
}

absl::StatusOr<torch::jit::Module> ModuleFromBytes(const std::string& bytes, c10::Device device) {
  return core::GuardTorch("loading the bundle's reference model", [&]() -> absl::StatusOr<torch::jit::Module> {
    std::istringstream in(bytes);
    torch::jit::Module m = torch::jit::load(in, device);
    m.eval();
    return m;
  });
}

absl::StatusOr<MatchedSuspect> MatchArchitecture(const BundleContents& c, const ModelWeights& weights, c10::Device device) {
  std::vector<std::string> names;
  std::string first_reason;
  for (const auto& candidate : c.verifiers()) {
    names.push_back(candidate.architecture());
    MatchedSuspect m;
    MOVE_ASSIGN_OR_RETURN(m.spec, ParseModelSpec(candidate.architecture()));
    m.spec.in_channels = candidate.in_channels();
    m.spec.num_classes = candidate.num_classes();
    absl::StatusOr<torch::jit::Module> model = ModelFromWeights(m.spec, weights, device, &m.unused);
    if (model.ok()) {
      m.verifier = &candidate;
      m.model = *model;
      return m;
    }
    if (model.status().code() != absl::StatusCode::kFailedPrecondition) return model.status();
    if (first_reason.empty()) first_reason = std::string(model.status().message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the suspect's weights (", weights.format, ", ", weights.tensors.size(), " tensors) fit none of the bundle's architectures (",
      absl::StrJoin(names, ", "), "; ", first_reason,
      "); white-box verification needs one of them: use black-box mode, which needs no architecture"));
}

std::string VerificationSamplesSha(const at::Tensor& xs, const at::Tensor& xc, const at::Tensor& y) {
  core::Sha256 h;
  h.UpdateTensor(xs);
  h.UpdateTensor(xc);
  h.UpdateTensor(y);
  return h.HexDigest();
}

absl::StatusOr<SampleSet> LoadVerificationSamples(const BundleContents& c) {
  SampleSet s;
  MOVE_ASSIGN_OR_RETURN(s.styled, FromTensorProto(c.samples().styled_images()));
  MOVE_ASSIGN_OR_RETURN(s.clean, FromTensorProto(c.samples().clean_images()));
  MOVE_ASSIGN_OR_RETURN(s.labels, FromTensorProto(c.samples().labels()));
  if (s.styled.dim() != 4 || s.clean.sizes() != s.styled.sizes() || s.labels.dim() != 1 ||
      s.labels.size(0) != s.styled.size(0) || VerificationSamplesSha(s.styled, s.clean, s.labels) != c.samples().sha256()) {
    return absl::DataLossError("bundle: verification samples do not match their SHA-256");
  }
  return s;
}

absl::StatusOr<at::Tensor> VerificationSubset(int64_t available, int64_t m, uint64_t seed) {
  if (m > available) {
    return absl::InvalidArgumentError(absl::StrCat("m: the bundle holds ", available, " verification samples, asked for ", m));
  }
  if (m < 2) return absl::InvalidArgumentError("m: need at least 2 samples");
  if (m == available) return torch::arange(available, torch::kInt64);
  return std::get<0>(torch::randperm(available, at::make_generator<at::CPUGeneratorImpl>(seed),
                                     torch::TensorOptions().dtype(torch::kInt64))
                         .narrow(0, 0, m)
                         .sort());
}

void Decide(bool reject, bool sound, const std::string& unsound_reason, const char* which, double type1, double type2,
            double alpha, bool warn_below_minimum, VerificationReport* r) {
  r->set_classifier_sound(sound);
  r->set_classifier_type1_error(type1);
  r->set_classifier_type2_error(type2);
  auto minimum = MinimumSamples(type1, type2, alpha);
  r->set_minimum_m(minimum.ok() ? *minimum : 0);
  r->set_m_below_minimum(!minimum.ok() || r->m() < *minimum);
  if (r->m_below_minimum() && warn_below_minimum) {
    r->add_warnings(minimum.ok() ? absl::StrCat("m = ", r->m(), " is below the ", *minimum,
                                                " samples Theorem 1 asks for with this classifier's validation errors (Type-I ",
                                                type1, ", Type-II ", type2, ")")
                                 : absl::StrCat("Theorem 1: ", minimum.status().message()));
  }
  if (!sound) {
    SetVerdict(VERDICT_INCONCLUSIVE,
               absl::StrCat("inconclusive: the bundle's ", which, " classifier failed its soundness check (",
                            unsound_reason, "); no theft is claimed from it"),
               r);
  } else {
    SetVerdict(reject ? VERDICT_STOLEN : VERDICT_NOT_STOLEN, reject ? "stolen" : "not stolen", r);
  }
}

void AddModelRecord(const std::string& role, const std::string& name, const std::string& architecture,
                    const torch::jit::Module& model, double log10_p, bool flagged,
                    google::protobuf::RepeatedPtrField<FingerprintModelRecord>* records) {
  FingerprintModelRecord* r = records->Add();
  r->set_role(role);
  r->set_name(name);
  r->set_architecture(architecture);
  absl::StatusOr<std::string> bytes = ModuleBytes(model);
  r->set_sha256(bytes.ok() ? core::Sha256Hex(*bytes) : "");
  r->set_log10_p(log10_p);
  r->set_flagged(flagged);
}

std::string DescribeCalibrationKind(const std::string& kind) {
  if (kind == "calibration") return "benign";
  if (kind == "rival-vendor calibration") return "rival-vendor MOVE model (another secret style)";
  if (kind == "appearance-augmented calibration") return "appearance-augmented benign";
  return kind;
}

bool IsNullPopulationKind(const std::string& kind) {
  return kind.empty() || kind == "reference" || kind == "calibration" || kind == "benign population" ||
         kind == "rival-vendor calibration" || kind == "appearance-augmented calibration";
}

absl::Status CheckNullPopulationKinds(const std::vector<std::string>& kinds, const std::string& what) {
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (!IsNullPopulationKind(kinds[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "]: unknown kind '", kinds[i],
          "' (reference, calibration, benign population, rival-vendor calibration or appearance-augmented calibration)"));
    }
  }
  return absl::OkStatus();
}

std::string CalibrationKindOf(const std::string& kind) {
  return kind.empty() || kind == "reference" ? "calibration" : kind;
}

std::vector<std::string> NullPopulationGaps(const std::vector<std::string>& calibration_kinds) {
  std::vector<std::string> gaps;
  for (const char* kind : {"rival-vendor calibration", "appearance-augmented calibration"}) {
    if (std::find(calibration_kinds.begin(), calibration_kinds.end(), kind) == calibration_kinds.end()) {
      gaps.push_back(absl::StrCat("no ", kind, " model among the calibration models (the null population is incomplete)"));
    }
  }
  return gaps;
}

absl::StatusOr<std::string> CheckSoundness(const std::vector<CalibrationScores>& calibration,
                                           const at::Tensor& reference_scores, double alpha,
                                           google::protobuf::RepeatedPtrField<BenignScores>* table,
                                           google::protobuf::RepeatedField<double>* calibration_log10_p,
                                           const LeaveOneOutTest& leave_one_out) {
  const int first = table->size();  // the calibration models' entries start here
  std::vector<PairedTestResult> paired;
  for (const CalibrationScores& c : calibration) {
    AddBenignScores(c.scores, c.kind, c.architecture, table);
    MOVE_ASSIGN_OR_RETURN(PairedTestResult r, OneSidedPairedTTest(ToVector(c.scores), ToVector(reference_scores), alpha));
    calibration_log10_p->Add(r.log10_p_value);
    paired.push_back(r);
  }
  for (size_t i = 0; i < calibration.size(); ++i) {
    double model_log10_p = 0;
    if (paired[i].reject && leave_one_out(*table, first + static_cast<int>(i), alpha, &model_log10_p)) {
      std::string reason = absl::StrCat(
          "calibration model ", i, " (", calibration[i].architecture, ", ", DescribeCalibrationKind(calibration[i].kind),
          ", never used in training) was flagged: paired p = ", paired[i].p_value, ", model-level log10 p = ",
          model_log10_p, ", alpha ", alpha,
          absl::StrFormat("; its mean score %.3f, the benign reference's %.3f",
                          calibration[i].scores.to(torch::kFloat64).mean().item<double>(),
                          reference_scores.to(torch::kFloat64).mean().item<double>()));
      if (calibration[i].kind == "rival-vendor calibration") {
        absl::StrAppend(&reason,
                        "; another vendor's secret style reaches this line: the secret style is not distinctive "
                        "enough against it (choose a private image rather than a stock texture)");
      }
      return reason;
    }
  }
  return std::string();
}

void FillProvenance(const OpenedBundle& bundle, uint64_t seed, const std::string& device,
                    std::chrono::steady_clock::time_point start, VerificationReport* r) {
  r->set_bundle_sha256(bundle.file_sha256);
  r->set_signer_fingerprint(bundle.signer_fingerprint);
  r->set_signer_pinned(bundle.signer_pinned);
  if (!bundle.signer_pinned) r->add_warnings("the bundle's signer was not checked against the vendor's public key");
  r->set_sdk_version(kSdkVersion);
  r->set_seed(seed);
  r->set_device(device);
  r->set_threads(NumThreads());
  const double seconds = SecondsSince(start);
  r->set_seconds(seconds);
  const absl::Time now = absl::Now();
  r->set_started_at(absl::FormatTime(absl::RFC3339_sec, now - absl::Seconds(seconds), absl::UTCTimeZone()));
  r->set_finished_at(absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()));
  r->set_bundle_created_at(bundle.contents.created_at());
  r->set_victim_model_sha256(bundle.contents.victim_model_sha256());
}

}  // namespace verifier_internal

namespace {

using verifier_internal::ModuleBytes;
using verifier_internal::ModuleFromBytes;
using verifier_internal::ToVector;
using verifier_internal::SetLine;
using verifier_internal::SetVerdict;
using verifier_internal::VerificationSamplesSha;

struct SharedSamples {
  at::Tensor train_styled, train_clean, train_labels;  // classifier training samples
  at::Tensor ver_styled, ver_clean, ver_labels;        // verification samples
  // Training sets styled towards decoy styles: decoy members first, then rival-vendor
  // calibration.
  std::vector<Dataset> decoy_sets;
  // Appearance-augmented training sets, one per augmented calibration model.
  std::vector<Dataset> augmented_sets;
  // Style contrast: the verification samples styled towards the query decoys (D x N x C x H x W).
  at::Tensor ver_decoys;
};

// Trains one architecture's populations, classifier, reference and calibration models and
// fills `v`. `victim` is the positive control: the real victim for its architecture, a shadow
// victim otherwise.
absl::Status BuildVerifier(const ModelSpec& spec, const torch::jit::Module* victim, const BuildBundleInputs& in,
                           const TrainingRecipe& recipe, const DistillationRecipe& distill, const BuildBundleOptions& o,
                           const std::string& kind, const SharedSamples& samples, uint64_t base, ArchitectureVerifier* v,
                           verifier_internal::PopulationModels* models, double* null_seconds) {
  MOVE_ASSIGN_OR_RETURN(WhiteBoxExtractor extractor, WhiteBoxExtractor::Create(spec, o.max_units));
  const Dataset clean = ToRgb(*in.clean_train);
  const Dataset& marked = in.watermark->dataset;
  const std::string arch = ModelSpecName(spec);
  auto train = [&](const Dataset& data, uint64_t seed, const char* what) -> absl::StatusOr<torch::jit::Module> {
    absl::StatusOr<torch::jit::Module> m = recipe(spec, data, seed);
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat("recipe (", arch, ", ", what, "): ", m.status().message()));
    m->eval();
    return m;
  };
  std::vector<torch::jit::Module> watermarked, benign, calibration;
  for (int i = 0; i < o.population; ++i) {
    MOVE_ASSIGN_OR_RETURN(auto m, train(marked, base + i, "watermarked population"));
    watermarked.push_back(m);
  }
  for (int i = 0; i < o.population; ++i) {
    MOVE_ASSIGN_OR_RETURN(auto m, train(clean, base + 100 + i, "benign population"));
    benign.push_back(m);
  }
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module reference, train(clean, base + 200, "reference"));
  std::vector<std::string> calibration_kinds;
  for (int i = 0; i < o.calibration_models; ++i) {
    MOVE_ASSIGN_OR_RETURN(auto m, train(clean, base + 300 + i, "calibration"));
    calibration.push_back(m);
    calibration_kinds.push_back("calibration");
  }
  std::vector<torch::jit::Module> decoys;
  for (int i = 0; i < o.decoy_members + o.decoy_calibration_models; ++i) {
    const bool member = i < o.decoy_members;
    const auto start = std::chrono::steady_clock::now();
    MOVE_ASSIGN_OR_RETURN(auto m, train(samples.decoy_sets[i], base + (member ? 800 : 900) + i,
                                        member ? "decoy member" : "rival-vendor calibration"));
    (member ? decoys : calibration).push_back(m);
    if (!member) {
      calibration_kinds.push_back("rival-vendor calibration");
      *null_seconds += SecondsSince(start);
    }
  }
  for (size_t i = 0; i < samples.augmented_sets.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    MOVE_ASSIGN_OR_RETURN(auto m, train(samples.augmented_sets[i], base + 950 + i, "appearance-augmented calibration"));
    calibration.push_back(m);
    calibration_kinds.push_back("appearance-augmented calibration");
    *null_seconds += SecondsSince(start);
  }
  // Students: distilled from population members that are not held out, on the teacher's
  // own training data; as many of benign teachers as of watermarked ones, so that being a
  // student is not itself evidence.
  std::vector<torch::jit::Module> students_w, students_b;
  if (distill) {
    for (int j = 0; j < o.student_members; ++j) {
      const int t = j % std::max(1, o.population - 1);
      for (int label = 1; label >= 0; --label) {
        absl::StatusOr<torch::jit::Module> m = distill(spec, label ? marked : clean, base + (label ? 600 : 700) + j,
                                                       label ? watermarked[t] : benign[t]);
        if (!m.ok()) {
          return absl::Status(m.status().code(), absl::StrCat("distillation recipe (", arch, "): ", m.status().message()));
        }
        m->eval();
        (label ? students_w : students_b).push_back(*m);
      }
    }
  }
  torch::jit::Module positive;
  if (victim != nullptr) {
    positive = *victim;
  } else {
    MOVE_ASSIGN_OR_RETURN(positive, train(marked, base + 250, "shadow victim"));
  }
  models->architecture = arch;
  models->watermarked = watermarked;
  models->benign = benign;
  models->calibration = calibration;
  models->students_watermarked = students_w;
  models->students_benign = students_b;
  models->decoys = decoys;
  models->calibration_kinds = calibration_kinds;
  models->reference = reference;
  models->positive = positive;
  models->is_victim = victim != nullptr;
  return core::GuardTorch(absl::StrCat("building the ", arch, " verifier"), [&]() -> absl::Status {
    // Classifier on K-1 pairs, validated on the held-out pair (model-level validation).
    const int64_t p = samples.train_labels.size(0);
    std::vector<at::Tensor> train_x, train_y, val_x, val_y;
    core::Progress progress(absl::StrCat("white-box features (", arch, ")"), 2 * o.population, o.show_progress);
    for (int i = 0; i < o.population; ++i) {
      const bool held_out = i == o.population - 1;
      for (int label = 1; label >= 0; --label) {
        MOVE_ASSIGN_OR_RETURN(at::Tensor f, Features(kind, extractor, label ? watermarked[i] : benign[i], samples.train_styled,
                                                     samples.train_clean, samples.train_labels));
        (held_out ? val_x : train_x).push_back(f);
        (held_out ? val_y : train_y).push_back(torch::full({p}, label, torch::kInt64));
      }
      progress.Update(2 * (i + 1));
    }
    for (size_t j = 0; j < students_w.size(); ++j) {
      for (int label = 1; label >= 0; --label) {
        MOVE_ASSIGN_OR_RETURN(at::Tensor f, Features(kind, extractor, label ? students_w[j] : students_b[j],
                                                     samples.train_styled, samples.train_clean, samples.train_labels));
        train_x.push_back(f);
        train_y.push_back(torch::full({p}, label, torch::kInt64));
      }
    }
    for (const torch::jit::Module& d : decoys) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor f, Features(kind, extractor, d, samples.train_styled, samples.train_clean,
                                                   samples.train_labels));
      train_x.push_back(f);
      train_y.push_back(torch::zeros({p}, torch::kInt64));
    }
    progress.Finish();
    verifier_internal::MetaClassifierOptions mo;
    mo.epochs = o.meta_epochs;
    mo.seed = base + 400;
    mo.show_progress = o.show_progress;
    // Validation: a classifier trained without the held-out pair scores that pair.
    MOVE_ASSIGN_OR_RETURN(MetaClassifier held_out_classifier,
                          MetaClassifier::Train(torch::cat(train_x), torch::cat(train_y), mo));
    MOVE_ASSIGN_OR_RETURN(at::Tensor val_scores, held_out_classifier.Score(torch::cat(val_x)));
    const verifier_internal::ClassifierErrors errors = verifier_internal::MeasureErrors(val_scores, torch::cat(val_y));
    // The bundle's classifier then learns from every pair; its errors on unseen models are
    // estimated (conservatively, with one pair less) by the validation above. Soundness does
    // not rest on this estimate but on the calibration check below.
    train_x.insert(train_x.end(), val_x.begin(), val_x.end());
    train_y.insert(train_y.end(), val_y.begin(), val_y.end());
    if (victim != nullptr && o.victim_in_population) {
      // The victim itself is the vendor's model and the one most likely copied: it joins the
      // watermarked side, as in the reference design (which trained on it alone).
      MOVE_ASSIGN_OR_RETURN(at::Tensor fv, Features(kind, extractor, *victim, samples.train_styled, samples.train_clean,
                                                    samples.train_labels));
      train_x.push_back(fv);
      train_y.push_back(torch::ones({p}, torch::kInt64));
    }
    MOVE_ASSIGN_OR_RETURN(MetaClassifier classifier, MetaClassifier::Train(torch::cat(train_x), torch::cat(train_y), mo));

    // Soundness check on calibration models, positive control on the (shadow) victim.
    auto scores = [&](const torch::jit::Module& m) -> absl::StatusOr<at::Tensor> {
      MOVE_ASSIGN_OR_RETURN(at::Tensor f, Features(kind, extractor, m, samples.ver_styled, samples.ver_clean, samples.ver_labels));
      return classifier.Score(f);
    };
    MOVE_ASSIGN_OR_RETURN(at::Tensor ref_scores, scores(reference));
    verifier_internal::AddBenignScores(ref_scores, "reference", arch, v->mutable_benign_scores());
    auto test = [&](const torch::jit::Module& m) -> absl::StatusOr<verifier_internal::PairedTestResult> {
      MOVE_ASSIGN_OR_RETURN(at::Tensor s, scores(m));
      return verifier_internal::OneSidedPairedTTest(ToVector(s), ToVector(ref_scores), o.alpha);
    };
    v->set_architecture(arch);
    v->set_in_channels(spec.in_channels);
    v->set_num_classes(spec.num_classes);
    for (const auto& s : ParameterShapes(positive)) v->add_parameter_shapes(s);
    v->mutable_features()->set_kind(kind);
    v->mutable_features()->set_max_units(o.max_units);
    (*v->mutable_features()->mutable_parameters())["pooling"] = "conv: max over k*k; large linear: max over inputs";
    (*v->mutable_features()->mutable_parameters())["sign"] = "after pooling";
    for (const auto& [name, tensor] : classifier.State()) (*v->mutable_classifier())[name] = ToTensorProto(tensor);
    MOVE_ASSIGN_OR_RETURN(std::string ref_bytes, ModuleBytes(reference));
    v->set_reference_model_sha256(core::Sha256Hex(ref_bytes));
    v->set_reference_model(std::move(ref_bytes));
    v->set_type1_error(errors.type1);
    v->set_type2_error(errors.type2);
    v->set_watermarked_models(o.population + static_cast<int>(students_w.size()));
    v->set_benign_models(o.population + static_cast<int>(students_b.size() + decoys.size()));
    std::vector<verifier_internal::CalibrationScores> checked;
    for (size_t i = 0; i < calibration.size(); ++i) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor cs, scores(calibration[i]));
      checked.push_back({cs, calibration_kinds[i], arch});
    }
    MOVE_ASSIGN_OR_RETURN(const std::string unsound,
                          verifier_internal::CheckSoundness(checked, ref_scores, o.alpha, v->mutable_benign_scores(),
                                                            v->mutable_calibration_log10_p()));
    v->set_sound(unsound.empty());
    v->set_unsound_reason(unsound);
    MOVE_ASSIGN_OR_RETURN(auto positive_test, test(positive));
    v->set_victim_log10_p(positive_test.log10_p_value);
    return absl::OkStatus();
  });
}

}  // namespace

absl::Status ValidateBuildBundleOptions(const BuildBundleOptions& o) {
  if (o.population < 2) return absl::InvalidArgumentError("population: must be >= 2 (one pair is held out for validation)");
  if (o.student_members < 0) return absl::InvalidArgumentError("student_members: must be >= 0");
  if (o.calibration_models < 1) return absl::InvalidArgumentError("calibration_models: must be >= 1");
  if (o.decoy_members < 0) return absl::InvalidArgumentError("decoy_members: must be >= 0");
  if (o.decoy_calibration_models < 0) return absl::InvalidArgumentError("decoy_calibration_models: must be >= 0");
  if (o.augmented_calibration_models < 0) return absl::InvalidArgumentError("augmented_calibration_models: must be >= 0");
  if (o.blackbox && o.blackbox_design != "style-contrast" && o.blackbox_design != "probability-difference") {
    return absl::InvalidArgumentError(absl::StrCat("blackbox_design: expected 'style-contrast' or 'probability-difference', got '",
                                                   o.blackbox_design, "'"));
  }
  if (o.blackbox && o.blackbox_design == "style-contrast" && (o.contrast_decoys < 1 || o.contrast_decoys > 16)) {
    return absl::InvalidArgumentError("contrast_decoys: must be in [1, 16]");
  }
  if (o.train_samples < 10) return absl::InvalidArgumentError("train_samples: must be >= 10");
  if (o.verification_samples < 2) return absl::InvalidArgumentError("verification_samples: must be >= 2");
  if (!(o.alpha > 0 && o.alpha < 1)) return absl::InvalidArgumentError("alpha: must be in (0, 1)");
  if (o.blackbox && (o.blackbox_shift < 1 || o.blackbox_shift > 8)) {
    return absl::InvalidArgumentError("blackbox_shift: must be in [1, 8] pixels");
  }
  return KindForDesign(o.feature_design).status();
}

absl::StatusOr<BundleContents> BuildBundle(const BuildBundleInputs& in, const TrainingRecipe& recipe,
                                                   const BuildBundleOptions& o, const DistillationRecipe& distill,
                                                   TrainedModels* trained) {
  if (in.watermark == nullptr || in.clean_train == nullptr || in.clean_test == nullptr) {
    return absl::InvalidArgumentError("inputs: watermark, clean_train and clean_test are required");
  }
  if (!recipe) return absl::InvalidArgumentError("recipe: required");
  MOVE_RETURN_IF_ERROR(ValidateBuildBundleOptions(o));
  if (o.student_members > 0 && !distill) {
    return absl::InvalidArgumentError("student_members: needs a distillation recipe");
  }
  if (o.verification_samples > in.clean_test->size()) {
    return absl::InvalidArgumentError(absl::StrCat("verification_samples: must be in [2, ", in.clean_test->size(), "]"));
  }
  MOVE_ASSIGN_OR_RETURN(const std::string kind, KindForDesign(o.feature_design));
  if (in.clean_train->size() != in.watermark->dataset.size()) {
    return absl::InvalidArgumentError("clean_train: must be the dataset that was embedded (sizes differ)");
  }
  std::vector<ModelSpec> shadows;
  for (const std::string& name : o.shadow_architectures) {
    absl::StatusOr<ModelSpec> s = ParseModelSpec(name);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("shadow_architectures: ", s.status().message()));
    s->in_channels = in.spec.in_channels;
    s->num_classes = in.spec.num_classes;
    if (ModelSpecName(*s) == ModelSpecName(in.spec)) {
      return absl::InvalidArgumentError(absl::StrCat("shadow_architectures: '", name, "' is the victim's own architecture"));
    }
    shadows.push_back(*s);
  }
  MOVE_ASSIGN_OR_RETURN(std::string victim_bytes, core::ReadFile(in.victim_model_path));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module victim, LoadModel(in.victim_model_path));
  victim.eval();
  const uint64_t base = o.seed * 1000003ULL + 17;

  SharedSamples samples;
  {
    const Dataset clean = ToRgb(*in.clean_train);
    const int64_t p = std::min<int64_t>(o.train_samples, in.watermark->picked_indices.size(0));
    at::Tensor picked = in.watermark->picked_indices.narrow(0, 0, p);
    samples.train_styled = in.watermark->dataset.images.index_select(0, picked);
    samples.train_clean = clean.images.index_select(0, picked);
    samples.train_labels = in.watermark->dataset.labels.index_select(0, picked);
    // Verification samples: held-out test images, styled.
    MOVE_ASSIGN_OR_RETURN(Dataset ver, SampleSubset(ToRgb(*in.clean_test), o.verification_samples, base + 500));
    MOVE_ASSIGN_OR_RETURN(samples.ver_styled, in.watermark->StyleImages(ver.images));
    samples.ver_clean = ver.images;
    samples.ver_labels = ver.labels;
  }
  // What the null population of rival-vendor and appearance-augmented calibration models and
  // the query decoys cost the vendor (seconds), printed with the build.
  double null_seconds = 0;
  // Decoy training sets: the clean data with the watermark's rate and engine, other styles.
  std::vector<std::string> decoy_shas;
  {
    const std::string secret_sha = core::TensorSha256(in.style_image);
    for (int i = 0; i < o.decoy_members + o.decoy_calibration_models; ++i) {
      at::Tensor decoy;
      if (i < static_cast<int>(in.decoy_styles.size())) {
        decoy = in.decoy_styles[i];
      } else {
        MOVE_ASSIGN_OR_RETURN(decoy, DecoyStyleImage(base + 800 + i));
      }
      if (!decoy.defined()) return absl::InvalidArgumentError(absl::StrCat("decoy_styles[", i, "]: undefined tensor"));
      const std::string sha = core::TensorSha256(decoy);
      if (sha == secret_sha) {
        return absl::InvalidArgumentError(absl::StrCat("decoy_styles[", i, "]: is the secret style image"));
      }
      MOVE_ASSIGN_OR_RETURN(EmbedDatasetOptions eo, EmbedOptionsFromRecord(in.watermark->record));
      eo.seed = base + 850 + i;
      eo.show_progress = o.show_progress;
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<EmbedResult> styled = EmbedDataset(*in.clean_train, decoy, eo);
      if (i >= o.decoy_members) null_seconds += SecondsSince(start);
      if (!styled.ok()) {
        return absl::Status(styled.status().code(), absl::StrCat("decoy ", i, ": ", styled.status().message()));
      }
      samples.decoy_sets.push_back(std::move(styled->dataset));
      decoy_shas.push_back(sha);
    }
  }

  // Appearance-augmented training sets for the augmented calibration models.
  for (int i = 0; i < o.augmented_calibration_models; ++i) {
    AppearanceAugmentOptions ao;
    ao.seed = base + 950 + i;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<Dataset> augmented = AugmentAppearance(*in.clean_train, ao);
    null_seconds += SecondsSince(start);
    if (!augmented.ok()) {
      return absl::Status(augmented.status().code(),
                          absl::StrCat("appearance augmentation ", i, ": ", augmented.status().message()));
    }
    samples.augmented_sets.push_back(std::move(*augmented));
  }
  // Style contrast: the verification samples rendered towards the query decoys by the
  // watermark's own engine and strength, so that only the style differs.
  std::vector<std::string> query_decoy_shas;
  if (o.blackbox && o.blackbox_design == "style-contrast") {
    const std::string secret_sha = core::TensorSha256(in.style_image);
    std::vector<at::Tensor> rendered;
    MOVE_ASSIGN_OR_RETURN(EmbedDatasetOptions eo, EmbedOptionsFromRecord(in.watermark->record));
    eo.gamma = 1.0;
    eo.show_progress = o.show_progress;
    const Dataset ver{samples.ver_clean, samples.ver_labels, in.clean_test->num_classes, "verification samples"};
    for (int j = 0; j < o.contrast_decoys; ++j) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor decoy, DecoyStyleImage(base + 1700 + j));
      const std::string sha = core::TensorSha256(decoy);
      if (sha == secret_sha) return absl::InvalidArgumentError("style_image: equals a query decoy style; choose another");
      eo.seed = base + 1750 + j;
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<EmbedResult> styled = EmbedDataset(ver, decoy, eo);
      null_seconds += SecondsSince(start);
      if (!styled.ok()) {
        return absl::Status(styled.status().code(), absl::StrCat("query decoy ", j, ": ", styled.status().message()));
      }
      rendered.push_back(styled->dataset.images);
      query_decoy_shas.push_back(sha);
    }
    samples.ver_decoys = torch::stack(rendered).contiguous();
  }

  BundleContents c;
  c.set_format("move.bundle.v1");
  c.set_sdk_version(kSdkVersion);
  c.set_created_at(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  c.set_victim_model_sha256(core::Sha256Hex(victim_bytes));
  c.set_style_image_sha256(core::TensorSha256(in.style_image));
  *c.mutable_watermark_record() = in.watermark->record;
  std::vector<verifier_internal::PopulationModels> populations(1 + shadows.size());
  MOVE_RETURN_IF_ERROR(BuildVerifier(in.spec, &victim, in, recipe, distill, o, kind, samples, base, c.add_verifiers(),
                                     &populations[0], &null_seconds));
  for (size_t i = 0; i < shadows.size(); ++i) {
    MOVE_RETURN_IF_ERROR(BuildVerifier(shadows[i], nullptr, in, recipe, distill, o, kind, samples, base + 10000 * (i + 1),
                                       c.add_verifiers(), &populations[i + 1], &null_seconds));
  }
  if (o.blackbox) {
    MOVE_RETURN_IF_ERROR(verifier_internal::BuildBlackBoxVerifier(
        populations, {samples.train_styled, samples.train_clean, samples.train_labels},
        {samples.ver_styled, samples.ver_clean, samples.ver_labels, samples.ver_decoys}, o, base + 90000,
        c.mutable_blackbox()));
    for (const std::string& sha : query_decoy_shas) c.mutable_blackbox()->add_decoy_style_sha256(sha);
  }
  VerificationSamples* vs = c.mutable_samples();
  *vs->mutable_styled_images() = ToTensorProto(samples.ver_styled);
  *vs->mutable_clean_images() = ToTensorProto(samples.ver_clean);
  *vs->mutable_labels() = ToTensorProto(samples.ver_labels);
  vs->set_sha256(VerificationSamplesSha(samples.ver_styled, samples.ver_clean, samples.ver_labels));
  auto& meta = *c.mutable_metadata();
  meta["seed"] = absl::StrCat(o.seed);
  meta["population"] = absl::StrCat(o.population);
  meta["calibration_models"] = absl::StrCat(o.calibration_models);
  meta["train_samples"] = absl::StrCat(samples.train_labels.size(0));
  meta["feature_design"] = o.feature_design;
  meta["meta_epochs"] = absl::StrCat(o.meta_epochs);
  meta["shadow_architectures"] = absl::StrJoin(o.shadow_architectures, ",");
  meta["victim_in_population"] = o.victim_in_population ? "true" : "false";
  meta["blackbox"] = o.blackbox ? "true" : "false";
  meta["student_members"] = absl::StrCat(distill ? o.student_members : 0);
  meta["decoy_members"] = absl::StrCat(o.decoy_members);
  meta["decoy_calibration_models"] = absl::StrCat(o.decoy_calibration_models);
  meta["decoy_style_sha256"] = absl::StrJoin(decoy_shas, ",");
  meta["augmented_calibration_models"] = absl::StrCat(o.augmented_calibration_models);
  if (o.blackbox) meta["blackbox_design"] = o.blackbox_design;
  if (o.blackbox && o.blackbox_design == "style-contrast") meta["contrast_decoys"] = absl::StrCat(o.contrast_decoys);
  meta["threads"] = absl::StrCat(NumThreads());
  meta["runtime"] = RuntimeDescription();
  const int null_models = (o.decoy_calibration_models + o.augmented_calibration_models) * (1 + static_cast<int>(shadows.size()));
  meta["null_population_models"] = absl::StrCat(null_models);
  if (trained != nullptr) {
    *trained = {};
    for (const verifier_internal::PopulationModels& pop : populations) {
      for (const torch::jit::Module& m : pop.benign) trained->benign.push_back({"benign population", pop.architecture, m});
      trained->held_out.push_back({"reference", pop.architecture, pop.reference});
      for (size_t i = 0; i < pop.calibration.size(); ++i) {
        trained->held_out.push_back({pop.calibration_kinds[i], pop.architecture, pop.calibration[i]});
      }
    }
  }
  if (o.show_progress) {
    std::printf("null population: %d rival-vendor and appearance-augmented calibration models (%d per architecture)%s: "
                "%.1f min of the build\n",
                null_models, o.decoy_calibration_models + o.augmented_calibration_models,
                query_decoy_shas.empty() ? "" : absl::StrCat(" and ", query_decoy_shas.size(), " query decoy renders").c_str(),
                null_seconds / 60);
  }
  return c;
}

absl::StatusOr<VerificationReport> VerifyWhiteBox(const OpenedBundle& bundle, const std::string& suspect_path,
                                                  const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (!(options.alpha > 0 && options.alpha < 1)) return absl::InvalidArgumentError("alpha: must be in (0, 1)");
  if (options.m < 0) return absl::InvalidArgumentError("m: must be >= 0 (0 = all samples)");
  MOVE_ASSIGN_OR_RETURN(c10::Device device, ResolveDevice(options.device));
  // The suspect's weights only: none of its code is compiled or run. Every figure below comes
  // from the SDK's own graph of the matched architecture carrying those weights.
  MOVE_ASSIGN_OR_RETURN(ModelWeights weights, ReadModelWeights(suspect_path));
  const BundleContents& c = bundle.contents;
  MOVE_ASSIGN_OR_RETURN(verifier_internal::MatchedSuspect matched, verifier_internal::MatchArchitecture(c, weights, device));
  const ArchitectureVerifier* v = matched.verifier;
  torch::jit::Module suspect = matched.model;
  const ModelSpec spec = matched.spec;
  std::string unused_warning;
  if (!matched.unused.empty()) {
    unused_warning = absl::StrCat("the suspect's file holds ", matched.unused.size(), " tensors ", v->architecture(),
                                  " does not have (", matched.unused.front(), matched.unused.size() > 1 ? ", ..." : "",
                                  "); they were ignored: the figures come from the architecture's own tensors");
  }
  MOVE_ASSIGN_OR_RETURN(WhiteBoxExtractor extractor, WhiteBoxExtractor::Create(spec, v->features().max_units()));
  const std::string kind = v->features().kind();
  if (kind != kSignKind && kind != kRelativeKind) {
    return absl::DataLossError(absl::StrCat("bundle: unknown feature kind '", kind, "'"));
  }
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, proto] : v->classifier()) {
    MOVE_ASSIGN_OR_RETURN(state[name], FromTensorProto(proto));
  }
  MOVE_ASSIGN_OR_RETURN(MetaClassifier classifier, MetaClassifier::FromState(state));
  if (core::Sha256Hex(v->reference_model()) != v->reference_model_sha256()) {
    return absl::DataLossError("bundle: reference model does not match its SHA-256");
  }
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module reference, ModuleFromBytes(v->reference_model(), device));
  MOVE_ASSIGN_OR_RETURN(verifier_internal::SampleSet samples, verifier_internal::LoadVerificationSamples(c));
  const int64_t available = samples.labels.size(0);
  const int64_t m = options.m == 0 ? available : options.m;
  MOVE_ASSIGN_OR_RETURN(at::Tensor idx, verifier_internal::VerificationSubset(available, m, options.seed));
  const at::Tensor xs = samples.styled.index_select(0, idx), xc = samples.clean.index_select(0, idx),
                   y = samples.labels.index_select(0, idx);
  MOVE_ASSIGN_OR_RETURN(at::Tensor fs, Features(kind, extractor, suspect, xs, xc, y));
  MOVE_ASSIGN_OR_RETURN(at::Tensor fr, Features(kind, extractor, reference, xs, xc, y));
  MOVE_ASSIGN_OR_RETURN(at::Tensor ss, classifier.Score(fs));
  MOVE_ASSIGN_OR_RETURN(at::Tensor sr, classifier.Score(fr));
  const std::vector<double> a = ToVector(ss), b = ToVector(sr);
  MOVE_ASSIGN_OR_RETURN(auto t, verifier_internal::OneSidedPairedTTest(a, b, options.alpha));

  VerificationReport r;
  r.set_format("move.report.v1");
  SetLine(LINE_WHITE_BOX, &r);
  r.set_architecture(v->architecture());
  r.set_feature_design(kind);
  r.set_p_value(t.p_value);
  r.set_log10_p_value(t.log10_p_value);
  r.set_delta_mu(t.delta_mu);
  r.set_delta_mu_ci_low(t.ci_low);
  r.set_delta_mu_ci_high(t.ci_high);
  r.set_m(m);
  r.set_alpha(options.alpha);
  r.set_test(t.method);
  r.set_suspect_mean_score(ss.mean().item<double>());
  r.set_reference_mean_score(sr.mean().item<double>());
  verifier_internal::Decide(t.reject, v->sound(), v->unsound_reason(), "white-box", v->type1_error(), v->type2_error(),
                            options.alpha, /*warn_below_minimum=*/true, &r);
  {
    const std::vector<int64_t> used(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
    MOVE_RETURN_IF_ERROR(verifier_internal::ApplyModelLevelTest(v->benign_scores(), used, ss.mean().item<double>(),
                                                                options.alpha, &r));
  }
  {
    if (!(options.min_relative_accuracy >= 0 && options.min_relative_accuracy <= 1)) {
      return absl::InvalidArgumentError("min_relative_accuracy: must be in [0, 1]");
    }
    MOVE_ASSIGN_OR_RETURN(at::Tensor ps, PredictProbabilities(suspect, xc));
    MOVE_ASSIGN_OR_RETURN(at::Tensor pr, PredictProbabilities(reference, xc));
    verifier_internal::ApplyRangeCheck(ps.argmax(1).eq(y.to(ps.device())).to(torch::kFloat64).mean().item<double>(),
                                       pr.argmax(1).eq(y.to(pr.device())).to(torch::kFloat64).mean().item<double>(),
                                       options.min_relative_accuracy, &r);
  }
  if (options.reference_compatible) {
    auto rc = verifier_internal::ReferenceCompatibleTest(a, b, 40, std::min<int64_t>(10, m), options.seed);
    if (rc.ok()) {
      r.set_reference_compatible_harmonic_p(rc->harmonic_mean_p);
      r.set_reference_compatible_delta_mu(rc->mean_delta_mu);
    }
  }
  if (!unused_warning.empty()) r.add_warnings(unused_warning);
  r.set_suspect_sha256(weights.sha256);
  r.set_suspect_format(weights.format);
  r.set_suspect_path(suspect_path);
  r.mutable_suspect_scores()->Add(a.begin(), a.end());
  r.mutable_reference_scores()->Add(b.begin(), b.end());
  verifier_internal::FillProvenance(bundle, options.seed, options.device, start, &r);
  return r;
}

namespace verifier_internal {

bool LeaveOneOutModelLevelRejects(const google::protobuf::RepeatedPtrField<BenignScores>& table, int k, double alpha,
                                  double* log10_p) {
  *log10_p = 0;
  auto mean = [](const BenignScores& b) {
    double s = 0;
    for (float x : b.scores()) s += x;
    return b.scores_size() > 0 ? s / b.scores_size() : 0.0;
  };
  std::vector<double> others;
  for (int j = 0; j < table.size(); ++j) {
    if (j != k) others.push_back(mean(table[j]));
  }
  if (others.size() < 2) return true;
  absl::StatusOr<ModelLevelTestResult> t = ModelLevelTest(mean(table[k]), others, alpha);
  if (!t.ok()) return true;
  *log10_p = t->log10_p_value;
  return t->reject;
}

void AddBenignScores(const at::Tensor& scores, const std::string& kind, const std::string& architecture,
                     google::protobuf::RepeatedPtrField<BenignScores>* table) {
  BenignScores* b = table->Add();
  b->set_kind(kind);
  b->set_architecture(architecture);
  for (double x : ToVector(scores)) b->add_scores(static_cast<float>(x));
}

absl::Status ApplyModelLevelTest(const google::protobuf::RepeatedPtrField<BenignScores>& benign,
                                 const std::vector<int64_t>& sample_indices, double suspect_mean, double alpha,
                                 VerificationReport* r) {
  if (benign.size() < 2) {
    r->set_model_level_tested(false);
    r->add_warnings("the bundle holds no benign score table (built by an older SDK): the model-level test was "
                    "skipped and the verdict rests on the paired test alone");
    return absl::OkStatus();
  }
  std::vector<double> means;
  for (const BenignScores& b : benign) {
    double sum = 0;
    for (int64_t i : sample_indices) {
      if (i < 0 || i >= b.scores_size()) {
        return absl::DataLossError(absl::StrCat("bundle: benign score table '", b.kind(), "' has ", b.scores_size(),
                                                " scores, sample ", i, " needed"));
      }
      sum += b.scores(static_cast<int>(i));
    }
    means.push_back(sum / std::max<size_t>(1, sample_indices.size()));
  }
  return ApplyModelLevelStatistic(benign, means, suspect_mean, "mean score", alpha, r);
}

absl::Status ApplyModelLevelStatistic(const google::protobuf::RepeatedPtrField<BenignScores>& benign,
                                      const std::vector<double>& benign_statistics, double suspect_statistic,
                                      const std::string& statistic, double alpha, VerificationReport* r) {
  if (static_cast<int>(benign_statistics.size()) != benign.size()) {
    return absl::InternalError("model-level test: one statistic per benign model is needed");
  }
  for (const BenignScores& b : benign) {
    r->add_benign_kinds(b.kind());
    r->add_benign_architectures(b.architecture());
  }
  MOVE_ASSIGN_OR_RETURN(ModelLevelTestResult t, ModelLevelTest(suspect_statistic, benign_statistics, alpha));
  r->set_model_level_tested(true);
  r->set_model_level_statistic(statistic);
  r->set_model_level_suspect_score(suspect_statistic);
  r->set_model_level_p_value(t.p_value);
  r->set_model_level_log10_p_value(t.log10_p_value);
  r->set_model_level_t(t.t);
  r->set_model_level_benign_models(t.n);
  r->mutable_benign_mean_scores()->Add(benign_statistics.begin(), benign_statistics.end());
  r->set_model_level_reject(t.reject);
  if (r->stolen() && !t.reject) {
    SetVerdict(VERDICT_NOT_STOLEN,
               absl::StrFormat("not stolen: the suspect scores above the reference (paired p = %.3g), but its %s "
                               "%.3f is within what independent models reach (%d held-out benign models: mean %.3f, "
                               "sd %.3f; model-level p = %.3g >= alpha %g)",
                               r->p_value(), statistic, suspect_statistic, t.n, t.benign_mean, t.benign_sd, t.p_value,
                               alpha),
               r);
  }
  return absl::OkStatus();
}

void ApplyRangeCheck(double suspect_accuracy, double reference_accuracy, double min_relative, VerificationReport* r) {
  r->set_suspect_clean_accuracy(suspect_accuracy);
  r->set_reference_clean_accuracy(reference_accuracy);
  r->set_min_relative_accuracy(min_relative);
  const bool in_range = suspect_accuracy >= min_relative * reference_accuracy;
  r->set_suspect_in_range(in_range);
  if (in_range) return;
  const std::string why = absl::StrFormat(
      "the suspect's accuracy on the clean verification images (%.3f) is below %.2f x the benign reference's (%.3f): "
      "outside the range of models the classifier's soundness check covers",
      suspect_accuracy, min_relative, reference_accuracy);
  if (r->stolen()) {
    SetVerdict(VERDICT_INCONCLUSIVE, absl::StrCat("inconclusive: ", why, "; no theft is claimed"), r);
  } else {
    r->add_warnings(why);
  }
}

}  // namespace verifier_internal

std::string ReportToJson(const VerificationReport& report) {
  return core::ProtoToJson(report);
}

}  // namespace move
