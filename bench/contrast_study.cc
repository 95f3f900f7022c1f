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
// compared on the same models. Nothing here is used by the SDK at run time.
#include <algorithm>
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
ABSL_FLAG(int, benign, 2, "Benign models (other seeds).");
ABSL_FLAG(int, augmented, 1, "Appearance-augmented models.");
ABSL_FLAG(std::string, rivals, "817,3001,3002,3003", "DecoyStyleImage seeds of the rival vendors' secret styles.");
ABSL_FLAG(std::string, decoys, "1717,1718,1719,4001,4002,4003,4004,4005",
          "DecoyStyleImage seeds of the query decoys (the bundle's default uses the first three).");
ABSL_FLAG(int, samples, 200, "Verification samples (held-out test images).");
ABSL_FLAG(std::string, sheet, "", "If set, a PNG of one sample rendered towards the secret and every decoy.");
ABSL_FLAG(int, threads, 0, "Threads.");

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
  const at::Tensor secret_images = Must(wm.StyleImages(ver.images), "style samples");

  const std::vector<uint64_t> decoy_seeds = Seeds(absl::GetFlag(FLAGS_decoys));
  const std::vector<uint64_t> rival_seeds = Seeds(absl::GetFlag(FLAGS_rivals));
  move::EmbedDatasetOptions ro = Must(move::EmbedOptionsFromRecord(wm.record), "record");
  ro.show_progress = false;
  std::vector<at::Tensor> decoy_images;
  for (size_t j = 0; j < decoy_seeds.size(); ++j) {
    at::Tensor d = Must(move::DecoyStyleImage(decoy_seeds[j]), "decoy");
    move::EmbedDatasetOptions qo = ro;
    qo.gamma = 1.0;
    qo.seed = decoy_seeds[j] + 50;
    decoy_images.push_back(Must(move::EmbedDataset(ver, d, qo), "render decoy").dataset.images);
    std::fprintf(stderr, "rendered decoy %llu\n", static_cast<unsigned long long>(decoy_seeds[j]));
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
    return m;
  };
  std::vector<Row> rows;
  auto measure = [&](const std::string& name, torch::jit::Module m) {
    Row r;
    r.name = name;
    r.secret = TrueClass(m, secret_images, ver.labels);
    r.clean = TrueClass(m, ver.images, ver.labels);
    std::vector<at::Tensor> ds;
    for (const at::Tensor& d : decoy_images) ds.push_back(TrueClass(m, d, ver.labels));
    r.decoys = torch::stack(ds);
    rows.push_back(r);
  };
  const move::Dataset clean = move::ToRgb(train);
  measure("victim", train_model(wm.dataset, 1, "victim"));
  for (int i = 0; i < absl::GetFlag(FLAGS_benign); ++i) {
    measure(absl::StrCat("benign seed ", 2 + i), train_model(clean, 2 + i, "benign"));
  }
  for (size_t i = 0; i < rival_seeds.size(); ++i) {
    at::Tensor rs = Must(move::DecoyStyleImage(rival_seeds[i]), "rival style");
    move::EmbedDatasetOptions o = ro;
    o.seed = rival_seeds[i] + 50;
    move::EmbedResult r = Must(move::EmbedDataset(train, rs, o), "rival embed");
    measure(absl::StrCat("rival style ", rival_seeds[i]), train_model(r.dataset, 100 + i, "rival"));
  }
  for (int i = 0; i < absl::GetFlag(FLAGS_augmented); ++i) {
    move::AppearanceAugmentOptions ao;
    ao.seed = 967 + i;
    move::Dataset a = Must(move::AugmentAppearance(train, ao), "augment");
    measure(absl::StrCat("augmented ", i), train_model(a, 200 + i, "augmented"));
  }

  const int64_t q = static_cast<int64_t>(decoy_seeds.size());
  std::printf("mean true-class probability over %lld samples x 5 augmentations\n", static_cast<long long>(ver.size()));
  std::printf("%-20s %6s %6s", "model", "clean", "secret");
  for (uint64_t s : decoy_seeds) std::printf(" %6llu", static_cast<unsigned long long>(s));
  std::printf(" | %7s %7s %7s %7s\n", "c(3)", "c(all)", "rank", "ratio");
  for (const Row& r : rows) {
    std::printf("%-20s %6.3f %6.3f", r.name.c_str(), r.clean.mean().item<double>(), r.secret.mean().item<double>());
    for (int64_t j = 0; j < q; ++j) std::printf(" %6.3f", r.decoys[j].mean().item<double>());
    const at::Tensor d3 = r.decoys.narrow(0, 0, std::min<int64_t>(3, q)).mean(0);
    const at::Tensor dall = r.decoys.mean(0);
    // rank: share of decoys the secret beats per sample; ratio: the secret's recovered share
    // of the clean-to-decoy gap.
    const at::Tensor rank = (r.secret.unsqueeze(0) > r.decoys).to(torch::kFloat64).mean(0);
    const at::Tensor ratio = ((r.secret - dall) / (r.clean - dall).clamp_min(0.05)).clamp(-1, 1);
    std::printf(" | %7.3f %7.3f %7.3f %7.3f\n", ((1 + r.secret - d3) / 2).mean().item<double>(),
                ((1 + r.secret - dall) / 2).mean().item<double>(), rank.mean().item<double>(),
                ratio.mean().item<double>());
  }
  return 0;
}
