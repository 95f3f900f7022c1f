// Soundness study of white-box MOVE on Fashion-MNIST: does a population-trained
// meta-classifier flag stolen models and leave independent ones alone, for several feature
// designs? Every model here is trained by the SDK; independent models never touch
// meta-classifier training.
//
//   bazel run //bench:whitebox_soundness [-- --owner_size=10000 --epochs=3 --population=4]
//
// Design: K watermarked and K benign models trained with
// the same recipe and different seeds; the meta-classifier is trained on K-1 of each and
// validated on the held-out pair (model-level validation: the question is whether it
// generalises to unseen models, not to unseen images); the paired test compares each suspect
// with another held-out benign reference on m styled TEST images never used in training.
#include <cstdio>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
#include "verifier/meta_classifier.h"
#include "verifier/significance.h"
#include "verifier/whitebox_features.h"

ABSL_FLAG(int, owner_size, 10000, "Owner's training images.");
ABSL_FLAG(int, indep_size, 10000, "Disjoint images for independent models and attackers' substitute data.");
ABSL_FLAG(int, epochs, 3, "Epochs of the recipe.");
ABSL_FLAG(int, population, 4, "K: watermarked and benign models each.");
ABSL_FLAG(int, train_samples, 300, "Styled training images per model for meta-classifier training.");
ABSL_FLAG(int, m, 100, "Verification samples (styled test images).");
ABSL_FLAG(int, meta_epochs, 60, "Meta-classifier epochs.");
ABSL_FLAG(double, alpha, 0.01, "Significance level.");
ABSL_FLAG(std::string, arch, "cnn", "Architecture of every model.");
ABSL_FLAG(int, threads, 0, "Threads.");

namespace {

using move::verifier_internal::WhiteBoxExtractor;

struct Named {
  std::string name;
  torch::jit::Module model;
  bool stolen;
};

// Feature designs under test; each maps pooled raw gradients on styled (xs) and clean (xc)
// images to features.
struct Design {
  std::string name;
  std::function<at::Tensor(const at::Tensor& gs, const at::Tensor& gc)> make;
};

at::Tensor LayerLogNorms(const at::Tensor& g, const std::vector<int64_t>& sizes) {
  std::vector<at::Tensor> cols;
  int64_t off = 0;
  for (int64_t s : sizes) {
    cols.push_back(g.narrow(1, off, s).norm(2, 1, true).add(1e-12).log());
    off += s;
  }
  return torch::cat(cols, 1);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  (void)move::SetNumThreads(absl::GetFlag(FLAGS_threads));
  const int K = absl::GetFlag(FLAGS_population);
  auto all = move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTrain);
  auto test = move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTest);
  if (!all.ok() || !test.ok()) { std::fprintf(stderr, "cannot load Fashion-MNIST\n"); return 1; }
  const int owner_n = absl::GetFlag(FLAGS_owner_size), indep_n = absl::GetFlag(FLAGS_indep_size);
  at::Tensor perm = torch::randperm(all->size(), at::make_generator<at::CPUGeneratorImpl>(7),
                                    torch::TensorOptions().dtype(torch::kInt64));
  move::Dataset owner = move::ToRgb(*move::SelectSamples(*all, perm.narrow(0, 0, owner_n)));
  move::Dataset indep = move::ToRgb(*move::SelectSamples(*all, perm.narrow(0, owner_n, indep_n)));
  move::Dataset test_rgb = move::ToRgb(*test);
  auto style = move::LoadImage("testdata/style_leopard.png");
  move::EmbedDatasetOptions eo;
  eo.seed = 11;
  eo.show_progress = false;
  auto wm = move::EmbedDataset(owner, *style, eo);
  if (!wm.ok()) { std::fprintf(stderr, "%s\n", wm.status().ToString().c_str()); return 1; }

  move::ModelSpec spec = *move::ParseModelSpec(absl::GetFlag(FLAGS_arch));
  spec.num_classes = 10;
  auto recipe = [&](const move::Dataset& data, uint64_t seed, const std::string& label) {
    spec.seed = seed;
    torch::jit::Module m = *move::CreateModel(spec);
    move::TrainOptions o;
    o.epochs = absl::GetFlag(FLAGS_epochs);
    o.seed = seed;
    o.label = label;
    auto r = move::TrainModel(m, data, o);
    if (!r.ok()) std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return m;
  };
  std::vector<torch::jit::Module> victims, benigns;
  for (int i = 0; i < K; ++i) victims.push_back(recipe(wm->dataset, 100 + i, absl::StrFormat("victim %d", i)));
  for (int i = 0; i < K; ++i) benigns.push_back(recipe(owner, 200 + i, absl::StrFormat("benign %d", i)));
  torch::jit::Module reference = recipe(owner, 300, "reference");

  std::vector<Named> suspects;
  suspects.push_back({"victim (population member)", victims[0], true});
  suspects.push_back({"victim (held out)", recipe(wm->dataset, 150, "victim held out"), true});
  {
    torch::jit::Module ft = victims[0].deepcopy();  // clone() would share the tensors
    move::TrainOptions o;
    o.epochs = 1;
    o.learning_rate = 0.01;
    o.seed = 600;
    o.label = "fine-tune";
    if (auto r = move::TrainModel(ft, indep, o); !r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    suspects.push_back({"fine-tuned copy (substitute data)", ft, true});
  }
  {
    spec.seed = 700;
    torch::jit::Module st = *move::CreateModel(spec);
    move::TrainOptions o;
    o.epochs = absl::GetFlag(FLAGS_epochs);
    o.seed = 700;
    o.teacher = &victims[0];
    o.label = "distill";
    (void)move::TrainModel(st, wm->dataset, o);
    suspects.push_back({"distilled (victim's training data)", st, true});
    spec.seed = 701;
    torch::jit::Module st2 = *move::CreateModel(spec);
    o.seed = 701;
    (void)move::TrainModel(st2, indep, o);
    suspects.push_back({"distilled (substitute data)", st2, true});
  }
  suspects.push_back({"independent: owner's clean data, other seed", recipe(owner, 400, "indep seed"), false});
  suspects.push_back({"independent: disjoint split", recipe(indep, 500, "indep split"), false});
  suspects.push_back({"independent: disjoint split, seed 2", recipe(indep, 501, "indep split 2"), false});
  suspects.push_back({"independent: owner's clean data, seed 3", recipe(owner, 402, "indep seed 3"), false});

  // Training samples: styled training images with their clean originals.
  const int P = absl::GetFlag(FLAGS_train_samples);
  at::Tensor picked = wm->picked_indices.narrow(0, 0, P);
  at::Tensor xs_train = wm->dataset.images.index_select(0, picked);
  at::Tensor xc_train = owner.images.index_select(0, picked);
  at::Tensor y_train = owner.labels.index_select(0, picked);
  // Verification samples: styled test images never used in any training.
  const int M = absl::GetFlag(FLAGS_m);
  move::Dataset vtest = *move::SampleSubset(test_rgb, M, 99);
  at::Tensor xc_ver = vtest.images;
  at::Tensor xs_ver = *wm->StyleImages(xc_ver);
  at::Tensor y_ver = vtest.labels;

  auto extractor = *WhiteBoxExtractor::Create(spec);
  std::vector<int64_t> sizes;
  for (const auto& k : extractor.kept()) sizes.push_back(k.dims);
  std::vector<Design> designs = {
      {"sign (reference)", [](const at::Tensor& gs, const at::Tensor&) { return torch::sign(gs); }},
      {"sign relative to clean", [](const at::Tensor& gs, const at::Tensor& gc) { return torch::sign(gs) * torch::sign(gc); }},
      {"layer log-norms, styled - clean",
       [&](const at::Tensor& gs, const at::Tensor& gc) { return LayerLogNorms(gs, sizes) - LayerLogNorms(gc, sizes); }},
  };
  auto raw = [&](torch::jit::Module& m, const at::Tensor& x, const at::Tensor& y) {
    return *extractor.Extract(m, x, y, 32, /*signs=*/false);
  };
  struct Raw { at::Tensor gs, gc; };
  auto raws = [&](torch::jit::Module& m, const at::Tensor& xs, const at::Tensor& xc, const at::Tensor& y) {
    return Raw{raw(m, xs, y), raw(m, xc, y)};
  };
  std::vector<Raw> pop_v, pop_b;
  for (auto& v : victims) pop_v.push_back(raws(v, xs_train, xc_train, y_train));
  for (auto& b : benigns) pop_b.push_back(raws(b, xs_train, xc_train, y_train));
  Raw ref_ver = raws(reference, xs_ver, xc_ver, y_ver);
  std::vector<Raw> sus_ver;
  for (auto& s : suspects) sus_ver.push_back(raws(s.model, xs_ver, xc_ver, y_ver));

  std::printf("\nwhite-box soundness | %s | owner %d, indep %d, %d epochs, K=%d, P=%d, m=%d, alpha %.2g\n",
              move::ModelSpecName(spec).c_str(), owner_n, indep_n, absl::GetFlag(FLAGS_epochs), K, P, M,
              absl::GetFlag(FLAGS_alpha));
  for (auto& s : suspects) {
    auto clean = *move::Evaluate(s.model, test_rgb);
    move::Dataset st = vtest;
    st.images = xs_ver;
    auto styled = *move::Evaluate(s.model, st);
    std::printf("  %-42s clean acc %.3f, styled acc %.3f\n", s.name.c_str(), clean.accuracy, styled.accuracy);
  }
  for (const Design& design : designs) {
    // Train on K-1 victims vs K-1 benign, validate on the held-out pair.
    std::vector<at::Tensor> xs, ys, xv, yv;
    for (int i = 0; i < K; ++i) {
      at::Tensor fv = design.make(pop_v[i].gs, pop_v[i].gc), fb = design.make(pop_b[i].gs, pop_b[i].gc);
      auto& X = i < K - 1 ? xs : xv;
      auto& Y = i < K - 1 ? ys : yv;
      X.push_back(fv);
      Y.push_back(torch::ones({P}, torch::kInt64));
      X.push_back(fb);
      Y.push_back(torch::zeros({P}, torch::kInt64));
    }
    move::verifier_internal::MetaClassifierOptions mo;
    mo.epochs = absl::GetFlag(FLAGS_meta_epochs);
    mo.seed = 1;
    auto c = move::verifier_internal::MetaClassifier::Train(torch::cat(xs), torch::cat(ys), mo);
    if (!c.ok()) { std::fprintf(stderr, "%s\n", c.status().ToString().c_str()); return 1; }
    auto val = move::verifier_internal::MeasureErrors(*c->Score(torch::cat(xv)), torch::cat(yv));
    auto tr = move::verifier_internal::MeasureErrors(*c->Score(torch::cat(xs)), torch::cat(ys));
    auto plan = move::verifier_internal::MinimumSamples(val.type1, val.type2, absl::GetFlag(FLAGS_alpha));
    at::Tensor ref_scores = *c->Score(design.make(ref_ver.gs, ref_ver.gc));
    std::printf("\n[%s] d=%lld | train errors I %.3f II %.3f | held-out-model errors I %.3f II %.3f | Theorem-1 m %s | reference mean score %.3f\n",
                design.name.c_str(), static_cast<long long>(c->dim()), tr.type1, tr.type2, val.type1, val.type2,
                plan.ok() ? std::to_string(*plan).c_str() : "none", ref_scores.mean().item<double>());
    int fp = 0, indep = 0, tp = 0, stolen = 0;
    for (size_t i = 0; i < suspects.size(); ++i) {
      at::Tensor s = *c->Score(design.make(sus_ver[i].gs, sus_ver[i].gc));
      std::vector<double> a(s.data_ptr<float>(), s.data_ptr<float>() + M);
      std::vector<double> b(ref_scores.data_ptr<float>(), ref_scores.data_ptr<float>() + M);
      auto t = *move::verifier_internal::OneSidedPairedTTest(a, b, absl::GetFlag(FLAGS_alpha));
      std::printf("  %-42s %-7s score %.3f  delta_mu %+.3f  p %.3g (log10 %.1f)  %s%s\n", suspects[i].name.c_str(),
                  suspects[i].stolen ? "stolen" : "indep", s.mean().item<double>(), t.delta_mu, t.p_value,
                  t.log10_p_value, t.reject ? "FLAGGED" : "not flagged",
                  (t.reject != suspects[i].stolen) ? (suspects[i].stolen ? "  <- missed" : "  <- FALSE POSITIVE") : "");
      if (suspects[i].stolen) { ++stolen; tp += t.reject; } else { ++indep; fp += t.reject; }
    }
    std::printf("  => stolen flagged %d/%d, independent flagged %d/%d\n", tp, stolen, fp, indep);
  }
  return 0;
}
