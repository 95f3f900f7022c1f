#include "verifier/fingerprint.h"

#include <cmath>
#include <random>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/dataset.h"
#include "sdk/fingerprint.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
#include "verifier/blackbox_features.h"
#include "verifier/ownership_internal.h"

namespace move::verifier_internal {
namespace {

at::Generator Gen(uint64_t s) { return at::make_generator<at::CPUGeneratorImpl>(s); }

// A CNN trained on 3,000 Fashion-MNIST images (2 epochs): a real, competent victim.
struct World {
  Dataset train, test;
  torch::jit::Module victim;
};

const World& GetWorld() {
  static World* w = [] {
    EXPECT_TRUE(SetNumThreads(2).ok());
    auto* w = new World;
    Dataset full = *LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
    Dataset test = *LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest);
    w->train = ToRgb(*SampleSubset(full, 3000, 1));
    w->test = ToRgb(*SampleSubset(test, 1000, 2));
    ModelSpec spec = *ParseModelSpec("cnn");
    spec.in_channels = 3;
    spec.num_classes = 10;
    spec.seed = 1;
    w->victim = *CreateModel(spec);
    TrainOptions o;
    o.epochs = 2;
    o.batch_size = 64;
    o.show_progress = false;
    EXPECT_TRUE(TrainModel(w->victim, w->train, o).ok());
    return w;
  }();
  return *w;
}

// Stated level: a UAP with epsilon 0.15 changes the victim's class on at least half of the
// held-out images, and on at least 20 points more of them than random sign noise of the same
// size (measured: 0.66 against 0.34).
TEST(UapTest, FoolsTheVictimFarMoreThanRandomNoise) {
  const World& w = GetWorld();
  torch::jit::Module victim = w.victim.clone();
  UapOptions o;
  o.epsilon = 0.15;
  o.epochs = 4;
  at::Tensor pool = w.train.images.narrow(0, 0, 1000);
  auto uap = ComputeUap(victim, pool, o);
  ASSERT_TRUE(uap.ok()) << uap.status();
  EXPECT_LE(uap->abs().max().item<double>(), 0.15 + 1e-6);
  auto fooled = FoolingRate(victim, w.test.images, *uap);
  ASSERT_TRUE(fooled.ok()) << fooled.status();
  const at::Tensor noise = (torch::rand(uap->sizes(), Gen(9)) < 0.5).to(torch::kFloat32) * 0.3 - 0.15;
  auto random = FoolingRate(victim, w.test.images, noise);
  ASSERT_TRUE(random.ok());
  std::printf("UAP fooling rate %.3f, random sign noise %.3f\n", *fooled, *random);
  EXPECT_GE(*fooled, 0.5);
  EXPECT_GE(*fooled, *random + 0.2);
  // Same seed, same perturbation; the model's mode is restored.
  victim.train();
  auto again = ComputeUap(victim, pool, o);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->equal(*uap));
  EXPECT_TRUE(victim.is_training());
}

TEST(UapTest, RejectsBadInputs) {
  torch::jit::Module victim = GetWorld().victim.clone();
  UapOptions o;
  o.epsilon = 0;
  EXPECT_EQ(ComputeUap(victim, torch::rand({4, 3, 28, 28}), o).status().code(), absl::StatusCode::kInvalidArgument);
  o.epsilon = 0.1;
  EXPECT_EQ(ComputeUap(victim, torch::rand({3, 28, 28}), o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FoolingRate(victim, torch::rand({4, 3, 28, 28}), torch::rand({1, 28, 28})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KMeansTest, FindsSeparatedGroupsAndKeepsClustersNonEmpty) {
  // Three tight groups far apart.
  at::Tensor x = torch::cat({torch::randn({20, 4}, Gen(1)) * 0.01, torch::randn({20, 4}, Gen(2)) * 0.01 + 5,
                             torch::randn({20, 4}, Gen(3)) * 0.01 - 5});
  auto a = KMeans(x, 3, 20, 0);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int g = 0; g < 3; ++g) {
    const at::Tensor part = a->narrow(0, 20 * g, 20);
    EXPECT_TRUE(part.eq(part[0]).all().item<bool>()) << "group " << g << " split";
  }
  EXPECT_EQ(std::get<0>(at::_unique(*a)).size(0), 3);
  // Identical rows: still k non-empty clusters.
  auto b = KMeans(torch::ones({6, 2}), 4, 5, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::get<0>(at::_unique(*b)).size(0), 4);
  EXPECT_EQ(KMeans(x, 61, 5, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FingerprintPointsTest, OnePointPerClusterFromThePool) {
  const World& w = GetWorld();
  auto p = ChooseFingerprintPoints(w.test.images, w.test.labels, 5, 8, 3);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->images.sizes(), (at::IntArrayRef{8, 5, 3, 28, 28}));
  EXPECT_EQ(p->labels.sizes(), (at::IntArrayRef{8, 5}));
  // Every point is a pool image with its label.
  const at::Tensor flat = w.test.images.reshape({w.test.images.size(0), -1});
  for (int j = 0; j < 8; ++j) {
    for (int c = 0; c < 5; ++c) {
      const at::Tensor d = (flat - p->images[j][c].reshape({1, -1})).abs().sum(1);
      const int64_t i = d.argmin().item<int64_t>();
      EXPECT_EQ(d[i].item<double>(), 0);
      EXPECT_EQ(w.test.labels[i].item<int64_t>(), p->labels[j][c].item<int64_t>());
    }
  }
  auto again = ChooseFingerprintPoints(w.test.images, w.test.labels, 5, 8, 3);
  EXPECT_TRUE(again->images.equal(p->images));
}

// The queries and the fingerprint vectors against a computation by hand.
TEST(FingerprintAssemblyTest, MatchesAHandComputation) {
  torch::jit::Module victim = GetWorld().victim.clone();
  const int64_t n = 3, k = 2;
  at::Tensor points = torch::rand({n, k, 3, 28, 28}, Gen(4));
  at::Tensor uaps = (torch::rand({2, 3, 28, 28}, Gen(5)) - 0.5) * 0.3;
  at::Tensor uap_index = torch::tensor({1, 0, 1}, torch::kInt64);
  auto q = FingerprintQueries(points, uaps, uap_index);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->size(0), n * k * 2);
  auto probs = PredictProbabilities(victim, *q);
  ASSERT_TRUE(probs.ok());
  auto f = AssembleFingerprints(*probs, n, k);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->sizes(), (at::IntArrayRef{n, 2 * k * 10}));
  for (int64_t j = 0; j < n; ++j) {
    std::vector<float> expected;
    for (int64_t c = 0; c < k; ++c) {
      const at::Tensor x = Quantize8Bit(points[j][c].unsqueeze(0));
      const at::Tensor xv = Quantize8Bit((x[0] + uaps[uap_index[j].item<int64_t>()]).clamp(0, 1).unsqueeze(0));
      victim.eval();
      for (const at::Tensor& img : {x, xv}) {
        const at::Tensor p = torch::softmax(victim.forward({img}).toTensor(), 1)[0];
        for (int64_t i = 0; i < 10; ++i) expected.push_back(p[i].item<float>());
      }
    }
    for (int64_t i = 0; i < 2 * k * 10; ++i) EXPECT_NEAR((*f)[j][i].item<float>(), expected[i], 1e-5) << j << " " << i;
  }
  EXPECT_EQ(AssembleFingerprints(*probs, n + 1, k).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FingerprintQueries(points, uaps, torch::tensor({0, 2, 1}, torch::kInt64)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Synthetic fingerprints: class 0 near one prototype, the others near their own.
std::pair<at::Tensor, at::Tensor> Synthetic(uint64_t seed) {
  std::vector<at::Tensor> xs, ys;
  for (int c = 0; c < 4; ++c) {
    const at::Tensor proto = torch::softmax(torch::randn({1, 40}, Gen(100 + c)) * 2, 1);
    xs.push_back((proto + torch::rand({30, 40}, Gen(seed + c)) * 0.02).clamp(0, 1));
    ys.push_back(torch::full({30}, c, torch::kInt64));
  }
  return {torch::cat(xs), torch::cat(ys)};
}

TEST(EncoderTest, DeterministicAndSeparatesClasses) {
  auto [x, y] = Synthetic(7);
  EncoderOptions o;
  o.steps = 100;
  o.seed = 3;
  double loss1 = 0, loss2 = 0;
  const at::Tensor g = torch::zeros({x.size(0)}, torch::kInt64);
  auto a = FingerprintEncoder::Train(x, y, g, o, &loss1);
  auto b = FingerprintEncoder::Train(x, y, g, o, &loss2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(loss1, loss2);
  for (const auto& [name, t] : a->State()) EXPECT_TRUE(t.equal(b->State().at(name))) << name;
  o.seed = 4;
  auto c = FingerprintEncoder::Train(x, y, g, o);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->State().at("w1").equal(a->State().at("w1")));
  // Held-out draws: same class more similar than other classes.
  auto [x2, y2] = Synthetic(77);
  const at::Tensor z = a->Encode(x2);
  const at::Tensor sim = z.matmul(z.t());
  const at::Tensor same = y2.unsqueeze(0).eq(y2.unsqueeze(1));
  EXPECT_GT(sim.masked_select(same).mean().item<double>(), 0.9);
  EXPECT_LT(sim.masked_select(same.logical_not()).mean().item<double>(), 0.3);
  // Round trip through the state.
  auto d = FingerprintEncoder::FromState(a->State());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->Encode(x2).equal(z));
  auto state = a->State();
  state.erase("b2");
  EXPECT_EQ(FingerprintEncoder::FromState(state).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SupConLossTest, LowerWhenClassesAreTogether) {
  const at::Tensor y = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  const at::Tensor together = torch::tensor({{1.f, 0.f}, {1.f, 0.f}, {0.f, 1.f}, {0.f, 1.f}});
  const at::Tensor mixed = torch::tensor({{1.f, 0.f}, {0.f, 1.f}, {1.f, 0.f}, {0.f, 1.f}});
  const at::Tensor one_group = torch::zeros({4}, torch::kInt64);
  EXPECT_LT(SupConLoss(together, y, one_group, 0.1).item<double>(), SupConLoss(mixed, y, one_group, 0.1).item<double>());
  // Rows of different groups are never compared: with each class alone in its group no
  // anchor has a negative (the loss is undefined: NaN), while groups holding both classes
  // give a finite loss.
  const at::Tensor groups = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  EXPECT_TRUE(std::isnan(SupConLoss(together, y, groups, 0.1).item<double>()));
  const at::Tensor six = torch::tensor({{1.f, 0.f}, {1.f, 0.f}, {0.f, 1.f}, {1.f, 0.f}, {1.f, 0.f}, {0.f, 1.f}});
  EXPECT_TRUE(std::isfinite(SupConLoss(six, torch::tensor({0, 0, 1, 0, 0, 1}, torch::kInt64),
                                       torch::tensor({0, 0, 0, 1, 1, 1}, torch::kInt64), 0.1)
                                .item<double>()));
}

VerificationReport LineReport(const std::string& mode, double log10_p, double ml_log10_p, bool sound = true, bool in_range = true) {
  VerificationReport r;
  r.set_mode(mode);
  r.set_log10_p_value(log10_p);
  r.set_p_value(std::pow(10.0, log10_p));
  r.set_model_level_tested(true);
  r.set_model_level_log10_p_value(ml_log10_p);
  r.set_classifier_sound(sound);
  r.set_suspect_in_range(in_range);
  return r;
}

TEST(CombineEvidenceTest, HolmStepDown) {
  // Line p = max(paired, model-level): 0.004 and 0.008. Holm at 0.01: 0.004 <= 0.005 rejects,
  // then 0.008 <= 0.01 rejects too.
  auto c = CombineEvidence({LineReport("blackbox", -4, std::log10(0.004)), LineReport("fingerprint", -6, std::log10(0.008))}, 0.01);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->stolen());
  EXPECT_EQ(c->decided_by(), "black-box MOVE, UAP fingerprint");
  EXPECT_EQ(c->outcome(), VERDICT_STOLEN);
  ASSERT_EQ(c->decided_by_lines_size(), 2);
  EXPECT_EQ(c->decided_by_lines(0), LINE_BLACK_BOX);
  EXPECT_EQ(c->decided_by_lines(1), LINE_FINGERPRINT);
  EXPECT_EQ(c->lines(1).line(), LINE_FINGERPRINT);
  EXPECT_NEAR(c->p_value(), 0.008, 1e-12);
  // 0.006 and 0.5: the smallest misses alpha / 2, so nothing is rejected although 0.006 < alpha.
  c = CombineEvidence({LineReport("blackbox", std::log10(0.006), -5), LineReport("fingerprint", std::log10(0.5), -5)}, 0.01);
  EXPECT_FALSE(c->stolen());
  EXPECT_EQ(c->verdict(), "not stolen");
  EXPECT_EQ(c->outcome(), VERDICT_NOT_STOLEN);
  EXPECT_EQ(c->decided_by_lines_size(), 0);
  // A line the bundle declared unsound never carries the decision and leaves Holm's family:
  // the sound line alone is tested at alpha, not alpha / 2 (0.006 rejects here, not above).
  c = CombineEvidence({LineReport("blackbox", -9, -9, /*sound=*/false), LineReport("fingerprint", -3, -3)}, 0.01);
  EXPECT_TRUE(c->stolen());
  EXPECT_EQ(c->decided_by(), "UAP fingerprint");
  EXPECT_FALSE(c->lines(0).usable());
  EXPECT_TRUE(c->lines(0).excluded_from_family());
  EXPECT_FALSE(c->lines(0).rejected());
  EXPECT_EQ(c->lines(0).holm_threshold(), 0);
  EXPECT_EQ(c->lines(0).p_value(), 1);
  c = CombineEvidence({LineReport("whitebox", -9, std::log10(0.006)), LineReport("fingerprint", -12, -12, /*sound=*/false)}, 0.01);
  EXPECT_TRUE(c->stolen());
  EXPECT_EQ(c->decided_by(), "white-box MOVE");
  EXPECT_NEAR(c->lines(0).holm_threshold(), 0.01, 1e-15);
  EXPECT_NEAR(c->p_value(), 0.006, 1e-12);
  // A line unusable for this suspect only (range check) stays in the family with p = 1.
  c = CombineEvidence({LineReport("whitebox", -9, std::log10(0.006)), LineReport("fingerprint", -12, -12, true, /*in_range=*/false)}, 0.01);
  EXPECT_FALSE(c->stolen());
  EXPECT_FALSE(c->lines(1).excluded_from_family());
  EXPECT_NEAR(c->lines(0).holm_threshold(), 0.005, 1e-15);
  // Every line unsound: nothing is claimed.
  c = CombineEvidence({LineReport("whitebox", -9, -9, false), LineReport("fingerprint", -9, -9, false)}, 0.01);
  EXPECT_FALSE(c->stolen());
  EXPECT_EQ(c->outcome(), VERDICT_INCONCLUSIVE);
  EXPECT_NE(c->verdict().find("inconclusive"), std::string::npos);
  EXPECT_EQ(c->p_value(), 1);
  c = CombineEvidence({LineReport("blackbox", -9, -9, true, /*in_range=*/false)}, 0.01);
  EXPECT_FALSE(c->stolen());
  EXPECT_NE(c->verdict().find("inconclusive"), std::string::npos);
  EXPECT_EQ(CombineEvidence({}, 0.01).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CombineEvidence({LineReport("blackbox", -1, -1)}, 1.5).status().code(), absl::StatusCode::kInvalidArgument);
}

// Error control on simulated p-values: under H0 (every line uniform), the combined verdict
// flags at most alpha (+ 3 standard errors), for independent lines and for lines that are
// strongly dependent; with one line under H1 it keeps its power.
TEST(CombineEvidenceTest, FamilyWiseErrorAtMostAlpha) {
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> z(0, 1);
  const double alpha = 0.05;  // large alpha: a tighter check with 20,000 draws
  const int draws = 20000;
  auto normal_cdf_upper = [](double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); };
  for (const char* dependence : {"independent", "correlated 0.8", "identical"}) {
    int flagged = 0;
    for (int i = 0; i < draws; ++i) {
      double p1, p2, p3;
      if (dependence[0] == 'i' && dependence[1] == 'n') {
        p1 = u(rng), p2 = u(rng), p3 = u(rng);
      } else if (dependence[0] == 'c') {
        const double common = z(rng);
        auto one = [&] { return normal_cdf_upper(std::sqrt(0.8) * common + std::sqrt(0.2) * z(rng)); };
        p1 = one(), p2 = one(), p3 = one();
      } else {
        p1 = p2 = p3 = u(rng);
      }
      auto c = CombineEvidence({LineReport("whitebox", std::log10(p1), std::log10(p1)), LineReport("blackbox", std::log10(p2), std::log10(p2)),
                                LineReport("fingerprint", std::log10(p3), std::log10(p3))},
                               alpha);
      ASSERT_TRUE(c.ok());
      flagged += c->stolen();
    }
    const double rate = static_cast<double>(flagged) / draws;
    const double se = std::sqrt(alpha * (1 - alpha) / draws);
    std::printf("%s: combined flag rate %.4f (alpha %.2f)\n", dependence, rate, alpha);
    EXPECT_LE(rate, alpha + 3 * se) << dependence;
  }
  int power = 0;
  for (int i = 0; i < 1000; ++i) {
    auto c = CombineEvidence({LineReport("blackbox", std::log10(u(rng)), 0), LineReport("fingerprint", -4, -4)}, 0.01);
    power += c->stolen();
  }
  EXPECT_EQ(power, 1000);
}

// The soundness check needs the null population a court will ask about: a rival vendor's
// MOVE model and an appearance-augmented model among the calibration models.
TEST(NullPopulationTest, NamesEveryMissingKind) {
  std::vector<std::string> gaps = NullPopulationGaps({"calibration", "", "benign population"});
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_NE(gaps[0].find("rival-vendor calibration"), std::string::npos) << gaps[0];
  EXPECT_NE(gaps[1].find("appearance-augmented calibration"), std::string::npos) << gaps[1];
  gaps = NullPopulationGaps({"appearance-augmented calibration", "calibration"});
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_NE(gaps[0].find("rival-vendor"), std::string::npos);
  EXPECT_TRUE(NullPopulationGaps({"rival-vendor calibration", "appearance-augmented calibration"}).empty());
  EXPECT_TRUE(IsNullPopulationKind("rival-vendor calibration"));
  EXPECT_FALSE(IsNullPopulationKind("rival"));
  EXPECT_EQ(CalibrationKindOf("reference"), "calibration");
  EXPECT_EQ(CalibrationKindOf("appearance-augmented calibration"), "appearance-augmented calibration");
}

}  // namespace
}  // namespace move::verifier_internal
