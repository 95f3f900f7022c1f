// MOVE end to end on one machine (the README's main job): protect, bundle, verify.
//
//   bazel run //examples:vendor -- --out=out/vendor
//
// 1. Protect: loads Fashion-MNIST (Debian's dataset-fashion-mnist), watermarks 10% of the
//    owner's training split with the shipped style image and trains the victim.
// 2. Bundle: trains watermarked and benign populations through the same training recipe,
//    the meta-classifier, a held-out benign reference and calibration models (soundness
//    check: benign, rival-vendor and appearance-augmented), the UAP fingerprint verifier
//    (students that query the victim with a query pool, the bundle's benign models reused as
//    its independents and null population), the label-agreement line (the victim's mistakes
//    on the test split against the same benign models), and writes the signed verifier bundle.
// 3. Verify: makes suspects (the victim, a fine-tuned copy, distilled students, logit- and
//    label-query students) and independent models that never touched the bundle (other seed,
//    disjoint data split, another seed on that split, a wider net, a rival vendor's MOVE model
//    with its own secret style, a model trained with appearance augmentation), examines each
//    with the bundle in white-box mode and, served over HTTP on loopback, in black-box mode
//    (fixed m and sequential), with the fingerprint and by label agreement, and prints the
//    tables, the last one with the combined verdict move_verify gives (Holm over the MOVE line,
//    the fingerprint and the label agreement).
//    Independent models must not be flagged.
// Writes, atomically, into --out:
//   victim.pt                  the victim (TorchScript; torch.jit.load-able from Python)
//   victim.move                the signed verifier bundle
//   vendor.key, vendor.key.pub the signing key (made if --key does not exist)
//   watermark_record.json      the owner's secret record of the embedding
//   contact_sheet.png          originals (odd rows) over their styled versions (even rows)
//   scores_whitebox.png, scores_blackbox.png   score distributions per suspect (pictures)
//   suspects/NAME.pt, suspects/NAME.report.json   each suspect and its white-box report
//   suspects/NAME.{blackbox,sequential,fingerprint,label-agreement}.{report.json,transcript.jsonl}
//                              black-box, fingerprint and label-agreement reports and the
//                              transcripts of every query
//                              (replay with move_verify --replay)
//   suspects/NAME.combined-{file,endpoint}.json   the combined verdicts (white-box or
//                              black-box, with the fingerprint and the label agreement)
//   report.json                the whole run, machine-readable
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <cctype>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "sdk/blackbox.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/fingerprint.h"
#include "sdk/label_agreement.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/serving.h"
#include "sdk/train.h"
#include "sdk/verdict.h"
#include "sdk/ownership.h"
#include "sdk/version.h"
#include "redteam/attacks.h"

ABSL_FLAG(std::string, data_dir, move::kDefaultFashionMnistDir,
          "Fashion-MNIST directory (gzip IDX files), or CIFAR-10 binary batches with --dataset=cifar10.");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "fashion-mnist or cifar10.");
ABSL_FLAG(std::string, style, "testdata/style_leopard.png", "Secret style image (PNG/JPEG).");
ABSL_FLAG(double, gamma, 0.1, "Fraction of training samples to style, in (0, 1].");
ABSL_FLAG(double, style_strength, 1.0, "Content/style balance (> 0; AdaIN: alpha in (0, 1]).");
ABSL_FLAG(std::string, engine, "texture", "Style engine: texture (built-in) or adain.");
ABSL_FLAG(std::string, adain_encoder, "", "AdaIN encoder TorchScript file (with --engine=adain).");
ABSL_FLAG(std::string, adain_decoder, "", "AdaIN decoder TorchScript file (with --engine=adain).");
ABSL_FLAG(int64_t, fit_steps, 300, "Texture engine: optimisation steps when fitting the stylizer.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the embedding (victim and benign use seed+1, seed+2).");
ABSL_FLAG(std::string, arch, "cnn", "Model architecture: cnn, cnn-wN, resnet18, wrn-D-K, vgg11.");
ABSL_FLAG(int, epochs, 3, "Training epochs of the recipe (victim, populations, suspects).");
ABSL_FLAG(int, train_size, 15000,
          "Owner's training images (seeded subset of the training set); the next as many form the disjoint split "
          "that independent models and attackers use.");
ABSL_FLAG(int, population, 4, "Watermarked and benign models each in the bundle's population.");
ABSL_FLAG(int, students, 0,
          "Students per side distilled from watermarked and benign population members (classifier training only).");
ABSL_FLAG(int, calibration, 4,
          "Benign calibration models for the bundle's soundness check and the model-level test's benign sample.");
ABSL_FLAG(int, rival_calibration, 1,
          "Rival-vendor calibration models (benign, MOVE with another secret style) in the bundle's soundness check.");
ABSL_FLAG(int, augmented_calibration, 1,
          "Appearance-augmented benign calibration models in the bundle's soundness check.");
ABSL_FLAG(std::string, blackbox_design, "style-contrast",
          "Black-box design: style-contrast (secret style against decoy styles) or probability-difference (the paper's).");
ABSL_FLAG(int, verification_samples, 200, "Styled held-out test images stored in the bundle.");
ABSL_FLAG(double, alpha, 0.01, "Significance level.");
ABSL_FLAG(std::vector<std::string>, shadow, {},
          "Shadow architectures the bundle also covers (e.g. cnn-w2, so the wider independent net is examinable); "
          "each adds a population to train.");
ABSL_FLAG(std::string, key, "", "Signing key file (default OUT/vendor.key; made if missing).");
ABSL_FLAG(bool, suspects, true, "Make and verify the suspects and independent models.");
ABSL_FLAG(bool, blackbox, true,
          "Also verify every suspect in black-box mode, each served over HTTP on loopback (fixed m and sequential).");
ABSL_FLAG(bool, fingerprint, true,
          "Also build the UAP fingerprint verifier into the bundle (3 piracy helpers and 1 independent on a query pool; "
          "the bundle's own benign models as its other independents and calibration) and print the combined verdict.");
ABSL_FLAG(bool, label_agreement, true,
          "Also build the label-agreement line into the bundle (the victim's mistakes on the test split against the "
          "bundle's own benign models; nothing is trained for it) and examine every suspect with it.");
ABSL_FLAG(int, query_pool, 5000,
          "Images of the training set's third split (neither the owner's nor the attackers') that the fingerprint "
          "helpers query the victim with.");
ABSL_FLAG(int64_t, blackbox_m, 100, "Black-box verification samples (21 queries each with style contrast; the paper's m = 100).");
ABSL_FLAG(int, batch_size, 128, "Training batch size.");
ABSL_FLAG(double, learning_rate, 0.05, "Peak SGD learning rate (cosine schedule).");
ABSL_FLAG(int, styled_test_size, 1000, "Test images styled to measure the external feature.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");
ABSL_FLAG(std::string, out, "out/vendor", "Output directory (created if missing).");

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

Value Num(double v) { Value x; x.set_number_value(v); return x; }
Value Str(const std::string& v) { Value x; x.set_string_value(v); return x; }

// Sets report fields from named counts.
void SetCounts(google::protobuf::Map<std::string, Value>& fields,
               std::initializer_list<std::pair<const char*, double>> counts) {
  for (const auto& [name, value] : counts) fields[name] = Num(value);
}

// `bazel run` starts the program in its runfiles tree; relative paths the user typed are
// meant relative to where they ran the command (BUILD_WORKING_DIRECTORY).
std::string UserPath(const std::string& path, bool must_exist) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd == nullptr || path.empty() || path[0] == '/') return path;
  const std::string candidate = absl::StrCat(cwd, "/", path);
  if (!must_exist || std::filesystem::exists(candidate)) return candidate;
  return path;
}

absl::StatusOr<move::Dataset> Load(move::Split split) {
  const std::string which = absl::GetFlag(FLAGS_dataset);
  if (which == "fashion-mnist") return move::LoadFashionMnist(absl::GetFlag(FLAGS_data_dir), split);
  if (which == "cifar10") return move::LoadCifar10(absl::GetFlag(FLAGS_data_dir), split);
  return absl::InvalidArgumentError(absl::StrCat("--dataset: expected fashion-mnist or cifar10, got '", which, "'"));
}

// One word for the tables (the reports carry the whole verdict): "not stolen*" when the paired
// test alone would have flagged the suspect and the model-level test did not.
std::string ShortVerdict(const move::VerificationReport& r) {
  const move::Verdict v = move::OutcomeOf(r);
  if (v != move::VERDICT_NOT_STOLEN) return std::string(move::VerdictName(v));
  if (r.model_level_tested() && !r.model_level_reject() && r.log10_p_value() < std::log10(r.alpha())) {
    return "not stolen*";
  }
  return "not stolen";
}

absl::Status Run() {
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_RETURN_IF_ERROR(move::ResolveDevice(absl::GetFlag(FLAGS_device)).status());
  const std::string out = UserPath(absl::GetFlag(FLAGS_out), /*must_exist=*/false);
  MOVE_RETURN_IF_ERROR(move::core::MakeDirs(out));
  // Flags are checked before any work starts.
  if (absl::GetFlag(FLAGS_epochs) < 1) return absl::InvalidArgumentError("--epochs: must be >= 1");
  if (absl::GetFlag(FLAGS_blackbox_design) != "style-contrast" &&
      absl::GetFlag(FLAGS_blackbox_design) != "probability-difference") {
    return absl::InvalidArgumentError(absl::StrCat("--blackbox_design: expected style-contrast or probability-difference, got '",
                                                   absl::GetFlag(FLAGS_blackbox_design), "'"));
  }
  if (absl::GetFlag(FLAGS_rival_calibration) < 0 || absl::GetFlag(FLAGS_augmented_calibration) < 0) {
    return absl::InvalidArgumentError("--rival_calibration, --augmented_calibration: must be >= 0");
  }
  if ((absl::GetFlag(FLAGS_fingerprint) || absl::GetFlag(FLAGS_label_agreement)) &&
      1 + absl::GetFlag(FLAGS_calibration) + absl::GetFlag(FLAGS_rival_calibration) + absl::GetFlag(FLAGS_augmented_calibration) < 3) {
    return absl::InvalidArgumentError(
        "--fingerprint, --label_agreement: need at least 3 held-out benign models (the reference plus --calibration, "
        "--rival_calibration and --augmented_calibration models); add some or pass --fingerprint=false "
        "--label_agreement=false");
  }
  // The bundle's options, checked before the first minute of training.
  move::BuildBundleOptions bo;
  bo.population = absl::GetFlag(FLAGS_population);
  bo.calibration_models = absl::GetFlag(FLAGS_calibration);
  bo.decoy_calibration_models = absl::GetFlag(FLAGS_rival_calibration);
  bo.augmented_calibration_models = absl::GetFlag(FLAGS_augmented_calibration);
  bo.blackbox_design = absl::GetFlag(FLAGS_blackbox_design);
  bo.verification_samples = absl::GetFlag(FLAGS_verification_samples);
  bo.alpha = absl::GetFlag(FLAGS_alpha);
  bo.seed = absl::GetFlag(FLAGS_seed);
  bo.shadow_architectures = absl::GetFlag(FLAGS_shadow);
  bo.blackbox = absl::GetFlag(FLAGS_blackbox);
  bo.student_members = absl::GetFlag(FLAGS_students);
  if (absl::Status s = move::ValidateBuildBundleOptions(bo); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle options (--population, --calibration, ...): ", s.message()));
  }
  MOVE_ASSIGN_OR_RETURN(move::ModelSpec spec, move::ParseModelSpec(absl::GetFlag(FLAGS_arch)));
  std::printf("MOVE SDK %s vendor example | %s\n", move::kSdkVersion, move::RuntimeDescription().c_str());

  MOVE_ASSIGN_OR_RETURN(move::Dataset train, Load(move::Split::kTrain));
  MOVE_ASSIGN_OR_RETURN(move::Dataset test, Load(move::Split::kTest));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (absl::GetFlag(FLAGS_train_size) < 0) return absl::InvalidArgumentError("--train_size: must be >= 0");
  if (absl::GetFlag(FLAGS_train_size) > 0) {
    MOVE_ASSIGN_OR_RETURN(train, move::SampleSubset(train, absl::GetFlag(FLAGS_train_size), seed));
  }
  std::printf("data: %s, %lld training / %lld test images of %lldx%lldx%lld\n", train.name.c_str(),
              static_cast<long long>(train.size()), static_cast<long long>(test.size()),
              static_cast<long long>(train.images.size(1)), static_cast<long long>(train.images.size(2)),
              static_cast<long long>(train.images.size(3)));

  // The disjoint split: data the owner never used (attackers' substitute data, independents),
  // and after it the vendor's query pool for the fingerprint helpers (used by no one else).
  move::Dataset split, query_pool;
  {
    MOVE_ASSIGN_OR_RETURN(move::Dataset full, Load(move::Split::kTrain));
    const int64_t n = std::min<int64_t>(train.size(), full.size() - train.size());
    if (n < 100) return absl::InvalidArgumentError("--train_size: leaves too few images for a disjoint split");
    // The same permutation SampleSubset drew the owner's split from.
    at::Tensor owner_mask = torch::zeros({full.size()}, torch::kBool);
    at::Tensor perm = torch::randperm(full.size(), at::make_generator<at::CPUGeneratorImpl>(seed),
                                      torch::TensorOptions().dtype(torch::kInt64));
    owner_mask.index_fill_(0, perm.narrow(0, 0, train.size()), true);
    at::Tensor rest = owner_mask.logical_not().nonzero().squeeze(1);
    MOVE_ASSIGN_OR_RETURN(split, move::SelectSamples(full, rest.narrow(0, 0, n)));
    split = move::ToRgb(split);
    if (absl::GetFlag(FLAGS_fingerprint)) {
      const int64_t q = absl::GetFlag(FLAGS_query_pool);
      if (q < 100 || q > rest.size(0) - n) {
        return absl::InvalidArgumentError(absl::StrCat("--query_pool: must be in [100, ", rest.size(0) - n,
                                                       "] (the training images left after the owner's and the disjoint split)"));
      }
      MOVE_ASSIGN_OR_RETURN(query_pool, move::SelectSamples(full, rest.narrow(0, n, q)));
      query_pool = move::ToRgb(query_pool);
    }
  }

  // 1. Embed the watermark.
  auto style = move::LoadImage(UserPath(absl::GetFlag(FLAGS_style), /*must_exist=*/true));
  if (!style.ok()) return absl::Status(style.status().code(), absl::StrCat("--style: ", style.status().message()));
  move::EmbedDatasetOptions eo;
  eo.gamma = absl::GetFlag(FLAGS_gamma);
  eo.seed = seed;
  eo.style_strength = absl::GetFlag(FLAGS_style_strength);
  eo.device = absl::GetFlag(FLAGS_device);
  eo.texture.fit_steps = absl::GetFlag(FLAGS_fit_steps);
  const std::string engine = absl::GetFlag(FLAGS_engine);
  if (engine == "adain") {
    eo.engine = move::StyleEngine::kAdaIn;
    eo.adain.encoder_path = absl::GetFlag(FLAGS_adain_encoder);
    eo.adain.decoder_path = absl::GetFlag(FLAGS_adain_decoder);
  } else if (engine != "texture") {
    return absl::InvalidArgumentError(absl::StrCat("--engine: expected texture or adain, got '", engine, "'"));
  }
  MOVE_ASSIGN_OR_RETURN(move::EmbedResult wm, move::EmbedDataset(train, *style, eo));
  const auto& rec = wm.record;
  const double embed_seconds = rec.seconds_fit() + rec.seconds_apply();
  std::printf("embedded: %d images styled (gamma %.3g) in %.1f s (fit %.1f s + apply %.1f s, %.0f images/s)\n",
              rec.picked_indices_size(), rec.gamma(), embed_seconds, rec.seconds_fit(), rec.seconds_apply(),
              rec.picked_indices_size() / embed_seconds);
  std::printf("style distance to the style image: %.3f before, %.3f after (%.1fx closer)\n",
              rec.style_distance_before(), rec.style_distance_after(),
              rec.style_distance_before() / rec.style_distance_after());
  MOVE_RETURN_IF_ERROR(move::SaveWatermarkRecord(rec, out + "/watermark_record.json"));
  {
    at::Tensor idx = wm.picked_indices.narrow(0, 0, std::min<int64_t>(16, wm.picked_indices.size(0)));
    MOVE_RETURN_IF_ERROR(move::SaveContactSheet(out + "/contact_sheet.png",
                                                move::ToRgb(train).images.index_select(0, idx),
                                                wm.dataset.images.index_select(0, idx), 8, 3));
  }

  // 2. The training recipe: the same for the victim, the populations and every suspect.
  spec.in_channels = 3;
  spec.num_classes = train.num_classes;
  move::TrainOptions to;
  to.epochs = absl::GetFlag(FLAGS_epochs);
  to.batch_size = absl::GetFlag(FLAGS_batch_size);
  to.learning_rate = absl::GetFlag(FLAGS_learning_rate);
  to.device = absl::GetFlag(FLAGS_device);
  auto train_with = [&](const move::ModelSpec& arch, const move::Dataset& data, uint64_t s, const std::string& label,
                        torch::jit::Module* teacher) -> absl::StatusOr<torch::jit::Module> {
    move::ModelSpec model_spec = arch;
    model_spec.seed = s;
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, move::CreateModel(model_spec));
    move::TrainOptions o = to;
    o.seed = s;
    o.label = label;
    o.teacher = teacher;
    MOVE_RETURN_IF_ERROR(move::TrainModel(model, data, o).status());
    model.to(torch::kCPU);
    return model;
  };
  move::TrainingRecipe recipe = [&](const move::ModelSpec& arch, const move::Dataset& data, uint64_t s) {
    return train_with(arch, data, s, absl::StrCat("recipe ", move::ModelSpecName(arch), " seed ", s), nullptr);
  };
  const move::Dataset clean = move::ToRgb(train);
  const move::Dataset test_rgb = move::ToRgb(test);
  MOVE_ASSIGN_OR_RETURN(move::Dataset styled_test,
                        move::SampleSubset(test_rgb, std::min<int64_t>(absl::GetFlag(FLAGS_styled_test_size), test.size()), seed + 3));
  MOVE_ASSIGN_OR_RETURN(styled_test.images, wm.StyleImages(styled_test.images));

  MOVE_ASSIGN_OR_RETURN(torch::jit::Module victim, train_with(spec, wm.dataset, seed + 1, "train victim", nullptr));
  const std::string victim_path = out + "/victim.pt";
  MOVE_RETURN_IF_ERROR(move::SaveModel(victim, victim_path));

  // 3. The signed bundle.
  std::string key_path = absl::GetFlag(FLAGS_key).empty() ? out + "/vendor.key" : UserPath(absl::GetFlag(FLAGS_key), false);
  absl::StatusOr<move::SigningKey> key = move::LoadSigningKey(key_path);
  if (absl::IsNotFound(key.status())) {
    MOVE_ASSIGN_OR_RETURN(key, move::GenerateSigningKey());
    MOVE_RETURN_IF_ERROR(move::SaveSigningKey(*key, key_path));
    std::printf("made signing key %s (public key %s.pub)\n", key_path.c_str(), key_path.c_str());
  } else if (!key.ok()) {
    return absl::Status(key.status().code(), absl::StrCat("--key: ", key.status().message()));
  }
  move::BuildBundleInputs in;
  in.watermark = &wm;
  in.clean_train = &train;
  in.clean_test = &test;
  in.spec = spec;
  in.victim_model_path = victim_path;
  in.style_image = *style;
  move::DistillationRecipe distill = [&](const move::ModelSpec& arch, const move::Dataset& data, uint64_t s,
                                         const torch::jit::Module& teacher) {
    torch::jit::Module t = teacher;
    return train_with(arch, data, s, absl::StrCat("recipe student ", move::ModelSpecName(arch), " seed ", s), &t);
  };
  move::TrainedModels trained;
  MOVE_ASSIGN_OR_RETURN(move::BundleContents contents, move::BuildBundle(in, recipe, bo, distill, &trained));
  if (absl::GetFlag(FLAGS_fingerprint)) {
    // The fingerprint verifier reuses the bundle's benign models: its population members as
    // the encoder's independents, the reference and calibration models (benign, rival-vendor,
    // appearance-augmented) as its own null population. It trains only helpers that query the
    // victim with the query pool, as a thief would, and one independent on the same images.
    const auto fp_start = std::chrono::steady_clock::now();
    move::FingerprintBuildInputs fin;
    fin.victim = &victim;
    fin.point_pool = &clean;
    fin.verification_pool = &test_rgb;
    const std::string arch = move::ModelSpecName(spec);
    const int piracy_epochs[] = {to.epochs, to.epochs, 3 * to.epochs};
    for (int i = 0; i < 3; ++i) {
      move::TrainOptions o = to;
      o.epochs = piracy_epochs[i];
      const uint64_t s = seed + 30 + i;
      const std::string label = absl::StrCat("fingerprint helper: student on the query pool, ", o.epochs, " epochs, seed ", s);
      move::ModelSpec student = spec;
      student.seed = s;
      MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, move::CreateModel(student));
      o.seed = s;
      o.label = label;
      o.teacher = &victim;
      MOVE_RETURN_IF_ERROR(move::TrainModel(m, query_pool, o).status());
      m.to(torch::kCPU);
      fin.piracy.push_back({label, arch, m});
    }
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module own, train_with(spec, query_pool, seed + 33,
                                                             "fingerprint helper: independent on the query pool", nullptr));
    fin.independent.push_back({"independent on the query pool", arch, own});
    for (const move::TrainedModel& t : trained.benign) fin.independent.push_back({t.role, t.architecture, t.model});
    for (const move::TrainedModel& t : trained.held_out) {
      fin.calibration.push_back({absl::StrCat(t.role, " (", t.architecture, ")"), t.architecture, t.model, t.role});
    }
    move::FingerprintBuildOptions fo;
    fo.alpha = absl::GetFlag(FLAGS_alpha);
    fo.seed = seed;
    MOVE_ASSIGN_OR_RETURN(*contents.mutable_fingerprint(), move::BuildFingerprintVerifier(fin, fo));
    (*contents.mutable_metadata())["fingerprint_helpers"] =
        absl::StrCat(fin.piracy.size() + 1, " trained for it (students and an independent on a ", query_pool.size(),
                     "-image query pool); ", trained.benign.size() + trained.held_out.size(), " reused from the bundle");
    std::printf("fingerprint verifier: %zu helper models trained for it, %zu reused from the bundle, %.1f min\n",
                fin.piracy.size() + 1, trained.benign.size() + trained.held_out.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - fp_start).count() / 60);
  }
  if (absl::GetFlag(FLAGS_label_agreement)) {
    // The victim's mistakes on the test split (no model here trained on it) against every
    // benign model the bundle trained: the reference first, then the calibration models and
    // the population members. Nothing is trained for this line.
    move::LabelAgreementBuildInputs la;
    la.victim = &victim;
    la.pool = &test_rgb;
    for (const move::TrainedModel& t : trained.held_out) la.benign.push_back({t.role, t.architecture, t.model, t.role});
    for (const move::TrainedModel& t : trained.benign) la.benign.push_back({t.role, t.architecture, t.model, t.role});
    move::LabelAgreementBuildOptions lo;
    lo.alpha = absl::GetFlag(FLAGS_alpha);
    lo.seed = seed;
    MOVE_ASSIGN_OR_RETURN(*contents.mutable_label_agreement(), move::BuildLabelAgreementVerifier(la, lo));
  }
  trained = {};
  const std::string bundle_path = out + "/victim.move";
  MOVE_RETURN_IF_ERROR(move::WriteBundle(contents, *key, bundle_path));
  MOVE_ASSIGN_OR_RETURN(move::OpenedBundle bundle, move::ReadBundle(bundle_path, key->public_key));
  const move::ArchitectureVerifier& av = bundle.contents.verifiers(0);
  std::printf("bundle: %s | classifier held-out-model errors Type-I %.3f Type-II %.3f | soundness check %s "
              "(calibration log10 p:", bundle_path.c_str(), av.type1_error(), av.type2_error(), av.sound() ? "passed" : "FAILED");
  for (double lp : av.calibration_log10_p()) std::printf(" %.2f", lp);
  std::printf(") | victim log10 p %.2f\n", av.victim_log10_p());

  Struct report;
  auto& fields = *report.mutable_fields();
  fields["sdk_version"] = Str(move::kSdkVersion);
  fields["runtime"] = Str(move::RuntimeDescription());
  fields["dataset"] = Str(train.name);
  fields["train_size"] = Num(train.size());
  fields["architecture"] = Str(move::ModelSpecName(spec));
  fields["epochs"] = Num(to.epochs);
  fields["seed"] = Num(seed);
  fields["styled_images"] = Num(rec.picked_indices_size());
  fields["embed_seconds"] = Num(embed_seconds);
  fields["embed_images_per_second"] = Num(rec.picked_indices_size() / embed_seconds);
  fields["style_distance_before"] = Num(rec.style_distance_before());
  fields["style_distance_after"] = Num(rec.style_distance_after());
  fields["bundle"] = Str(bundle_path);
  fields["bundle_sha256"] = Str(bundle.file_sha256);
  fields["classifier_sound"] = Value();
  fields["classifier_sound"].set_bool_value(av.sound());

  // 4. Suspects and independent models, each examined with the bundle.
  struct Suspect {
    std::string name;
    bool stolen;
    torch::jit::Module model;
  };
  std::vector<Suspect> suspects;
  suspects.push_back({"victim", true, victim});
  if (absl::GetFlag(FLAGS_suspects)) {
    // Stealing attacks (redteam/attacks.h) with the owner's recipe.
    move::redteam::AttackInputs attack;
    attack.victim = &victim;
    attack.student = spec;
    attack.victim_data = &wm.dataset;  // the victim's training data, as the victim saw it
    attack.substitute = &split;        // data the victim never saw
    auto steal = [&](const std::string& name, const std::string& row, uint64_t s, int epochs,
                     const move::redteam::AttackInputs& in) -> absl::Status {
      move::TrainOptions o = to;
      o.seed = s;
      o.epochs = epochs;
      o.label = "attack: " + row;
      MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, move::redteam::RunAttack(name, in, o));
      suspects.push_back({row, true, m});
      return absl::OkStatus();
    };
    MOVE_RETURN_IF_ERROR(steal("fine-tune", "fine-tuned copy", seed + 10, 1, attack));
    // Distillation as in the paper (Hinton KD on the victim's training data), and the harder
    // case of an attacker who distils on substitute data only.
    MOVE_RETURN_IF_ERROR(steal("distill", "distilled student (victim's data)", seed + 12, to.epochs, attack));
    move::redteam::AttackInputs substitute_only = attack;
    substitute_only.victim_data = &split;
    MOVE_RETURN_IF_ERROR(steal("distill", "distilled student (substitute data)", seed + 11, to.epochs, substitute_only));
    // Query stealing through a prediction API, on substitute data.
    MOVE_RETURN_IF_ERROR(steal("logit-query", "logit-query student", seed + 13, to.epochs, attack));
    MOVE_RETURN_IF_ERROR(steal("label-query", "label-query student", seed + 14, to.epochs, attack));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module i1, train_with(spec, clean, seed + 20, "independent: other seed", nullptr));
    suspects.push_back({"independent: owner data, other seed", false, i1});
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module i2, train_with(spec, split, seed + 21, "independent: disjoint split", nullptr));
    suspects.push_back({"independent: disjoint split", false, i2});
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module i3, train_with(spec, split, seed + 22, "independent: split, seed 2", nullptr));
    suspects.push_back({"independent: disjoint split, seed 2", false, i3});
    move::ModelSpec wider = spec;
    wider.width = spec.width * 2;
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module i4, train_with(wider, split, seed + 23, "independent: wider net", nullptr));
    suspects.push_back({"independent: wider net", false, i4});
    // A rival vendor protecting its own model with this SDK: its own secret style (a
    // procedural texture the bundle never saw), its own seed, its own data (the disjoint split).
    {
      MOVE_ASSIGN_OR_RETURN(at::Tensor rival_style, move::DecoyStyleImage(seed + 424242));
      move::EmbedDatasetOptions ro = eo;
      ro.seed = seed + 24;
      ro.show_progress = false;
      MOVE_ASSIGN_OR_RETURN(move::EmbedResult rival, move::EmbedDataset(split, rival_style, ro));
      MOVE_ASSIGN_OR_RETURN(torch::jit::Module i5, train_with(spec, rival.dataset, seed + 25, "independent: rival vendor", nullptr));
      suspects.push_back({"independent: rival vendor's MOVE model", false, i5});
    }
    // Ordinary appearance augmentation (30% of images recoloured towards and blended with
    // textures the bundle never saw), on the disjoint split.
    {
      move::AppearanceAugmentOptions ao;
      ao.seed = seed + 4242;
      MOVE_ASSIGN_OR_RETURN(move::Dataset augmented, move::AugmentAppearance(split, ao));
      MOVE_ASSIGN_OR_RETURN(torch::jit::Module i6, train_with(spec, augmented, seed + 26, "independent: style-augmented", nullptr));
      suspects.push_back({"independent: style-augmented", false, i6});
    }
  }
  MOVE_RETURN_IF_ERROR(move::core::MakeDirs(out + "/suspects"));
  std::printf("\n%-40s %-11s %9s %10s %9s %10s %8s  %s\n", "suspect", "truth", "clean acc", "styled acc", "delta_mu",
              "p", "log10 p", "verdict");
  google::protobuf::ListValue rows;
  int stolen_total = 0, stolen_flagged = 0, indep_total = 0, indep_flagged = 0;
  std::vector<std::string> blackbox_lines;
  int bb_stolen_flagged = 0, bb_indep_flagged = 0, seq_stolen_flagged = 0, seq_indep_flagged = 0, bb_stolen = 0, bb_indep = 0;
  std::vector<int64_t> seq_queries_stolen;
  std::vector<std::string> combined_lines;
  int file_stolen_flagged = 0, file_indep_flagged = 0, endpoint_stolen_flagged = 0, endpoint_indep_flagged = 0;
  int combined_stolen = 0, combined_indep = 0;
  std::vector<move::ScoreRow> whitebox_scores, blackbox_scores;
  auto score_row = [](const move::VerificationReport& r) {
    move::ScoreRow row;
    row.suspect.assign(r.suspect_scores().begin(), r.suspect_scores().end());
    row.reference.assign(r.reference_scores().begin(), r.reference_scores().end());
    row.highlight = r.stolen();
    return row;
  };
  for (Suspect& s : suspects) {
    MOVE_ASSIGN_OR_RETURN(move::EvalResult clean_eval, move::Evaluate(s.model, test_rgb));
    MOVE_ASSIGN_OR_RETURN(move::EvalResult styled_eval, move::Evaluate(s.model, styled_test));
    std::string file = s.name;
    for (char& ch : file) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    const std::string path = s.name == "victim" ? victim_path : absl::StrCat(out, "/suspects/", file, ".pt");
    if (s.name != "victim") MOVE_RETURN_IF_ERROR(move::SaveModel(s.model, path));
    move::VerifyOptions vo;
    vo.alpha = absl::GetFlag(FLAGS_alpha);
    vo.device = absl::GetFlag(FLAGS_device);
    absl::StatusOr<move::VerificationReport> r = move::VerifyWhiteBox(bundle, path, vo);
    Struct row;
    (*row.mutable_fields())["suspect"] = Str(s.name);
    (*row.mutable_fields())["truth"] = Str(s.stolen ? "stolen" : "independent");
    (*row.mutable_fields())["clean_test_accuracy"] = Num(clean_eval.accuracy);
    (*row.mutable_fields())["styled_test_accuracy"] = Num(styled_eval.accuracy);
    (*row.mutable_fields())["model_file"] = Str(path);
    if (!r.ok()) {
      whitebox_scores.push_back({});
      std::printf("%-40s %-11s %9.4f %10.4f %9s %10s %8s  not examinable: %s\n", s.name.c_str(),
                  s.stolen ? "stolen" : "independent", clean_eval.accuracy, styled_eval.accuracy, "-", "-", "-",
                  absl::IsFailedPrecondition(r.status()) ? "architecture not covered by the bundle" : std::string(r.status().message()).c_str());
      (*row.mutable_fields())["verdict"] = Str(absl::StrCat("not examinable: ", r.status().message()));
    } else {
      MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(absl::StrCat(out, "/suspects/", file, ".report.json"),
                                                           move::ReportToJson(*r)));
      whitebox_scores.push_back(score_row(*r));
      const bool correct = r->stolen() == s.stolen;
      std::printf("%-40s %-11s %9.4f %10.4f %+9.3f %10.3g %8.2f  %s%s\n", s.name.c_str(), s.stolen ? "stolen" : "independent",
                  clean_eval.accuracy, styled_eval.accuracy, r->delta_mu(), r->p_value(), r->log10_p_value(),
                  ShortVerdict(*r).c_str(), correct ? "" : (s.stolen ? "  <- MISSED" : "  <- FALSE POSITIVE"));
      (*row.mutable_fields())["verdict"] = Str(r->verdict());
      (*row.mutable_fields())["model_level_log10_p_value"] = Num(r->model_level_log10_p_value());
      (*row.mutable_fields())["p_value"] = Num(r->p_value());
      (*row.mutable_fields())["log10_p_value"] = Num(r->log10_p_value());
      (*row.mutable_fields())["delta_mu"] = Num(r->delta_mu());
      if (s.stolen) { ++stolen_total; stolen_flagged += r->stolen(); } else { ++indep_total; indep_flagged += r->stolen(); }
    }
    const std::string base = absl::StrCat(out, "/suspects/", file);
    std::optional<move::VerificationReport> blackbox_report;
    if (absl::GetFlag(FLAGS_blackbox)) {
      // Black-box: the suspect is deployed behind the prediction protocol on loopback and
      // examined over HTTP, once with the paper's fixed m and once sequentially.
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::PredictionServer> server, move::PredictionServer::Start(s.model, {}));
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::SuspectChannel> channel, move::OpenHttpChannel(server->url()));
      move::BlackBoxOptions bbo;
      bbo.m = std::min<int64_t>(absl::GetFlag(FLAGS_blackbox_m), absl::GetFlag(FLAGS_verification_samples));
      bbo.alpha = absl::GetFlag(FLAGS_alpha);
      bbo.device = absl::GetFlag(FLAGS_device);
      bbo.show_progress = false;
      bbo.transcript_path = base + ".blackbox.transcript.jsonl";
      std::remove(bbo.transcript_path.c_str());  // this run's own output, remade
      absl::StatusOr<move::VerificationReport> fixed = move::VerifyBlackBox(bundle, *channel, bbo);
      move::BlackBoxOptions so = bbo;
      so.sequential = true;
      so.transcript_path = base + ".sequential.transcript.jsonl";
      std::remove(so.transcript_path.c_str());
      absl::StatusOr<move::VerificationReport> seq =
          fixed.ok() ? move::VerifyBlackBox(bundle, *channel, so) : absl::StatusOr<move::VerificationReport>(fixed.status());
      server->Stop();
      if (!fixed.ok() || !seq.ok()) {
        const absl::Status& e = fixed.ok() ? seq.status() : fixed.status();
        blackbox_lines.push_back(absl::StrFormat("%-40s %-11s not examinable: %s", s.name, s.stolen ? "stolen" : "independent",
                                                 e.message()));
        (*row.mutable_fields())["blackbox_verdict"] = Str(absl::StrCat("not examinable: ", e.message()));
        blackbox_scores.push_back({});
      } else {
        MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(base + ".blackbox.report.json", move::ReportToJson(*fixed)));
        MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(base + ".sequential.report.json", move::ReportToJson(*seq)));
        blackbox_report = *fixed;
        blackbox_scores.push_back(score_row(*fixed));
        const bool fixed_ok = fixed->stolen() == s.stolen, seq_ok = seq->stolen() == s.stolen;
        blackbox_lines.push_back(absl::StrFormat(
            "%-40s %-11s %+9.3f %10.3g %8.2f %-11s | %7lld %10.3g  %s%s", s.name, s.stolen ? "stolen" : "independent",
            fixed->delta_mu(), fixed->p_value(), fixed->log10_p_value(), ShortVerdict(*fixed),
            static_cast<long long>(seq->queries()), seq->p_value(), ShortVerdict(*seq),
            fixed_ok && seq_ok ? "" : (s.stolen ? "  <- MISSED" : "  <- FALSE POSITIVE")));
        (*row.mutable_fields())["blackbox_verdict"] = Str(fixed->verdict());
        (*row.mutable_fields())["blackbox_p_value"] = Num(fixed->p_value());
        (*row.mutable_fields())["blackbox_log10_p_value"] = Num(fixed->log10_p_value());
        (*row.mutable_fields())["blackbox_delta_mu"] = Num(fixed->delta_mu());
        (*row.mutable_fields())["blackbox_model_level_log10_p_value"] = Num(fixed->model_level_log10_p_value());
        (*row.mutable_fields())["blackbox_queries"] = Num(fixed->queries());
        (*row.mutable_fields())["sequential_verdict"] = Str(seq->verdict());
        (*row.mutable_fields())["sequential_p_value"] = Num(seq->p_value());
        (*row.mutable_fields())["sequential_queries"] = Num(seq->queries());
        (s.stolen ? bb_stolen : bb_indep) += 1;
        if (s.stolen) {
          bb_stolen_flagged += fixed->stolen();
          seq_stolen_flagged += seq->stolen();
          seq_queries_stolen.push_back(seq->queries());
        } else {
          bb_indep_flagged += fixed->stolen();
          seq_indep_flagged += seq->stolen();
        }
      }
    }
    std::optional<move::VerificationReport> label_report;
    std::string label_cell = "-";
    if (bundle.contents.has_label_agreement()) {
      // Label agreement over HTTP: top-1 labels on the victim's mistakes and the covers.
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::PredictionServer> server, move::PredictionServer::Start(s.model, {}));
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::SuspectChannel> channel, move::OpenHttpChannel(server->url()));
      move::LabelAgreementVerifyOptions lao;
      lao.alpha = absl::GetFlag(FLAGS_alpha);
      lao.show_progress = false;
      lao.transcript_path = base + ".label-agreement.transcript.jsonl";
      std::remove(lao.transcript_path.c_str());  // this run's own output, remade
      absl::StatusOr<move::VerificationReport> la = move::VerifyLabelAgreement(bundle, *channel, lao);
      server->Stop();
      if (!la.ok()) {
        label_cell = "not examinable";
        (*row.mutable_fields())["label_agreement_verdict"] = Str(absl::StrCat("not examinable: ", la.status().message()));
      } else {
        MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(base + ".label-agreement.report.json", move::ReportToJson(*la)));
        (*row.mutable_fields())["label_agreement_verdict"] = Str(la->verdict());
        (*row.mutable_fields())["label_agreement"] = Num(la->suspect_mean_score());
        (*row.mutable_fields())["label_agreement_rarity_weighted"] = Num(la->model_level_suspect_score());
        (*row.mutable_fields())["label_agreement_log10_p_value"] = Num(la->log10_p_value());
        (*row.mutable_fields())["label_agreement_model_level_log10_p_value"] = Num(la->model_level_log10_p_value());
        (*row.mutable_fields())["label_agreement_queries"] = Num(la->queries());
        label_cell = absl::StrFormat("%5.3f %6.2f %-11s", la->suspect_mean_score(), la->model_level_log10_p_value(),
                                     ShortVerdict(*la));
        label_report = *la;
      }
    }
    if (bundle.contents.has_fingerprint()) {
      // The fingerprint line over HTTP, then the combined verdict a legal team reads: Holm
      // over the lines move_verify runs with a model file (white-box, fingerprint, label
      // agreement) and with an endpoint (black-box, fingerprint, label agreement).
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::PredictionServer> server, move::PredictionServer::Start(s.model, {}));
      MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::SuspectChannel> channel, move::OpenHttpChannel(server->url()));
      move::FingerprintVerifyOptions fpo;
      fpo.alpha = absl::GetFlag(FLAGS_alpha);
      fpo.show_progress = false;
      fpo.transcript_path = base + ".fingerprint.transcript.jsonl";
      std::remove(fpo.transcript_path.c_str());  // this run's own output, remade
      absl::StatusOr<move::VerificationReport> fp = move::VerifyFingerprint(bundle, *channel, fpo);
      server->Stop();
      std::string line = absl::StrFormat("%-40s %-11s ", s.name, s.stolen ? "stolen" : "independent");
      if (!fp.ok()) {
        absl::StrAppend(&line, "not examinable: ", fp.status().message());
        (*row.mutable_fields())["fingerprint_verdict"] = Str(absl::StrCat("not examinable: ", fp.status().message()));
      } else {
        MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(base + ".fingerprint.report.json", move::ReportToJson(*fp)));
        (*row.mutable_fields())["fingerprint_verdict"] = Str(fp->verdict());
        (*row.mutable_fields())["fingerprint_log10_p_value"] = Num(fp->log10_p_value());
        (*row.mutable_fields())["fingerprint_model_level_log10_p_value"] = Num(fp->model_level_log10_p_value());
        absl::StrAppend(&line, absl::StrFormat("%5.2f / %4.2f %7.2f / %5.2f %-11s", fp->fingerprint_clean_agreement(),
                                               fp->fingerprint_perturbed_agreement(), fp->log10_p_value(),
                                               fp->model_level_log10_p_value(), ShortVerdict(*fp)));
        absl::StrAppend(&line, absl::StrFormat(" | %-25s", label_cell));
        // One combined verdict per way the legal team reaches the suspect.
        struct Way { const char* key; std::optional<move::VerificationReport> move_line; int* flagged; };
        Way ways[] = {{"file", r.ok() ? std::optional<move::VerificationReport>(*r) : std::nullopt,
                       s.stolen ? &file_stolen_flagged : &file_indep_flagged},
                      {"endpoint", blackbox_report, s.stolen ? &endpoint_stolen_flagged : &endpoint_indep_flagged}};
        bool wrong = false;
        for (Way& w : ways) {
          std::vector<move::VerificationReport> lines;
          if (w.move_line) lines.push_back(*w.move_line);
          lines.push_back(*fp);
          if (label_report) lines.push_back(*label_report);
          MOVE_ASSIGN_OR_RETURN(move::CombinedVerdict c, move::CombineEvidence(lines, absl::GetFlag(FLAGS_alpha)));
          MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(absl::StrCat(base, ".combined-", w.key, ".json"),
                                                               move::CombinedToJson(c)));
          const std::string verdict = c.stolen() ? absl::StrCat("stolen (", c.decided_by(), ")")
                                                 : std::string(move::VerdictName(move::OutcomeOf(c)));
          absl::StrAppend(&line, absl::StrFormat(" | %-26s", verdict));
          (*row.mutable_fields())[absl::StrCat("combined_", w.key, "_verdict")] = Str(c.verdict());
          (*row.mutable_fields())[absl::StrCat("combined_", w.key, "_log10_p_value")] = Num(c.log10_p_value());
          *w.flagged += c.stolen();
          wrong = wrong || c.stolen() != s.stolen;
        }
        if (wrong) absl::StrAppend(&line, s.stolen ? "  <- MISSED" : "  <- FALSE POSITIVE");
        (s.stolen ? combined_stolen : combined_indep) += 1;
      }
      combined_lines.push_back(line);
    }
    *rows.add_values()->mutable_struct_value() = row;
  }
  if (!blackbox_lines.empty()) {
    const move::BlackBoxVerifier& bv = bundle.contents.blackbox();
    std::printf("\nblack-box (each suspect served over HTTP on loopback; classifier held-out-model errors Type-I %.3f "
                "Type-II %.3f, soundness check %s, calibration log10 p:",
                bv.type1_error(), bv.type2_error(), bv.sound() ? "passed" : "FAILED");
    for (double lp : bv.calibration_log10_p()) std::printf(" %.2f", lp);
    std::printf(")\n%-40s %-11s %9s %10s %8s %-11s | %7s %10s  %s\n", "suspect", "truth", "delta_mu", "p (m fixed)",
                "log10 p", "verdict", "queries", "seq. p", "sequential verdict");
    for (const std::string& line : blackbox_lines) std::printf("%s\n", line.c_str());
    std::printf("(* the paired test alone would flag it; the model-level test against the bundle's held-out benign "
                "models does not: see the report)\n");
    std::sort(seq_queries_stolen.begin(), seq_queries_stolen.end());
    const int64_t median = seq_queries_stolen.empty() ? 0 : seq_queries_stolen[seq_queries_stolen.size() / 2];
    std::printf("black-box: stolen flagged %d/%d (sequential %d/%d, median %lld queries); independent flagged %d/%d "
                "(sequential %d/%d)\n",
                bb_stolen_flagged, bb_stolen, seq_stolen_flagged, bb_stolen, static_cast<long long>(median),
                bb_indep_flagged, bb_indep, seq_indep_flagged, bb_indep);
    SetCounts(fields, {{"blackbox_stolen_flagged", bb_stolen_flagged},
                       {"blackbox_independent_flagged", bb_indep_flagged},
                       {"blackbox_stolen_examined", bb_stolen},
                       {"blackbox_independent_examined", bb_indep},
                       {"sequential_stolen_flagged", seq_stolen_flagged},
                       {"sequential_independent_flagged", seq_indep_flagged},
                       {"sequential_median_queries_stolen", static_cast<double>(median)}});
  }
  if (!combined_lines.empty()) {
    const move::FingerprintVerifier& fv = bundle.contents.fingerprint();
    std::printf("\nfingerprint, label agreement and the combined verdict (what move_verify prints: Holm over the MOVE "
                "line, the UAP fingerprint and the label agreement, alpha %.2g; fingerprint soundness check %s, held-out-model "
                "Type-I %.2f, victim log10 p %.2f",
                absl::GetFlag(FLAGS_alpha), fv.sound() ? "passed" : "FAILED", fv.type1_error(), fv.victim_log10_p());
    if (bundle.contents.has_label_agreement()) {
      const move::LabelAgreementVerifier& lv = bundle.contents.label_agreement();
      double lo = 1, hi = 0;
      for (const move::BenignScores& b : lv.benign_scores()) {
        double sum = 0;
        for (float x : b.scores()) sum += x;
        lo = std::min(lo, sum / std::max(1, b.scores_size()));
        hi = std::max(hi, sum / std::max(1, b.scores_size()));
      }
      std::printf("; label agreement on %d of the victim's mistakes, benign models %.3f-%.3f (%d), soundness check %s",
                  lv.benign_scores_size() > 0 ? lv.benign_scores(0).scores_size() : 0, lo, hi, lv.benign_scores_size(),
                  lv.sound() ? "passed" : "FAILED");
    }
    std::printf(")\n%-40s %-11s %13s %15s %-11s | %-25s | %-26s | %-26s\n", "suspect", "truth", "agree cl/UAP",
                "FP log10 p/ML", "fingerprint", "LA agree ML   verdict", "combined: model file (WB)", "combined: endpoint (BB)");
    for (const std::string& line : combined_lines) std::printf("%s\n", line.c_str());
    std::printf("combined: stolen flagged %d/%d with the model file, %d/%d with the endpoint; independent flagged %d/%d "
                "and %d/%d\n",
                file_stolen_flagged, combined_stolen, endpoint_stolen_flagged, combined_stolen, file_indep_flagged,
                combined_indep, endpoint_indep_flagged, combined_indep);
    SetCounts(fields, {{"combined_file_stolen_flagged", file_stolen_flagged},
                       {"combined_endpoint_stolen_flagged", endpoint_stolen_flagged},
                       {"combined_file_independent_flagged", file_indep_flagged},
                       {"combined_endpoint_independent_flagged", endpoint_indep_flagged},
                       {"combined_stolen_examined", combined_stolen},
                       {"combined_independent_examined", combined_indep}});
  }
  *fields["suspects"].mutable_list_value() = rows;
  // Pictures of the score distributions, one band per suspect in table order.
  MOVE_RETURN_IF_ERROR(move::SaveScoreStrips(out + "/scores_whitebox.png", whitebox_scores));
  if (!blackbox_scores.empty()) MOVE_RETURN_IF_ERROR(move::SaveScoreStrips(out + "/scores_blackbox.png", blackbox_scores));
  std::printf("\nscore distributions: %s/scores_whitebox.png%s (one band per suspect in table order: reference grey "
              "above, suspect below, red when flagged; score 0 left, 1 right)\n",
              out.c_str(), blackbox_scores.empty() ? "" : absl::StrCat(", ", out, "/scores_blackbox.png").c_str());
  fields["stolen_flagged"] = Num(stolen_flagged);
  fields["stolen_examined"] = Num(stolen_total);
  fields["independent_flagged"] = Num(indep_flagged);
  fields["independent_examined"] = Num(indep_total);
  std::printf("\nstolen flagged %d/%d; independent flagged %d/%d (alpha %.2g)\n", stolen_flagged, stolen_total,
              indep_flagged, indep_total, absl::GetFlag(FLAGS_alpha));
  {
    double victim_acc = -1, benign_acc = -1;
    for (const auto& v : fields["suspects"].list_value().values()) {
      const auto& f = v.struct_value().fields();
      if (f.at("suspect").string_value() == "victim") victim_acc = f.at("clean_test_accuracy").number_value();
      if (f.at("suspect").string_value() == "independent: owner data, other seed") {
        benign_acc = f.at("clean_test_accuracy").number_value();
      }
    }
    if (victim_acc >= 0 && benign_acc >= 0) {
      fields["clean_accuracy_cost_points"] = Num(100 * (benign_acc - victim_acc));
      std::printf("cost of the watermark on clean accuracy: %+.2f points (benign model on the same clean data, same recipe, minus victim)\n",
                  100 * (benign_acc - victim_acc));
    }
  }

  const std::string json = move::core::ProtoToJson(report);
  MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(out + "/report.json", json));
  std::printf("wrote %s/{victim.pt, victim.move, watermark_record.json, contact_sheet.png, suspects/, report.json}\n", out.c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Watermarks a training set with MOVE and trains victim and benign models.");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "vendor: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
