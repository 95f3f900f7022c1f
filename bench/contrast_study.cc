// Style-contrast study: how much does each kind of model prefer the secret style over decoy
// styles on the same images, and is the preference specific to the secret?
//
//   bazel run //bench:contrast_study [-- --rivals=817,3001,3002,3003 --decoys=1717,...]
//
// Trains, with the main job's recipe on the main job's owner data: the victim (secret style,
// the main job's embedding), benign models (other seeds), rival vendors (MOVE with a procedural
// style of the given seeds, the watermark's engine, rate and strength, on the owner's data, as
// the bundle's rival-vendor calibration models are) and appearance-augmented models. Then
// renders the bundle's verification samples towards the secret and towards every query decoy
// and prints, per model, the mean true-class probability (over the five black-box
// augmentations) on clean, secret-styled and each decoy-styled version, and the style-contrast
// score with the first three decoys (the bundle's default) and with all of them.
// Alternative scores computed from the same probabilities are printed beside it, so designs are
// compared on the same models: strength-matched decoys (--match), natural-texture decoys
// (--decoy_images), luminance-only queries (--grey), and a membership contrast (--members: the
// exact watermarked training images against held-out ones). --cache keeps the trained models.
// Nothing here is used by the SDK at run time.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
#include "verifier/blackbox_features.h"

ABSL_FLAG(std::string, style, "testdata/style_leopard.png", "Secret style image.");
ABSL_FLAG(int, train_size, 15000, "Owner's training images (the main job's default).");
ABSL_FLAG(int, epochs, 3, "Epochs of the recipe.");
ABSL_FLAG(int, benign, 3, "Benign models (other seeds); the last is the paired tests' reference.");
ABSL_FLAG(int, select, 1, "Benign models the decoy strengths are matched on (the first ones).");
ABSL_FLAG(std::string, rival_images, "testdata/style_pool.png", "Rival vendors' secret style images (comma-separated).");
ABSL_FLAG(int, augmented, 1, "Appearance-augmented models.");
ABSL_FLAG(std::string, rivals, "817,3001,3002,3003", "DecoyStyleImage seeds of the rival vendors' secret styles.");
ABSL_FLAG(std::string, decoys, "1717,1718,1719,4001,4002,4003,4004,4005",
          "DecoyStyleImage seeds of the query decoys (the bundle's default uses the first three).");
ABSL_FLAG(std::string, decoy_images, "",
          "Decoy style images (comma-separated PNGs), queried after the seeded decoys.");
ABSL_FLAG(bool, match, true, "Also measure strength-matched decoys.");
ABSL_FLAG(int, samples, 200, "Verification samples (held-out test images).");
ABSL_FLAG(std::string, sheet, "", "If set, a PNG of one sample rendered towards the secret and every decoy.");
ABSL_FLAG(int, threads, 0, "Threads.");
ABSL_FLAG(std::string, cache, "", "If set, a folder where trained models are kept and reused (TorchScript).");
ABSL_FLAG(bool, grey, false, "Query luminance only: secret- and decoy-styled images converted to grey (3 equal channels).");
ABSL_FLAG(int, members, 600, "Watermarked training images for the membership contrast.");

namespace {

struct Row {
  std::string name;
  at::Tensor secret;  // N: mean true-class probability over augmentations
  at::Tensor clean;   // N
  at::Tensor decoys;  // Q x N
};

std::vector<uint64_t> Seeds(const std::string& list) {
  std::vector<uint64_t> out;
  for (absl::string_view s : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    uint64_t v = 0;
    if (!absl::SimpleAtoi(s, &v)) {
      std::fprintf(stderr, "not a seed: %s\n", std::string(s).c_str());
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, v.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(v);
}

// Mean true-class probability over the five augmentations: N values.
at::Tensor TrueClass(torch::jit::Module& model, const at::Tensor& images, const at::Tensor& labels) {
  at::Tensor five = Must(move::verifier_internal::AugmentFive(images, 2), "augment");
  at::Tensor p = Must(move::PredictProbabilities(model, five.flatten(0, 1)), "predict");
  p = p.view({5, images.size(0), -1});
  return p.gather(2, labels.view({1, -1, 1}).expand({5, -1, 1})).squeeze(2).mean(0).to(torch::kFloat64);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  (void)move::SetNumThreads(absl::GetFlag(FLAGS_threads));
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  std::string style_path = absl::GetFlag(FLAGS_style);
  if (cwd != nullptr && !style_path.empty() && style_path[0] != '/' && !std::ifstream(style_path)) {
    style_path = absl::StrCat(cwd, "/", style_path);
  }
  move::Dataset all = Must(move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTrain), "train set");
  move::Dataset test = Must(move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTest), "test set");
  move::Dataset train = Must(move::SampleSubset(all, absl::GetFlag(FLAGS_train_size), 0), "owner data");
  at::Tensor style = Must(move::LoadImage(style_path), "--style");

  move::EmbedDatasetOptions eo;
  eo.seed = 0;
  eo.show_progress = false;
  move::EmbedResult wm = Must(move::EmbedDataset(train, style, eo), "embed");
  const uint64_t base = 17;  // the bundle's seed base for seed 0
  move::Dataset ver = Must(move::SampleSubset(move::ToRgb(test), absl::GetFlag(FLAGS_samples), base + 500), "samples");
  at::Tensor secret_images = Must(wm.StyleImages(ver.images), "style samples");

  const std::vector<uint64_t> decoy_seeds = Seeds(absl::GetFlag(FLAGS_decoys));
  const std::vector<uint64_t> rival_seeds = Seeds(absl::GetFlag(FLAGS_rivals));
  move::EmbedDatasetOptions ro = Must(move::EmbedOptionsFromRecord(wm.record), "record");
  ro.show_progress = false;
  std::vector<at::Tensor> decoy_images;
  std::vector<std::pair<at::Tensor, move::EmbedDatasetOptions>> decoy_styles;  // style, render options
  for (size_t j = 0; j < decoy_seeds.size(); ++j) {
    at::Tensor d = Must(move::DecoyStyleImage(decoy_seeds[j]), "decoy");
    move::EmbedDatasetOptions qo = ro;
    qo.gamma = 1.0;
    qo.seed = decoy_seeds[j] + 50;
    decoy_images.push_back(Must(move::EmbedDataset(ver, d, qo), "render decoy").dataset.images);
    decoy_styles.emplace_back(d, qo);
    std::fprintf(stderr, "rendered decoy %llu\n", static_cast<unsigned long long>(decoy_seeds[j]));
  }
  std::vector<std::string> decoy_names;
  for (uint64_t s : decoy_seeds) decoy_names.push_back(absl::StrCat(s));
  for (absl::string_view path : absl::StrSplit(absl::GetFlag(FLAGS_decoy_images), ',', absl::SkipEmpty())) {
    std::string p(path);
    if (cwd != nullptr && p[0] != '/' && !std::ifstream(p)) p = absl::StrCat(cwd, "/", p);
    std::string name = p.substr(p.find_last_of('/') + 1);
    name = name.substr(0, std::min<size_t>(6, name.find('.')));
    move::EmbedDatasetOptions qo = ro;
    qo.gamma = 1.0;
    qo.seed = 9000 + decoy_names.size();
    const at::Tensor d = Must(move::LoadImage(p), "--decoy_images");
    decoy_images.push_back(Must(move::EmbedDataset(ver, d, qo), "render decoy").dataset.images);
    decoy_styles.emplace_back(d, qo);
    decoy_names.push_back(name);
    std::fprintf(stderr, "rendered decoy %s\n", name.c_str());
  }
  if (!absl::GetFlag(FLAGS_sheet).empty()) {
    std::vector<at::Tensor> originals, styled;
    for (int i = 0; i < 8; ++i) {
      originals.push_back(ver.images[i]);
      styled.push_back(secret_images[i]);
    }
    for (const at::Tensor& d : decoy_images) {
      for (int i = 0; i < 8; ++i) {
        originals.push_back(ver.images[i]);
        styled.push_back(d[i]);
      }
    }
    (void)move::SaveContactSheet(absl::GetFlag(FLAGS_sheet), torch::stack(originals), torch::stack(styled), 8, 3);
  }

  move::ModelSpec spec = Must(move::ParseModelSpec("cnn"), "arch");
  spec.in_channels = 3;
  spec.num_classes = train.num_classes;
  auto train_model = [&](const move::Dataset& data, uint64_t s, const std::string& label) {
    const std::string cache = absl::GetFlag(FLAGS_cache);
    const std::string cached = absl::StrCat(cache, "/", label, "-", s, "-", data.name.size(), "-", data.size(), "-",
                                            absl::GetFlag(FLAGS_epochs), ".pt");
    if (!cache.empty() && std::ifstream(cached)) {
      std::fprintf(stderr, "loaded %s\n", cached.c_str());
      return torch::jit::load(cached);
    }
    move::ModelSpec ms = spec;
    ms.seed = s;
    torch::jit::Module m = Must(move::CreateModel(ms), "model");
    move::TrainOptions to;
    to.epochs = absl::GetFlag(FLAGS_epochs);
    to.batch_size = 128;
    to.learning_rate = 0.05;
    to.seed = s;
    to.label = label;
    to.show_progress = false;
    Must(move::TrainModel(m, data, to), "train");
    std::fprintf(stderr, "trained %s\n", label.c_str());
    if (!cache.empty()) m.save(cached);
    return m;
  };
  // Every model first; the decoys' strengths are matched on the selection models (the first
  // --select benign models) and every model is then measured on both decoy sets.
  std::vector<std::pair<std::string, torch::jit::Module>> models;
  const move::Dataset clean = move::ToRgb(train);
  std::string victim_key = absl::StrCat("victim-", style_path.substr(style_path.find_last_of('/') + 1));
  for (char& c : victim_key) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  models.emplace_back("victim", train_model(wm.dataset, 1, victim_key));
  for (int i = 0; i < absl::GetFlag(FLAGS_benign); ++i) {
    models.emplace_back(absl::StrCat("benign seed ", 2 + i), train_model(clean, 2 + i, "benign"));
  }
  auto add_rival = [&](const std::string& name, const at::Tensor& rs, uint64_t seed) {
    move::EmbedDatasetOptions o = ro;
    o.seed = seed + 50;
    move::EmbedResult r = Must(move::EmbedDataset(train, rs, o), "rival embed");
    std::string key = absl::StrCat("rival-", name.substr(6));
    for (char& c : key) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    models.emplace_back(name, train_model(r.dataset, 100 + seed, key));
  };
  for (size_t i = 0; i < rival_seeds.size(); ++i) {
    add_rival(absl::StrCat("rival style ", rival_seeds[i]), Must(move::DecoyStyleImage(rival_seeds[i]), "rival style"),
              rival_seeds[i]);
  }
  for (absl::string_view path : absl::StrSplit(absl::GetFlag(FLAGS_rival_images), ',', absl::SkipEmpty())) {
    std::string p(path);
    if (cwd != nullptr && p[0] != '/' && !std::ifstream(p)) p = absl::StrCat(cwd, "/", p);
    const std::string base_name = p.substr(p.find_last_of('/') + 1);
    add_rival(absl::StrCat("rival ", base_name.substr(0, 14)), Must(move::LoadImage(p), "--rival_images"), 7000);
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_augmented); ++i) {
    move::AppearanceAugmentOptions ao;
    ao.seed = 967 + i;
    move::Dataset a = Must(move::AugmentAppearance(train, ao), "augment");
    models.emplace_back(absl::StrCat("augmented ", i), train_model(a, 200 + i, "augmented"));
  }

  // Strength matching: blend_l = (1 - l) clean + l decoy-styled, l in [0, 1] chosen by
  // bisection so that the selection models' mean true-class probability on the blend equals
  // the one on the secret-styled images (l = 1 where the decoy is already no harder).
  const int select = absl::GetFlag(FLAGS_select);
  auto selection_mean = [&](const at::Tensor& images) {
    double sum = 0;
    for (int i = 0; i < select; ++i) sum += TrueClass(models[1 + i].second, images, ver.labels).mean().item<double>();
    return sum / select;
  };
  const double target = selection_mean(secret_images);
  std::vector<at::Tensor> matched;
  std::vector<double> strengths;
  for (const at::Tensor& d : decoy_images) {
    if (!absl::GetFlag(FLAGS_match)) break;
    auto blend = [&](double l) { return ((1 - l) * ver.images + l * d).contiguous(); };
    double lo = 0, hi = 1;
    if (selection_mean(blend(1.0)) >= target) {
      lo = 1;
    } else {
      for (int it = 0; it < 10; ++it) {
        const double mid = (lo + hi) / 2;
        (selection_mean(blend(mid)) >= target ? lo : hi) = mid;
      }
    }
    strengths.push_back(lo);
    matched.push_back(blend(lo));
  }
  std::fprintf(stderr, "matched strengths:");
  for (double l : strengths) std::fprintf(stderr, " %.3f", l);
  std::fprintf(stderr, "\n");

  if (absl::GetFlag(FLAGS_grey)) {
    const auto grey = [](const at::Tensor& x) {
      const at::Tensor w = torch::tensor({0.299f, 0.587f, 0.114f}).view({1, 3, 1, 1});
      return (x * w).sum(1, true).expand_as(x).contiguous();
    };
    secret_images = grey(secret_images);
    for (at::Tensor& d : decoy_images) d = grey(d);
  }
  const int64_t q = static_cast<int64_t>(decoy_images.size());
  for (int pass = 0; pass < (absl::GetFlag(FLAGS_match) ? 2 : 1); ++pass) {
    const std::vector<at::Tensor>& dimgs = pass == 0 ? decoy_images : matched;
    std::vector<Row> rows;
    for (auto& [name, m] : models) {
      Row r;
      r.name = name;
      r.secret = TrueClass(m, secret_images, ver.labels);
      r.clean = TrueClass(m, ver.images, ver.labels);
      std::vector<at::Tensor> ds;
      for (const at::Tensor& d : dimgs) ds.push_back(TrueClass(m, d, ver.labels));
      r.decoys = torch::stack(ds);
      rows.push_back(r);
    }
    std::printf("\n%s decoys; mean true-class probability over %lld samples x 5 augmentations\n",
                pass == 0 ? "full-strength" : "strength-matched (on the first benign model(s))",
                static_cast<long long>(ver.size()));
    if (pass == 1) {
      std::printf("%-20s %6s %6s", "strength", "", "");
      for (double l : strengths) std::printf(" %6.3f", l);
      std::printf("\n");
    }
    std::printf("%-20s %6s %6s", "model", "clean", "secret");
    for (const std::string& s : decoy_names) std::printf(" %6s", s.c_str());
    std::printf(" | %7s %7s %7s %7s %7s\n", "c(3)", "t(3)", "c(all)", "t(all)", "c(max)");
    // t: paired t statistic of the model's per-sample scores against the last benign model's.
    const Row& ref = rows[absl::GetFlag(FLAGS_benign)];
    for (const Row& r : rows) {
      std::printf("%-20s %6.3f %6.3f", r.name.c_str(), r.clean.mean().item<double>(), r.secret.mean().item<double>());
      for (int64_t j = 0; j < q; ++j) std::printf(" %6.3f", r.decoys[j].mean().item<double>());
      const int64_t three = std::min<int64_t>(3, q);
      auto score = [](const Row& x, int64_t k) { return (1 + x.secret - x.decoys.narrow(0, 0, k).mean(0)) / 2; };
      auto t = [&](int64_t k) {
        const at::Tensor diff = score(r, k) - score(ref, k);
        const double sd = diff.std().item<double>();
        return sd > 0 ? diff.mean().item<double>() / (sd / std::sqrt(static_cast<double>(diff.numel()))) : 0.0;
      };
      // c(max): the secret against the decoy this model finds easiest (model-level means).
      const double cmax = (1 + r.secret.mean().item<double>() - r.decoys.mean(1).max().item<double>()) / 2;
      std::printf(" | %7.3f %7.2f %7.3f %7.2f %7.3f\n", score(r, three).mean().item<double>(), t(three),
                  score(r, q).mean().item<double>(), t(q), cmax);
    }
  }

  if (absl::GetFlag(FLAGS_members) <= 0) return 0;
  // Membership contrast: the exact watermarked training images against held-out images
  // styled the same way, minus the same difference for decoy-styled versions of the same
  // training and held-out images (a model trained on the owner's clean images gains on
  // training images in every style; only one trained on these secret-styled renders gains
  // more on them).
  const int64_t members = std::min<int64_t>(absl::GetFlag(FLAGS_members), wm.picked_indices.size(0));
  const at::Tensor picked = wm.picked_indices.narrow(0, 0, members);
  const move::Dataset member_clean{clean.images.index_select(0, picked), clean.labels.index_select(0, picked),
                                   clean.num_classes, "members"};
  const at::Tensor member_secret = wm.dataset.images.index_select(0, picked);
  const int64_t md = std::min<int64_t>(3, q);
  std::vector<at::Tensor> member_decoys;
  for (int64_t j = 0; j < md; ++j) {
    member_decoys.push_back(
        Must(move::EmbedDataset(member_clean, decoy_styles[j].first, decoy_styles[j].second), "render members")
            .dataset.images);
  }
  std::printf("\nmembership contrast over %lld watermarked training images and %lld held-out ones (first %lld decoys)\n",
              static_cast<long long>(members), static_cast<long long>(ver.size()), static_cast<long long>(md));
  std::printf("%-20s %8s %8s %8s %8s %8s %8s\n", "model", "tr.sec", "ho.sec", "d(sec)", "d(decoy)", "d(clean)",
              "member");
  for (auto& [name, m] : models) {
    const double ts = TrueClass(m, member_secret, member_clean.labels).mean().item<double>();
    const double hs = TrueClass(m, secret_images, ver.labels).mean().item<double>();
    double dd = 0;
    for (int64_t j = 0; j < md; ++j) {
      dd += TrueClass(m, member_decoys[j], member_clean.labels).mean().item<double>() -
            TrueClass(m, decoy_images[j], ver.labels).mean().item<double>();
    }
    dd /= static_cast<double>(md);
    const double dc = TrueClass(m, member_clean.images, member_clean.labels).mean().item<double>() -
                      TrueClass(m, ver.images, ver.labels).mean().item<double>();
    std::printf("%-20s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n", name.c_str(), ts, hs, ts - hs, dd, dc, ts - hs - dd);
  }
  return 0;
}
