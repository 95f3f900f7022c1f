// Benchmark of move::EmbedDataset's style engines, with a baseline run side by side.
//
//   bazel run //bench:embed_bench            # full: 6,000 images = 10% of Fashion-MNIST
//   bazel run //bench:embed_bench -- --quick # 600 images
//
// Prints, for the default texture engine, the end-to-end time of embedding 10% of
// Fashion-MNIST (fitting included; target <= 60 s on 2 cores) and its images/s; the same
// measured for the baseline that a research script would use, per-image optimisation of the
// same random-feature texture loss (Gatys-style, 60 Adam steps per image), on a sample of the same images, with the speed-up as a ratio; the
// style distances of both (quality at the price); and AdaIN's images/s with VGG-shaped
// random-weight networks (speed only: real AdaIN weights are the vendor's to supply).
#include <chrono>
#include <cstdio>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/runtime.h"
#include "watermark/texture_features.h"

ABSL_FLAG(bool, quick, false, "Embed 1% instead of 10% of the training set.");
ABSL_FLAG(int, baseline_images, 8, "Images optimised one by one for the baseline.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Gatys-style per-image optimisation of the same loss the texture engine is fitted with.
at::Tensor OptimisePerImage(const at::Tensor& content, const at::Tensor& style, int steps) {
  move::watermark_internal::RandomTextureNet net(0x5eed5eedULL, 32, c10::Device(c10::kCPU));
  std::vector<at::Tensor> grams;
  {
    torch::NoGradGuard ng;
    grams = net.Grams(style.unsqueeze(0));
  }
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < content.size(0); ++i) {
    at::Tensor x = content.narrow(0, i, 1);
    std::vector<at::Tensor> fx;
    {
      torch::NoGradGuard ng;
      fx = net.ContentFeatures(x);
    }
    // Optimise in logit space so pixels stay in [0, 1].
    at::Tensor z = torch::logit(x.clamp(0.02, 0.98)).clone().set_requires_grad(true);
    torch::optim::Adam adam({z}, torch::optim::AdamOptions(0.1));
    for (int s = 0; s < steps; ++s) {
      at::Tensor y = torch::sigmoid(z);
      std::vector<at::Tensor> fy = net.ContentFeatures(y);
      at::Tensor loss = 3.0 * net.StyleDistance(y, grams).mean();
      for (size_t l = 0; l < fy.size(); ++l) loss = loss + (fy[l] - fx[l]).pow(2).mean() / fx[l].pow(2).mean();
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
    out.push_back(torch::sigmoid(z).detach());
  }
  return torch::cat(out);
}

std::string SaveScript(const std::string& name, const std::string& src, torch::jit::Module* m) {
  m->define(src);
  const std::string path = absl::StrCat("/tmp/move_bench_", name, ".pt");
  m->save(path);
  return path;
}

// VGG-19-shaped encoder up to relu3_1 and its mirrored decoder, random weights.
std::pair<std::string, std::string> MakeVggShapedAdaIn() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto conv = [&](torch::jit::Module& m, const std::string& n, int64_t cin, int64_t cout) {
    m.register_parameter(n, torch::randn({cout, cin, 3, 3}, gen) * std::sqrt(2.0 / (9 * cin)), false);
  };
  torch::jit::Module enc(c10::QualifiedName({"__torch__", "bench", "Enc"}));
  conv(enc, "c1", 3, 64); conv(enc, "c2", 64, 64); conv(enc, "c3", 64, 128); conv(enc, "c4", 128, 128); conv(enc, "c5", 128, 256);
  torch::jit::Module dec(c10::QualifiedName({"__torch__", "bench", "Dec"}));
  conv(dec, "d1", 256, 128); conv(dec, "d2", 128, 128); conv(dec, "d3", 128, 64); conv(dec, "d4", 64, 64); conv(dec, "d5", 64, 3);
  const std::string enc_src =
      "def forward(self, x):\n"
      "    h = torch.relu(torch.conv2d(x, self.c1, None, [1, 1], [1, 1]))\n"
      "    h = torch.relu(torch.conv2d(h, self.c2, None, [1, 1], [1, 1]))\n"
      "    h = torch.max_pool2d(h, [2, 2], [2, 2])\n"
      "    h = torch.relu(torch.conv2d(h, self.c3, None, [1, 1], [1, 1]))\n"
      "    h = torch.relu(torch.conv2d(h, self.c4, None, [1, 1], [1, 1]))\n"
      "    h = torch.max_pool2d(h, [2, 2], [2, 2])\n"
      "    return torch.relu(torch.conv2d(h, self.c5, None, [1, 1], [1, 1]))\n";
  const std::string dec_src =
      "def forward(self, x):\n"
      "    h = torch.relu(torch.conv2d(x, self.d1, None, [1, 1], [1, 1]))\n"
      "    h = torch.upsample_nearest2d(h, None, [2.0, 2.0])\n"
      "    h = torch.relu(torch.conv2d(h, self.d2, None, [1, 1], [1, 1]))\n"
      "    h = torch.relu(torch.conv2d(h, self.d3, None, [1, 1], [1, 1]))\n"
      "    h = torch.upsample_nearest2d(h, None, [2.0, 2.0])\n"
      "    h = torch.relu(torch.conv2d(h, self.d4, None, [1, 1], [1, 1]))\n"
      "    return torch.sigmoid(torch.conv2d(h, self.d5, None, [1, 1], [1, 1]))\n";
  return {SaveScript("enc", enc_src, &enc), SaveScript("dec", dec_src, &dec)};
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "embed_bench: %s\n", std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (auto s = move::SetNumThreads(absl::GetFlag(FLAGS_threads)); !s.ok()) return Fail(s);
  auto train = move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTrain);
  if (!train.ok()) return Fail(train.status());
  auto style_path = std::string("testdata/style_leopard.png");
  auto style = move::LoadImage(style_path);
  if (!style.ok()) return Fail(style.status());
  const double gamma = absl::GetFlag(FLAGS_quick) ? 0.01 : 0.1;
  std::printf("embed_bench | %s | Fashion-MNIST train (%lld images), gamma %.2f\n",
              move::RuntimeDescription().c_str(), static_cast<long long>(train->size()), gamma);

  // 1. The SDK's default: texture engine, fitting included, end to end.
  move::EmbedDatasetOptions o;
  o.gamma = gamma;
  o.seed = 1;
  o.show_progress = false;
  auto t0 = Clock::now();
  auto wm = move::EmbedDataset(*train, *style, o);
  const double sdk_seconds = Since(t0);
  if (!wm.ok()) return Fail(wm.status());
  const int64_t n = wm->record.picked_indices_size();
  std::printf("\n[texture engine, default] %lld images in %.1f s end to end (fit %.1f s, apply %.2f s): %.0f images/s  %s\n",
              static_cast<long long>(n), sdk_seconds, wm->record.seconds_fit(), wm->record.seconds_apply(),
              n / sdk_seconds, sdk_seconds <= 60 ? "(target <= 60 s: met)" : "(target <= 60 s: MISSED)");
  std::printf("  apply only: %.0f images/s\n", n / wm->record.seconds_apply());

  // 2. Baseline side by side: per-image optimisation on a sample of the same picked images.
  const int k = absl::GetFlag(FLAGS_baseline_images);
  at::Tensor sample_idx = wm->picked_indices.narrow(0, 0, k);
  at::Tensor sample = move::ToRgb(*train).images.index_select(0, sample_idx);
  t0 = Clock::now();
  at::Tensor baseline = OptimisePerImage(sample, *style, 60);
  const double per_image = Since(t0) / k;
  const double baseline_total = per_image * n;
  std::printf("[baseline: per-image optimisation, 60 Adam steps] %.3f s/image -> %.0f s for %lld images (extrapolated from %d)\n",
              per_image, baseline_total, static_cast<long long>(n), k);
  std::printf("  speed-up of the SDK engine over the baseline: %.1fx\n", baseline_total / sdk_seconds);

  // Quality side by side, measured with an independently seeded feature net.
  {
    torch::NoGradGuard ng;
    move::watermark_internal::RandomTextureNet measure(777, 32, c10::Device(c10::kCPU));
    auto grams = measure.Grams(style->unsqueeze(0));
    at::Tensor ours = wm->dataset.images.index_select(0, sample_idx);
    const double before = measure.StyleDistance(sample, grams).mean().item<double>();
    const double d_ours = measure.StyleDistance(ours, grams).mean().item<double>();
    const double d_base = measure.StyleDistance(baseline, grams).mean().item<double>();
    const double c_ours = (ours - sample).pow(2).mean().item<double>();
    const double c_base = (baseline - sample).pow(2).mean().item<double>();
    std::printf("  style distance (held-out random features) on those %d images: input %.3f, SDK %.3f (%.1fx closer), baseline %.3f (%.1fx closer)\n",
                k, before, d_ours, before / d_ours, d_base, before / d_base);
    std::printf("  pixel MSE to the input (content change): SDK %.4f, baseline %.4f\n", c_ours, c_base);
    std::printf("  record's style distance over %lld picked images: %.3f -> %.3f (%.1fx closer)\n",
                static_cast<long long>(std::min<int64_t>(n, 512)), wm->record.style_distance_before(),
                wm->record.style_distance_after(), wm->record.style_distance_before() / wm->record.style_distance_after());
    (void)move::SaveContactSheet("/tmp/move_bench_sheet.png", ours, baseline, k, 3);
  }

  // 3. AdaIN engine speed with VGG-shaped random-weight networks.
  {
    auto [enc, dec] = MakeVggShapedAdaIn();
    move::EmbedDatasetOptions a = o;
    a.engine = move::StyleEngine::kAdaIn;
    a.adain.encoder_path = enc;
    a.adain.decoder_path = dec;
    // 28 x 28 does not survive two 2x poolings and upsamplings; AdaIN runs on 32 x 32 here.
    move::Dataset padded = *train;
    padded.images = torch::constant_pad_nd(train->images, {2, 2, 2, 2}, 0);
    t0 = Clock::now();
    auto ad = move::EmbedDataset(padded, *style, a);
    const double s = Since(t0);
    if (!ad.ok()) return Fail(ad.status());
    std::printf("[AdaIN engine, VGG-shaped random weights, 32x32] %lld images in %.1f s: %.0f images/s (%.2fx the texture engine's end-to-end rate)\n",
                static_cast<long long>(n), s, n / s, (n / s) / (n / sdk_seconds));
  }
  std::printf("\ncontact sheet of SDK (odd rows) vs baseline (even rows): /tmp/move_bench_sheet.png\n");
  return 0;
}
