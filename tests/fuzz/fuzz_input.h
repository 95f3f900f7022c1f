// Helpers for the fuzz targets: the parsers under test read files, so each input is written
// to a per-process scratch file first.
#ifndef MOVE_TESTS_FUZZ_FUZZ_INPUT_H_
#define MOVE_TESTS_FUZZ_FUZZ_INPUT_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace move::fuzz {

// A scratch path for `name`, unique to this process (in $TMPDIR, else /tmp).
inline std::string ScratchPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  if (dir == nullptr) dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/move-fuzz-" + std::to_string(::getpid()) + "-" + name;
}

// Writes `size` bytes to `path` (replacing it); aborts if it cannot, which is no finding.
inline void WriteInput(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
}

}  // namespace move::fuzz

#endif  // MOVE_TESTS_FUZZ_FUZZ_INPUT_H_
