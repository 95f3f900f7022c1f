#include "core/files.h"

#include <filesystem>
#include <string>
#include <vector>

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

TEST(FilesTest, ReadsAreCappedAndRefuseDevices) {
  const std::string path = TempDir() + "/capped.bin";
  ASSERT_TRUE(WriteFileAtomically(path, std::string(100, 'x')).ok());
  EXPECT_TRUE(ReadFile(path, 100).ok());
  auto big = ReadFile(path, 99);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("99-byte limit"), std::string::npos) << big.status();
  auto dev = ReadFile("/dev/zero");
  EXPECT_EQ(dev.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dev.status().message().find("not a regular file"), std::string::npos);
}

TEST(FilesTest, NewFilesNeverReplaceOldOnes) {
  const std::string path = TempDir() + "/new-only.txt";
  std::filesystem::remove(path);
  ASSERT_TRUE(WriteNewFileAtomically(path, "first").ok());
  EXPECT_EQ(WriteNewFileAtomically(path, "second").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(path), "first");
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(TempDir())) {
    if (e.path().filename().string().rfind("new-only.txt", 0) == 0) ++count;
  }
  EXPECT_EQ(count, 1);  // no temporary left behind
}

TEST(FilesTest, OutputPathsAreCheckedAgainstInputsAndExistingFiles) {
  const std::string dir = TempDir() + "/outputs";
  std::filesystem::create_directories(dir);
  const std::string input = dir + "/bundle.move", existing = dir + "/report.json";
  ASSERT_TRUE(WriteFileAtomically(input, "bundle").ok());
  ASSERT_TRUE(WriteFileAtomically(existing, "old").ok());
  const std::vector<NamedPath> inputs = {{"--bundle", input}};
  EXPECT_TRUE(CheckOutputPath("--report", dir + "/new.json", inputs, false).ok());
  EXPECT_TRUE(CheckOutputPath("--report", "", inputs, false).ok());
  // The input, by its own name, through a symlink or another spelling: never, even with overwrite.
  std::filesystem::remove(dir + "/link.move");
  std::filesystem::create_symlink(input, dir + "/link.move");
  for (const std::string& same : {input, dir + "/link.move", dir + "/./bundle.move"}) {
    absl::Status s = CheckOutputPath("--report", same, inputs, true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << same;
    EXPECT_NE(s.message().find("--bundle"), std::string::npos) << s;
  }
  EXPECT_EQ(CheckOutputPath("--report", existing, inputs, false).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(CheckOutputPath("--report", existing, inputs, true).ok());
  EXPECT_EQ(CheckOutputPath("--report", dir, inputs, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckOutputPath("--report", dir + "/missing/r.json", inputs, false).code(), absl::StatusCode::kNotFound);
  // Folders: new or empty only, never holding an input.
  EXPECT_TRUE(CheckOutputFolder("--export", dir + "/new/deeper", inputs).ok());
  EXPECT_EQ(CheckOutputFolder("--export", dir, {}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CheckOutputFolder("--export", dir, inputs).code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::create_directories(dir + "/empty");
  EXPECT_TRUE(CheckOutputFolder("--export", dir + "/empty", inputs).ok());
  EXPECT_EQ(CheckOutputFolder("--export", existing, {}).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace move::core
