// The model zoo (implements sdk/model.h).
//
// Models are flat TorchScript modules: parameters and BatchNorm buffers are registered on one
// module under stable names, and `forward` is generated TorchScript source using aten ops
// (torch.conv2d, torch.batch_norm, ...). A flat module keeps the file format trivially
// loadable from Python and gives the verifier a stable, ordered parameter list.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/files.h"
#include "core/model_graph.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/model.h"

namespace move {
namespace {

// Emits TorchScript source for a feed-forward net while registering its tensors.
class ScriptBuilder {
 public:
  ScriptBuilder(torch::jit::Module* module, uint64_t seed)
      : module_(module), gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  std::string Conv(const std::string& in, const std::string& name, int64_t cin, int64_t cout,
                   int64_t k, int64_t stride) {
    // Kaiming normal, fan_out, ReLU gain (as torchvision's ResNets).
    const double std = std::sqrt(2.0 / static_cast<double>(cout * k * k));
    at::Tensor w = torch::empty({cout, cin, k, k}).normal_(0.0, std, gen_);
    Param(name + "_w", w);
    const int64_t pad = k / 2;
    Record(core::GraphOp::Kind::kConv, in, "", name, stride, pad);
    return Emit(absl::StrCat("torch.conv2d(", in, ", self.", name, "_w, None, [", stride, ", ",
                             stride, "], [", pad, ", ", pad, "])"));
  }

  std::string BatchNorm(const std::string& in, const std::string& name, int64_t c) {
    Param(name + "_w", torch::ones({c}));
    Param(name + "_b", torch::zeros({c}));
    Buffer(name + "_mean", torch::zeros({c}));
    Buffer(name + "_var", torch::ones({c}));
    Record(core::GraphOp::Kind::kBatchNorm, in, "", name);
    return Emit(absl::StrCat("torch.batch_norm(", in, ", self.", name, "_w, self.", name, "_b, self.",
                             name, "_mean, self.", name, "_var, self.training, self.bn_momentum, 1e-05, False)"));
  }

  std::string Linear(const std::string& in, const std::string& name, int64_t fin, int64_t fout) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fin));
    Param(name + "_w", torch::empty({fout, fin}).uniform_(-bound, bound, gen_));
    Param(name + "_b", torch::empty({fout}).uniform_(-bound, bound, gen_));
    Record(core::GraphOp::Kind::kLinear, in, "", name);
    return Emit(absl::StrCat("torch.linear(", in, ", self.", name, "_w, self.", name, "_b)"));
  }

  std::string Relu(const std::string& in) {
    Record(core::GraphOp::Kind::kRelu, in);
    return Emit(absl::StrCat("torch.relu(", in, ")"));
  }
  std::string Add(const std::string& a, const std::string& b) {
    Record(core::GraphOp::Kind::kAdd, a, b);
    return Emit(absl::StrCat(a, " + ", b));
  }
  std::string MaxPool(const std::string& in) {
    Record(core::GraphOp::Kind::kMaxPool, in);
    return Emit(absl::StrCat("torch.max_pool2d(", in, ", [2, 2], [2, 2])"));
  }
  std::string GlobalAvgPool(const std::string& in) {
    Record(core::GraphOp::Kind::kMean, in);
    return Emit(absl::StrCat("torch.mean(", in, ", [2, 3])"));
  }

  std::string ConvBnRelu(const std::string& in, const std::string& name, int64_t cin,
                         int64_t cout, int64_t stride) {
    return Relu(BatchNorm(Conv(in, name + "_conv", cin, cout, 3, stride), name + "_bn", cout));
  }

  // Defines forward() with `out` as the returned logits.
  void Finish(const std::string& out) {
    graph_.output = out;
    std::string src = "def forward(self, x):\n";
    for (const auto& line : lines_) absl::StrAppend(&src, "    ", line, "\n");
    absl::StrAppend(&src, "    return ", out, "\n");
    module_->define(src);
  }

 private:
  void Param(const std::string& name, const at::Tensor& t) {
    module_->register_parameter(name, t.set_requires_grad(true), /*is_buffer=*/false);
    graph_.parameters.emplace_back(name, t.sizes().vec());
  }
  void Buffer(const std::string& name, const at::Tensor& t) {
    module_->register_buffer(name, t);
    graph_.buffers.emplace_back(name, t.sizes().vec());
  }
  // Records the op that the next Emit defines.
  void Record(core::GraphOp::Kind kind, const std::string& in, const std::string& in2 = "",
              const std::string& param = "", int64_t stride = 1, int64_t padding = 0) {
    graph_.ops.push_back(core::GraphOp{kind, in, in2, absl::StrCat("h", counter_), param, stride, padding});
  }
  std::string Emit(const std::string& expr) {
    std::string var = absl::StrCat("h", counter_++);
    lines_.push_back(absl::StrCat(var, " = ", expr));
    return var;
  }

 public:
  const core::ModelGraph& graph() const { return graph_; }

 private:
  core::ModelGraph graph_;

  torch::jit::Module* module_;
  at::Generator gen_;
  std::vector<std::string> lines_;
  int counter_ = 0;
};

void BuildSmallCnn(ScriptBuilder& b, const ModelSpec& s) {
  const int64_t w = s.width;
  std::string h = b.ConvBnRelu("x", "l1", s.in_channels, 32 * w, 1);
  h = b.MaxPool(h);
  h = b.ConvBnRelu(h, "l2", 32 * w, 64 * w, 1);
  h = b.MaxPool(h);
  h = b.ConvBnRelu(h, "l3", 64 * w, 128 * w, 1);
  h = b.GlobalAvgPool(h);
  b.Finish(b.Linear(h, "fc", 128 * w, s.num_classes));
}

void BuildResNet18(ScriptBuilder& b, const ModelSpec& s) {
  std::string h = b.ConvBnRelu("x", "stem", s.in_channels, 64, 1);
  int64_t cin = 64;
  const int64_t widths[] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    for (int block = 0; block < 2; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      const int64_t cout = widths[stage];
      const std::string p = absl::StrCat("layer", stage + 1, "_", block);
      std::string y = b.ConvBnRelu(h, p + "_1", cin, cout, stride);
      y = b.BatchNorm(b.Conv(y, p + "_2_conv", cout, cout, 3, 1), p + "_2_bn", cout);
      std::string shortcut = h;
      if (stride != 1 || cin != cout) {
        shortcut = b.BatchNorm(b.Conv(h, p + "_down_conv", cin, cout, 1, stride), p + "_down_bn", cout);
      }
      h = b.Relu(b.Add(y, shortcut));
      cin = cout;
    }
  }
  b.Finish(b.Linear(b.GlobalAvgPool(h), "fc", 512, s.num_classes));
}

void BuildWideResNet(ScriptBuilder& b, const ModelSpec& s) {
  const int64_t n = (s.depth - 4) / 6;
  const int64_t widths[] = {16 * s.width, 32 * s.width, 64 * s.width};
  std::string h = b.Conv("x", "stem_conv", s.in_channels, 16, 3, 1);
  int64_t cin = 16;
  for (int stage = 0; stage < 3; ++stage) {
    for (int64_t block = 0; block < n; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      const int64_t cout = widths[stage];
      const std::string p = absl::StrCat("block", stage + 1, "_", block);
      std::string o = b.Relu(b.BatchNorm(h, p + "_bn1", cin));
      std::string y = b.Conv(o, p + "_conv1", cin, cout, 3, stride);
      y = b.Relu(b.BatchNorm(y, p + "_bn2", cout));
      y = b.Conv(y, p + "_conv2", cout, cout, 3, 1);
      std::string shortcut = (cin == cout && stride == 1) ? h : b.Conv(o, p + "_short", cin, cout, 1, stride);
      h = b.Add(y, shortcut);
      cin = cout;
    }
  }
  h = b.Relu(b.BatchNorm(h, "final_bn", cin));
  b.Finish(b.Linear(b.GlobalAvgPool(h), "fc", cin, s.num_classes));
}

void BuildVgg11(ScriptBuilder& b, const ModelSpec& s) {
  // 0 marks a max-pool.
  const int64_t cfg[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512};
  std::string h = "x";
  int64_t cin = s.in_channels;
  int layer = 0;
  for (int64_t c : cfg) {
    if (c == 0) {
      h = b.MaxPool(h);
    } else {
      h = b.ConvBnRelu(h, absl::StrCat("conv", ++layer), cin, c, 1);
      cin = c;
    }
  }
  b.Finish(b.Linear(b.GlobalAvgPool(h), "fc", cin, s.num_classes));
}

}  // namespace

absl::StatusOr<ModelSpec> ParseModelSpec(const std::string& name) {
  ModelSpec spec;
  std::vector<std::string> parts = absl::StrSplit(name, '-');
  auto bad = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: unknown architecture '", name,
        "' (expected cnn, cnn-wN, resnet18, wrn-DEPTH-WIDTH such as wrn-16-1, or vgg11)"));
  };
  if (parts[0] == "cnn") {
    spec.arch = Architecture::kSmallCnn;
    if (parts.size() == 2 && parts[1].size() > 1 && parts[1][0] == 'w') {
      if (!absl::SimpleAtoi(parts[1].substr(1), &spec.width) || spec.width < 1) return bad();
    } else if (parts.size() != 1) {
      return bad();
    }
  } else if (name == "resnet18") {
    spec.arch = Architecture::kResNet18;
  } else if (name == "vgg11") {
    spec.arch = Architecture::kVgg11;
  } else if (parts[0] == "wrn" && parts.size() == 3) {
    spec.arch = Architecture::kWideResNet;
    if (!absl::SimpleAtoi(parts[1], &spec.depth) || !absl::SimpleAtoi(parts[2], &spec.width)) return bad();
    if (spec.depth < 10 || (spec.depth - 4) % 6 != 0 || spec.width < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model: WideResNet depth must be >= 10 with depth - 4 divisible by 6 and width >= 1, got '", name, "'"));
    }
  } else {
    return bad();
  }
  return spec;
}

std::string ModelSpecName(const ModelSpec& spec) {
  switch (spec.arch) {
    case Architecture::kSmallCnn:
      return spec.width == 1 ? "cnn" : absl::StrCat("cnn-w", spec.width);
    case Architecture::kResNet18:
      return "resnet18";
    case Architecture::kWideResNet:
      return absl::StrCat("wrn-", spec.depth, "-", spec.width);
    case Architecture::kVgg11:
      return "vgg11";
  }
  return "unknown";
}

namespace {

absl::Status ValidateSpec(const ModelSpec& spec) {
  if (spec.in_channels < 1) return absl::InvalidArgumentError("model.in_channels: must be >= 1");
  if (spec.num_classes < 2) return absl::InvalidArgumentError("model.num_classes: must be >= 2");
  if (spec.width < 1) return absl::InvalidArgumentError("model.width: must be >= 1");
  if (spec.arch == Architecture::kWideResNet && (spec.depth < 10 || (spec.depth - 4) % 6 != 0)) {
    return absl::InvalidArgumentError("model.depth: WideResNet depth must be >= 10 with depth - 4 divisible by 6");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<torch::jit::Module, core::ModelGraph>> Build(const ModelSpec& spec) {
  MOVE_RETURN_IF_ERROR(ValidateSpec(spec));
  return core::GuardTorch("creating model", [&]() -> absl::StatusOr<std::pair<torch::jit::Module, core::ModelGraph>> {
    torch::NoGradGuard no_grad;
    const std::string name = ModelSpecName(spec);
    std::string class_name = "MoveModel";
    torch::jit::Module module(c10::QualifiedName({"__torch__", "move", class_name}));
    module.register_attribute("training", c10::BoolType::get(), true);
    // BatchNorm momentum, an attribute so the trainer can recompute exact running statistics
    // after training (see TrainOptions::batchnorm_recalibration_batches).
    module.register_attribute("bn_momentum", c10::FloatType::get(), 0.1);
    module.register_attribute("move_architecture", c10::StringType::get(), name);
    module.register_attribute("move_num_classes", c10::IntType::get(), spec.num_classes);
    module.register_attribute("move_in_channels", c10::IntType::get(), spec.in_channels);
    ScriptBuilder builder(&module, spec.seed);
    switch (spec.arch) {
      case Architecture::kSmallCnn: BuildSmallCnn(builder, spec); break;
      case Architecture::kResNet18: BuildResNet18(builder, spec); break;
      case Architecture::kWideResNet: BuildWideResNet(builder, spec); break;
      case Architecture::kVgg11: BuildVgg11(builder, spec); break;
    }
    module.train(true);
    return std::make_pair(module, builder.graph());
  });
}

}  // namespace

absl::StatusOr<torch::jit::Module> CreateModel(const ModelSpec& spec) {
  MOVE_ASSIGN_OR_RETURN(auto built, Build(spec));
  return built.first;
}

namespace core {

absl::StatusOr<ModelGraph> ModelGraphForSpec(const ModelSpec& spec) {
  MOVE_ASSIGN_OR_RETURN(auto built, Build(spec));
  return built.second;
}

}  // namespace core

absl::Status SaveModel(const torch::jit::Module& model, const std::string& path) {
  return core::WriteViaTempFile(path, [&](const std::string& tmp) -> absl::Status {
    return core::GuardTorch(absl::StrCat("saving model to ", path), [&]() -> absl::Status {
      model.save(tmp);
      return absl::OkStatus();
    });
  });
}

absl::StatusOr<torch::jit::Module> LoadModel(const std::string& path, c10::Device device) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  try {
    torch::jit::Module m = torch::jit::load(path, device);
    if (!m.find_method("forward")) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": TorchScript module has no forward()"));
    }
    return m;
  } catch (const std::exception& e) {
    absl::Status s = core::StatusFromException(e, "");
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a loadable TorchScript model (",
                                                   s.message().substr(2), ")"));
  }
}

absl::StatusOr<at::Tensor> PredictProbabilities(torch::jit::Module& model, const at::Tensor& images,
                                                int64_t batch_size) {
  if (!images.defined() || images.dim() != 4) {
    return absl::InvalidArgumentError("images: expected N x C x H x W");
  }
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size: must be >= 1");
  return core::GuardTorch("running model", [&]() -> absl::StatusOr<at::Tensor> {
    torch::NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    c10::Device device(c10::kCPU);
    for (const auto& p : model.parameters()) { device = p.device(); break; }
    std::vector<at::Tensor> out;
    for (int64_t start = 0; start < images.size(0); start += batch_size) {
      const int64_t len = std::min(batch_size, images.size(0) - start);
      at::Tensor batch = images.narrow(0, start, len).to(device);
      at::Tensor logits = model.forward({batch}).toTensor();
      out.push_back(torch::softmax(logits.to(torch::kFloat32), 1).to(torch::kCPU));
    }
    model.train(was_training);
    return torch::cat(out);
  });
}

int64_t CountParameters(const torch::jit::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace move
