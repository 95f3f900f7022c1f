// UAP fingerprinting (internal pieces of sdk/fingerprint.h): universal perturbations, point
// selection, query images, fingerprint assembly and the contrastive encoder.
#ifndef MOVE_VERIFIER_FINGERPRINT_H_
#define MOVE_VERIFIER_FINGERPRINT_H_

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"

namespace move::verifier_internal {

inline constexpr char kFingerprintMethod[] = "uap-fingerprint-supcon-v1";

struct UapOptions {
  double epsilon = 0.15;
  int epochs = 8;
  double step = 0.01;
  int64_t batch = 100;
  uint64_t seed = 0;
};

// A universal adversarial perturbation of `model` (C x H x W, entries in [-epsilon, epsilon])
// found by gradient-sign ascent of the cross-entropy between the model's predictions on
// clamp(x + v, 0, 1) and its predictions on x, over `images` (N x C x H x W in [0, 1]) in
// shuffled batches, from a uniform random start (Shafahi et al.'s SGD variant of
// Moosavi-Dezfooli et al. 2017). The model's train/eval mode is restored.
absl::StatusOr<at::Tensor> ComputeUap(torch::jit::Module& model, const at::Tensor& images, const UapOptions& options);

// Share of `images` whose predicted class changes when `uap` is added (both 8-bit quantised,
// as a query API receives them).
absl::StatusOr<double> FoolingRate(torch::jit::Module& model, const at::Tensor& images, const at::Tensor& uap);

// k-means (k-means++ start, Lloyd iterations) of the rows of `x` (N x D): the cluster of every
// row (N, int64). Every cluster keeps at least one row. kInvalidArgument if k > N or k < 1.
absl::StatusOr<at::Tensor> KMeans(const at::Tensor& x, int k, int iterations, uint64_t seed);

struct FingerprintPoints {
  at::Tensor images;  // N x k x C x H x W
  at::Tensor labels;  // N x k
};

// n fingerprints of k points: k-means of `images` into k clusters, then point c of fingerprint
// j is a draw from cluster c (without replacement while the cluster lasts).
absl::StatusOr<FingerprintPoints> ChooseFingerprintPoints(const at::Tensor& images, const at::Tensor& labels, int k,
                                                          int n, uint64_t seed);

// The query images of fingerprints `points` (n x k x C x H x W): for fingerprint i, point c,
// x then clamp(x + uaps[uap_index[i]], 0, 1), all 8-bit quantised: (n k 2) x C x H x W in the
// order (i, c, {x, x + v}).
absl::StatusOr<at::Tensor> FingerprintQueries(const at::Tensor& points, const at::Tensor& uaps,
                                              const at::Tensor& uap_index);

// Fingerprint vectors from the answers to FingerprintQueries ((n k 2) x K probabilities):
// n x (2 k K), per fingerprint the concatenation over points of [p(x), p(x + v)].
absl::StatusOr<at::Tensor> AssembleFingerprints(const at::Tensor& probabilities, int64_t n, int64_t k);

struct EncoderOptions {
  int64_t hidden = 128;
  int64_t embedding = 32;
  int steps = 300;
  double lr = 1e-3;
  double temperature = 0.1;
  uint64_t seed = 0;
  bool show_progress = false;
};

// A two-layer encoder of fingerprint vectors (input sqrt(p), ReLU, L2-normalised output).
class FingerprintEncoder {
 public:
  // Trains with the supervised contrastive loss (Khosla et al. 2020), full batch, Adam, on
  // fingerprint vectors `x` (N x D) with integer class `labels` (N) and `groups` (N, the
  // fingerprint's point set): within a group, rows of one class are pulled together and the
  // rest pushed apart. Same inputs and seed, same weights.
  static absl::StatusOr<FingerprintEncoder> Train(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& groups,
                                                  const EncoderOptions& options, double* final_loss = nullptr);
  // From State(); kDataLoss for missing or inconsistent tensors.
  static absl::StatusOr<FingerprintEncoder> FromState(const std::map<std::string, at::Tensor>& state);
  std::map<std::string, at::Tensor> State() const;
  int64_t input_dim() const { return w1_.size(1); }
  // N x D fingerprints -> N x E unit vectors.
  at::Tensor Encode(const at::Tensor& x) const;

 private:
  at::Tensor w1_, b1_, w2_, b2_;
};

// Supervised contrastive loss of unit embeddings `z` (N x E) with `labels`, comparing only rows
// of the same group (anchors without a positive and a negative in their group are skipped).
at::Tensor SupConLoss(const at::Tensor& z, const at::Tensor& labels, const at::Tensor& groups, double temperature);

// Per-fingerprint cosine similarity of the encoded suspect and victim fingerprints (n).
at::Tensor FingerprintSimilarity(const FingerprintEncoder& encoder, const at::Tensor& suspect,
                                 const at::Tensor& victim);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_FINGERPRINT_H_
