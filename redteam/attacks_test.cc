#include "redteam/attacks.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "sdk/dataset.h"
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
};

Fixture& F() {
  static Fixture* f = [] {
    EXPECT_TRUE(SetNumThreads(2).ok());
    auto* x = new Fixture;
    Dataset all = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain), 600, 3);
    x->owner = *SelectSamples(all, torch::arange(0, 300, torch::kInt64));
    x->substitute = *SelectSamples(all, torch::arange(300, 600, torch::kInt64));
    x->spec = *ParseModelSpec("cnn");
    x->spec.in_channels = 1;
    x->spec.seed = 1;
    x->victim = *CreateModel(x->spec);
    x->recipe.epochs = 4;
    x->recipe.batch_size = 64;
    x->recipe.seed = 5;
    x->recipe.show_progress = false;
    EXPECT_TRUE(TrainModel(x->victim, x->owner, x->recipe).ok());
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
    auto m = RunAttack(name, Inputs(), F().recipe);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    EXPECT_EQ(CountParameters(*m), CountParameters(F().victim)) << name;
    // Every attack imitates the victim: its answers agree with the victim's far above chance.
    at::Tensor mine = PredictProbabilities(*m, F().substitute.images)->argmax(1);
    at::Tensor theirs = PredictProbabilities(F().victim, F().substitute.images)->argmax(1);
    EXPECT_GT(mine.eq(theirs).to(torch::kFloat32).mean().item<float>(), 0.3) << name;
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
