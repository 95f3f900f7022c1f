// The suspect sandbox: honest models answer as in-process; hostile ones (file readers and
// writers, endless loops, memory bombs, parser crashes) end in "examination failed" with the
// examiner alive and its files untouched.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "sdk/blackbox.h"
#include "sdk/model.h"
#include "tests/hostile_models.h"
#include "verifier/channels.h"

namespace move {
namespace {

std::string Tmp(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return absl::StrCat(t ? t : "/tmp", "/", name);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

SandboxOptions Options() {
  SandboxOptions o;
  o.worker_path = "cli/move_suspect_worker";  // runfiles
  o.memory_bytes = int64_t{3} << 30;
  o.request_timeout_ms = 20000;
  return o;
}

at::Tensor Images(int n = 4) { return torch::rand({n, 3, 16, 16}, at::make_generator<at::CPUGeneratorImpl>(2)); }

std::string SavedCnn(const std::string& name) {
  ModelSpec spec;
  spec.seed = 5;
  auto m = CreateModel(spec);
  EXPECT_TRUE(m.ok());
  const std::string path = Tmp(name);
  EXPECT_TRUE(SaveModel(*m, path).ok());
  return path;
}

TEST(SandboxTest, AnHonestModelAnswersAsItDoesInProcess) {
  const std::string path = SavedCnn("honest.pt");
  auto sandboxed = OpenSandboxedModelChannel(path, Options());
  ASSERT_TRUE(sandboxed.ok()) << sandboxed.status();
  auto local = OpenModelChannel(path);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ((*sandboxed)->Describe(), "sandbox:" + path);
  EXPECT_EQ((*sandboxed)->ModelSha256(), (*local)->ModelSha256());
  for (int round = 0; round < 3; ++round) {
    auto a = (*sandboxed)->Predict(Images(3 + round));
    auto b = (*local)->Predict(Images(3 + round));
    ASSERT_TRUE(a.ok()) << a.status();
    auto pa = verifier_internal::ParseAnswers(a->response, 3 + round, 10, false);
    auto pb = verifier_internal::ParseAnswers(b->response, 3 + round, 10, false);
    ASSERT_TRUE(pa.ok() && pb.ok());
    EXPECT_TRUE(torch::allclose(pa->probabilities, pb->probabilities, 1e-5, 1e-6));
  }
}

void ExpectExaminationFailed(const absl::Status& s, const std::string& needle) {
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(s.message().rfind("examination failed:", 0), 0u) << s;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s;
}

TEST(SandboxTest, CodeThatReadsOrWritesTheExaminersFilesGetsNoFile) {
  const std::string key = Tmp("vendor.key"), evidence = Tmp("evidence.bin");
  WriteBytes(key, "SECRETKEY-0123456789");
  WriteBytes(evidence, "ORIGINAL-EVIDENCE-BYTES");
  for (const auto& [name, body] : {std::make_pair("reader.pt", testing::ReadsFileBody(key)),
                                   std::make_pair("writer.pt", testing::WritesFileBody(evidence))}) {
    const std::string path = Tmp(name);
    ASSERT_TRUE(testing::SaveModule(path, body).ok());
    auto ch = OpenSandboxedModelChannel(path, Options());
    ASSERT_TRUE(ch.ok()) << ch.status();
    auto a = (*ch)->Predict(Images());
    ExpectExaminationFailed(a.status(), "Operation not permitted");  // the filter refused open()
    // Every later request gets the same failure; nothing half-answered.
    EXPECT_EQ((*ch)->Predict(Images()).status(), a.status());
  }
  EXPECT_EQ(ReadBytes(evidence), "ORIGINAL-EVIDENCE-BYTES");
  // The same writer run in-process overwrites its target: the fixture is real.
  const std::string scratch = Tmp("scratch.bin");
  WriteBytes(scratch, "ORIGINAL-EVIDENCE-BYTES");
  ASSERT_TRUE(testing::SaveModule(Tmp("proof.pt"), testing::WritesFileBody(scratch)).ok());
  auto local = OpenModelChannel(Tmp("proof.pt"));
  ASSERT_TRUE(local.ok());
  ASSERT_TRUE((*local)->Predict(Images()).ok());
  EXPECT_EQ(ReadBytes(scratch).substr(0, 8), "XXXXXXXX");
}

TEST(SandboxTest, AnEndlessLoopIsKilledAtTheRequestDeadline) {
  ASSERT_TRUE(testing::SaveModule(Tmp("loop.pt"), testing::EndlessLoopBody()).ok());
  SandboxOptions o = Options();
  o.request_timeout_ms = 1500;
  auto ch = OpenSandboxedModelChannel(Tmp("loop.pt"), o);
  ASSERT_TRUE(ch.ok()) << ch.status();
  const auto t0 = std::chrono::steady_clock::now();
  auto a = (*ch)->Predict(Images());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ExpectExaminationFailed(a.status(), "1500 ms limit");
  EXPECT_LT(seconds, 10.0);
}

TEST(SandboxTest, AMemoryBombStopsAtTheMemoryLimit) {
  ASSERT_TRUE(testing::SaveModule(Tmp("bomb.pt"), testing::MemoryBombBody()).ok());
  SandboxOptions o = Options();
  o.memory_bytes = int64_t{1} << 30;
  // Touching 1 GiB page by page takes about 11 s on a 2-core machine alone and twice that when
  // the cores are shared; what is tested here is the memory limit, so the deadline is far off.
  o.request_timeout_ms = 120000;
  auto ch = OpenSandboxedModelChannel(Tmp("bomb.pt"), o);
  ASSERT_TRUE(ch.ok()) << ch.status();
  auto a = (*ch)->Predict(Images());
  ExpectExaminationFailed(a.status(), "bad_alloc");
}

TEST(SandboxTest, AModelThatCrashesTheInterpreterFailsTheExaminationOnly) {
  const std::string honest = SavedCnn("to-crash.pt"), crash = Tmp("crash.pt");
  std::filesystem::remove(crash);
  ASSERT_TRUE(testing::WriteParserCrash(honest, crash).ok());
  auto ch = OpenSandboxedModelChannel(crash, Options());
  ExpectExaminationFailed(ch.status(), "signal 11");
  EXPECT_NE(ch.status().message().find("loading the model"), std::string::npos);
}

TEST(SandboxTest, BadOptionsAndAMissingWorkerAreRefusedBeforeAnythingRuns) {
  const std::string path = SavedCnn("opts.pt");
  SandboxOptions o = Options();
  o.worker_path = Tmp("no-such-worker");
  EXPECT_EQ(OpenSandboxedModelChannel(path, o).status().code(), absl::StatusCode::kFailedPrecondition);
  o = Options();
  o.threads = 0;
  EXPECT_EQ(OpenSandboxedModelChannel(path, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options();
  o.max_model_bytes = 100;
  EXPECT_EQ(OpenSandboxedModelChannel(path, o).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(OpenSandboxedModelChannel(Tmp("missing.pt"), Options()).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace move
