#include "redteam/attacks.h"

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"

namespace move::redteam {
namespace {

absl::StatusOr<torch::jit::Module> DeepCopy(const torch::jit::Module& m) {
  return core::GuardTorch("copying the victim", [&]() -> absl::StatusOr<torch::jit::Module> {
    torch::jit::Module copy = m.deepcopy();  // clone() would share the victim's tensors
    copy.eval();
    return copy;
  });
}

absl::StatusOr<torch::jit::Module> TrainStudent(const AttackInputs& in, const Dataset& data, const TrainOptions& recipe,
                                                const torch::jit::Module* teacher, double distillation_weight,
                                                double temperature) {
  ModelSpec spec = in.student;
  spec.seed = recipe.seed;
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module student, CreateModel(spec));
  TrainOptions o = recipe;
  torch::jit::Module t;
  if (teacher != nullptr) {
    t = *teacher;
    o.teacher = &t;
    o.distillation_weight = distillation_weight;
    o.temperature = temperature;
  }
  MOVE_RETURN_IF_ERROR(TrainModel(student, data, o).status());
  student.to(torch::kCPU);
  return student;
}

absl::Status Need(const void* p, const std::string& attack, const char* what) {
  if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat("attack '", attack, "' needs ", what));
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> AttackNames() { return {"copy", "distill", "fine-tune", "label-query", "logit-query"}; }

absl::StatusOr<Dataset> LabelByModel(torch::jit::Module& model, const Dataset& data) {
  MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(model, data.images));
  Dataset out = data;
  out.labels = p.argmax(1).to(torch::kInt64).contiguous();
  return out;
}

absl::StatusOr<torch::jit::Module> RunAttack(const std::string& name, const AttackInputs& in, const TrainOptions& recipe) {
  MOVE_RETURN_IF_ERROR(Need(in.victim, name, "the victim"));
  if (name == "copy") return DeepCopy(*in.victim);
  if (name == "distill") {
    MOVE_RETURN_IF_ERROR(Need(in.victim_data, name, "the victim's training data"));
    return TrainStudent(in, *in.victim_data, recipe, in.victim, 0.9, 4.0);
  }
  if (name == "fine-tune") {
    MOVE_RETURN_IF_ERROR(Need(in.substitute, name, "substitute data"));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, DeepCopy(*in.victim));
    TrainOptions o = recipe;
    o.learning_rate = recipe.learning_rate * 0.2;
    MOVE_RETURN_IF_ERROR(TrainModel(m, *in.substitute, o).status());
    m.to(torch::kCPU);
    return m;
  }
  if (name == "label-query") {
    MOVE_RETURN_IF_ERROR(Need(in.substitute, name, "substitute data"));
    torch::jit::Module v = *in.victim;
    MOVE_ASSIGN_OR_RETURN(Dataset labelled, LabelByModel(v, *in.substitute));
    return TrainStudent(in, labelled, recipe, nullptr, 0, 1);
  }
  if (name == "logit-query") {
    MOVE_RETURN_IF_ERROR(Need(in.substitute, name, "substitute data"));
    return TrainStudent(in, *in.substitute, recipe, in.victim, 1.0, 1.0);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("attack: unknown '", name, "' (known: ", absl::StrJoin(AttackNames(), ", "), ")"));
}

}  // namespace move::redteam
