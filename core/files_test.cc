#include "core/files.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace move::core {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

TEST(FilesTest, AtomicWriteThenRead) {
  const std::string path = TempDir() + "/atomic.txt";
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "second").ok());
  auto read = ReadFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "second");
  // No temporary files are left beside the target.
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(TempDir())) {
    if (e.path().filename().string().rfind("atomic.txt", 0) == 0) ++count;
  }
  EXPECT_EQ(count, 1);
}

TEST(FilesTest, FailedWriterKeepsOldFile) {
  const std::string path = TempDir() + "/keep.txt";
  ASSERT_TRUE(WriteFileAtomically(path, "precious").ok());
  absl::Status s = WriteViaTempFile(path, [](const std::string& tmp) {
    return absl::InternalError("writer failed half-way");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(*ReadFile(path), "precious");
}

TEST(FilesTest, MissingFileIsNotFound) {
  auto read = ReadFile(TempDir() + "/does-not-exist");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find("does-not-exist"), std::string::npos);
}

TEST(FilesTest, MissingDirectoryIsNotFound) {
  absl::Status s = WriteFileAtomically(TempDir() + "/no/such/dir/file", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace move::core
