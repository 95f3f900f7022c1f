// File helpers: whole-file reads and atomic writes.
#ifndef MOVE_CORE_FILES_H_
#define MOVE_CORE_FILES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace move::core {

// Default cap of ReadFile: 4 GiB.
constexpr int64_t kDefaultMaxReadBytes = int64_t{4} << 30;

// Reads a whole regular file of at most `max_bytes`. kNotFound if it does not exist;
// kInvalidArgument for a directory or anything that is not a regular file (a device such as
// /dev/zero, a FIFO); kResourceExhausted, naming the limit, when it is larger;
// kPermissionDenied/kDataLoss otherwise.
absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes = kDefaultMaxReadBytes);

// Writes `contents` to `path` atomically: a temporary file in the same directory is written,
// flushed with fsync and renamed over `path`, so readers see the old file or the new one,
// never a half-written one.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Like WriteFileAtomically, but lets `writer` produce the temporary file itself (for
// libraries such as torch::jit::Module::save that want a path). `writer` gets the temporary
// path; the rename happens only if it returns OK.
absl::Status WriteViaTempFile(const std::string& path,
                              const std::function<absl::Status(const std::string&)>& writer);

// Like WriteFileAtomically, but never replaces a file: the temporary file is put in place
// with link(2), which fails if `path` exists, even if it appeared after any earlier check.
// kAlreadyExists then.
absl::Status WriteNewFileAtomically(const std::string& path, absl::string_view contents);

// Checks, before any work, that `path` may be written as an output of a run whose inputs are
// `inputs` (flag names are used in the messages: `flag` for the output, "--name=path" pairs
// for the inputs): never an input (the same file by any name; kInvalidArgument, whatever
// `overwrite` says), not an existing file unless `overwrite` (kAlreadyExists), not a
// folder, and its folder exists and is writable (kNotFound / kPermissionDenied). Empty
// `path`: nothing to check.
struct NamedPath {
  std::string flag;  // e.g. "--bundle"
  std::string path;
};
absl::Status CheckOutputPath(const std::string& flag, const std::string& path, const std::vector<NamedPath>& inputs,
                             bool overwrite);

// The same for an output folder: it must not exist or be empty, must not hold any input, and
// its parent must be writable.
absl::Status CheckOutputFolder(const std::string& flag, const std::string& dir, const std::vector<NamedPath>& inputs);

// Creates `dir` and its parents if missing.
absl::Status MakeDirs(const std::string& dir);

}  // namespace move::core

#endif  // MOVE_CORE_FILES_H_
