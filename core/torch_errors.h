// Converts LibTorch exceptions (c10::Error and friends) into absl::Status in one place.
//
// LibTorch reports failures by throwing. Every sdk/ entry point wraps its body in
// `GuardTorch`, so no exception crosses the public API and callers see a Status whose code
// says what kind of failure it was.
#ifndef MOVE_CORE_TORCH_ERRORS_H_
#define MOVE_CORE_TORCH_ERRORS_H_

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace move::core {

// Returns a Status for an exception thrown by LibTorch or the standard library while doing
// `what_we_did` (e.g. "loading model foo.pt"). Only the first line of the message is kept:
// LibTorch appends long C++ backtraces that help nobody reading a CLI error.
absl::Status StatusFromException(const std::exception& e, absl::string_view what_we_did);

// Runs `fn` (returning absl::Status or absl::StatusOr<T>) and converts any exception into a
// kInternal/kInvalidArgument/kResourceExhausted status prefixed with `what_we_did`.
template <typename Fn>
auto GuardTorch(absl::string_view what_we_did, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const std::exception& e) {
    return StatusFromException(e, what_we_did);
  }
}

}  // namespace move::core

#endif  // MOVE_CORE_TORCH_ERRORS_H_
