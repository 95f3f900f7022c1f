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
//   zero-shot     data-free adversarial distillation (Fang et al. 2019, DFAD): a generator and
//                 a student in a min-max game against the victim; no real data at all. The
//                 generator maximises, the student minimises the L1 distance between student
//                 and victim logits on generated images (gradients flow through the victim, as
//                 in DFAD's white-box setting). Scaled to CPU: AttackOptions::zero_shot_*.
// Adaptive attacks against MOVE itself (the attacker holds a stolen copy and substitute data):
//   benign-fine-tune  the victim fine-tuned on a fraction (AttackOptions::benign_rate, relative
//                 to the victim's training-set size) of clean substitute data, true labels.
//   style-overwrite   the victim fine-tuned on substitute data watermarked by the attacker
//                 with another style image (AttackOptions::attacker_style, gamma 0.1).
//   style-removal the victim fine-tuned so that styled and clean versions of the same image
//                 look alike to it: cross-entropy on both plus KL(clean || styled), the styled
//                 versions made with the attacker's own style (the secret one is unknown).
//   removalnet    RemovalNet-style removal (paper 002): from a copy of the victim, a few
//                 substitute images (AttackOptions::removal_samples, the paper's 0.2%) and
//                 removal_iterations SGD steps, push the penultimate (latent) features away
//                 from the victim's towards a reversed latent that the victim's head still
//                 classifies alike (lower level), and the logits towards the victim's logits
//                 interpolated with the most distant logits in the batch while keeping the
//                 predicted label (logit level, ILBS), with cross-entropy on the victim's labels
//                 against forgetting. Needs AttackInputs::victim_spec (a zoo architecture).
// Multi-stage attacks compose them (RunMultiStage): the output of one is the victim of the next.
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
  // Data the victim never saw (for fine-tune, label-query, logit-query and the adaptive
  // attacks).
  const Dataset* substitute = nullptr;
  // The victim's zoo architecture (for removalnet, which reads its latent features).
  ModelSpec victim_spec;
};

// Knobs of the attacks that are not a training recipe. Defaults are the SDK's CPU scaling of
// the papers' settings.
struct AttackOptions {
  // zero-shot: generator/student rounds, student steps per round, batch, latent size,
  // generator Adam learning rate, student SGD learning rate. Default: 1000 rounds of 5
  // student steps (paper: 50 epochs x 50 rounds at batch 256 on CIFAR).
  int zero_shot_rounds = 1000;
  int zero_shot_student_steps = 5;
  int zero_shot_batch = 128;
  int64_t zero_shot_latent = 64;
  double zero_shot_generator_lr = 1e-3;
  double zero_shot_student_lr = 0.1;
  // benign-fine-tune: substitute images used, as a fraction of the victim's training set.
  double benign_rate = 0.1;
  // style-overwrite / style-removal: the attacker's own style image (3 x H x W in [0, 1]),
  // the overwrite's transformation rate and the style engine's fitting steps.
  at::Tensor attacker_style;
  double overwrite_gamma = 0.1;
  int64_t style_fit_steps = 300;
  // style-removal: weight of KL(clean || styled).
  double removal_consistency_weight = 1.0;
  // removalnet: substitute images (the paper's 0.2% of a 60,000-image training set), SGD
  // iterations at batch 128, learning rate (the paper's 0.01), and the weights of the
  // logit-level KL, the cross-entropy and the latent-level term.
  int64_t removal_samples = 120;
  int removal_iterations = 1000;
  double removal_lr = 0.01;
  double removal_kl_weight = 1.0;
  double removal_ce_weight = 1.0;
  double removal_latent_weight = 1.0;
};

// The attack names RunAttack knows, in a stable order.
std::vector<std::string> AttackNames();

// Runs the named attack. kInvalidArgument for an unknown name or a missing input the attack
// needs (the message names it); training errors pass through.
absl::StatusOr<torch::jit::Module> RunAttack(const std::string& name, const AttackInputs& inputs,
                                             const TrainOptions& recipe, const AttackOptions& options = {});

// Runs `stages` in order, each against the previous stage's output (the first against
// inputs.victim); every stage trains a fresh student of inputs.student and gets its own seed
// (recipe.seed + stage index). kInvalidArgument for an empty list.
absl::StatusOr<torch::jit::Module> RunMultiStage(const std::vector<std::string>& stages, const AttackInputs& inputs,
                                                 const TrainOptions& recipe, const AttackOptions& options = {});

// `data` with every label replaced by `model`'s argmax (what a label-only API would answer).
absl::StatusOr<Dataset> LabelByModel(torch::jit::Module& model, const Dataset& data);

}  // namespace move::redteam

#endif  // MOVE_REDTEAM_ATTACKS_H_
