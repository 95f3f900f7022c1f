// Data augmentation shared by the trainer and the style-transfer fitting.
#ifndef MOVE_CORE_AUGMENT_H_
#define MOVE_CORE_AUGMENT_H_

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace move::core {

// Returns `images` (N x C x H x W) with a random crop after zero-padding by `padding` pixels
// and, if `flip`, a random horizontal flip per sample, drawn from `gen`.
at::Tensor RandomCropFlip(const at::Tensor& images, int padding, bool flip, at::Generator& gen);

}  // namespace move::core

#endif  // MOVE_CORE_AUGMENT_H_
