// The MOVE SDK model zoo: TorchScript models usable from C++ and Python alike.
//
// Every model is a torch::jit::Module with a generated `forward`, BatchNorm layers whose
// behaviour follows the module's train()/eval() mode, and its parameters registered in a
// flat, stable order. Saved files are ordinary TorchScript archives: a PyTorch user can
// `torch.jit.load` them, run, fine-tune and `torch.jit.save` them back, and LoadModel reads
// the result.
//
//   absl::StatusOr<move::ModelSpec> spec = move::ParseModelSpec("wrn-16-1");
//   spec->in_channels = 3; spec->num_classes = 10; spec->seed = 7;
//   absl::StatusOr<torch::jit::Module> model = move::CreateModel(*spec);
//   absl::Status s = move::SaveModel(*model, "victim.pt");
//
// Models take float images in [0, 1] (N x C x H x W, any H, W >= 8) and return logits.
#ifndef MOVE_SDK_MODEL_H_
#define MOVE_SDK_MODEL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/csrc/jit/api/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace move {

enum class Architecture {
  // Three conv-BN-ReLU stages (32w, 64w, 128w channels), global average pool, linear.
  kSmallCnn,
  // CIFAR-style ResNet-18 (3x3 stem, no max-pool, stages of 64/128/256/512 channels).
  kResNet18,
  // Pre-activation WideResNet-depth-width (Zagoruyko & Komodakis 2016).
  kWideResNet,
  // VGG-11-style net with BatchNorm, four max-pools and a global average pool.
  kVgg11,
};

// What to build. Use ParseModelSpec for the command-line names.
struct ModelSpec {
  // Default: kSmallCnn.
  Architecture arch = Architecture::kSmallCnn;
  // Input channels (1 for grey, 3 for colour). Default: 3.
  int64_t in_channels = 3;
  // Output classes K. Default: 10.
  int64_t num_classes = 10;
  // WideResNet depth (16, 22, 28, 40: depth - 4 divisible by 6). Default: 16.
  int64_t depth = 16;
  // WideResNet widen factor k, or the SmallCnn channel multiplier. Default: 1.
  int64_t width = 1;
  // Seed of the weight initialisation. Default: 0.
  uint64_t seed = 0;
};

// Parses "cnn", "cnn-wN", "resnet18", "wrn-D-K" or "vgg11" (in_channels, num_classes and
// seed keep their defaults). kInvalidArgument naming the accepted forms otherwise.
absl::StatusOr<ModelSpec> ParseModelSpec(const std::string& name);

// Returns the canonical name of `spec`'s architecture, e.g. "wrn-16-1".
std::string ModelSpecName(const ModelSpec& spec);

// Builds a freshly initialised model (Kaiming-normal conv weights, PyTorch-default linear
// layers, BatchNorm weight 1 and bias 0), in training mode, on the CPU. The same spec gives
// bit-identical weights. kInvalidArgument for an impossible spec.
absl::StatusOr<torch::jit::Module> CreateModel(const ModelSpec& spec);

// Saves `model` as a TorchScript archive, atomically (temporary file + rename).
absl::Status SaveModel(const torch::jit::Module& model, const std::string& path);

// Loads a TorchScript archive onto `device`. kNotFound if missing, kInvalidArgument if the
// file is not a TorchScript archive or has no `forward` method. Loading compiles and may run
// the file's code: use it for models you trust, ReadModelWeights + ModelFromWeights (or a
// sandboxed channel, sdk/blackbox.h) for a suspect's.
absl::StatusOr<torch::jit::Module> LoadModel(const std::string& path,
                                             c10::Device device = c10::Device(c10::kCPU));

// A model's tensors as read from a file by ReadModelWeights, without running any of its code.
struct ModelWeights {
  // "torchscript", "torch.save" or "safetensors".
  std::string format;
  // SHA-256 of the file's bytes, exactly those the tensors were read from.
  std::string sha256;
  // The tensors, on the CPU, named as PyTorch's state_dict() names them, in file order.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
};

struct ReadWeightsOptions {
  // Largest file, and largest total of a zip archive's entries once expanded (a
  // decompression bomb stops here with kResourceExhausted). Default: 4 GiB.
  int64_t max_bytes = int64_t{4} << 30;
};

// Reads the parameters and buffers of a model file without executing any of it: a
// TorchScript archive (its code is never compiled; its data.pkl is read by a pickle reader that
// calls nothing but PyTorch's tensor and dict rebuilders), a state dict saved with torch.save
// (also {"state_dict": ...} checkpoints), or safetensors. The file may be hostile: anything
// else (another global, an unknown opcode, a tensor view outside its storage, a legacy pre-zip
// torch.save file) is kInvalidArgument naming what was found; kNotFound if missing;
// kResourceExhausted over options.max_bytes.
absl::StatusOr<ModelWeights> ReadModelWeights(const std::string& path, const ReadWeightsOptions& options = {});

// Builds the SDK's own model of `spec` (CreateModel) and copies `weights` into its parameters
// and buffers by name (a "module." prefix from DataParallel is dropped), so the result runs the
// SDK's graph, never the file's code. kFailedPrecondition when a tensor is missing or of
// another shape; tensors the architecture does not have are kFailedPrecondition too unless
// `unused` is given, which then receives their names (they cannot affect the SDK's graph).
// kInvalidArgument for NaN or infinite weights. The model is in eval mode on `device`.
absl::StatusOr<torch::jit::Module> ModelFromWeights(const ModelSpec& spec, const ModelWeights& weights,
                                                    c10::Device device = c10::Device(c10::kCPU),
                                                    std::vector<std::string>* unused = nullptr);

// Runs `model` in eval mode without gradients over `images` (N x C x H x W, any device) in
// batches and returns the N x K softmax probabilities on the CPU. The model's previous
// train/eval mode is restored.
absl::StatusOr<at::Tensor> PredictProbabilities(torch::jit::Module& model, const at::Tensor& images,
                                                int64_t batch_size = 256);

// Returns the number of trainable parameters.
int64_t CountParameters(const torch::jit::Module& model);

}  // namespace move

#endif  // MOVE_SDK_MODEL_H_
