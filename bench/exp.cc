#include <chrono>
#include <iostream>
#include <torch/torch.h>
#include "sdk/dataset.h"
#include "sdk/image.h"
#include "sdk/runtime.h"
#include "watermark/stylizer.h"
#include "watermark/texture_features.h"
using namespace move;
int main(int argc, char** argv) {
  (void)SetNumThreads(0);
  double strength = argc > 1 ? atof(argv[1]) : 1.0;
  int steps = argc > 2 ? atoi(argv[2]) : 300;
  int ch = argc > 3 ? atoi(argv[3]) : 32;
  std::string style_path = argc > 4 ? argv[4] : "testdata/style_leopard.png";
  auto train = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
  auto d = ToRgb(*SampleSubset(*train, 6000, 1));
  auto style = *LoadImage(style_path);
  auto t0 = std::chrono::steady_clock::now();
  watermark_internal::TextureFitOptions o; o.style_strength = strength; o.steps = steps; o.channels = ch;
  auto st = watermark_internal::FitTextureStylizer(d.images, style, o);
  if (!st.ok()) { std::cerr << st.status() << "\n"; return 1; }
  auto t1 = std::chrono::steady_clock::now();
  auto out = *(*st)->Apply(d.images);
  auto t2 = std::chrono::steady_clock::now();
  printf("fit %.2fs apply %.2fs\n", std::chrono::duration<double>(t1-t0).count(), std::chrono::duration<double>(t2-t1).count());
  for (uint64_t seed : {0x5eed5eedULL, 12345ULL}) {
    watermark_internal::RandomTextureNet net(seed, 32, torch::kCPU);
    torch::NoGradGuard ng;
    auto sg = net.Grams(style.unsqueeze(0));
    double before = net.StyleDistance(d.images.narrow(0,0,500), sg).mean().item<double>();
    double after = net.StyleDistance(out.narrow(0,0,500), sg).mean().item<double>();
    printf("seed %llu style dist before %.4f after %.4f ratio %.1f\n", (unsigned long long)seed, before, after, before/after);
  }
  (void)SaveContactSheet("/tmp/sheet.png", d.images.narrow(0,0,16), out.narrow(0,0,16), 8, 3);
}
