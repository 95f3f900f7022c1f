#include "watermark/texture_features.h"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

namespace move::watermark_internal {
namespace {

constexpr int64_t kKernelSizes[] = {3, 5, 7, 11};

at::Tensor Gram(const at::Tensor& f) {
  const int64_t n = f.size(0), c = f.size(1), hw = f.size(2) * f.size(3);
  at::Tensor flat = f.reshape({n, c, hw});
  return torch::bmm(flat, flat.transpose(1, 2)) / static_cast<double>(hw);
}

}  // namespace

RandomTextureNet::RandomTextureNet(uint64_t seed, int64_t filters_per_size, c10::Device device) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int64_t k : kKernelSizes) {
    // Zero-mean filters with unit-variance responses to unit-variance inputs.
    at::Tensor w = torch::empty({filters_per_size, 3, k, k}).normal_(0.0, 1.0, gen);
    w = w - w.mean({1, 2, 3}, /*keepdim=*/true);
    w = w / std::sqrt(3.0 * k * k);
    weights_.push_back(w.to(device));
  }
}

std::vector<at::Tensor> RandomTextureNet::Features(const at::Tensor& images) const {
  std::vector<at::Tensor> out;
  // Centre pixel values so filters respond to colour and structure alike.
  at::Tensor x = (images - 0.5) * 2.0;
  for (int scale = 0; scale < 2; ++scale) {
    if (scale == 1) x = torch::avg_pool2d(x, {2, 2});
    for (const at::Tensor& w : weights_) {
      const int64_t k = w.size(2);
      if (k > x.size(2) + 1 || k > x.size(3) + 1) continue;
      out.push_back(torch::relu(torch::conv2d(x, w, {}, 1, k / 2)));
    }
  }
  return out;
}

std::vector<at::Tensor> RandomTextureNet::Grams(const at::Tensor& images) const {
  std::vector<at::Tensor> grams;
  for (const at::Tensor& f : Features(images)) grams.push_back(Gram(f));
  return grams;
}

at::Tensor RandomTextureNet::StyleDistance(const at::Tensor& images,
                                           const std::vector<at::Tensor>& style_grams) const {
  std::vector<at::Tensor> grams = Grams(images);
  at::Tensor total = torch::zeros({images.size(0)}, images.options());
  const size_t count = std::min(grams.size(), style_grams.size());
  for (size_t l = 0; l < count; ++l) {
    at::Tensor diff = (grams[l] - style_grams[l]).pow(2).sum({1, 2});
    total = total + diff / style_grams[l].pow(2).sum();
  }
  return total;
}

std::vector<at::Tensor> RandomTextureNet::ContentFeatures(const at::Tensor& images) const {
  at::Tensor x = (images - 0.5) * 2.0;
  std::vector<at::Tensor> out;
  for (int i = 0; i < 2; ++i) {
    const int64_t k = weights_[i].size(2);
    out.push_back(torch::conv2d(x, weights_[i], {}, 1, k / 2));
  }
  return out;
}

}  // namespace move::watermark_internal
