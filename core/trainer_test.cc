// Tests for the trainer (sdk/train.h) on a small slice of real Fashion-MNIST.
#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/dataset.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"

namespace move {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(SetNumThreads(2).ok());
    auto train = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
    auto test = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest);
    ASSERT_TRUE(train.ok() && test.ok());
    train_ = new Dataset(*SampleSubset(*train, 1000, 1));
    test_ = new Dataset(*SampleSubset(*test, 500, 2));
  }
  static TrainOptions Quick() {
    TrainOptions o;
    o.epochs = 2;
    o.batch_size = 64;
    o.show_progress = false;
    o.seed = 9;
    return o;
  }
  static torch::jit::Module Fresh(uint64_t seed = 1) {
    ModelSpec spec;
    spec.in_channels = 1;
    spec.seed = seed;
    return *CreateModel(spec);
  }
  static Dataset* train_;
  static Dataset* test_;
};
Dataset* TrainerTest::train_ = nullptr;
Dataset* TrainerTest::test_ = nullptr;

TEST_F(TrainerTest, LearnsAboveChanceAndReports) {
  torch::jit::Module m = Fresh();
  int epochs_seen = 0;
  TrainOptions o = Quick();
  o.on_epoch = [&](int epoch, double loss, double acc) { epochs_seen = epoch; };
  auto report = TrainModel(m, *train_, o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(epochs_seen, 2);
  EXPECT_EQ(report->steps, 2 * 16);
  EXPECT_FALSE(m.is_training());
  auto eval = Evaluate(m, *test_);
  ASSERT_TRUE(eval.ok());
  EXPECT_GT(eval->accuracy, 0.3) << "10 classes: chance is 0.1";
}

TEST_F(TrainerTest, DeterministicForSeedAndThreads) {
  torch::jit::Module a = Fresh(), b = Fresh(), c = Fresh();
  ASSERT_TRUE(TrainModel(a, *train_, Quick()).ok());
  ASSERT_TRUE(TrainModel(b, *train_, Quick()).ok());
  TrainOptions other = Quick();
  other.seed = 10;
  ASSERT_TRUE(TrainModel(c, *train_, other).ok());
  auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  bool all_equal = true, any_differs_from_c = false;
  for (auto ia = pa.begin(), ib = pb.begin(), ic = pc.begin(); ia != pa.end(); ++ia, ++ib, ++ic) {
    all_equal &= torch::equal(*ia, *ib);
    any_differs_from_c |= !torch::equal(*ia, *ic);
  }
  EXPECT_TRUE(all_equal) << "same seed and thread count must give bit-identical weights";
  EXPECT_TRUE(any_differs_from_c);
}

TEST_F(TrainerTest, DistillationFollowsTheTeacher) {
  torch::jit::Module teacher = Fresh(1);
  ASSERT_TRUE(TrainModel(teacher, *train_, Quick()).ok());
  torch::jit::Module student = Fresh(2);
  TrainOptions o = Quick();
  o.teacher = &teacher;
  o.distillation_weight = 1.0;  // soft labels only
  ASSERT_TRUE(TrainModel(student, *train_, o).ok());
  auto pt = PredictProbabilities(teacher, test_->images);
  auto ps = PredictProbabilities(student, test_->images);
  const double agreement = pt->argmax(1).eq(ps->argmax(1)).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(agreement, 0.6);
}

TEST_F(TrainerTest, FineTunesADeepCopyWithoutTouchingTheOriginal) {
  torch::jit::Module original = Fresh();
  ASSERT_TRUE(TrainModel(original, *train_, Quick()).ok());
  at::Tensor before = original.parameters().begin().operator*().clone();
  torch::jit::Module copy = original.deepcopy();
  TrainOptions o = Quick();
  o.epochs = 1;
  auto r = TrainModel(copy, *train_, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(torch::equal(before, *original.parameters().begin()));
  EXPECT_FALSE(torch::equal(before, *copy.parameters().begin()));
}

TEST_F(TrainerTest, BadOptionsAndDataAreInvalidArgument) {
  torch::jit::Module m = Fresh();
  TrainOptions o = Quick();
  o.epochs = 0;
  auto r = TrainModel(m, *train_, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("epochs"), std::string::npos);
  o = Quick();
  o.learning_rate = -1;
  EXPECT_NE(TrainModel(m, *train_, o).status().message().find("learning_rate"), std::string::npos);
  o = Quick();
  o.device = "tpu";
  EXPECT_EQ(TrainModel(m, *train_, o).status().code(), absl::StatusCode::kInvalidArgument);
  // A 3-channel dataset does not fit a 1-channel model: a clear error, not a crash.
  Dataset rgb = ToRgb(*train_);
  auto wrong = TrainModel(m, rgb, Quick());
  EXPECT_FALSE(wrong.ok());
  // A 5-class dataset does not fit a 10-class model.
  Dataset five = *train_;
  five.labels = five.labels % 5;
  five.num_classes = 5;
  auto classes = TrainModel(m, five, Quick());
  EXPECT_EQ(classes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(classes.status().message().find("5 classes"), std::string::npos);
}

TEST(RuntimeTest, DevicesAndThreads) {
  EXPECT_TRUE(ResolveDevice("cpu").ok());
  EXPECT_EQ(ResolveDevice("gpu").status().code(), absl::StatusCode::kInvalidArgument);
  auto cuda = ResolveDevice("cuda");
  if (!cuda.ok()) {
    EXPECT_EQ(cuda.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(cuda.status().message().find("CUDA"), std::string::npos);
  }
  EXPECT_EQ(SetNumThreads(-1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(SetNumThreads(1).ok());
  EXPECT_EQ(NumThreads(), 1);
}

}  // namespace
}  // namespace move
