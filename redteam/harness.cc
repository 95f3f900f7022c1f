#include "redteam/harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/struct.pb.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "redteam/cache_key.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/embed.h"
#include "sdk/fingerprint.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/ownership.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
#include "sdk/version.h"

namespace move::redteam {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string DataKey(const Dataset& d) {
  core::Sha256 h;
  h.UpdateTensor(d.images);
  h.UpdateTensor(d.labels);
  return h.HexDigest();
}


// Models on disk under the SHA-256 of the text that determines them, with the text beside
// each one (NAME.pt, NAME.txt).
class ModelCache {
 public:
  explicit ModelCache(std::string dir) : dir_(std::move(dir)) {}

  struct Entry {
    torch::jit::Module model;
    std::string path, key;
    bool hit = false;
  };

  absl::StatusOr<Entry> GetOrMake(const std::string& what, const std::function<absl::StatusOr<torch::jit::Module>()>& make) {
    Entry e;
    e.key = core::Sha256Hex(what);
    e.path = absl::StrCat(dir_, "/", e.key.substr(0, 40), ".pt");
    if (std::filesystem::exists(e.path)) {
      absl::StatusOr<torch::jit::Module> m = LoadModel(e.path);
      if (m.ok()) {
        e.model = *m;
        e.model.eval();
        e.hit = true;
        ++hits;
        return e;
      }
      std::fprintf(stderr, "cache: %s unreadable (%s); retraining\n", e.path.c_str(), std::string(m.status().message()).c_str());
    }
    MOVE_ASSIGN_OR_RETURN(e.model, make());
    e.model.to(torch::kCPU);
    e.model.eval();
    MOVE_RETURN_IF_ERROR(SaveModel(e.model, e.path));
    MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(absl::StrCat(dir_, "/", e.key.substr(0, 40), ".txt"), what + "\n"));
    ++made;
    return e;
  }

  int hits = 0, made = 0;

 private:
  std::string dir_;
};

std::string FileName(const std::string& row) {
  std::string f = row;
  for (char& c : f) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return f;
}

Value Num(double v) { Value x; x.set_number_value(v); return x; }
Value Str(const std::string& v) { Value x; x.set_string_value(v); return x; }
Value Bool(bool v) { Value x; x.set_bool_value(v); return x; }

Struct MethodJson(const MethodResult& m, bool small_m) {
  Struct s;
  auto& f = *s.mutable_fields();
  f["examined"] = Bool(m.examined);
  if (!m.examined) {
    f["note"] = Str(m.note);
    return s;
  }
  f["delta_mu"] = Num(m.delta_mu);
  f["p_value"] = Num(m.p_value);
  f["log10_p_value"] = Num(m.log10_p);
  f["flagged"] = Bool(m.flagged);
  f["verdict"] = Str(m.verdict);
  f["suspect_in_range"] = Bool(m.in_range);
  f["queries"] = Num(static_cast<double>(m.queries));
  f["seconds"] = Num(m.seconds);
  f["model_level_tested"] = Bool(m.model_level_tested);
  f["model_level_log10_p_value"] = Num(m.model_level_log10_p);
  f["paired_test_flagged"] = Bool(m.paired_flagged);
  if (m.clean_agreement > 0 || m.perturbed_agreement > 0) {
    f["clean_agreement"] = Num(m.clean_agreement);
    f["perturbed_agreement"] = Num(m.perturbed_agreement);
  }
  if (small_m) {
    f["small_m_log10_p_value"] = Num(m.small_m_log10_p);
    f["small_m_flagged"] = Bool(m.small_m_flagged);
  }
  return s;
}

std::string P(const MethodResult& m) {
  if (!m.examined) return "-";
  return absl::StrFormat("%.2g", m.p_value);
}
std::string L(const MethodResult& m) { return m.examined ? absl::StrFormat("%.1f", m.log10_p) : "-"; }
std::string ML(const MethodResult& m) {
  return m.examined && m.model_level_tested ? absl::StrFormat("%.1f", m.model_level_log10_p) : "-";
}
std::string D(const MethodResult& m) { return m.examined ? absl::StrFormat("%+.3f", m.delta_mu) : "-"; }
std::string V(const MethodResult& m, bool stolen) {
  if (!m.examined) return m.note.empty() ? "-" : m.note;
  std::string v = m.flagged ? "**stolen**" : std::string(VerdictName(m.outcome));
  if (m.flagged != stolen) absl::StrAppend(&v, stolen ? " (MISSED)" : " (FALSE POSITIVE)");
  return v;
}

// The held-out models of a cached bundle at `bundle_path`: TorchScript files in
// `bundle_path`.null/ and a manifest (role, architecture, file per line), written before the
// bundle so that a cached bundle always has them.
absl::Status SaveNullPopulation(const std::vector<TrainedModel>& models, const std::string& bundle_path) {
  const std::string dir = bundle_path + ".null";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // the leftovers of a run stopped before its bundle
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
  std::string manifest;
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string file = absl::StrFormat("%03d.pt", i);
    MOVE_RETURN_IF_ERROR(SaveModel(models[i].model, dir + "/" + file));
    absl::StrAppend(&manifest, models[i].role, "\t", models[i].architecture, "\t", file, "\n");
  }
  return core::WriteFileAtomically(dir + "/manifest.tsv", manifest);
}

absl::StatusOr<std::vector<TrainedModel>> LoadNullPopulation(const std::string& bundle_path) {
  const std::string dir = bundle_path + ".null";
  absl::StatusOr<std::string> manifest = core::ReadFile(dir + "/manifest.tsv");
  if (!manifest.ok()) {
    return absl::DataLossError(absl::StrCat("cached bundle ", bundle_path, " has no held-out models (",
                                            manifest.status().message(), "): delete the bundle to rebuild it"));
  }
  std::vector<TrainedModel> models;
  for (absl::string_view line : absl::StrSplit(*manifest, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, '\t');
    if (f.size() != 3) return absl::DataLossError(absl::StrCat(dir, "/manifest.tsv: bad line '", line, "'"));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, LoadModel(dir + "/" + f[2]));
    models.push_back({f[0], f[1], std::move(m)});
  }
  return models;
}

struct Rate {
  int k = 0, n = 0;
  std::string Text() const {
    if (n == 0) return "-";
    auto [lo, hi] = WilsonInterval(k, n);
    return absl::StrFormat("%d/%d = %.3f (95%% Wilson %.3f-%.3f)", k, n, static_cast<double>(k) / n, lo, hi);
  }
};

}  // namespace

std::pair<double, double> WilsonInterval(int k, int n) {
  if (n <= 0) return {0, 1};
  const double z = 1.959963984540054, p = static_cast<double>(k) / n, z2 = z * z;
  const double center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

HarnessConfig FullConfig() {
  HarnessConfig c;
  // Data-free distillation is the costliest attack on a CPU (1.6 s per round of 5 student
  // steps at batch 128): 400 rounds of 3 steps, about 7 minutes each.
  c.attack.zero_shot_rounds = 400;
  c.attack.zero_shot_student_steps = 3;
  // The bundle also knows the independents' other architectures and style-augmented benign
  // models: their calibration models widen the model-level test's benign sample to what
  // independent models of those kinds score (the paired test alone flagged both kinds).
  c.shadow_architectures = {"cnn-w2", "wrn-16-1"};
  c.decoy_calibration = 1;
  c.augmented_calibration = 1;
  // The sequential fingerprint test may use all 40 fingerprints (800 queries): at 20 the
  // betting martingale cannot reach 1 / alpha at the measured effect sizes (README).
  c.fingerprint_sequential_max_queries = 800;
  // Query students (and independent controls) trained 10 epochs instead of 3: detection
  // against the attacker's effort.
  c.strong_attacker_epochs = 10;
  c.robust_independents = 12;
  return c;
}

HarnessConfig QuickConfig() {
  HarnessConfig c;
  c.name = "quick";
  c.train_size = 1500;
  c.test_size = 500;
  c.styled_test_size = 200;
  c.other_arch = "wrn-10-1";
  c.epochs = 3;
  c.batch_size = 64;
  c.fit_steps = 30;
  c.population = 2;
  c.calibration = 3;
  c.verification_samples = 60;
  c.train_samples = 100;
  c.meta_epochs = 30;
  // All 60 samples: style contrast needs them at this scale (victim p 0.014 at m = 30).
  c.blackbox_m = 60;
  c.independents = 4;
  c.robust_independents = 3;
  c.benign_rates = {0.5};
  c.attack.zero_shot_rounds = 20;
  c.attack.zero_shot_batch = 32;
  c.attack.zero_shot_student_steps = 2;
  c.attack.style_fit_steps = 20;
  c.attack.removal_samples = 20;
  c.attack.removal_iterations = 20;
  c.fingerprint_piracy = 4;
  c.fingerprint_independents = 4;
  c.fingerprint_held_out = 1;
  c.fingerprint_calibration = 3;
  c.fingerprint_long_piracy = 1;
  c.fingerprint_long_piracy_epochs = 4;
  c.strong_attacker_epochs = 4;
  c.fingerprints = 10;
  c.fingerprint_sequential_max_queries = 200;
  c.fingerprint_options.uaps = 1;
  c.fingerprint_options.uap_images = 500;
  c.fingerprint_options.uap_epochs = 3;
  c.fingerprint_options.train_fingerprints = 20;
  c.fingerprint_options.verification_fingerprints = 20;
  c.fingerprint_options.encoder_steps = 300;
  c.cache_dir = "out/redteam-quick-cache";
  c.out_dir = "out/redteam-quick";
  return c;
}

absl::StatusOr<HarnessResult> RunHarness(const HarnessConfig& config) {
  const auto start = std::chrono::steady_clock::now();
  HarnessResult result;
  if (config.train_size < 100) return absl::InvalidArgumentError("train_size: must be >= 100");
  if (config.independents < 0) return absl::InvalidArgumentError("independents: must be >= 0");
  if (config.robust_independents < 0) return absl::InvalidArgumentError("robust_independents: must be >= 0");
  MOVE_RETURN_IF_ERROR(core::MakeDirs(config.cache_dir));
  MOVE_RETURN_IF_ERROR(core::MakeDirs(config.out_dir + "/reports"));
  ModelCache cache(config.cache_dir);
  MOVE_ASSIGN_OR_RETURN(ModelSpec spec, ParseModelSpec(config.arch));
  MOVE_ASSIGN_OR_RETURN(ModelSpec student_spec, ParseModelSpec(config.student_arch));
  MOVE_ASSIGN_OR_RETURN(ModelSpec wider_spec, ParseModelSpec(config.wider_arch));
  MOVE_ASSIGN_OR_RETURN(ModelSpec other_spec, ParseModelSpec(config.other_arch));

  // Data: the owner's split, the disjoint split (attackers, independents), the test split.
  MOVE_ASSIGN_OR_RETURN(Dataset full, LoadFashionMnist(config.data_dir, Split::kTrain));
  MOVE_ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist(config.data_dir, Split::kTest));
  const bool query_pool = config.fingerprint && config.fingerprint_query_pool;
  const int64_t splits = query_pool ? 3 : 2;
  if (splits * config.train_size > full.size()) {
    return absl::InvalidArgumentError(absl::StrCat("train_size: at most ", full.size() / splits, " (", splits,
                                                   " disjoint splits", query_pool ? ": owner, attackers, the vendor's query pool" : "", ")"));
  }
  if (config.test_size > 0) {
    MOVE_ASSIGN_OR_RETURN(test, SampleSubset(test, config.test_size, config.seed + 7));
  }
  at::Tensor perm = torch::randperm(full.size(), at::make_generator<at::CPUGeneratorImpl>(config.seed),
                                    torch::TensorOptions().dtype(torch::kInt64));
  MOVE_ASSIGN_OR_RETURN(Dataset train, SelectSamples(full, perm.narrow(0, 0, config.train_size)));
  MOVE_ASSIGN_OR_RETURN(Dataset split, SelectSamples(full, perm.narrow(0, config.train_size, config.train_size)));
  split = ToRgb(split);
  Dataset query;  // the vendor's query pool (fingerprint helpers), disjoint from both
  if (query_pool) {
    MOVE_ASSIGN_OR_RETURN(query, SelectSamples(full, perm.narrow(0, 2 * config.train_size, config.train_size)));
    query = ToRgb(query);
  }
  const Dataset clean = ToRgb(train);
  const Dataset test_rgb = ToRgb(test);
  std::printf("red-team harness (%s config) | MOVE SDK %s | %s\n", config.name.c_str(), kSdkVersion,
              RuntimeDescription().c_str());

  // 1. The vendor: embed, train the victim, build the bundle.
  MOVE_ASSIGN_OR_RETURN(at::Tensor style, LoadImage(config.style_path));
  MOVE_ASSIGN_OR_RETURN(at::Tensor attacker_style, LoadImage(config.attacker_style_path));
  EmbedDatasetOptions eo;
  eo.gamma = config.gamma;
  eo.seed = config.seed;
  eo.style_strength = config.style_strength;
  eo.texture.fit_steps = config.fit_steps;
  eo.device = config.device;
  eo.show_progress = config.show_progress;
  MOVE_ASSIGN_OR_RETURN(EmbedResult wm, EmbedDataset(train, style, eo));
  MOVE_ASSIGN_OR_RETURN(Dataset styled_test,
                        SampleSubset(test_rgb, std::min<int64_t>(config.styled_test_size, test_rgb.size()), config.seed + 3));
  MOVE_ASSIGN_OR_RETURN(styled_test.images, wm.StyleImages(styled_test.images));

  TrainOptions recipe;
  recipe.epochs = config.epochs;
  recipe.batch_size = config.batch_size;
  recipe.learning_rate = config.learning_rate;
  recipe.device = config.device;
  recipe.show_progress = config.show_progress;
  const std::string wm_key = DataKey(wm.dataset), clean_key = DataKey(clean), split_key = DataKey(split);
  std::map<const Dataset*, std::string> data_keys = {{&wm.dataset, wm_key}, {&clean, clean_key}, {&split, split_key}};
  auto key_of = [&](const Dataset& d) -> std::string {
    auto it = data_keys.find(&d);
    if (it != data_keys.end()) return it->second;
    std::string k = DataKey(d);
    data_keys[&d] = k;
    return k;
  };
  // Trains arch on data with the recipe (cached).
  auto train_cached = [&](const ModelSpec& arch0, const Dataset& data, uint64_t seed, const std::string& label,
                          int epochs = 0) -> absl::StatusOr<ModelCache::Entry> {
    ModelSpec arch = arch0;
    arch.in_channels = 3;
    arch.num_classes = train.num_classes;
    arch.seed = seed;
    TrainOptions o = recipe;
    o.seed = seed;
    o.label = label;
    if (epochs > 0) o.epochs = epochs;
    const std::string what = absl::StrCat("move-redteam-v2 train | ", KeyOf(arch), " | data ", key_of(data), " | ",
                                          KeyOf(o));
    return cache.GetOrMake(what, [&]() -> absl::StatusOr<torch::jit::Module> {
      MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, CreateModel(arch));
      MOVE_RETURN_IF_ERROR(TrainModel(m, data, o).status());
      return m;
    });
  };
  spec.in_channels = 3;
  spec.num_classes = train.num_classes;
  student_spec.in_channels = 3;
  student_spec.num_classes = train.num_classes;
  MOVE_ASSIGN_OR_RETURN(ModelCache::Entry victim, train_cached(spec, wm.dataset, config.seed + 1, "train victim"));

  const std::string key_path = config.cache_dir + "/harness.key";
  absl::StatusOr<SigningKey> key = LoadSigningKey(key_path);
  if (absl::IsNotFound(key.status())) {
    MOVE_ASSIGN_OR_RETURN(key, GenerateSigningKey());
    MOVE_RETURN_IF_ERROR(SaveSigningKey(*key, key_path));
  }
  MOVE_RETURN_IF_ERROR(key.status());
  BuildBundleOptions bo;
  bo.population = config.population;
  bo.calibration_models = config.calibration;
  bo.verification_samples = config.verification_samples;
  bo.train_samples = config.train_samples;
  bo.meta_epochs = config.meta_epochs;
  bo.alpha = config.alpha;
  bo.seed = config.seed;
  bo.show_progress = config.show_progress;
  bo.shadow_architectures = config.shadow_architectures;
  bo.decoy_members = config.decoys;
  bo.decoy_calibration_models = config.decoy_calibration;
  bo.augmented_calibration_models = config.augmented_calibration;
  bo.blackbox_design = config.blackbox_design;
  std::vector<at::Tensor> decoy_styles;
  std::string decoy_key;
  for (int i = 0; i < config.decoys + config.decoy_calibration; ++i) {
    MOVE_ASSIGN_OR_RETURN(at::Tensor d, DecoyStyleImage(1000 + i));
    decoy_key += " " + core::TensorSha256(d).substr(0, 16);
    decoy_styles.push_back(d);
  }
  if (!decoy_styles.empty()) {
    MOVE_RETURN_IF_ERROR(SavePng(config.out_dir + "/decoys.png", MakeGrid(torch::stack(decoy_styles), 8)));
  }
  LabelAgreementBuildOptions lo = config.label_agreement_options;
  lo.alpha = config.alpha;
  lo.seed = config.seed;
  lo.show_progress = config.show_progress;
  const std::string bundle_what = absl::StrCat(
      "move-redteam-v5 bundle | ", KeyOf(bo), " | victim ", victim.key, " | data ", wm_key, " test ", DataKey(test_rgb),
      " | style ", core::TensorSha256(style), " | ", KeyOf(recipe), " | key ", key->public_key.size(),
      decoy_styles.empty() ? "" : absl::StrCat(" | decoys", decoy_key),
      config.label_agreement ? absl::StrCat(" | label agreement ", KeyOf(lo), " on ", DataKey(test_rgb)) : "");
  const std::string bundle_path = absl::StrCat(config.cache_dir, "/", core::Sha256Hex(bundle_what).substr(0, 40), ".move");
  // The bundle's held-out benign models (reference, calibration, rival-vendor and
  // appearance-augmented ones) are the null population the other lines are checked against:
  // kept beside the cached bundle, written before it.
  TrainedModels trained;
  if (!std::filesystem::exists(bundle_path)) {
    BuildBundleInputs in;
    in.watermark = &wm;
    in.clean_train = &train;
    in.clean_test = &test;
    in.spec = spec;
    in.victim_model_path = victim.path;
    in.style_image = style;
    in.decoy_styles = decoy_styles;
    TrainingRecipe population_recipe = [&](const ModelSpec& arch, const Dataset& data,
                                           uint64_t s) -> absl::StatusOr<torch::jit::Module> {
      MOVE_ASSIGN_OR_RETURN(ModelCache::Entry e, train_cached(arch, data, s, absl::StrCat("population seed ", s)));
      return e.model;
    };
    MOVE_ASSIGN_OR_RETURN(BundleContents contents, BuildBundle(in, population_recipe, bo, nullptr, &trained));
    MOVE_RETURN_IF_ERROR(SaveNullPopulation(trained.held_out, bundle_path));
    if (config.label_agreement) {
      // The victim's mistakes on the test split against every benign model the bundle trained
      // (reference first), as the main job does.
      LabelAgreementBuildInputs la;
      la.victim = &victim.model;
      la.pool = &test_rgb;
      for (const TrainedModel& t : trained.held_out) la.benign.push_back({t.role, t.architecture, t.model, t.role});
      for (const TrainedModel& t : trained.benign) la.benign.push_back({t.role, t.architecture, t.model, t.role});
      MOVE_ASSIGN_OR_RETURN(*contents.mutable_label_agreement(), BuildLabelAgreementVerifier(la, lo));
    }
    MOVE_RETURN_IF_ERROR(WriteBundle(contents, *key, bundle_path));
  } else {
    ++cache.hits;
    MOVE_ASSIGN_OR_RETURN(trained.held_out, LoadNullPopulation(bundle_path));
  }
  MOVE_ASSIGN_OR_RETURN(OpenedBundle bundle, ReadBundle(bundle_path, key->public_key));
  result.bundle_path = bundle_path;
  result.bundle_sha256 = bundle.file_sha256;
  result.whitebox_sound = bundle.contents.verifiers(0).sound();
  result.whitebox_type1 = bundle.contents.verifiers(0).type1_error();
  result.whitebox_type2 = bundle.contents.verifiers(0).type2_error();
  if (bundle.contents.has_label_agreement()) {
    const LabelAgreementVerifier& lv = bundle.contents.label_agreement();
    result.label_agreement_built = true;
    result.label_agreement_sound = lv.sound();
    result.label_agreement_type1 = lv.type1_error();
    result.label_agreement_errors = lv.benign_scores_size() > 0 ? lv.benign_scores(0).scores_size() : 0;
    result.label_agreement_benign_models = lv.benign_scores_size();
  }
  if (bundle.contents.has_blackbox()) {
    result.blackbox_sound = bundle.contents.blackbox().sound();
    result.blackbox_type1 = bundle.contents.blackbox().type1_error();
    result.blackbox_type2 = bundle.contents.blackbox().type2_error();
  }

  // 2. Suspects.
  struct Maker {
    std::string name, group;
    bool stolen;
    std::function<absl::StatusOr<ModelCache::Entry>()> make;
  };
  std::vector<Maker> makers;
  ModelCache::Entry benign;  // the controls' target, made by the first control row that needs it
  AttackOptions ao = config.attack;
  ao.attacker_style = attacker_style;
  AttackInputs base;
  base.victim = &victim.model;
  base.student = student_spec;
  base.victim_data = &wm.dataset;
  base.substitute = &split;
  base.victim_spec = spec;
  const std::string options_key = KeyOf(ao);
  auto attack = [&](const std::string& name, const std::string& group, std::vector<std::string> stages, uint64_t seed,
                    AttackInputs in, AttackOptions o, int epochs = 0) {
    makers.push_back({name, group, true, [&, stages, seed, in, o, name, epochs]() -> absl::StatusOr<ModelCache::Entry> {
                        TrainOptions r = recipe;
                        r.seed = seed;
                        if (epochs > 0) r.epochs = epochs;
                        r.label = "attack: " + name;
                        const std::string what = absl::StrCat(
                            "move-redteam-v2 attack ", absl::StrJoin(stages, " -> "), " | victim ", victim.key, " | student ",
                            KeyOf(in.student), " | victim data ", in.victim_data ? key_of(*in.victim_data) : "-",
                            " | substitute ", in.substitute ? key_of(*in.substitute) : "-", " | ", KeyOf(r), " | ",
                            KeyOf(o));
                        return cache.GetOrMake(what, [&]() { return RunMultiStage(stages, in, r, o); });
                      }});
  };
  // 1b. The vendor's fingerprint verifier (UAP fingerprinting), from helper models made with
  //     the attacks on the vendor's own data; added to a copy of the bundle.
  if (config.fingerprint) {
    const auto fp_start = std::chrono::steady_clock::now();
    MOVE_ASSIGN_OR_RETURN(Dataset vendor_half, SampleSubset(clean, clean.size() / 2, config.seed + 11));
    // The piracy helpers query the victim with data it was not trained on (its answers on its
    // own training images are nearly the true labels, so students of those look independent).
    AttackInputs vin_vendor = base, vin_query = base;
    vin_vendor.substitute = &clean;
    vin_query.substitute = &query;
    vin_query.victim_data = &query;  // distillation's transfer set
    std::vector<std::string> helper_keys;
    const char* piracy_kinds[] = {"label-query", "logit-query", "distill", "fine-tune"};
    auto helper_attack = [&](const std::string& stage, const ModelSpec& student, uint64_t seed, const std::string& label,
                             bool on_query, int epochs = 0) -> absl::StatusOr<ModelCache::Entry> {
      AttackInputs in = on_query ? vin_query : vin_vendor;
      in.student = student;
      TrainOptions r = recipe;
      r.seed = seed;
      if (epochs > 0) r.epochs = epochs;
      r.label = "fingerprint helper: " + label;
      const std::string what =
          absl::StrCat("move-redteam-v2 fingerprint helper ", stage, " | victim ", victim.key, " | student ",
                       KeyOf(in.student), " | victim data ", key_of(*in.victim_data), " | substitute ",
                       key_of(*in.substitute), " | ", KeyOf(r), " | ", options_key);
      return cache.GetOrMake(what, [&]() { return RunMultiStage({stage}, in, r, ao); });
    };
    ModelSpec wider_student = wider_spec;
    wider_student.in_channels = 3;
    wider_student.num_classes = train.num_classes;
    FingerprintBuildInputs fin;
    std::vector<ModelCache::Entry> keep;  // the modules' owners
    auto piracy = [&](int i, uint64_t seed, std::vector<FingerprintModel>* out, bool on_query) -> absl::Status {
      const std::string stage = piracy_kinds[i % 4];
      const bool wider = (i / 4) % 2 == 1 && stage != "fine-tune";
      const std::string label = absl::StrCat(stage, wider ? " (" + config.wider_arch + ")" : "",
                                             on_query ? " on the query pool" : " on the vendor's data", " seed ", seed);
      MOVE_ASSIGN_OR_RETURN(ModelCache::Entry e,
                            helper_attack(stage, wider ? wider_student : student_spec, seed, label, on_query));
      helper_keys.push_back(e.key);
      out->push_back({label, stage == "fine-tune" ? config.arch : wider ? config.wider_arch : config.student_arch, e.model});
      return absl::OkStatus();
    };
    auto independent = [&](int i, uint64_t seed, std::vector<FingerprintModel>* out, bool on_query) -> absl::Status {
      const int kind = i % 4;
      const ModelSpec& arch = kind == 2 ? wider_spec : kind == 3 ? other_spec : spec;
      const std::string arch_name = kind == 2 ? config.wider_arch : kind == 3 ? config.other_arch : config.arch;
      const char* data_name = on_query ? " on the query pool" : " on half the vendor's data";
      const std::string label = absl::StrCat(arch_name, kind == 1 ? data_name : "", " seed ", seed);
      const Dataset& data = kind != 1 ? clean : on_query ? query : vendor_half;
      MOVE_ASSIGN_OR_RETURN(ModelCache::Entry e, train_cached(arch, data, seed, "fingerprint helper: " + label));
      helper_keys.push_back(e.key);
      out->push_back({label, arch_name, e.model});
      return absl::OkStatus();
    };
    const uint64_t f0 = config.seed + 6000;
    const bool both = query_pool && config.fingerprint_both_helper_sets;
    for (int i = 0; i < config.fingerprint_piracy; ++i) {
      MOVE_RETURN_IF_ERROR(piracy(i, f0 + i, &fin.piracy, query_pool));
      if (both) MOVE_RETURN_IF_ERROR(piracy(i, f0 + i, &fin.piracy, false));
    }
    for (int i = 0; i < config.fingerprint_long_piracy; ++i) {
      // Students trained longer (closer to the victim): the piracy class spans the attacker's effort.
      const std::string stage = piracy_kinds[i % 3];
      const uint64_t seed = f0 + 400 + i;
      const std::string label = absl::StrCat(stage, " (", config.fingerprint_long_piracy_epochs, " epochs)",
                                             query_pool ? " on the query pool" : " on the vendor's data", " seed ", seed);
      MOVE_ASSIGN_OR_RETURN(ModelCache::Entry e, helper_attack(stage, student_spec, seed, label, query_pool,
                                                               config.fingerprint_long_piracy_epochs));
      helper_keys.push_back(e.key);
      fin.piracy.push_back({label, config.student_arch, e.model});
    }
    for (int i = 0; i < config.fingerprint_held_out; ++i) {
      MOVE_RETURN_IF_ERROR(piracy(i, f0 + 100 + i, &fin.held_out_piracy, query_pool));
    }
    for (int i = 0; i < config.fingerprint_independents; ++i) {
      MOVE_RETURN_IF_ERROR(independent(i, f0 + 200 + i, &fin.independent, query_pool));
      if (both && i % 4 == 1) MOVE_RETURN_IF_ERROR(independent(i, f0 + 200 + i, &fin.independent, false));
    }
    for (int i = 0; i < config.fingerprint_calibration; ++i) {
      MOVE_RETURN_IF_ERROR(independent(i, f0 + 300 + i, &fin.calibration, query_pool));
    }
    // The bundle's null population joins the soundness check and the model-level test, so this
    // line is checked against the rival-vendor and appearance-augmented models too.
    for (const TrainedModel& t : trained.held_out) {
      fin.calibration.push_back(
          {absl::StrCat("bundle ", t.role, " (", t.architecture, ")"), t.architecture, t.model, t.role});
    }
    result.fingerprint_helper_models = static_cast<int>(helper_keys.size());
    result.fingerprint_encoder_piracy = static_cast<int>(fin.piracy.size());
    result.fingerprint_encoder_independents = static_cast<int>(fin.independent.size());
    FingerprintBuildOptions fo = config.fingerprint_options;
    fo.alpha = config.alpha;
    fo.seed = config.seed;
    fo.show_progress = config.show_progress;
    const std::string fp_what = absl::StrCat(
        "move-redteam-v3 fingerprint bundle (encoder: grouped SupCon; calibration: helpers + the bundle's held-out models) | base ",
        bundle.file_sha256, " | helpers ",
        absl::StrJoin(helper_keys, ","), " | points ", DataKey(clean), " ", DataKey(test_rgb), " | ", KeyOf(fo));
    const std::string fp_path = absl::StrCat(config.cache_dir, "/", core::Sha256Hex(fp_what).substr(0, 40), ".fp.move");
    if (!std::filesystem::exists(fp_path)) {
      fin.victim = &victim.model;
      fin.point_pool = &clean;
      fin.verification_pool = &test_rgb;
      MOVE_ASSIGN_OR_RETURN(FingerprintVerifier fv, BuildFingerprintVerifier(fin, fo));
      BundleContents contents = bundle.contents;
      *contents.mutable_fingerprint() = std::move(fv);
      (*contents.mutable_metadata())["fingerprint_helpers"] = absl::StrCat(helper_keys.size(), " models (red-team cache keys in the harness results)");
      MOVE_RETURN_IF_ERROR(WriteBundle(contents, *key, fp_path));
    } else {
      ++cache.hits;
    }
    MOVE_ASSIGN_OR_RETURN(bundle, ReadBundle(fp_path, key->public_key));
    result.bundle_path = fp_path;
    result.bundle_sha256 = bundle.file_sha256;
    const FingerprintVerifier& fv = bundle.contents.fingerprint();
    result.fingerprint_built = true;
    result.fingerprint_sound = fv.sound();
    result.fingerprint_type1 = fv.type1_error();
    result.fingerprint_type2 = fv.type2_error();
    result.fingerprint_victim_log10_p = fv.victim_log10_p();
    result.uap_fooling_rates.assign(fv.uap_fooling_rate().begin(), fv.uap_fooling_rate().end());
    result.fingerprint_build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fp_start).count();
    std::printf("fingerprint verifier: %d helper models, UAP fooling rate %s, sound %s, Type-I %.2f, Type-II %.2f (%.1f min)\n",
                result.fingerprint_helper_models,
                absl::StrJoin(result.uap_fooling_rates, ", ", [](std::string* o, double x) { absl::StrAppendFormat(o, "%.2f", x); }).c_str(),
                fv.sound() ? "yes" : "NO", fv.type1_error(), fv.type2_error(), result.fingerprint_build_seconds / 60);
  }
  makers.push_back({"victim (source)", "source", true, [&]() -> absl::StatusOr<ModelCache::Entry> { return victim; }});
  const uint64_t s0 = config.seed + 1000;
  if (config.stealing) {
    attack("direct copy", "stealing", {"copy"}, s0 + 1, base, ao);
    attack("distillation (victim's data)", "stealing", {"distill"}, s0 + 2, base, ao);
    if (config.zero_shot) attack("zero-shot (data-free)", "stealing", {"zero-shot"}, s0 + 3, base, ao);
    attack("fine-tuning (substitute data)", "stealing", {"fine-tune"}, s0 + 4, base, ao);
    attack("label-query", "stealing", {"label-query"}, s0 + 5, base, ao);
    attack("logit-query", "stealing", {"logit-query"}, s0 + 6, base, ao);
    AttackInputs sub = base;
    sub.victim_data = &split;
    attack("distillation (substitute data)", "stealing", {"distill"}, s0 + 7, sub, ao);
    if (config.strong_attacker_epochs > 0) {
      const int e = config.strong_attacker_epochs;
      attack(absl::StrCat("label-query (", e, " epochs)"), "stealing", {"label-query"}, s0 + 40, base, ao, e);
      attack(absl::StrCat("logit-query (", e, " epochs)"), "stealing", {"logit-query"}, s0 + 41, base, ao, e);
      attack(absl::StrCat("distillation (substitute data, ", e, " epochs)"), "stealing", {"distill"}, s0 + 42, sub, ao, e);
    }
  }
  if (config.leaked_data) {
    // The attacker queries with the victim's own (watermarked) training images.
    AttackInputs leaked = base;
    leaked.substitute = &wm.dataset;
    attack("label-query (leaked watermarked set)", "stealing", {"label-query"}, s0 + 8, leaked, ao);
    attack("logit-query (leaked watermarked set)", "stealing", {"logit-query"}, s0 + 9, leaked, ao);
  }
  if (config.multi_stage) {
    if (config.zero_shot) {
      attack("logit-query -> zero-shot", "multi-stage", {"logit-query", "zero-shot"}, s0 + 20, base, ao);
    }
    attack("logit-query -> logit-query", "multi-stage", {"logit-query", "logit-query"}, s0 + 22, base, ao);
    attack("label-query -> label-query", "multi-stage", {"label-query", "label-query"}, s0 + 24, base, ao);
  }
  if (config.adaptive) {
    for (double rate : config.benign_rates) {
      AttackOptions o = ao;
      o.benign_rate = rate;
      attack(absl::StrFormat("benign fine-tuning (%g%% of the split)", 100 * rate), "adaptive", {"benign-fine-tune"},
             s0 + 30, base, o);
    }
    attack("style overwrite (attacker's style)", "adaptive", {"style-overwrite"}, s0 + 31, base, ao);
    attack("style-removal fine-tuning", "adaptive", {"style-removal"}, s0 + 32, base, ao);
    attack("RemovalNet-style removal", "adaptive", {"removalnet"}, s0 + 33, base, ao);
  }
  const char* kinds[] = {"owner's data, other seed", "disjoint split", "wider net", "other architecture"};
  if (config.controls) {
    // The same attacks against a benign model (owner's clean data, the recipe, independent
    // 1's seed): independent of the victim, so they must not be flagged.
    for (const auto& [name, stage, offset] : std::vector<std::tuple<std::string, std::string, int>>{
             {"control: zero-shot student of the benign model", "zero-shot", 3},
             {"control: RemovalNet-style removal of the benign model", "removalnet", 33},
             {"control: style-removal fine-tuning of the benign model", "style-removal", 32}}) {
      if (stage == "zero-shot" && !config.zero_shot) continue;
      makers.push_back({name, "independent", false, [&, name = name, stage = stage, offset = offset]()
                                                         -> absl::StatusOr<ModelCache::Entry> {
                          if (benign.key.empty()) {
                            // Independent 1's model when there is one (from the cache).
                            MOVE_ASSIGN_OR_RETURN(benign, train_cached(spec, clean, config.seed + 2000 + config.independent_seed, "benign model"));
                          }
                          AttackInputs in = base;
                          in.victim = &benign.model;
                          TrainOptions r = recipe;
                          r.seed = s0 + offset;
                          r.label = "attack: " + name;
                          const std::string what = absl::StrCat(
                              "move-redteam-v2 control ", stage, " | victim ", benign.key, " | student ", KeyOf(in.student),
                              " | substitute ", key_of(*in.substitute), " | ", KeyOf(r), " | ", options_key);
                          return cache.GetOrMake(what, [&]() { return RunMultiStage({stage}, in, r, ao); });
                        }});
    }
  }
  for (int i = 0; i < config.independents; ++i) {
    const int kind = i % 4;
    const uint64_t seed = config.seed + 2000 + config.independent_seed + i;
    const std::string name = absl::StrFormat("independent %d: %s (%s)", i + 1, kinds[kind],
                                             kind == 2 ? config.wider_arch : kind == 3 ? config.other_arch : config.arch);
    makers.push_back({name, "independent", false, [&, kind, seed, name]() -> absl::StatusOr<ModelCache::Entry> {
                        const ModelSpec& arch = kind == 2 ? wider_spec : kind == 3 ? other_spec : spec;
                        return train_cached(arch, kind == 0 ? clean : split, seed, name);
                      }});
  }
  // Rival vendors, appearance- and style-augmented models: styles and augmentation seeds
  // drawn from a range the bundle never uses (its decoys are seeds 800-2000 above its base).
  const char* robust_kinds[] = {"rival vendor's MOVE model (unseen style)", "appearance-augmented",
                                "style-augmented (3 unseen styles)"};
  for (int i = 0; i < config.robust_independents; ++i) {
    const int kind = i % 3;
    const uint64_t seed = config.seed + 3000 + config.independent_seed + i;
    const uint64_t style_seed = 60000 + 100 * (config.seed + config.independent_seed + i);
    const std::string name = absl::StrFormat("independent %d: %s (%s)", config.independents + i + 1,
                                             robust_kinds[kind], config.arch);
    makers.push_back({name, "independent", false, [&, kind, seed, style_seed, name]() -> absl::StatusOr<ModelCache::Entry> {
                        Dataset data = split;
                        if (kind == 1) {
                          AppearanceAugmentOptions ao;
                          ao.seed = style_seed;
                          MOVE_ASSIGN_OR_RETURN(data, AugmentAppearance(split, ao));
                        } else {
                          MOVE_ASSIGN_OR_RETURN(EmbedDatasetOptions ro, EmbedOptionsFromRecord(wm.record));
                          ro.show_progress = false;
                          for (int s = 0; s < (kind == 0 ? 1 : 3); ++s) {
                            MOVE_ASSIGN_OR_RETURN(at::Tensor rs, DecoyStyleImage(style_seed + s));
                            ro.seed = style_seed + 50 + s;
                            MOVE_ASSIGN_OR_RETURN(EmbedResult styled, EmbedDataset(data, rs, ro));
                            data = std::move(styled.dataset);
                          }
                        }
                        return train_cached(spec, data, seed, name);
                      }});
  }
  if (config.strong_attacker_epochs > 0) {
    // The controls of the stronger attackers: independents trained as long.
    for (int kind = 0; kind < 2; ++kind) {
      const uint64_t seed = config.seed + 2900 + config.independent_seed + kind;
      const std::string name = absl::StrFormat("independent (%d epochs): %s (%s)", config.strong_attacker_epochs,
                                               kinds[kind], config.arch);
      makers.push_back({name, "independent", false, [&, kind, seed, name]() -> absl::StatusOr<ModelCache::Entry> {
                          return train_cached(spec, kind == 0 ? clean : split, seed, name, config.strong_attacker_epochs);
                        }});
    }
  }

  // 3. Examine every suspect.
  std::printf("\n%-48s %-6s %6s %6s | %-10s %-10s | %-10s %-8s | %-10s | %-10s | %-10s\n", "suspect", "truth", "clean", "styled",
              "WB p", "verdict", "BB p", "seq q", "FP p", "LA p", "combined");
  for (const Maker& mk : makers) {
    MOVE_ASSIGN_OR_RETURN(ModelCache::Entry e, mk.make());
    HarnessRow row;
    row.name = mk.name;
    row.group = mk.group;
    row.stolen = mk.stolen;
    row.model_path = e.path;
    row.model_key = e.key;
    row.from_cache = e.hit;
    MOVE_ASSIGN_OR_RETURN(EvalResult ce, Evaluate(e.model, test_rgb));
    MOVE_ASSIGN_OR_RETURN(EvalResult se, Evaluate(e.model, styled_test));
    row.clean_accuracy = ce.accuracy;
    row.styled_accuracy = se.accuracy;
    const std::string file = absl::StrCat(config.out_dir, "/reports/", FileName(mk.name));
    auto fill = [&](MethodResult& m, const VerificationReport& r) {
      m.examined = true;
      m.delta_mu = r.delta_mu();
      m.suspect_mean = r.suspect_mean_score();
      m.p_value = r.p_value();
      m.log10_p = r.log10_p_value();
      m.flagged = r.stolen();
      m.verdict = r.verdict();
      m.outcome = OutcomeOf(r);
      m.queries = r.queries();
      m.in_range = r.suspect_in_range();
      m.model_level_tested = r.model_level_tested();
      m.model_level_log10_p = r.model_level_log10_p_value();
      m.model_level_reject = r.model_level_reject();
      m.paired_flagged = r.classifier_sound() && r.suspect_in_range() && r.log10_p_value() < std::log10(r.alpha());
      m.suspect_scores.assign(r.suspect_scores().begin(), r.suspect_scores().end());
      m.reference_scores.assign(r.reference_scores().begin(), r.reference_scores().end());
      m.seconds = r.seconds();
      m.clean_agreement = r.fingerprint_clean_agreement();
      m.perturbed_agreement = r.fingerprint_perturbed_agreement();
      m.model_level_score = ModelLevelSuspectValueOf(r);
    };
    VerifyOptions vo;
    vo.alpha = config.alpha;
    vo.device = config.device;
    absl::StatusOr<VerificationReport> wb =
        config.whitebox ? VerifyWhiteBox(bundle, e.path, vo)
                        : absl::StatusOr<VerificationReport>(absl::FailedPreconditionError("white-box not run (--whitebox=false)"));
    std::optional<VerificationReport> bb_report;
    if (wb.ok()) {
      fill(row.whitebox, *wb);
      MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".whitebox.json", ReportToJson(*wb)));
      if (config.whitebox_small_m > 0) {
        VerifyOptions small = vo;
        small.m = config.whitebox_small_m;
        MOVE_ASSIGN_OR_RETURN(VerificationReport w10, VerifyWhiteBox(bundle, e.path, small));
        row.whitebox.small_m_log10_p = w10.log10_p_value();
        row.whitebox.small_m_flagged = w10.stolen();
      }
    } else if (absl::IsFailedPrecondition(wb.status())) {
      row.whitebox.note = config.whitebox ? "architecture not covered" : "not run";
    } else {
      return absl::Status(wb.status().code(), absl::StrCat(mk.name, ": white-box: ", wb.status().message()));
    }
    // One channel (the model loaded once) for the black-box and fingerprint queries.
    std::unique_ptr<SuspectChannel> channel;
    if (bundle.contents.has_blackbox() || bundle.contents.has_fingerprint() || bundle.contents.has_label_agreement()) {
      MOVE_ASSIGN_OR_RETURN(channel, OpenModelChannel(e.path, config.device));
    }
    std::optional<VerificationReport> la_report;
    if (bundle.contents.has_label_agreement()) {
      LabelAgreementVerifyOptions lo;
      lo.alpha = config.alpha;
      lo.show_progress = false;
      lo.transcript_path = file + ".label-agreement.transcript.jsonl";
      std::remove(lo.transcript_path.c_str());  // this run's own output, remade
      MOVE_ASSIGN_OR_RETURN(VerificationReport la, VerifyLabelAgreement(bundle, *channel, lo));
      fill(row.label_agreement, la);
      la_report = la;
      MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".label-agreement.json", ReportToJson(la)));
    }
    if (bundle.contents.has_blackbox()) {
      BlackBoxOptions bb;
      bb.m = std::min<int64_t>(config.blackbox_m, config.verification_samples);
      bb.alpha = config.alpha;
      bb.device = config.device;
      bb.show_progress = false;
      bb.transcript_path = file + ".blackbox.transcript.jsonl";
      std::remove(bb.transcript_path.c_str());  // this run's own output, remade
      MOVE_ASSIGN_OR_RETURN(VerificationReport fixed, VerifyBlackBox(bundle, *channel, bb));
      fill(row.blackbox, fixed);
      bb_report = fixed;
      MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".blackbox.json", ReportToJson(fixed)));
      if (config.sequential) {
        BlackBoxOptions sq = bb;
        sq.sequential = true;
        sq.m = config.verification_samples;
        sq.max_queries = config.sequential_max_queries > 0 ? config.sequential_max_queries : fixed.queries();
        sq.transcript_path = file + ".sequential.transcript.jsonl";
        std::remove(sq.transcript_path.c_str());
        MOVE_ASSIGN_OR_RETURN(VerificationReport seq, VerifyBlackBox(bundle, *channel, sq));
        fill(row.sequential, seq);
        MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".sequential.json", ReportToJson(seq)));
      }
    } else {
      row.blackbox.note = "bundle has no black-box verifier";
    }
    if (bundle.contents.has_fingerprint()) {
      FingerprintVerifyOptions fo;
      fo.fingerprints = config.fingerprints;
      fo.alpha = config.alpha;
      fo.show_progress = false;
      fo.transcript_path = file + ".fingerprint.transcript.jsonl";
      std::remove(fo.transcript_path.c_str());
      MOVE_ASSIGN_OR_RETURN(VerificationReport fp, VerifyFingerprint(bundle, *channel, fo));
      fill(row.fingerprint, fp);
      MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".fingerprint.json", ReportToJson(fp)));
      if (config.sequential) {
        FingerprintVerifyOptions sq = fo;
        sq.sequential = true;
        sq.fingerprints = 0;
        sq.max_queries = config.fingerprint_sequential_max_queries;
        sq.transcript_path = file + ".fingerprint-sequential.transcript.jsonl";
        std::remove(sq.transcript_path.c_str());
        MOVE_ASSIGN_OR_RETURN(VerificationReport fs, VerifyFingerprint(bundle, *channel, sq));
        fill(row.fingerprint_sequential, fs);
        MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".fingerprint-sequential.json", ReportToJson(fs)));
      }
      std::vector<VerificationReport> lines;
      if (wb.ok()) lines.push_back(*wb);
      if (row.blackbox.examined) lines.push_back(*bb_report);
      lines.push_back(fp);
      if (la_report) lines.push_back(*la_report);
      MOVE_ASSIGN_OR_RETURN(CombinedVerdict cv, CombineEvidence(lines, config.alpha));
      MethodResult& cm = row.combined;
      cm.examined = true;
      cm.p_value = cv.p_value();
      cm.log10_p = cv.log10_p_value();
      cm.flagged = cv.stolen();
      cm.verdict = cv.verdict();
      cm.decided_by = cv.decided_by();
      for (const VerificationReport& l : lines) cm.queries += l.queries(), cm.seconds += l.seconds();
      MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(file + ".combined.json", CombinedToJson(cv)));
    }
    std::printf("%-48s %-6s %6.3f %6.3f | %-10s %-10s | %-10s %-8s | %-10s | %-10s | %-10s%s\n", mk.name.c_str(),
                mk.stolen ? "stolen" : "indep.", row.clean_accuracy, row.styled_accuracy, P(row.whitebox).c_str(),
                row.whitebox.examined ? (row.whitebox.flagged ? "stolen" : "not") : "-", P(row.blackbox).c_str(),
                row.sequential.examined ? absl::StrCat(row.sequential.queries).c_str() : "-", P(row.fingerprint).c_str(),
                P(row.label_agreement).c_str(), row.combined.examined ? (row.combined.flagged ? "stolen" : "not") : "-", e.hit ? "  (cached)" : "");
    std::fflush(stdout);
    result.rows.push_back(std::move(row));
  }

  // 4. Summary figures and outputs.
  int benign_n = 0;
  for (const HarnessRow& r : result.rows) {
    if (r.group == "source") {
      result.victim_clean_accuracy = r.clean_accuracy;
      result.victim_styled_accuracy = r.styled_accuracy;
    }
    if (r.group == "independent" && r.name.find(kinds[0]) != std::string::npos) {
      result.benign_clean_accuracy += r.clean_accuracy;
      result.benign_styled_accuracy += r.styled_accuracy;
      ++benign_n;
    }
  }
  if (benign_n > 0) {
    result.benign_clean_accuracy /= benign_n;
    result.benign_styled_accuracy /= benign_n;
  }
  result.models_trained = cache.made;
  result.cache_hits = cache.hits;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<ScoreRow> wb_rows, bb_rows;
  for (const HarnessRow& r : result.rows) {
    wb_rows.push_back({r.whitebox.suspect_scores, r.whitebox.reference_scores, r.whitebox.flagged});
    bb_rows.push_back({r.blackbox.suspect_scores, r.blackbox.reference_scores, r.blackbox.flagged});
  }
  MOVE_RETURN_IF_ERROR(SaveScoreStrips(config.out_dir + "/scores_whitebox.png", wb_rows));
  MOVE_RETURN_IF_ERROR(SaveScoreStrips(config.out_dir + "/scores_blackbox.png", bb_rows));

  Struct json;
  auto& f = *json.mutable_fields();
  f["config"] = Str(config.name);
  f["command"] = Str(config.command);
  f["sdk_version"] = Str(kSdkVersion);
  f["runtime"] = Str(RuntimeDescription());
  f["train_size"] = Num(static_cast<double>(config.train_size));
  f["architecture"] = Str(config.arch);
  f["student_architecture"] = Str(config.student_arch);
  f["epochs"] = Num(config.epochs);
  f["gamma"] = Num(config.gamma);
  f["style_strength"] = Num(config.style_strength);
  f["seed"] = Num(static_cast<double>(config.seed));
  f["independent_seed"] = Num(static_cast<double>(config.independent_seed));
  f["decoy_members"] = Num(config.decoys);
  f["decoy_calibration_models"] = Num(config.decoy_calibration);
  f["alpha"] = Num(config.alpha);
  f["blackbox_m"] = Num(static_cast<double>(config.blackbox_m));
  f["bundle"] = Str(result.bundle_path);
  f["bundle_sha256"] = Str(result.bundle_sha256);
  f["victim_clean_accuracy"] = Num(result.victim_clean_accuracy);
  f["benign_clean_accuracy"] = Num(result.benign_clean_accuracy);
  f["victim_styled_accuracy"] = Num(result.victim_styled_accuracy);
  f["benign_styled_accuracy"] = Num(result.benign_styled_accuracy);
  f["models_trained"] = Num(result.models_trained);
  f["cache_hits"] = Num(result.cache_hits);
  f["seconds"] = Num(result.seconds);
  f["label_agreement_built"] = Bool(result.label_agreement_built);
  f["label_agreement_sound"] = Bool(result.label_agreement_sound);
  f["label_agreement_type1"] = Num(result.label_agreement_type1);
  f["label_agreement_errors"] = Num(result.label_agreement_errors);
  f["label_agreement_benign_models"] = Num(result.label_agreement_benign_models);
  f["fingerprint_built"] = Bool(result.fingerprint_built);
  if (result.fingerprint_built) {
    f["fingerprint_sound"] = Bool(result.fingerprint_sound);
    f["fingerprint_type1"] = Num(result.fingerprint_type1);
    f["fingerprint_type2"] = Num(result.fingerprint_type2);
    f["fingerprint_victim_log10_p"] = Num(result.fingerprint_victim_log10_p);
    f["fingerprint_helper_models"] = Num(result.fingerprint_helper_models);
    f["fingerprint_query_pool"] = Bool(config.fingerprint_query_pool);
    f["fingerprint_encoder_piracy_models"] = Num(result.fingerprint_encoder_piracy);
    f["fingerprint_encoder_independent_models"] = Num(result.fingerprint_encoder_independents);
    f["fingerprint_build_seconds"] = Num(result.fingerprint_build_seconds);
    f["fingerprints_per_verification"] = Num(static_cast<double>(config.fingerprints));
    google::protobuf::ListValue fr;
    for (double x : result.uap_fooling_rates) *fr.add_values() = Num(x);
    *f["uap_fooling_rates"].mutable_list_value() = fr;
  }
  for (auto [method, pick] : std::vector<std::pair<std::string, std::function<const MethodResult&(const HarnessRow&)>>>{
           {"whitebox", [](const HarnessRow& r) -> const MethodResult& { return r.whitebox; }},
           {"blackbox", [](const HarnessRow& r) -> const MethodResult& { return r.blackbox; }},
           {"sequential", [](const HarnessRow& r) -> const MethodResult& { return r.sequential; }},
           {"fingerprint", [](const HarnessRow& r) -> const MethodResult& { return r.fingerprint; }},
           {"fingerprint_sequential", [](const HarnessRow& r) -> const MethodResult& { return r.fingerprint_sequential; }},
           {"label_agreement", [](const HarnessRow& r) -> const MethodResult& { return r.label_agreement; }},
           {"combined", [](const HarnessRow& r) -> const MethodResult& { return r.combined; }}}) {
    Rate fp;
    for (const HarnessRow& r : result.rows) {
      if (r.stolen || !pick(r).examined) continue;
      ++fp.n;
      fp.k += pick(r).flagged;
    }
    Struct s;
    (*s.mutable_fields())["flagged"] = Num(fp.k);
    (*s.mutable_fields())["examined"] = Num(fp.n);
    auto [lo, hi] = WilsonInterval(fp.k, fp.n);
    (*s.mutable_fields())["wilson95_low"] = Num(lo);
    (*s.mutable_fields())["wilson95_high"] = Num(hi);
    *f[method + "_false_positives"].mutable_struct_value() = s;
  }
  google::protobuf::ListValue rows;
  for (const HarnessRow& r : result.rows) {
    Struct s;
    auto& g = *s.mutable_fields();
    g["suspect"] = Str(r.name);
    g["group"] = Str(r.group);
    g["truth"] = Str(r.stolen ? "stolen" : "independent");
    g["clean_test_accuracy"] = Num(r.clean_accuracy);
    g["styled_test_accuracy"] = Num(r.styled_accuracy);
    g["model_file"] = Str(r.model_path);
    g["model_key"] = Str(r.model_key);
    *g["whitebox"].mutable_struct_value() = MethodJson(r.whitebox, config.whitebox_small_m > 0);
    *g["blackbox"].mutable_struct_value() = MethodJson(r.blackbox, false);
    *g["sequential"].mutable_struct_value() = MethodJson(r.sequential, false);
    *g["fingerprint"].mutable_struct_value() = MethodJson(r.fingerprint, false);
    *g["fingerprint_sequential"].mutable_struct_value() = MethodJson(r.fingerprint_sequential, false);
    *g["label_agreement"].mutable_struct_value() = MethodJson(r.label_agreement, false);
    (*g["label_agreement"].mutable_struct_value()->mutable_fields())["agreement"] = Num(r.label_agreement.suspect_mean);
    (*g["label_agreement"].mutable_struct_value()->mutable_fields())["rarity_weighted_agreement"] =
        Num(r.label_agreement.model_level_score);
    *g["combined"].mutable_struct_value() = MethodJson(r.combined, false);
    if (r.combined.examined) (*g["combined"].mutable_struct_value()->mutable_fields())["decided_by"] = Str(r.combined.decided_by);
    *rows.add_values()->mutable_struct_value() = s;
  }
  *f["suspects"].mutable_list_value() = rows;
  MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(config.out_dir + "/results.json", core::ProtoToJson(json)));
  const std::string md = ResultsMarkdown(config, result);
  MOVE_RETURN_IF_ERROR(core::WriteFileAtomically(config.out_dir + "/results.md", md));
  return result;
}

namespace {

// Queries per black-box sample of the configuration's bundle design.
int64_t BlackBoxQueriesPerSample(const HarnessConfig& c) {
  return c.blackbox_design == "probability-difference" ? 10 : 5 * (1 + BuildBundleOptions{}.contrast_decoys) + 1;
}


// The fingerprint and combined-verdict section of results.md (issue 6).
std::string FingerprintMarkdown(const HarnessConfig& c, const HarnessResult& r) {
  std::string md = "### UAP fingerprint and combined verdict\n\n";
  const FingerprintBuildOptions& fo = c.fingerprint_options;
  absl::StrAppendFormat(
      &md,
      "Fingerprint verifier: %d UAPs (L-inf %g, fooling rate on the victim %s), %d points per fingerprint (k-means), "
      "encoder trained on %d piracy + %d independent helper models (%s; seeds disjoint from the suspects'), "
      "%d held-out piracy models (Type-II %.2f), reference + %d calibration models (Type-I %.2f, soundness check %s); "
      "victim log10 p %.1f; %d helper models, built in %.1f min. Verification: %d fingerprints (%d queries); sequential "
      "cap %d queries. Combined verdict: Holm at alpha %g over white-box (where examined), black-box (m = %d) and "
      "fingerprint; each line enters with max(paired p, model-level p), p = 1 if unsound or out of range.\n\n",
      fo.uaps, fo.epsilon,
      absl::StrJoin(r.uap_fooling_rates, ", ", [](std::string* o, double x) { absl::StrAppendFormat(o, "%.2f", x); }),
      fo.points_per_fingerprint, r.fingerprint_encoder_piracy, r.fingerprint_encoder_independents,
      c.fingerprint_query_pool ? "piracy students query the victim with the vendor's query pool, a split it was not trained on; "
                                 "independents on the vendor's data and on the query pool"
                               : "the vendor's data",
      c.fingerprint_held_out,
      r.fingerprint_type2, c.fingerprint_calibration - 1, r.fingerprint_type1, r.fingerprint_sound ? "passed" : "FAILED",
      r.fingerprint_victim_log10_p, r.fingerprint_helper_models, r.fingerprint_build_seconds / 60, c.fingerprints,
      c.fingerprints * 2 * fo.points_per_fingerprint, c.fingerprint_sequential_max_queries, c.alpha, c.blackbox_m);
  absl::StrAppend(&md,
                  "| group | suspect | truth | FP Δsim | FP agreement clean / UAP | FP log10 p | FP model log10 p | FP verdict | FP seq. queries | FP seq. "
                  "verdict | LA agreement / weighted | LA model log10 p | LA verdict | combined log10 p (Holm) | combined verdict | carried by | cost BB: queries / s | cost FP: "
                  "queries / s | cost LA: queries / s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const HarnessRow& x : r.rows) {
    absl::StrAppendFormat(&md, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.group, x.name,
                          x.stolen ? "stolen" : "independent", D(x.fingerprint),
                          x.fingerprint.examined ? absl::StrFormat("%.2f / %.2f", x.fingerprint.clean_agreement,
                                                                   x.fingerprint.perturbed_agreement)
                                                 : "-",
                          L(x.fingerprint), ML(x.fingerprint),
                          V(x.fingerprint, x.stolen),
                          x.fingerprint_sequential.examined ? absl::StrCat(x.fingerprint_sequential.queries) : "-",
                          V(x.fingerprint_sequential, x.stolen),
                          x.label_agreement.examined
                              ? absl::StrFormat("%.3f / %.3f", x.label_agreement.suspect_mean, x.label_agreement.model_level_score)
                              : "-",
                          ML(x.label_agreement), V(x.label_agreement, x.stolen), L(x.combined), V(x.combined, x.stolen),
                          x.combined.decided_by.empty() ? "-" : x.combined.decided_by,
                          x.blackbox.examined ? absl::StrFormat("%d / %.1f", x.blackbox.queries, x.blackbox.seconds) : "-",
                          x.fingerprint.examined ? absl::StrFormat("%d / %.1f", x.fingerprint.queries, x.fingerprint.seconds)
                                                 : "-",
                          x.label_agreement.examined
                              ? absl::StrFormat("%d / %.1f", x.label_agreement.queries, x.label_agreement.seconds)
                              : "-");
  }
  absl::StrAppend(&md, "\n| group | FP flagged | FP sequential flagged | LA flagged | combined flagged | MOVE alone (WB or BB) flagged |\n"
                       "|---|---|---|---|---|---|\n");
  for (const std::string group : {"source", "stealing", "multi-stage", "adaptive", "independent"}) {
    Rate fp, fs, la, cb, mv;
    for (const HarnessRow& x : r.rows) {
      if (x.group != group) continue;
      if (x.fingerprint.examined) ++fp.n, fp.k += x.fingerprint.flagged;
      if (x.label_agreement.examined) ++la.n, la.k += x.label_agreement.flagged;
      if (x.fingerprint_sequential.examined) ++fs.n, fs.k += x.fingerprint_sequential.flagged;
      if (x.combined.examined) ++cb.n, cb.k += x.combined.flagged;
      ++mv.n, mv.k += x.whitebox.flagged || x.blackbox.flagged;
    }
    if (mv.n == 0) continue;
    absl::StrAppendFormat(&md, "| %s | %s | %s | %s | %s | %s |\n", group, fp.Text(), fs.Text(), la.Text(), cb.Text(), mv.Text());
  }
  if (r.label_agreement_built) {
    absl::StrAppendFormat(&md,
                          "\nLabel agreement: %d of the victim's mistakes on the test split (with covers), %d held-out benign "
                          "models of the bundle as the null population (leave-one-out Type-I %.2f, soundness check %s); it "
                          "joins the combined verdict.\n",
                          r.label_agreement_errors, r.label_agreement_benign_models, r.label_agreement_type1,
                          r.label_agreement_sound ? "passed" : "FAILED");
  }
  absl::StrAppend(&md, "\n");
  return md;
}

}  // namespace

std::string ResultsMarkdown(const HarnessConfig& c, const HarnessResult& r) {
  std::string md;
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d", std::gmtime(&now));
  absl::StrAppendFormat(&md, "## Red-team results: %s configuration (%s)\n\n", c.name, date);
  if (!c.command.empty()) absl::StrAppendFormat(&md, "Command: `%s`\n\n", c.command);
  absl::StrAppendFormat(&md,
                        "Fashion-MNIST, owner %d images (%g%% styled, style strength %g), victim %s, students %s, %d "
                        "epochs; bundle population %d+%d%s%s, %d calibration%s, %d verification samples; white-box m = all "
                        "(%d) and m = %d; black-box m = %d (%d queries), sequential cap %d queries; alpha %g; seed %d. "
                        "%s%d models trained, %d from the cache, %.1f min. MOVE SDK %s.\n\n",
                        c.train_size, 100 * c.gamma, c.style_strength, c.arch, c.student_arch, c.epochs, c.population,
                        c.population,
                        c.shadow_architectures.empty()
                            ? std::string()
                            : absl::StrCat(" per architecture (", c.arch, ", shadows ", absl::StrJoin(c.shadow_architectures, ", "), ")"),
                        c.decoys > 0 ? absl::StrCat(" + ", c.decoys, " decoy-styled benign (decoys.png)") : std::string(),
                        c.calibration,
                        absl::StrCat(c.decoy_calibration > 0 ? absl::StrCat(" + ", c.decoy_calibration, " rival-vendor") : "",
                                     c.augmented_calibration > 0
                                         ? absl::StrCat(" + ", c.augmented_calibration, " appearance-augmented")
                                         : ""),
                        c.verification_samples, c.verification_samples, c.whitebox_small_m,
                        c.blackbox_m, BlackBoxQueriesPerSample(c) * c.blackbox_m,
                        c.sequential_max_queries > 0 ? c.sequential_max_queries : BlackBoxQueriesPerSample(c) * c.blackbox_m,
                        c.alpha, c.seed,
                        c.independent_seed != 0 ? absl::StrCat("Independent seeds offset by ", c.independent_seed,
                                                               " (a held-out set). ")
                                                : std::string(),
                        r.models_trained,
                        r.cache_hits, r.seconds / 60, kSdkVersion);
  absl::StrAppendFormat(&md,
                        "Accuracy (paper Table III): victim %.2f%% clean / %.2f%% on styled test images; benign models "
                        "on the same clean data %.2f%% / %.2f%% (cost of the watermark %+.2f points).\n\n",
                        100 * r.victim_clean_accuracy, 100 * r.victim_styled_accuracy, 100 * r.benign_clean_accuracy,
                        100 * r.benign_styled_accuracy, 100 * (r.benign_clean_accuracy - r.victim_clean_accuracy));
  absl::StrAppendFormat(&md,
                        "Bundle: white-box classifier held-out-model Type-I %.3f / Type-II %.3f, soundness check %s; "
                        "black-box Type-I %.3f / Type-II %.3f, soundness check %s.\n\n",
                        r.whitebox_type1, r.whitebox_type2, r.whitebox_sound ? "passed" : "FAILED", r.blackbox_type1,
                        r.blackbox_type2, r.blackbox_sound ? "passed" : "FAILED");
  absl::StrAppend(&md,
                  "| group | suspect | truth | clean acc | styled acc | WB Δμ | WB p | WB log10 p | WB log10 p (m=",
                  c.whitebox_small_m,
                  ") | WB model log10 p | WB verdict | BB Δμ | BB p | BB log10 p | BB model log10 p | BB verdict | seq. "
                  "queries | seq. p | seq. verdict |\n"
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const HarnessRow& x : r.rows) {
    absl::StrAppendFormat(
        &md, "| %s | %s | %s | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
        x.group, x.name, x.stolen ? "stolen" : "independent", x.clean_accuracy, x.styled_accuracy, D(x.whitebox),
        P(x.whitebox), L(x.whitebox), x.whitebox.examined ? absl::StrFormat("%.1f", x.whitebox.small_m_log10_p) : "-",
        ML(x.whitebox), V(x.whitebox, x.stolen), D(x.blackbox), P(x.blackbox), L(x.blackbox), ML(x.blackbox),
        V(x.blackbox, x.stolen),
        x.sequential.examined ? absl::StrCat(x.sequential.queries) : "-", P(x.sequential), V(x.sequential, x.stolen));
  }
  // Rates per group and method.
  absl::StrAppend(&md, "\n| group | WB flagged | WB flagged (m=", c.whitebox_small_m,
                  ") | BB flagged | sequential flagged | WB or BB flagged | paired test alone: WB | paired test alone: BB |\n"
                  "|---|---|---|---|---|---|---|---|\n");
  for (const std::string group : {"source", "stealing", "multi-stage", "adaptive", "independent"}) {
    Rate wb, wb10, bb, sq, any, wbp, bbp;
    for (const HarnessRow& x : r.rows) {
      if (x.group != group) continue;
      if (x.whitebox.examined) {
        ++wb.n, wb.k += x.whitebox.flagged;
        ++wb10.n, wb10.k += x.whitebox.small_m_flagged;
        ++wbp.n, wbp.k += x.whitebox.paired_flagged;
      }
      if (x.blackbox.examined) ++bb.n, bb.k += x.blackbox.flagged, ++bbp.n, bbp.k += x.blackbox.paired_flagged;
      if (x.sequential.examined) { ++sq.n; sq.k += x.sequential.flagged; }
      ++any.n;
      any.k += x.whitebox.flagged || x.blackbox.flagged;
    }
    if (any.n == 0) continue;
    absl::StrAppendFormat(&md, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", group, wb.Text(), wb10.Text(), bb.Text(),
                          sq.Text(), any.Text(), wbp.Text(), bbp.Text());
  }
  absl::StrAppend(&md, "\nIndependent rows are the false-positive rate at alpha = ", c.alpha,
                  " (each model one trial); \"WB or BB\" is what a legal team that runs both tests and claims theft on "
                  "either would see. Verdicts need the paired test and the model-level test (suspect's mean score "
                  "against the bundle's held-out benign models) to reject; \"paired test alone\" is the paper's rule.\n\nMisses: ");
  std::vector<std::string> misses;
  for (const HarnessRow& x : r.rows) {
    const bool wrong_wb = x.whitebox.examined && x.whitebox.flagged != x.stolen;
    const bool wrong_bb = x.blackbox.examined && x.blackbox.flagged != x.stolen;
    if (!wrong_wb && !wrong_bb) continue;
    std::vector<std::string> how;
    if (wrong_wb) how.push_back("white-box");
    if (wrong_bb) how.push_back("black-box");
    misses.push_back(absl::StrCat(x.name, " (", absl::StrJoin(how, ", "), x.stolen ? " missed" : " false positive",
                                  absl::StrFormat(", clean accuracy %.3f", x.clean_accuracy), ")"));
  }
  absl::StrAppend(&md, misses.empty() ? "none" : absl::StrJoin(misses, "; "), ".\n\n");
  if (r.fingerprint_built) absl::StrAppend(&md, FingerprintMarkdown(c, r));
  absl::StrAppend(&md, "Score distributions: ",
                  "scores_whitebox.png, scores_blackbox.png (one band per row in table order: reference grey above, "
                  "suspect below, red when flagged).\n");
  return md;
}

}  // namespace move::redteam
