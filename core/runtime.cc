// Implements sdk/runtime.h.
#include <thread>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/version.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sdk/runtime.h"

namespace move {

absl::Status SetNumThreads(int num_threads) {
  if (num_threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_threads: must be >= 0 (0 = all cores), got ", num_threads));
  }
  int n = num_threads;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  at::set_num_threads(n);
  return absl::OkStatus();
}

int NumThreads() { return at::get_num_threads(); }

absl::StatusOr<c10::Device> ResolveDevice(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || absl::StartsWith(name, "cuda:")) {
    int index = 0;
    if (name.size() > 5 && !absl::SimpleAtoi(name.substr(5), &index)) {
      return absl::InvalidArgumentError(absl::StrCat("device: cannot parse GPU index in '", name, "'"));
    }
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", name, "' requested, but this LibTorch build has no CUDA support or sees no GPU "
          "(Debian's libtorch is CPU-only; build against a CUDA LibTorch or use --device=cpu)"));
    }
    if (index < 0 || index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::InvalidArgumentError(absl::StrCat("device: GPU index ", index, " out of range (",
                                                     torch::cuda::device_count(), " visible)"));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(absl::StrCat("device: expected 'cpu', 'cuda' or 'cuda:N', got '", name, "'"));
}

std::string RuntimeDescription() {
  return absl::StrCat("LibTorch ", TORCH_VERSION, ", threads ", at::get_num_threads(),
                      ", CUDA ", torch::cuda::is_available() ? "available" : "unavailable");
}

}  // namespace move
