// Black-box features of paper 000 (Eqs. 5-8): probability differences between a styled image
// and its clean original under five augmentations.
//
//   d_M(x') = CAT_{k=1..5} [ M(A_k(x')) - M(A_k(x)) ],   dimension 5K for K classes,
//
// A_1 identity, A_2 horizontal flip, A_3 shift to the bottom-right, A_4 to the right, A_5 to
// the bottom (by `shift` pixels, zero-filled).
#ifndef MOVE_VERIFIER_BLACKBOX_FEATURES_H_
#define MOVE_VERIFIER_BLACKBOX_FEATURES_H_

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace move::verifier_internal {

inline constexpr int kNumAugmentations = 5;
inline constexpr char kAugmentationNames[] = "identity,hflip,shift-bottom-right,shift-right,shift-bottom";

// Rounds images to 8-bit levels (k / 255, float32), the values an image API receives.
at::Tensor Quantize8Bit(const at::Tensor& images);

// The five augmentations of `images` (N x C x H x W): a 5 x N x C x H x W tensor, augmentation
// major. kInvalidArgument for a bad shape or a shift outside [1, min(H, W) / 2].
absl::StatusOr<at::Tensor> AugmentFive(const at::Tensor& images, int64_t shift);

// Features from probabilities of the augmented styled images and of the augmented clean
// originals (each 5 x N x K): an N x 5K tensor, augmentation major within a row.
absl::StatusOr<at::Tensor> ProbabilityDifferences(const at::Tensor& styled_probabilities,
                                                  const at::Tensor& clean_probabilities);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_BLACKBOX_FEATURES_H_
