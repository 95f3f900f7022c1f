#include "core/augment.h"

#include <torch/types.h>

namespace move::core {

at::Tensor RandomCropFlip(const at::Tensor& images, int padding, bool flip, at::Generator& gen) {
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  at::Tensor out = images;
  if (padding > 0) {
    at::Tensor padded = torch::constant_pad_nd(images, {padding, padding, padding, padding}, 0);
    at::Tensor offsets = torch::randint(0, 2 * padding + 1, {n, 2}, gen, torch::TensorOptions().dtype(torch::kInt64));
    auto acc = offsets.accessor<int64_t, 2>();
    out = torch::empty_like(images);
    for (int64_t i = 0; i < n; ++i) {
      out[i].copy_(padded[i].narrow(1, acc[i][0], h).narrow(2, acc[i][1], w));
    }
  }
  if (flip) {
    at::Tensor mask = torch::rand({n}, gen).lt(0.5);
    if (mask.any().item<bool>()) {
      at::Tensor flipped = out.flip({3});
      out = torch::where(mask.view({n, 1, 1, 1}), flipped, out);
    }
  }
  return out.contiguous();
}

}  // namespace move::core
