#include "core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace move::core {
namespace {

std::string TempPathFor(const std::string& path) {
  std::random_device rd;
  return absl::StrCat(path, ".tmp.", ::getpid(), ".", rd());
}

absl::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot reopen ", path, ": ", std::strerror(errno)));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::DataLossError(absl::StrCat("fsync failed for ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("file not found: ", path));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("expected a file but found a directory: ", path));
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file (a device, pipe or socket)"));
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  auto too_big = [&](uintmax_t n) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": ", n, " bytes or more, over the ", max_bytes, "-byte limit for this file"));
  };
  if (!ec && size > static_cast<uintmax_t>(max_bytes)) return too_big(size);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path));
  std::string out;
  out.reserve(ec ? 0 : size);
  std::string buf(1 << 20, '\0');
  while (in) {
    in.read(buf.data(), buf.size());
    out.append(buf.data(), static_cast<size_t>(in.gcount()));
    if (out.size() > static_cast<uint64_t>(max_bytes)) return too_big(out.size());  // it grew while read
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error on ", path));
  return out;
}

absl::Status WriteViaTempFile(const std::string& path,
                              const std::function<absl::Status(const std::string&)>& writer) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(parent, ec)) {
      return absl::NotFoundError(absl::StrCat("directory does not exist for output file ", path));
    }
  }
  const std::string tmp = TempPathFor(path);
  absl::Status status = writer(tmp);
  if (status.ok()) status = FsyncPath(tmp);
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ",
                                              std::strerror(errno)));
  }
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

namespace {

absl::Status WriteContents(const std::string& tmp, absl::string_view contents) {
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat("write error on ", tmp));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  return WriteViaTempFile(path, [&](const std::string& tmp) { return WriteContents(tmp, contents); });
}

absl::Status WriteNewFileAtomically(const std::string& path, absl::string_view contents) {
  std::error_code ec;
  if (std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found) {
    return absl::AlreadyExistsError(absl::StrCat(path, " already exists; it is not overwritten"));
  }
  const std::string tmp = TempPathFor(path);
  absl::Status status = WriteContents(tmp, contents);
  if (status.ok()) status = FsyncPath(tmp);
  if (status.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    status = errno == EEXIST ? absl::AlreadyExistsError(absl::StrCat(path, " already exists; it is not overwritten"))
                             : absl::InternalError(absl::StrCat("cannot link ", tmp, " to ", path, ": ", std::strerror(errno)));
  }
  std::remove(tmp.c_str());
  return status;
}

namespace {

// The input `path` is the same file as, or lies inside, one of `inputs`.
const NamedPath* SameAsInput(const std::string& path, const std::vector<NamedPath>& inputs) {
  std::error_code ec;
  for (const NamedPath& in : inputs) {
    if (in.path.empty()) continue;
    if (std::filesystem::exists(path, ec) && std::filesystem::exists(in.path, ec) &&
        std::filesystem::equivalent(path, in.path, ec)) {
      return &in;
    }
    // Not there yet, or another name: compare the normalised absolute paths.
    const auto a = std::filesystem::weakly_canonical(path, ec), b = std::filesystem::weakly_canonical(in.path, ec);
    if (!ec && a == b) return &in;
  }
  return nullptr;
}

absl::Status CheckWritableFolder(const std::string& flag, const std::filesystem::path& folder) {
  std::error_code ec;
  const std::filesystem::path f = folder.empty() ? std::filesystem::path(".") : folder;
  if (!std::filesystem::is_directory(f, ec)) {
    return absl::NotFoundError(absl::StrCat(flag, ": folder ", f.string(), " does not exist"));
  }
  if (::access(f.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(flag, ": folder ", f.string(), " is not writable"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOutputPath(const std::string& flag, const std::string& path, const std::vector<NamedPath>& inputs,
                             bool overwrite) {
  if (path.empty()) return absl::OkStatus();
  if (const NamedPath* in = SameAsInput(path, inputs)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, " is this run's input ", in->flag, "=", in->path, "; an input is never overwritten"));
  }
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(path, ec);
  if (st.type() == std::filesystem::file_type::directory) {
    return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, " is a folder"));
  }
  if (st.type() != std::filesystem::file_type::not_found && !overwrite) {
    return absl::AlreadyExistsError(
        absl::StrCat(flag, "=", path, " already exists; choose another path (or pass --overwrite to replace it)"));
  }
  return CheckWritableFolder(flag, std::filesystem::path(path).parent_path());
}

absl::Status CheckOutputFolder(const std::string& flag, const std::string& dir, const std::vector<NamedPath>& inputs) {
  if (dir.empty()) return absl::OkStatus();
  std::error_code ec;
  for (const NamedPath& in : inputs) {
    if (in.path.empty()) continue;
    const auto d = std::filesystem::weakly_canonical(dir, ec), p = std::filesystem::weakly_canonical(in.path, ec);
    if (!ec && std::mismatch(d.begin(), d.end(), p.begin(), p.end()).first == d.end()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, "=", dir, " holds this run's input ", in.flag, "=", in.path));
    }
  }
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec)) return absl::InvalidArgumentError(absl::StrCat(flag, "=", dir, " is not a folder"));
    if (!std::filesystem::is_empty(dir, ec)) {
      return absl::AlreadyExistsError(absl::StrCat(flag, "=", dir, " is not empty; choose a new or empty folder"));
    }
    return CheckWritableFolder(flag, dir);
  }
  std::filesystem::path parent = std::filesystem::path(dir).lexically_normal().parent_path();
  while (!parent.empty() && !std::filesystem::exists(parent, ec)) parent = parent.parent_path();
  return CheckWritableFolder(flag, parent);
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace move::core
