// Black-box scores.
//
// The paper's features (000, Eqs. 5-8): probability differences between a styled image and
// its clean original under five augmentations,
//
//   d_M(x') = CAT_{k=1..5} [ M(A_k(x')) - M(A_k(x)) ],   dimension 5K for K classes,
//
// A_1 identity, A_2 horizontal flip, A_3 shift to the bottom-right, A_4 to the right, A_5 to
// the bottom (by `shift` pixels, zero-filled).
//
// The style-contrast score (the SDK's default design): for sample x with label y, its
// secret-styled version x' and D decoy-styled versions x_1..x_D of the same image (the
// same engine and strength, other styles),
//
//   s_M(x) = ( 1 + mean_k M(A_k(x'))_y - mean_{d,k} M(A_k(x_d))_y ) / 2   in [0, 1],
//
// the true-class probability the model gives the secret style minus the one it gives other
// styles on the same content, mapped to [0, 1] (0.5: no preference). A model trained with
// appearance or style augmentation, or watermarked with another vendor's style, treats the
// secret style like the decoys and scores near its benign reference; only a model that
// learnt this particular style scores high. No classifier is trained, so nothing can
// memorise which models it saw.
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

// Style-contrast scores (see above) from the probabilities of the augmented secret-styled
// images (5 x N x K), of the augmented decoy-styled images (D x 5 x N x K) and the labels (N,
// int64 in [0, K)): an N-element float32 tensor in [0, 1]. kInvalidArgument for shapes that
// do not fit or a label out of range.
absl::StatusOr<at::Tensor> StyleContrastScores(const at::Tensor& secret_probabilities,
                                               const at::Tensor& decoy_probabilities, const at::Tensor& labels);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_BLACKBOX_FEATURES_H_
