// The ownership meta-classifier C: tells features of models that carry the external feature
// (label 1) from those of benign models (label 0).
//
// Architecture as in the reference: an MLP d -> d/8 -> d/16 -> 2 with ReLU, trained with SGD
// (lr 0.01, momentum 0.9, weight decay 5e-4) on features that are L2-normalised (optional)
// and then standardised. The normalisation statistics are part of the classifier (saved with it and
// applied identically when scoring), which fixes the reference code's bug of training on
// standardised features and verifying on raw ones.
#ifndef MOVE_VERIFIER_META_CLASSIFIER_H_
#define MOVE_VERIFIER_META_CLASSIFIER_H_

#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace move::verifier_internal {

struct MetaClassifierOptions {
  int64_t hidden_divisor1 = 8;   // first hidden layer: d / 8
  int64_t hidden_divisor2 = 16;  // second hidden layer: d / 16
  int epochs = 100;
  int64_t batch_size = 128;
  double learning_rate = 0.01;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double dropout = 0.0;  // on the input features and hidden layers, during training only
  // Scale each feature vector to unit L2 norm before standardising (white-box signs); off for
  // features whose magnitude is the signal (black-box probability differences). Stored.
  bool l2_normalize = true;
  uint64_t seed = 0;
  bool show_progress = false;
};

class MetaClassifier {
 public:
  // Trains on `features` (N x d) with binary `labels` (N, int64 in {0, 1}).
  static absl::StatusOr<MetaClassifier> Train(const at::Tensor& features, const at::Tensor& labels,
                                              const MetaClassifierOptions& options);

  // Restores a classifier from State().
  static absl::StatusOr<MetaClassifier> FromState(const std::map<std::string, at::Tensor>& state);

  // Probability of class 1 ("carries the external feature") for each row of `features`.
  absl::StatusOr<at::Tensor> Score(const at::Tensor& features) const;

  // Everything needed to score: normalisation statistics and weights, by name.
  std::map<std::string, at::Tensor> State() const { return state_; }
  int64_t dim() const { return state_.at("mean").size(0); }

 private:
  at::Tensor Forward(const at::Tensor& features, bool train, double dropout, at::Generator* gen) const;
  std::map<std::string, at::Tensor> state_;
};

// Error rates of a classifier on labelled features at threshold 0.5: Type-I = benign scored
// as carrying the feature (false positive rate), Type-II = carrying models missed.
struct ClassifierErrors {
  double type1 = 0, type2 = 0;
  int64_t negatives = 0, positives = 0;
};
ClassifierErrors MeasureErrors(const at::Tensor& scores, const at::Tensor& labels);

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_META_CLASSIFIER_H_
