#include "core/torch_errors.h"

#include <new>

#include <c10/util/Exception.h>

#include "absl/strings/str_cat.h"

namespace move::core {
namespace {

// The message's first line; for an error raised inside TorchScript code, whose first line
// only says so, the last line (the error itself, e.g. "RuntimeError: ...").
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.find("failed in the TorchScript interpreter") != std::string::npos) {
    size_t end = text.find_last_not_of("\n ");
    if (end != std::string::npos) {
      const size_t begin = text.rfind('\n', end);
      line = text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
    }
  }
  if (line.size() > 400) line = line.substr(0, 400) + "...";
  return line;
}

}  // namespace

absl::Status StatusFromException(const std::exception& e, absl::string_view what_we_did) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(what_we_did, ": out of memory"));
  }
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    const std::string message = FirstLine(c10->what_without_backtrace());
    // Shape/type/argument complaints from ATen are the caller's input being wrong.
    if (dynamic_cast<const c10::IndexError*>(&e) != nullptr ||
        dynamic_cast<const c10::ValueError*>(&e) != nullptr ||
        dynamic_cast<const c10::TypeError*>(&e) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(what_we_did, ": ", message));
    }
    return absl::InternalError(absl::StrCat(what_we_did, ": ", message));
  }
  return absl::InternalError(absl::StrCat(what_we_did, ": ", FirstLine(e.what())));
}

}  // namespace move::core
