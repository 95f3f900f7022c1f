// TorchScript round trips between the C++ SDK and Python PyTorch (/usr/bin/python3 + torch):
// every zoo architecture saved from C++ loads in Python with identical outputs, and a model
// fine-tuned and saved in Python loads back in C++ with Python's outputs.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sdk/model.h"
#include "sdk/train.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

void WriteTensor(const std::string& path, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(c.data_ptr()), c.nbytes());
  std::ofstream shape(path + ".shape");
  for (int64_t s : c.sizes()) shape << s << " ";
}

at::Tensor ReadTensor(const std::string& path, at::IntArrayRef shape) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  at::Tensor t = torch::empty(shape);
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.data_ptr(), bytes.data(), std::min<size_t>(bytes.size(), t.nbytes()));
  return t;
}

class InteropTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InteropTest, CppToPythonAndBack) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/python3")) << "python3-torch is not installed (tools/setup.sh)";
  const std::string dir = TempDir() + "/" + GetParam();
  std::filesystem::create_directories(dir);
  ModelSpec spec = *ParseModelSpec(GetParam());
  spec.in_channels = 3;
  spec.num_classes = 10;
  spec.seed = 11;
  auto model = CreateModel(spec);
  ASSERT_TRUE(model.ok());
  // A few training steps so BatchNorm running statistics are not the initial ones.
  Dataset d;
  d.images = torch::rand({16, 3, 24, 24}, at::make_generator<at::CPUGeneratorImpl>(5));
  d.labels = torch::arange(16, torch::kInt64) % 10;
  d.num_classes = 10;
  TrainOptions opts;
  opts.epochs = 1;
  opts.batch_size = 8;
  opts.show_progress = false;
  ASSERT_TRUE(TrainModel(*model, d, opts).ok());
  model->eval();
  ASSERT_TRUE(SaveModel(*model, dir + "/model.pt").ok());
  at::Tensor x = d.images.narrow(0, 0, 4);
  WriteTensor(dir + "/input.bin", x);
  at::Tensor cpp_out = model->forward({x}).toTensor();

  const std::string cmd = absl::StrCat("/usr/bin/python3 tests/python/interop.py ", dir, "/model.pt ", dir,
                                       "/input.bin ", dir, " > ", dir, "/python.log 2>&1");
  const int rc = std::system(cmd.c_str());
  std::ifstream log(dir + "/python.log");
  std::string log_text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  ASSERT_EQ(rc, 0) << log_text;

  at::Tensor py_out = ReadTensor(dir + "/python_out.bin", cpp_out.sizes());
  EXPECT_TRUE(torch::allclose(cpp_out, py_out, 1e-4, 1e-5)) << (cpp_out - py_out).abs().max();

  // The Python-fine-tuned model loads in C++ and reproduces Python's outputs.
  auto finetuned = LoadModel(dir + "/finetuned.pt");
  ASSERT_TRUE(finetuned.ok()) << finetuned.status();
  finetuned->eval();
  at::Tensor ft_cpp = finetuned->forward({x}).toTensor();
  at::Tensor ft_py = ReadTensor(dir + "/finetuned_out.bin", cpp_out.sizes());
  EXPECT_TRUE(torch::allclose(ft_cpp, ft_py, 1e-4, 1e-5));
  EXPECT_FALSE(torch::allclose(ft_cpp, cpp_out, 1e-4, 1e-5)) << "fine-tuning in Python changed nothing";
  // Its weights alone, read without running its code, in every form Python saved them,
  // reproduce Python's outputs in the SDK's own graph.
  for (const char* file : {"/finetuned.pt", "/finetuned_state_dict.pt", "/finetuned_checkpoint.pt"}) {
    auto w = ReadModelWeights(dir + file);
    ASSERT_TRUE(w.ok()) << file << ": " << w.status();
    auto rebuilt = ModelFromWeights(spec, *w);
    ASSERT_TRUE(rebuilt.ok()) << file << ": " << rebuilt.status();
    EXPECT_TRUE(torch::allclose(rebuilt->forward({x}).toTensor(), ft_py, 1e-4, 1e-5)) << file;
  }
  // And keeps training in C++.
  EXPECT_TRUE(TrainModel(*finetuned, d, opts).ok());
}

INSTANTIATE_TEST_SUITE_P(Zoo, InteropTest, ::testing::Values("cnn", "resnet18", "wrn-16-1", "vgg11"));

}  // namespace
}  // namespace move
