// File helpers: whole-file reads and atomic writes.
#ifndef MOVE_CORE_FILES_H_
#define MOVE_CORE_FILES_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace move::core {

// Reads a whole file. kNotFound if it does not exist, kPermissionDenied/kDataLoss otherwise.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically: a temporary file in the same directory is written,
// flushed with fsync and renamed over `path`, so readers see the old file or the new one,
// never a half-written one.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Like WriteFileAtomically, but lets `writer` produce the temporary file itself (for
// libraries such as torch::jit::Module::save that want a path). `writer` gets the temporary
// path; the rename happens only if it returns OK.
absl::Status WriteViaTempFile(const std::string& path,
                              const std::function<absl::Status(const std::string&)>& writer);

// Creates `dir` and its parents if missing.
absl::Status MakeDirs(const std::string& dir);

}  // namespace move::core

#endif  // MOVE_CORE_FILES_H_
