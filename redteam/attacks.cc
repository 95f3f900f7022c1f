#include "redteam/attacks.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/augment.h"
#include "core/model_graph.h"
#include "core/progress.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/embed.h"

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


// The trainable parameters of `m`, made leaves again after deepcopy() (as the trainer does).
std::vector<at::Tensor> TrainableLeaves(torch::jit::Module& m) {
  std::vector<at::Tensor> params;
  for (at::Tensor p : m.parameters()) {
    if (p.requires_grad() && !p.is_leaf()) p.detach_().requires_grad_(true);
    if (p.requires_grad()) params.push_back(p);
  }
  return params;
}

// A frozen copy of `m` in eval mode (gradients flow through it to its input, not into it).
absl::StatusOr<torch::jit::Module> Frozen(const torch::jit::Module& m) {
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module f, DeepCopy(m));
  for (at::Tensor p : f.parameters()) p.detach_().requires_grad_(false);
  f.eval();
  return f;
}

void SetLearningRate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

double Cosine(double peak, int64_t step, int64_t total) {
  return 0.5 * peak * (1 + std::cos(M_PI * static_cast<double>(step) / std::max<int64_t>(total, 1)));
}

at::Tensor Forward(torch::jit::Module& m, const at::Tensor& x) { return m.forward({x}).toTensor(); }

// Data-free adversarial distillation (Fang et al. 2019): the generator.
struct GeneratorImpl : torch::nn::Module {
  GeneratorImpl(int64_t nz, int64_t c, int64_t h, int64_t w) : h_(h), w_(w), h0_((h + 3) / 4), w0_((w + 3) / 4) {
    fc = register_module("fc", torch::nn::Linear(nz, 128 * h0_ * w0_));
    bn0 = register_module("bn0", torch::nn::BatchNorm2d(128));
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(128, 128, 3).padding(1)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(128));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(128, 64, 3).padding(1)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(64));
    c3 = register_module("c3", torch::nn::Conv2d(torch::nn::Conv2dOptions(64, c, 3).padding(1)));
  }
  static at::Tensor Up(const at::Tensor& x) { return x.repeat_interleave(2, 2).repeat_interleave(2, 3); }
  at::Tensor forward(const at::Tensor& z) {
    at::Tensor x = bn0(fc(z).view({-1, 128, h0_, w0_}));
    x = torch::leaky_relu(bn1(c1(Up(x))), 0.2);
    x = torch::leaky_relu(bn2(c2(Up(x))), 0.2);
    x = torch::sigmoid(c3(x));  // images in [0, 1], as the models take them
    return x.narrow(2, 0, h_).narrow(3, 0, w_);
  }
  int64_t h_, w_, h0_, w0_;
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm2d bn0{nullptr}, bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr};
};
TORCH_MODULE(Generator);

absl::StatusOr<torch::jit::Module> ZeroShot(const AttackInputs& in, const TrainOptions& recipe, const AttackOptions& o) {
  if (o.zero_shot_rounds < 1 || o.zero_shot_student_steps < 1 || o.zero_shot_batch < 2 || o.zero_shot_latent < 1 ||
      !(o.zero_shot_generator_lr > 0) || !(o.zero_shot_student_lr > 0)) {
    return absl::InvalidArgumentError(
        "attack 'zero-shot': zero_shot_rounds, _student_steps, _latent and the learning rates must be positive, "
        "zero_shot_batch >= 2");
  }
  const Dataset* shape_from = in.substitute != nullptr ? in.substitute : in.victim_data;
  if (shape_from == nullptr) {
    return absl::InvalidArgumentError(
        "attack 'zero-shot' needs the input shape: pass substitute or victim data (only its image shape is read)");
  }
  const int64_t c = shape_from->images.size(1), h = shape_from->images.size(2), w = shape_from->images.size(3);
  ModelSpec spec = in.student;
  spec.seed = recipe.seed;
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module student, CreateModel(spec));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module victim, Frozen(*in.victim));
  return core::GuardTorch("zero-shot attack", [&]() -> absl::StatusOr<torch::jit::Module> {
    torch::manual_seed(recipe.seed);  // the generator's initialisation
    Generator gen(o.zero_shot_latent, c, h, w);
    at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(recipe.seed ^ 0x5eed2e40ULL);
    student.train();
    std::vector<at::Tensor> params = TrainableLeaves(student);
    torch::optim::SGD opt_s(params, torch::optim::SGDOptions(o.zero_shot_student_lr).momentum(0.9).weight_decay(5e-4));
    torch::optim::Adam opt_g(gen->parameters(), torch::optim::AdamOptions(o.zero_shot_generator_lr));
    auto noise = [&] { return torch::randn({o.zero_shot_batch, o.zero_shot_latent}, rng, torch::kFloat32); };
    core::Progress progress(recipe.label.empty() ? "zero-shot" : recipe.label, o.zero_shot_rounds, recipe.show_progress);
    double last = 0;
    for (int round = 0; round < o.zero_shot_rounds; ++round) {
      SetLearningRate(opt_s, Cosine(o.zero_shot_student_lr, round, o.zero_shot_rounds));
      for (int k = 0; k < o.zero_shot_student_steps; ++k) {
        at::Tensor x;
        at::Tensor target;
        {
          torch::NoGradGuard no_grad;
          x = gen->forward(noise());
          target = Forward(victim, x);
        }
        at::Tensor loss = (Forward(student, x) - target).abs().mean();
        opt_s.zero_grad();
        loss.backward();
        opt_s.step();
        last = loss.item<double>();
      }
      // The generator looks for images where the student still disagrees with the victim.
      at::Tensor x = gen->forward(noise());
      at::Tensor loss_g = -(Forward(student, x) - Forward(victim, x)).abs().mean();
      opt_g.zero_grad();
      opt_s.zero_grad();
      loss_g.backward();
      opt_g.step();
      if (!std::isfinite(last)) return absl::InternalError("zero-shot attack diverged");
      progress.Update(round + 1, absl::StrFormat("L1 %.4f", last));
    }
    opt_s.zero_grad();
    // BatchNorm statistics from generated images (the attacker has no real data).
    Dataset synthetic;
    {
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> batches;
      for (int b = 0; b < 20; ++b) batches.push_back(gen->forward(noise()));
      synthetic.images = torch::cat(batches).contiguous();
    }
    synthetic.labels = torch::zeros({synthetic.images.size(0)}, torch::kInt64);
    synthetic.num_classes = in.student.num_classes;
    MOVE_RETURN_IF_ERROR(RecalibrateBatchNorm(student, synthetic, 20, o.zero_shot_batch));
    student.eval();
    progress.Finish(absl::StrFormat("L1 %.4f", last));
    return student;
  });
}

// Fine-tunes `model` (a copy of the victim) on `data` with the recipe at a fifth of its
// learning rate, as a thief who keeps the stolen model's knowledge would.
absl::Status FineTune(torch::jit::Module& model, const Dataset& data, const TrainOptions& recipe) {
  TrainOptions o = recipe;
  o.learning_rate = recipe.learning_rate * 0.2;
  MOVE_RETURN_IF_ERROR(TrainModel(model, data, o).status());
  model.to(torch::kCPU);
  return absl::OkStatus();
}

absl::StatusOr<EmbedResult> AttackerStyle(const Dataset& data, double gamma, const TrainOptions& recipe,
                                          const AttackOptions& o, const std::string& attack) {
  if (!o.attacker_style.defined()) {
    return absl::InvalidArgumentError(absl::StrCat("attack '", attack, "' needs AttackOptions::attacker_style"));
  }
  EmbedDatasetOptions eo;
  eo.gamma = gamma;
  eo.seed = recipe.seed;
  eo.texture.fit_steps = o.style_fit_steps;
  eo.device = recipe.device;
  eo.show_progress = recipe.show_progress;
  return EmbedDataset(data, o.attacker_style, eo);
}

absl::StatusOr<torch::jit::Module> StyleRemoval(const AttackInputs& in, const TrainOptions& recipe,
                                                const AttackOptions& o) {
  MOVE_ASSIGN_OR_RETURN(EmbedResult style, AttackerStyle(*in.substitute, 0.05, recipe, o, "style-removal"));
  MOVE_ASSIGN_OR_RETURN(at::Tensor styled, style.StyleImages(in.substitute->images));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, DeepCopy(*in.victim));
  const Dataset& data = *in.substitute;
  return core::GuardTorch("style-removal attack", [&]() -> absl::StatusOr<torch::jit::Module> {
    model.train();
    std::vector<at::Tensor> params = TrainableLeaves(model);
    const double peak = recipe.learning_rate * 0.2;
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(peak).momentum(recipe.momentum).weight_decay(recipe.weight_decay));
    at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(recipe.seed);
    const int64_t n = data.size(), c = data.images.size(1);
    const int64_t per_epoch = (n + recipe.batch_size - 1) / recipe.batch_size, total = per_epoch * recipe.epochs;
    core::Progress progress(recipe.label, total, recipe.show_progress);
    int64_t step = 0;
    double last = 0;
    for (int epoch = 0; epoch < recipe.epochs; ++epoch) {
      at::Tensor perm = torch::randperm(n, rng, torch::TensorOptions().dtype(torch::kInt64));
      for (int64_t start = 0; start < n; start += recipe.batch_size, ++step) {
        SetLearningRate(sgd, Cosine(peak, step, total));
        at::Tensor idx = perm.narrow(0, start, std::min<int64_t>(recipe.batch_size, n - start));
        // The same crop and flip for an image and its styled version.
        at::Tensor both = core::RandomCropFlip(torch::cat({data.images.index_select(0, idx), styled.index_select(0, idx)}, 1),
                                               recipe.crop_padding, recipe.horizontal_flip, rng);
        at::Tensor y = data.labels.index_select(0, idx);
        // One forward pass over both halves, so BatchNorm cannot hide the style shift in
        // per-batch statistics.
        const int64_t b = idx.size(0);
        at::Tensor logits = Forward(model, torch::cat({both.narrow(1, 0, c), both.narrow(1, c, c)}, 0));
        at::Tensor lc = logits.narrow(0, 0, b), ls = logits.narrow(0, b, b);
        at::Tensor p_clean = torch::softmax(lc, 1).detach();
        at::Tensor consistency = (p_clean * (torch::log(p_clean + 1e-12) - torch::log_softmax(ls, 1))).sum(1).mean();
        at::Tensor loss = torch::cross_entropy_loss(lc, y) + torch::cross_entropy_loss(ls, y) +
                          o.removal_consistency_weight * consistency;
        sgd.zero_grad();
        loss.backward();
        sgd.step();
        last = loss.item<double>();
        if (!std::isfinite(last)) return absl::InternalError("style-removal attack diverged; lower the learning rate");
        progress.Update(step + 1, absl::StrFormat("loss %.3f", last));
      }
    }
    // BatchNorm statistics over clean and styled images alike (shuffled together).
    Dataset mixed = data;
    mixed.images = torch::cat({data.images, styled}, 0);
    mixed.images = mixed.images.index_select(0, torch::randperm(2 * n, rng, torch::TensorOptions().dtype(torch::kInt64)))
                       .contiguous();
    mixed.labels = torch::cat({data.labels, data.labels}, 0);
    MOVE_RETURN_IF_ERROR(RecalibrateBatchNorm(model, mixed, 50, recipe.batch_size));
    model.eval();
    progress.Finish(absl::StrFormat("loss %.3f", last));
    return model;
  });
}

absl::StatusOr<std::map<std::string, at::Tensor>> GraphTensors(torch::jit::Module& m, const core::ModelGraph& graph,
                                                               const std::string& who) {
  std::map<std::string, at::Tensor> t;
  for (const auto& p : m.named_parameters()) t[p.name] = p.value;
  for (const auto& b : m.named_buffers()) t[b.name] = b.value;
  for (const auto* list : {&graph.parameters, &graph.buffers}) {
    for (const auto& [name, shape] : *list) {
      auto it = t.find(name);
      if (it == t.end() || it->second.sizes().vec() != shape) {
        return absl::InvalidArgumentError(absl::StrCat("attack 'removalnet': ", who, " does not match victim_spec (tensor ",
                                                       name, ")"));
      }
    }
  }
  return t;
}

absl::StatusOr<torch::jit::Module> RemovalNet(const AttackInputs& in, const TrainOptions& recipe, const AttackOptions& o) {
  if (o.removal_samples < 2 || o.removal_iterations < 1 || !(o.removal_lr > 0)) {
    return absl::InvalidArgumentError("attack 'removalnet': removal_samples >= 2, removal_iterations >= 1, removal_lr > 0");
  }
  if (in.substitute->size() < o.removal_samples) {
    return absl::InvalidArgumentError(absl::StrCat("attack 'removalnet': needs ", o.removal_samples,
                                                   " substitute images, has ", in.substitute->size()));
  }
  MOVE_ASSIGN_OR_RETURN(core::ModelGraph graph, core::ModelGraphForSpec(in.victim_spec));
  MOVE_ASSIGN_OR_RETURN(Dataset few, SampleSubset(*in.substitute, o.removal_samples, recipe.seed));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module victim, Frozen(*in.victim));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module surrogate, DeepCopy(*in.victim));
  return core::GuardTorch("removalnet attack", [&]() -> absl::StatusOr<torch::jit::Module> {
    std::vector<at::Tensor> params = TrainableLeaves(surrogate);
    MOVE_ASSIGN_OR_RETURN(auto vt, GraphTensors(victim, graph, "the victim"));
    MOVE_ASSIGN_OR_RETURN(auto st, GraphTensors(surrogate, graph, "the surrogate"));
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(o.removal_lr).momentum(0.9));
    at::Generator rng = at::make_generator<at::CPUGeneratorImpl>(recipe.seed);
    const int64_t batch = std::min<int64_t>(128, few.size());
    core::Progress progress(recipe.label, o.removal_iterations, recipe.show_progress);
    double last = 0;
    for (int it = 0; it < o.removal_iterations; ++it) {
      at::Tensor idx = torch::randint(few.size(), {batch}, rng, torch::TensorOptions().dtype(torch::kInt64));
      at::Tensor x = core::RandomCropFlip(few.images.index_select(0, idx), recipe.crop_padding, recipe.horizontal_flip, rng);
      at::Tensor zv, hv;
      {
        torch::NoGradGuard no_grad;
        std::vector<core::LayerTrace> trace;
        zv = core::RunGraph(graph, vt, x, &trace);
        hv = trace.back().input.detach();
      }
      const at::Tensor yv = zv.argmax(1);
      const std::string head = graph.ops.back().param;
      const at::Tensor& fw = vt.at(head + "_w");
      const at::Tensor& fb = vt.at(head + "_b");
      // Lower level: a reversed latent as far from the victim's as the victim's own head
      // allows while keeping its label (a few ascent steps; non-negative like the pooled
      // ReLU features it replaces).
      // Distances relative to the batch's mean squared latent norm (a per-sample norm can be
      // near zero and blow the loss up).
      const at::Tensor scale = hv.pow(2).sum(1).mean().add(1e-8).expand({hv.size(0)});
      at::Tensor rev = (hv + 0.1 * hv.std() * torch::randn(hv.sizes(), rng, hv.options())).clamp_min(0).requires_grad_(true);
      for (int k = 0; k < 5; ++k) {
        at::Tensor objective = ((rev - hv).pow(2).sum(1) / scale).mean() -
                               10.0 * torch::cross_entropy_loss(torch::linear(rev, fw, fb), yv);
        at::Tensor g = torch::autograd::grad({objective}, {rev})[0];
        torch::NoGradGuard no_grad;
        rev = (rev + 0.5 * g / (g.norm(2, 1, true) + 1e-12) * scale.sqrt().unsqueeze(1) * 0.2).clamp_min(0);
        rev.requires_grad_(true);
      }
      rev = rev.detach();
      // Logit level (ILBS): interpolate towards the batch's most distant logits, as far as
      // the label allows.
      at::Tensor target = zv.clone();
      {
        torch::NoGradGuard no_grad;
        at::Tensor far = zv.index_select(0, torch::cdist(zv, zv).argmax(1));
        at::Tensor done = torch::zeros({zv.size(0)}, torch::kBool);
        for (double beta = 0.9; beta > 0.05; beta -= 0.1) {
          at::Tensor cand = (1 - beta) * zv + beta * far;
          at::Tensor take = cand.argmax(1).eq(yv).logical_and(done.logical_not());
          target.index_put_({take}, cand.index({take}));
          done = done.logical_or(take);
        }
      }
      std::vector<core::LayerTrace> trace;
      at::Tensor zs = core::RunGraph(graph, st, x, &trace);
      at::Tensor hs = trace.back().input;
      at::Tensor pt = torch::softmax(target, 1);
      at::Tensor kl = (pt * (torch::log(pt + 1e-12) - torch::log_softmax(zs, 1))).sum(1).mean();
      at::Tensor latent = ((hs - rev).pow(2).sum(1) / scale).mean();
      at::Tensor loss = o.removal_kl_weight * kl + o.removal_ce_weight * torch::cross_entropy_loss(zs, yv) +
                        o.removal_latent_weight * latent;
      sgd.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 5.0);
      sgd.step();
      last = loss.item<double>();
      if (!std::isfinite(last)) return absl::InternalError("removalnet attack diverged; lower removal_lr");
      progress.Update(it + 1, absl::StrFormat("loss %.3f", last));
    }
    surrogate.eval();
    progress.Finish(absl::StrFormat("loss %.3f", last));
    return surrogate;
  });
}

}  // namespace

std::vector<std::string> AttackNames() {
  return {"copy",        "distill",          "fine-tune",       "label-query",   "logit-query",
          "zero-shot",   "benign-fine-tune", "style-overwrite", "style-removal", "removalnet"};
}

absl::StatusOr<Dataset> LabelByModel(torch::jit::Module& model, const Dataset& data) {
  MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(model, data.images));
  Dataset out = data;
  out.labels = p.argmax(1).to(torch::kInt64).contiguous();
  return out;
}

absl::StatusOr<torch::jit::Module> RunAttack(const std::string& name, const AttackInputs& in, const TrainOptions& recipe,
                                             const AttackOptions& options) {
  MOVE_RETURN_IF_ERROR(Need(in.victim, name, "the victim"));
  if (name == "copy") return DeepCopy(*in.victim);
  if (name == "distill") {
    MOVE_RETURN_IF_ERROR(Need(in.victim_data, name, "the victim's training data"));
    return TrainStudent(in, *in.victim_data, recipe, in.victim, 0.9, 4.0);
  }
  if (name == "fine-tune") {
    MOVE_RETURN_IF_ERROR(Need(in.substitute, name, "substitute data"));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, DeepCopy(*in.victim));
    MOVE_RETURN_IF_ERROR(FineTune(m, *in.substitute, recipe));
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
  if (name == "zero-shot") return ZeroShot(in, recipe, options);
  MOVE_RETURN_IF_ERROR(Need(in.substitute, name, "substitute data"));
  if (name == "benign-fine-tune") {
    if (!(options.benign_rate > 0 && options.benign_rate <= 1)) {
      return absl::InvalidArgumentError("attack 'benign-fine-tune': benign_rate must be in (0, 1]");
    }
    const int64_t n = std::max<int64_t>(1, std::llround(options.benign_rate * in.substitute->size()));
    MOVE_ASSIGN_OR_RETURN(Dataset few, SampleSubset(*in.substitute, n, recipe.seed));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, DeepCopy(*in.victim));
    MOVE_RETURN_IF_ERROR(FineTune(m, few, recipe));
    return m;
  }
  if (name == "style-overwrite") {
    MOVE_ASSIGN_OR_RETURN(EmbedResult theirs, AttackerStyle(*in.substitute, options.overwrite_gamma, recipe, options, name));
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module m, DeepCopy(*in.victim));
    MOVE_RETURN_IF_ERROR(FineTune(m, theirs.dataset, recipe));
    return m;
  }
  if (name == "style-removal") return StyleRemoval(in, recipe, options);
  if (name == "removalnet") return RemovalNet(in, recipe, options);
  return absl::InvalidArgumentError(
      absl::StrCat("attack: unknown '", name, "' (known: ", absl::StrJoin(AttackNames(), ", "), ")"));
}

absl::StatusOr<torch::jit::Module> RunMultiStage(const std::vector<std::string>& stages, const AttackInputs& inputs,
                                                 const TrainOptions& recipe, const AttackOptions& options) {
  if (stages.empty()) return absl::InvalidArgumentError("multi-stage attack: no stages");
  MOVE_RETURN_IF_ERROR(Need(inputs.victim, absl::StrJoin(stages, " -> "), "the victim"));
  torch::jit::Module current = *inputs.victim;
  AttackInputs in = inputs;
  for (size_t i = 0; i < stages.size(); ++i) {
    in.victim = &current;
    TrainOptions r = recipe;
    r.seed = recipe.seed + i;
    r.label = absl::StrCat(recipe.label, " [", i + 1, "/", stages.size(), " ", stages[i], "]");
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module next, RunAttack(stages[i], in, r, options));
    // A trained student has the student architecture; copies keep the victim's.
    const bool keeps_victim = stages[i] == "copy" || stages[i] == "fine-tune" || stages[i] == "benign-fine-tune" ||
                              stages[i] == "style-overwrite" || stages[i] == "style-removal" || stages[i] == "removalnet";
    if (!keeps_victim) in.victim_spec = inputs.student;
    current = next;
  }
  return current;
}

}  // namespace move::redteam
