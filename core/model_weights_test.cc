// Reading a suspect's weights without running its code: every format an opposing party hands
// over, hostile code that never runs, and malformed files refused with the problem named.
#include <zip.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "sdk/model.h"
#include "tests/hostile_models.h"

namespace move {
namespace {

using namespace std::string_literals;  // NOLINT: byte strings with NULs

std::string Tmp(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  return absl::StrCat(t ? t : "/tmp", "/", name);
}

ModelSpec Cnn() {
  ModelSpec s;
  s.seed = 3;
  return s;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A zip archive holding `entries` (name, bytes), stored or deflated.
void WriteZip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& entries, bool deflate = false) {
  std::filesystem::remove(path);
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_EXCL, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* s = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    const zip_int64_t i = zip_file_add(z, name.c_str(), s, ZIP_FL_OVERWRITE);
    zip_set_file_compression(z, i, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

at::Tensor Images() { return torch::rand({4, 3, 16, 16}, at::make_generator<at::CPUGeneratorImpl>(1)); }

TEST(ModelWeightsTest, ReadsAnSdkTorchScriptArchiveAndReproducesTheModel) {
  auto model = CreateModel(Cnn());
  ASSERT_TRUE(model.ok());
  const std::string path = Tmp("sdk.pt");
  ASSERT_TRUE(SaveModel(*model, path).ok());
  auto w = ReadModelWeights(path);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->format, "torchscript");
  EXPECT_EQ(w->sha256.size(), 64u);
  size_t expected = 0;
  for (const auto& p : model->named_parameters()) {
    (void)p;
    ++expected;
  }
  for (const auto& b : model->named_buffers()) {
    (void)b;
    ++expected;
  }
  EXPECT_EQ(w->tensors.size(), expected);
  auto rebuilt = ModelFromWeights(Cnn(), *w);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  auto a = PredictProbabilities(*model, Images());
  auto b = PredictProbabilities(*rebuilt, Images());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::allclose(*a, *b, 1e-6, 1e-7));
}

TEST(ModelWeightsTest, ReadsAStateDictAndSafetensorsAndACheckpoint) {
  auto model = CreateModel(Cnn());
  ASSERT_TRUE(model.ok());
  // torch::pickle_save writes the zip format torch.save does (data.pkl + data/N).
  c10::Dict<std::string, at::Tensor> sd;
  std::vector<std::pair<std::string, at::Tensor>> all;
  for (const auto& p : model->named_parameters()) all.emplace_back(p.name, p.value.detach());
  for (const auto& b : model->named_buffers()) all.emplace_back(b.name, b.value);
  for (const auto& [n, t] : all) sd.insert("module." + n, t);  // as a DataParallel wrapper saves it
  const std::vector<char> zip = torch::pickle_save(sd);
  const std::string sd_path = Tmp("state_dict.pt");
  WriteBytes(sd_path, std::string(zip.begin(), zip.end()));
  auto w = ReadModelWeights(sd_path);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->format, "torch.save");
  EXPECT_TRUE(ModelFromWeights(Cnn(), *w).ok());

  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert("epoch", 7);
  checkpoint.insert("state_dict", sd);
  const std::vector<char> ck = torch::pickle_save(checkpoint);
  WriteBytes(Tmp("checkpoint.pt"), std::string(ck.begin(), ck.end()));
  auto wc = ReadModelWeights(Tmp("checkpoint.pt"));
  ASSERT_TRUE(wc.ok()) << wc.status();
  EXPECT_TRUE(ModelFromWeights(Cnn(), *wc).ok());

  // safetensors: 8-byte header length, JSON header, raw little-endian data.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (const auto& [n, t] : all) {
    const at::Tensor c = t.to(torch::kFloat32).contiguous();
    const bool is_long = t.scalar_type() == torch::kLong;
    const at::Tensor stored = is_long ? t.contiguous() : c;
    const size_t begin = data.size();
    data.append(static_cast<const char*>(stored.data_ptr()), stored.numel() * stored.element_size());
    std::string shape;
    for (int64_t d : t.sizes()) absl::StrAppend(&shape, shape.empty() ? "" : ",", d);
    absl::StrAppend(&header, ",\"", n, "\":{\"dtype\":\"", is_long ? "I64" : "F32", "\",\"shape\":[", shape,
                    "],\"data_offsets\":[", begin, ",", data.size(), "]}");
  }
  header += "}";
  std::string file;
  for (int k = 0; k < 8; ++k) file.push_back(static_cast<char>((header.size() >> (8 * k)) & 0xff));
  WriteBytes(Tmp("model.safetensors"), file + header + data);
  auto ws = ReadModelWeights(Tmp("model.safetensors"));
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_EQ(ws->format, "safetensors");
  auto rebuilt = ModelFromWeights(Cnn(), *ws);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_TRUE(torch::allclose(*PredictProbabilities(*model, Images()), *PredictProbabilities(*rebuilt, Images())));

  // Bad offsets are refused.
  std::string bad = header;
  bad.replace(bad.find("\"data_offsets\":[0,"), 18, "\"data_offsets\":[1,");
  std::string bad_file;
  for (int k = 0; k < 8; ++k) bad_file.push_back(static_cast<char>((bad.size() >> (8 * k)) & 0xff));
  WriteBytes(Tmp("bad.safetensors"), bad_file + bad + data);
  auto wb = ReadModelWeights(Tmp("bad.safetensors"));
  EXPECT_EQ(wb.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wb.status().message().find("data_offsets"), std::string::npos) << wb.status();
}

TEST(ModelWeightsTest, HostileCodeNeverRunsAndTheSdkGraphAnswersHonestly) {
  auto victim = CreateModel(Cnn());
  ASSERT_TRUE(victim.ok());
  const std::string key = Tmp("vendor.key"), other = Tmp("other-evidence.bin");
  WriteBytes(key, "SECRETKEY-0123456789");
  WriteBytes(other, "ORIGINAL-EVIDENCE-BYTES");
  // The victim's exact weights, with a forward that writes over another file and answers
  // differently on large batches: what a white-box run used to execute.
  const std::string body = absl::StrCat(testing::WritesFileBody(other).substr(0, testing::WritesFileBody(other).find("    return")),
                                        "    t2 = torch.from_file(\"", key, "\", False, 8, dtype=0)\n",
                                        "    y = torch.zeros([x.size(0), 10]) + t2[0].float()\n",
                                        "    if x.size(0) > 8:\n",
                                        "        y = torch.roll(y, 1, 1)\n",
                                        "    return y\n");
  const std::string hostile = Tmp("hostile.pt");
  const absl::Status saved = testing::SaveModule(hostile, body, &*victim);
  ASSERT_TRUE(saved.ok()) << saved;
  auto w = ReadModelWeights(hostile);
  ASSERT_TRUE(w.ok()) << w.status();
  auto rebuilt = ModelFromWeights(Cnn(), *w);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_TRUE(torch::allclose(*PredictProbabilities(*victim, Images()), *PredictProbabilities(*rebuilt, Images()), 1e-6, 1e-7));
  EXPECT_EQ(ReadBytes(other), "ORIGINAL-EVIDENCE-BYTES");

  // The fixture is what it claims: run in this process, it overwrites the file.
  const std::string scratch = Tmp("scratch-evidence.bin");
  WriteBytes(scratch, "ORIGINAL-EVIDENCE-BYTES");
  const std::string proof = Tmp("proof.pt");
  ASSERT_TRUE(testing::SaveModule(proof, testing::WritesFileBody(scratch)).ok());
  auto loaded = LoadModel(proof);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(PredictProbabilities(*loaded, Images()).ok());
  EXPECT_EQ(ReadBytes(scratch).substr(0, 8), "XXXXXXXX");

  // A parser-crashing archive is only data to the reader.
  const std::string crash = Tmp("crash.pt");
  std::filesystem::remove(crash);
  ASSERT_TRUE(testing::WriteParserCrash(hostile, crash).ok());
  auto wc = ReadModelWeights(crash);
  ASSERT_TRUE(wc.ok()) << wc.status();
  EXPECT_TRUE(ModelFromWeights(Cnn(), *wc).ok());
}

TEST(ModelWeightsTest, RefusesWhatIsNotTensorsWithTheProblemNamed) {
  auto expect_invalid = [](const std::string& path, const std::string& needle) {
    auto w = ReadModelWeights(path);
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << path << ": " << w.status();
    EXPECT_NE(w.status().message().find(needle), std::string::npos) << w.status();
  };
  EXPECT_EQ(ReadModelWeights(Tmp("missing.pt")).status().code(), absl::StatusCode::kNotFound);
  WriteBytes(Tmp("random.bin"), std::string(100, 'z'));
  expect_invalid(Tmp("random.bin"), "not a model weights file");
  WriteBytes(Tmp("legacy.pt"), std::string("\x80\x02\x8a\x0a", 4) + std::string(60, '\0'));
  expect_invalid(Tmp("legacy.pt"), "legacy");
  // A pickle that calls os.system, as a malicious torch.save file would.
  const std::string evil = std::string("\x80\x02") + "cos\nsystem\n" + "X\x05\x00\x00\x00touch"s + "\x85" + "R.";
  WriteZip(Tmp("evil.pt"), {{"evil/data.pkl", evil}});
  expect_invalid(Tmp("evil.pt"), "os.system");
  // builtins.eval by STACK_GLOBAL (protocol 4).
  const std::string evil4 = std::string("\x80\x04") + "\x8c\x08" + "builtins" + "\x8c\x04" + "eval" + "\x93" + ".";
  WriteZip(Tmp("evil4.pt"), {{"evil4/data.pkl", evil4}});
  expect_invalid(Tmp("evil4.pt"), "builtins.eval");
  // Truncated and unknown opcodes.
  WriteZip(Tmp("trunc.pt"), {{"t/data.pkl", "\x80\x02}q\x00(X\x05\x00\x00"s}});
  expect_invalid(Tmp("trunc.pt"), "truncated");
  WriteZip(Tmp("opcode.pt"), {{"o/data.pkl", std::string("\x80\x02\xff.", 4)}});
  expect_invalid(Tmp("opcode.pt"), "opcode 0xff");
  // A tensor view reaching past its storage.
  auto tensor_pkl = [](int numel_declared, int size) {
    std::string p = std::string("\x80\x02}") + "X\x01\x00\x00\x00w"s + "ctorch._utils\n_rebuild_tensor_v2\n(" +
                    "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"s "0" "X\x03\x00\x00\x00"s "cpu" +
                    "K" + std::string(1, static_cast<char>(numel_declared)) + "tQ" + "K\x00"s + "K" +
                    std::string(1, static_cast<char>(size)) + "\x85" + "K\x01\x85" + "\x89" + "tRs.";
    return p;
  };
  WriteZip(Tmp("view.pt"), {{"v/data.pkl", tensor_pkl(4, 9)}, {"v/data/0", std::string(16, '\0')}});
  expect_invalid(Tmp("view.pt"), "reaches element");
  // Storage bytes that disagree with the declared size.
  WriteZip(Tmp("short.pt"), {{"s/data.pkl", tensor_pkl(4, 4)}, {"s/data/0", std::string(12, '\0')}});
  expect_invalid(Tmp("short.pt"), "holds 12 bytes");
  // And the well-formed version of the same file reads.
  WriteZip(Tmp("good.pt"), {{"g/data.pkl", tensor_pkl(4, 4)}, {"g/data/0", std::string(16, '\0')}});
  auto good = ReadModelWeights(Tmp("good.pt"));
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->tensors.size(), 1u);
  EXPECT_EQ(good->tensors[0].first, "w");
  EXPECT_EQ(good->tensors[0].second.numel(), 4);
}

TEST(ModelWeightsTest, ADecompressionBombStopsAtTheLimit) {
  // 256 MiB of zeros deflate to a few hundred KiB.
  WriteZip(Tmp("bomb.pt"), {{"b/data.pkl", std::string("\x80\x02}.", 4)}, {"b/data/0", std::string(256 << 20, '\0')}},
           /*deflate=*/true);
  EXPECT_LT(std::filesystem::file_size(Tmp("bomb.pt")), 2u << 20);
  ReadWeightsOptions o;
  o.max_bytes = 64 << 20;
  auto w = ReadModelWeights(Tmp("bomb.pt"), o);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
  EXPECT_NE(w.status().message().find("decompression bomb"), std::string::npos);
}

TEST(ModelWeightsTest, WeightsThatDoNotFitTheArchitectureAreNamed) {
  auto model = CreateModel(Cnn());
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(SaveModel(*model, Tmp("fit.pt")).ok());
  auto w = ReadModelWeights(Tmp("fit.pt"));
  ASSERT_TRUE(w.ok());
  ModelSpec wide = Cnn();
  wide.width = 2;
  auto r = ModelFromWeights(wide, *w);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("has shape"), std::string::npos) << r.status();
  ModelWeights extra = *w;
  extra.tensors.emplace_back("backdoor_trigger", torch::zeros({3}));
  auto re = ModelFromWeights(Cnn(), extra);
  EXPECT_EQ(re.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(re.status().message().find("backdoor_trigger"), std::string::npos);
  std::vector<std::string> unused;
  auto lenient = ModelFromWeights(Cnn(), extra, c10::Device(c10::kCPU), &unused);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  EXPECT_EQ(unused, std::vector<std::string>{"backdoor_trigger"});
  ModelWeights nan = *w;
  nan.tensors[0].second = nan.tensors[0].second.clone().fill_(std::nan(""));
  EXPECT_EQ(ModelFromWeights(Cnn(), nan).status().code(), absl::StatusCode::kInvalidArgument);
  ModelWeights missing = *w;
  missing.tensors.pop_back();
  EXPECT_EQ(ModelFromWeights(Cnn(), missing).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace move
