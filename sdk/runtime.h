// Runtime settings for the MOVE SDK: CPU threads and the compute device.
//
//   MOVE_CHECK_OK(move::SetNumThreads(0));           // all cores
//   absl::StatusOr<c10::Device> device = move::ResolveDevice("cuda");
//   // kFailedPrecondition with a clear message when this LibTorch has no CUDA.
#ifndef MOVE_SDK_RUNTIME_H_
#define MOVE_SDK_RUNTIME_H_

#include <string>

#include <c10/core/Device.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace move {

// Sets LibTorch's intra-op thread count. 0 means one thread per hardware core (LibTorch's
// own default on Debian is a single thread). Negative values are kInvalidArgument.
// Results of training and embedding are bit-reproducible for a fixed thread count.
absl::Status SetNumThreads(int num_threads);

// Returns the intra-op thread count now in force.
int NumThreads();

// Parses "cpu", "cuda" or "cuda:N". kInvalidArgument for anything else; kFailedPrecondition
// when CUDA is asked for but this LibTorch build has no CUDA support or sees no GPU.
absl::StatusOr<c10::Device> ResolveDevice(const std::string& name);

// Returns a one-line description of the LibTorch build (version, CUDA availability, BLAS).
std::string RuntimeDescription();

}  // namespace move

#endif  // MOVE_SDK_RUNTIME_H_
