#include "redteam/attacks.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"

namespace move::redteam {
namespace {

struct Fixture {
  Dataset owner, substitute;
  torch::jit::Module victim;
  ModelSpec spec;
  TrainOptions recipe;
  AttackOptions options;
};

Fixture& F() {
  static Fixture* f = [] {
    EXPECT_TRUE(SetNumThreads(2).ok());
    auto* x = new Fixture;
    Dataset all = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain), 600, 3);
    all = ToRgb(all);
    x->owner = *SelectSamples(all, torch::arange(0, 300, torch::kInt64));
    x->substitute = *SelectSamples(all, torch::arange(300, 600, torch::kInt64));
    x->spec = *ParseModelSpec("cnn");
    x->spec.in_channels = 3;
    x->spec.seed = 1;
    x->victim = *CreateModel(x->spec);
    x->recipe.epochs = 4;
    x->recipe.batch_size = 64;
    x->recipe.seed = 5;
    x->recipe.show_progress = false;
    EXPECT_TRUE(TrainModel(x->victim, x->owner, x->recipe).ok());
    // Small settings of the attacks that are not a training recipe.
    x->options.zero_shot_rounds = 40;
    x->options.zero_shot_batch = 32;
    x->options.zero_shot_student_steps = 3;
    x->options.attacker_style = *LoadImage("testdata/style_pool.png");
    x->options.style_fit_steps = 20;
    x->options.removal_samples = 20;
    x->options.removal_iterations = 40;
    x->options.benign_rate = 0.5;
    return x;
  }();
  return *f;
}

AttackInputs Inputs() {
  AttackInputs in;
  in.victim = &F().victim;
  in.student = F().spec;
  in.victim_data = &F().owner;
  in.substitute = &F().substitute;
  in.victim_spec = F().spec;
  return in;
}

std::vector<at::Tensor> Params(const torch::jit::Module& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool SameParams(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

TEST(AttacksTest, CopyIsExactAndIndependentOfTheVictim) {
  const auto before = Params(F().victim);
  auto copy = RunAttack("copy", Inputs(), F().recipe);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_TRUE(SameParams(Params(*copy), before));
  for (const auto& p : copy->parameters()) p.detach().add_(1.0);
  EXPECT_TRUE(SameParams(Params(F().victim), before));
}

TEST(AttacksTest, EveryAttackLeavesTheVictimUntouchedAndReturnsAWorkingModel) {
  const auto before = Params(F().victim);
  for (const std::string& name : AttackNames()) {
    auto m = RunAttack(name, Inputs(), F().recipe, F().options);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    EXPECT_EQ(CountParameters(*m), CountParameters(F().victim)) << name;
    // Every attack but the data-free one (40 rounds here) imitates the victim: its answers
    // agree with the victim's far above chance.
    at::Tensor mine = PredictProbabilities(*m, F().substitute.images)->argmax(1);
    at::Tensor theirs = PredictProbabilities(F().victim, F().substitute.images)->argmax(1);
    if (name != "zero-shot") EXPECT_GT(mine.eq(theirs).to(torch::kFloat32).mean().item<float>(), 0.3) << name;
    if (name != "copy") EXPECT_FALSE(SameParams(Params(*m), before)) << name;
  }
  EXPECT_TRUE(SameParams(Params(F().victim), before));
}

TEST(AttacksTest, QueryAttacksNeverSeeTheTrueLabels) {
  // Shuffled true labels on the substitute data give bit-identical students: label-query
  // uses the victim's argmax, logit-query its probabilities, neither the labels.
  Dataset scrambled = F().substitute;
  scrambled.labels = scrambled.labels.flip({0}).contiguous();
  AttackInputs a = Inputs(), b = Inputs();
  b.substitute = &scrambled;
  for (const char* name : {"label-query", "logit-query"}) {
    auto x = RunAttack(name, a, F().recipe), y = RunAttack(name, b, F().recipe);
    ASSERT_TRUE(x.ok() && y.ok()) << name;
    EXPECT_TRUE(SameParams(Params(*x), Params(*y))) << name;
  }
  // The fine-tune attack does use them.
  auto x = RunAttack("fine-tune", a, F().recipe), y = RunAttack("fine-tune", b, F().recipe);
  EXPECT_FALSE(SameParams(Params(*x), Params(*y)));
}

double LogitDistance(torch::jit::Module& a, torch::jit::Module& b, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  a.eval();
  b.eval();
  return (a.forward({x}).toTensor() - b.forward({x}).toTensor()).abs().mean().item<double>();
}

TEST(AttacksTest, ZeroShotIsDataFreeDeterministicAndLearns) {
  // Only the image shape of the data is read: noise in place of the substitute images gives
  // a bit-identical student.
  Dataset noise = F().substitute;
  noise.images = torch::rand(noise.images.sizes());
  AttackInputs a = Inputs(), b = Inputs();
  b.substitute = &noise;
  auto x = RunAttack("zero-shot", a, F().recipe, F().options);
  auto y = RunAttack("zero-shot", b, F().recipe, F().options);
  ASSERT_TRUE(x.ok() && y.ok()) << x.status() << y.status();
  EXPECT_TRUE(SameParams(Params(*x), Params(*y)));
  // It moved towards the victim on real images it never saw.
  ModelSpec s = F().spec;
  s.seed = F().recipe.seed;
  torch::jit::Module fresh = *CreateModel(s);
  EXPECT_TRUE(RecalibrateBatchNorm(fresh, F().owner, 5, 64).ok());
  const at::Tensor real = F().owner.images.narrow(0, 0, 200);
  EXPECT_LT(LogitDistance(*x, F().victim, real), LogitDistance(fresh, F().victim, real));
  AttackOptions bad = F().options;
  bad.zero_shot_rounds = 0;
  EXPECT_EQ(RunAttack("zero-shot", a, F().recipe, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AttacksTest, StyleRemovalMakesStyledAndCleanLookAlike) {
  auto m = RunAttack("style-removal", Inputs(), F().recipe, F().options);
  ASSERT_TRUE(m.ok()) << m.status();
  // Styled with the attacker's style (what the attack trained against), on held-out images.
  EmbedDatasetOptions eo;
  eo.gamma = 0.05;
  eo.texture.fit_steps = 20;
  eo.show_progress = false;
  auto style = EmbedDataset(F().owner, F().options.attacker_style, eo);
  ASSERT_TRUE(style.ok());
  const at::Tensor clean = F().owner.images.narrow(0, 0, 200);
  const at::Tensor styled = *style->StyleImages(clean);
  auto gap = [&](torch::jit::Module& model) {
    at::Tensor p = *PredictProbabilities(model, clean), q = *PredictProbabilities(model, styled);
    return (p - q).abs().sum(1).mean().item<double>();
  };
  EXPECT_LT(gap(*m), gap(F().victim));
}

TEST(AttacksTest, AdaptiveAttacksCheckTheirOptions) {
  AttackOptions o = F().options;
  o.attacker_style = at::Tensor();
  for (const char* name : {"style-overwrite", "style-removal"}) {
    auto r = RunAttack(name, Inputs(), F().recipe, o);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(r.status().message().find("attacker_style"), std::string::npos) << r.status();
  }
  o = F().options;
  o.benign_rate = 1.5;
  EXPECT_EQ(RunAttack("benign-fine-tune", Inputs(), F().recipe, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = F().options;
  o.removal_samples = 100000;
  EXPECT_EQ(RunAttack("removalnet", Inputs(), F().recipe, o).status().code(), absl::StatusCode::kInvalidArgument);
  AttackInputs wrong = Inputs();
  wrong.victim_spec = *ParseModelSpec("cnn-w2");
  auto r = RunAttack("removalnet", wrong, F().recipe, F().options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("victim_spec"), std::string::npos) << r.status();
}

TEST(AttacksTest, MultiStageChainsStagesDeterministically) {
  TrainOptions recipe = F().recipe;
  recipe.epochs = 2;
  auto a = RunMultiStage({"logit-query", "label-query"}, Inputs(), recipe, F().options);
  auto b = RunMultiStage({"logit-query", "label-query"}, Inputs(), recipe, F().options);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status();
  EXPECT_TRUE(SameParams(Params(*a), Params(*b)));
  // Not the same as a single stage.
  auto one = RunAttack("logit-query", Inputs(), recipe, F().options);
  EXPECT_FALSE(SameParams(Params(*a), Params(*one)));
  EXPECT_EQ(RunMultiStage({}, Inputs(), recipe).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AttacksTest, LabelByModelAnswersTheArgmax) {
  auto labelled = LabelByModel(F().victim, F().substitute);
  ASSERT_TRUE(labelled.ok());
  at::Tensor p = *PredictProbabilities(F().victim, F().substitute.images);
  EXPECT_TRUE(torch::equal(labelled->labels, p.argmax(1)));
  EXPECT_TRUE(torch::equal(labelled->images, F().substitute.images));
}

TEST(AttacksTest, BadRequestsNameTheProblem) {
  auto unknown = RunAttack("magic", Inputs(), F().recipe);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("label-query"), std::string::npos);
  AttackInputs in = Inputs();
  in.substitute = nullptr;
  auto missing = RunAttack("logit-query", in, F().recipe);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("substitute data"), std::string::npos);
  in = Inputs();
  in.victim = nullptr;
  EXPECT_EQ(RunAttack("copy", in, F().recipe).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace move::redteam
