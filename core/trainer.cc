// SGD trainer (implements sdk/train.h).
#include <chrono>
#include <cmath>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/augment.h"
#include "core/progress.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"

namespace move {
namespace {

absl::Status ValidateTrainOptions(const TrainOptions& o) {
  if (o.epochs < 1) return absl::InvalidArgumentError(absl::StrCat("epochs: must be >= 1, got ", o.epochs));
  if (o.batch_size < 1) return absl::InvalidArgumentError(absl::StrCat("batch_size: must be >= 1, got ", o.batch_size));
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) return absl::InvalidArgumentError("learning_rate: must be a positive finite number");
  if (!(o.momentum >= 0 && o.momentum < 1)) return absl::InvalidArgumentError("momentum: must be in [0, 1)");
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) return absl::InvalidArgumentError("weight_decay: must be >= 0");
  if (o.crop_padding < 0) return absl::InvalidArgumentError("crop_padding: must be >= 0");
  if (!(o.distillation_weight >= 0 && o.distillation_weight <= 1)) return absl::InvalidArgumentError("distillation_weight: must be in [0, 1]");
  if (o.batchnorm_recalibration_batches < 0) return absl::InvalidArgumentError("batchnorm_recalibration_batches: must be >= 0");
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) return absl::InvalidArgumentError("temperature: must be > 0");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainReport> TrainModel(torch::jit::Module& model, const Dataset& train,
                                       const TrainOptions& options) {
  MOVE_RETURN_IF_ERROR(ValidateTrainOptions(options));
  MOVE_RETURN_IF_ERROR(ValidateDataset(train));
  MOVE_ASSIGN_OR_RETURN(c10::Device device, ResolveDevice(options.device));
  return core::GuardTorch(absl::StrCat("training (", options.label, ")"), [&]() -> absl::StatusOr<TrainReport> {
    const auto start = std::chrono::steady_clock::now();
    model.to(device);
    if (options.teacher != nullptr) {
      options.teacher->to(device);
      options.teacher->eval();
    }
    std::vector<at::Tensor> params;
    for (at::Tensor p : model.parameters()) {
      // Module::deepcopy() leaves parameters as non-leaf copies; make them leaves again (in
      // place, so the module still holds them) or the optimiser refuses them.
      if (p.requires_grad() && !p.is_leaf()) p.detach_().requires_grad_(true);
      if (p.requires_grad()) params.push_back(p);
    }
    if (params.empty()) return absl::InvalidArgumentError("model: has no trainable parameters");
    torch::optim::SGD sgd(params, torch::optim::SGDOptions(options.learning_rate)
                                      .momentum(options.momentum)
                                      .weight_decay(options.weight_decay));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    const int64_t n = train.size();
    const int64_t steps_per_epoch = (n + options.batch_size - 1) / options.batch_size;
    const int64_t total_steps = steps_per_epoch * options.epochs;
    core::Progress progress(options.label, total_steps, options.show_progress);
    const double t = options.temperature;
    TrainReport report;
    int64_t step = 0;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      model.train(true);
      at::Tensor perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
      double loss_sum = 0;
      int64_t correct = 0, seen = 0;
      for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
        const double lr = 0.5 * options.learning_rate * (1 + std::cos(M_PI * step / total_steps));
        for (auto& group : sgd.param_groups()) {
          static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
        }
        at::Tensor idx = perm.narrow(0, b * options.batch_size,
                                     std::min<int64_t>(options.batch_size, n - b * options.batch_size));
        at::Tensor x = train.images.index_select(0, idx);
        at::Tensor y = train.labels.index_select(0, idx);
        x = core::RandomCropFlip(x, options.crop_padding, options.horizontal_flip, gen);
        x = x.to(device);
        y = y.to(device);
        at::Tensor logits = model.forward({x}).toTensor();
        if (logits.dim() != 2 || logits.size(1) != train.num_classes) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model: outputs shape [", absl::StrJoin(logits.sizes(), ","), "] but the dataset has ",
              train.num_classes, " classes"));
        }
        at::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
        if (options.teacher != nullptr) {
          at::Tensor teacher_logits;
          {
            torch::NoGradGuard no_grad;
            teacher_logits = options.teacher->forward({x}).toTensor();
          }
          // KL(teacher || student) at temperature T, summed over classes, averaged over the batch.
          at::Tensor log_student = torch::log_softmax(logits / t, 1);
          at::Tensor log_teacher = torch::log_softmax(teacher_logits / t, 1);
          at::Tensor kd = (log_teacher.exp() * (log_teacher - log_student)).sum(1).mean();
          loss = options.distillation_weight * t * t * kd + (1 - options.distillation_weight) * loss;
        }
        sgd.zero_grad();
        loss.backward();
        sgd.step();
        const double l = loss.item<double>();
        if (!std::isfinite(l)) {
          return absl::InternalError(absl::StrCat("training diverged (loss ", l, ") at step ", step,
                                                  "; lower learning_rate"));
        }
        loss_sum += l * idx.size(0);
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
        seen += idx.size(0);
        progress.Update(step + 1, absl::StrFormat("epoch %d/%d loss %.3f acc %.3f", epoch,
                                                  options.epochs, loss_sum / seen,
                                                  static_cast<double>(correct) / seen));
      }
      report.final_loss = loss_sum / seen;
      report.final_accuracy = static_cast<double>(correct) / seen;
      if (options.on_epoch) options.on_epoch(epoch, report.final_loss, report.final_accuracy);
    }
    if (options.batchnorm_recalibration_batches > 0) {
      MOVE_RETURN_IF_ERROR(RecalibrateBatchNorm(model, train, options.batchnorm_recalibration_batches,
                                                options.batch_size));
    }
    model.eval();
    report.steps = step;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress.Finish(absl::StrFormat("loss %.3f acc %.3f", report.final_loss, report.final_accuracy));
    return report;
  });
}

absl::Status RecalibrateBatchNorm(torch::jit::Module& model, const Dataset& data, int batches,
                                  int batch_size) {
  if (batches < 1 || batch_size < 1) return absl::InvalidArgumentError("batches and batch_size: must be >= 1");
  return core::GuardTorch("recalibrating BatchNorm", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    c10::Device device(c10::kCPU);
    for (const auto& p : model.parameters()) { device = p.device(); break; }
    const bool precise = model.hasattr("bn_momentum");
    if (precise) {
      // Reset, then a cumulative average: momentum 1/k on the k-th batch.
      for (const auto& b : model.named_buffers()) {
        if (b.name.size() > 5 && b.name.compare(b.name.size() - 5, 5, "_mean") == 0) b.value.zero_();
        if (b.name.size() > 4 && b.name.compare(b.name.size() - 4, 4, "_var") == 0) b.value.fill_(1.0);
      }
    }
    const double old_momentum = precise ? model.attr("bn_momentum").toDouble() : 0.0;
    model.train(true);
    const int64_t n = data.size();
    int k = 0;
    for (int64_t start = 0; start < n && k < batches; start += batch_size, ++k) {
      if (precise) model.setattr("bn_momentum", 1.0 / (k + 1));
      model.forward({data.images.narrow(0, start, std::min<int64_t>(batch_size, n - start)).to(device)});
    }
    if (precise) model.setattr("bn_momentum", old_momentum);
    model.eval();
    return absl::OkStatus();
  });
}

absl::StatusOr<EvalResult> Evaluate(torch::jit::Module& model, const Dataset& data, int64_t batch_size) {
  MOVE_RETURN_IF_ERROR(ValidateDataset(data));
  MOVE_ASSIGN_OR_RETURN(at::Tensor probs, PredictProbabilities(model, data.images, batch_size));
  return core::GuardTorch("evaluating", [&]() -> absl::StatusOr<EvalResult> {
    if (probs.size(1) != data.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("model: outputs ", probs.size(1),
                                                     " classes but the dataset has ", data.num_classes));
    }
    EvalResult r;
    r.count = data.size();
    r.accuracy = probs.argmax(1).eq(data.labels).to(torch::kFloat64).mean().item<double>();
    r.loss = -probs.gather(1, data.labels.unsqueeze(1)).clamp_min(1e-12).log().mean().item<double>();
    return r;
  });
}

}  // namespace move
