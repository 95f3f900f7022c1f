// Fixed random-weight multi-scale convolutional features for texture statistics.
//
// Ustyuzhaninov et al. (2016, "Texture synthesis using shallow convolutional networks with
// random filters") showed that Gram matrices of a single layer of random filters of several
// sizes carry a texture well enough to synthesise it. This net needs no pretrained weights:
// its filters come from a seeded generator, so the features are reproducible anywhere.
#ifndef MOVE_WATERMARK_TEXTURE_FEATURES_H_
#define MOVE_WATERMARK_TEXTURE_FEATURES_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace move::watermark_internal {

class RandomTextureNet {
 public:
  // `filters_per_size` random filters for each of the kernel sizes 3, 5, 7 and 11, applied
  // to the image at full and at half resolution.
  RandomTextureNet(uint64_t seed, int64_t filters_per_size, c10::Device device);

  // Returns one ReLU feature map per (scale, kernel size), each N x F x h x w.
  std::vector<at::Tensor> Features(const at::Tensor& images) const;

  // Returns the Gram matrices (N x F x F, normalised by the number of positions) of
  // Features(images).
  std::vector<at::Tensor> Grams(const at::Tensor& images) const;

  // Returns per-image style distance sum_l ||G_l(x) - G_l(s)||^2 / ||G_l(s)||^2 between every
  // image of `images` and the precomputed Grams of a style image (each 1 x F x F).
  at::Tensor StyleDistance(const at::Tensor& images, const std::vector<at::Tensor>& style_grams) const;

  // The content features (finest scale, 3x3 and 5x5 filters) used by the content loss.
  std::vector<at::Tensor> ContentFeatures(const at::Tensor& images) const;

 private:
  std::vector<at::Tensor> weights_;  // one per kernel size, F x 3 x k x k
};

}  // namespace move::watermark_internal

#endif  // MOVE_WATERMARK_TEXTURE_FEATURES_H_
