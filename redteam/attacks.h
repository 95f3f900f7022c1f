// Stealing attacks against a protected model, as reusable components (paper 000, Sec. 6.1):
// the red-team harness and the main job make their suspects with these. Each attack trains
// with the caller's recipe (TrainOptions: epochs, learning rate, batch, seed) and returns a
// new model; the victim is never modified.
//
//   move::redteam::AttackInputs in{&victim, student_spec, &victims_training_data, &substitute};
//   absl::StatusOr<torch::jit::Module> s = move::redteam::RunAttack("label-query", in, recipe);
//
// Attacks (names for RunAttack):
//   copy          the victim itself, deep-copied (direct copy).
//   distill       Hinton KD from the victim on the victim's training data (labels + soft labels).
//   fine-tune     the victim fine-tuned on substitute data with its true labels (lr x 0.2).
//   label-query   a student trained on substitute data labelled by the victim's argmax.
//   logit-query   a student trained to match the victim's output distribution on substitute
//                 data (KL at temperature 1, no labels).
// Multi-stage attacks compose them: the output of one is the victim of the next.
#ifndef MOVE_REDTEAM_ATTACKS_H_
#define MOVE_REDTEAM_ATTACKS_H_

#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"
#include "sdk/dataset.h"
#include "sdk/model.h"
#include "sdk/train.h"

namespace move::redteam {

struct AttackInputs {
  // The model to steal (not modified).
  const torch::jit::Module* victim = nullptr;
  // Architecture of trained students (distill, label-query, logit-query); zoo spec with its
  // in_channels and num_classes set. The seed comes from the recipe.
  ModelSpec student;
  // The victim's training data as it was trained on (for distill).
  const Dataset* victim_data = nullptr;
  // Data the victim never saw (for fine-tune, label-query, logit-query).
  const Dataset* substitute = nullptr;
};

// The attack names RunAttack knows, in a stable order.
std::vector<std::string> AttackNames();

// Runs the named attack. kInvalidArgument for an unknown name or a missing input the attack
// needs (the message names it); training errors pass through.
absl::StatusOr<torch::jit::Module> RunAttack(const std::string& name, const AttackInputs& inputs,
                                             const TrainOptions& recipe);

// `data` with every label replaced by `model`'s argmax (what a label-only API would answer).
absl::StatusOr<Dataset> LabelByModel(torch::jit::Module& model, const Dataset& data);

}  // namespace move::redteam

#endif  // MOVE_REDTEAM_ATTACKS_H_
