#include <iostream>
#include <torch/torch.h>
#include "sdk/dataset.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
using namespace move;
int main(int argc, char** argv) {
  (void)SetNumThreads(0);
  int n = atoi(argv[1]); int epochs = atoi(argv[2]); double lr = atof(argv[3]);
  auto train = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain), n, 1);
  auto test = *SampleSubset(*LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest), 2000, 2);
  ModelSpec spec; spec.in_channels = 1; spec.seed = 1;
  if (argc > 4) { spec = *ParseModelSpec(argv[4]); spec.in_channels = 1; }
  auto m = *CreateModel(spec);
  TrainOptions o; o.epochs = epochs; o.learning_rate = lr; o.batch_size = 64;
  o.on_epoch = [&](int e, double l, double a) { auto ev = *Evaluate(m, test); m.train(); printf("epoch %d loss %.3f acc %.3f test %.3f\n", e, l, a, ev.accuracy); };
  auto r = TrainModel(m, train, o);
  auto ev = *Evaluate(m, test); auto evt = *Evaluate(m, train);
  { torch::NoGradGuard ng; m.train(); auto x = test.images.narrow(0,0,500); auto y = m.forward({x}).toTensor(); printf("train-mode test acc %.3f\n", y.argmax(1).eq(test.labels.narrow(0,0,500)).to(torch::kFloat).mean().item<float>());
    for (int it=0; it<50; ++it) { auto idx = torch::randint(0, train.size(), {64}, torch::kInt64); m.forward({train.images.index_select(0, idx)}); }
    m.eval(); auto y2 = m.forward({x}).toTensor(); printf("after recalibrating stats: eval acc %.3f\n", y2.argmax(1).eq(test.labels.narrow(0,0,500)).to(torch::kFloat).mean().item<float>()); }
  { auto p = *PredictProbabilities(m, test.images.narrow(0,0,500), 256); printf("predict500 acc %.3f\n", p.argmax(1).eq(test.labels.narrow(0,0,500)).to(torch::kFloat).mean().item<float>());
    torch::NoGradGuard ng; m.eval(); auto y3 = m.forward({test.images.narrow(0,0,500)}).toTensor(); printf("manual again %.3f\n", y3.argmax(1).eq(test.labels.narrow(0,0,500)).to(torch::kFloat).mean().item<float>());
    auto y4 = m.forward({test.images.narrow(0,0,256)}).toTensor(); printf("manual 256 %.3f\n", y4.argmax(1).eq(test.labels.narrow(0,0,256)).to(torch::kFloat).mean().item<float>()); }
  printf("final test %.3f train-eval %.3f (%.1fs)\n", ev.accuracy, evt.accuracy, r->seconds);
}
