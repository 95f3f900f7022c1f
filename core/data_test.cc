// Tests for the dataset loaders and image files (sdk/dataset.h, sdk/image.h).
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "gtest/gtest.h"
#include "sdk/dataset.h"
#include "sdk/image.h"

namespace move {
namespace {

namespace fs = std::filesystem;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

const std::string kIdx = "testdata/idx/";
const std::string kCorrupt = "testdata/corrupt/";

TEST(IdxTest, LoadsValidPair) {
  auto d = LoadIdxPair(kIdx + "tiny-images-idx3-ubyte.gz", kIdx + "tiny-labels-idx1-ubyte.gz", 10);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->images.sizes(), (std::vector<int64_t>{20, 1, 28, 28}));
  EXPECT_EQ(d->labels.sizes(), (std::vector<int64_t>{20}));
  EXPECT_EQ(d->images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(d->labels[13].item<int64_t>(), 3);
  // Pixel (i, j) was written as (i * 7 + j) % 256.
  EXPECT_FLOAT_EQ(d->images[2][0][0][5].item<float>(), (2 * 7 + 5) / 255.0f);
  EXPECT_TRUE(ValidateDataset(*d).ok());
}

TEST(IdxTest, MissingFileIsNotFoundAndNamed) {
  auto d = LoadIdxPair(kIdx + "nope-images.gz", kIdx + "tiny-labels-idx1-ubyte.gz", 10);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("nope-images.gz"), std::string::npos);
}

struct CorruptCase {
  std::string images, labels, message_part;
};

class CorruptIdxTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(CorruptIdxTest, RefusedWithDataLossNamingTheFile) {
  const CorruptCase& c = GetParam();
  auto d = LoadIdxPair(c.images, c.labels, 10);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss) << d.status();
  EXPECT_NE(d.status().message().find(c.message_part), std::string::npos) << d.status();
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, CorruptIdxTest,
    ::testing::Values(
        CorruptCase{kCorrupt + "bad_magic-images-idx3-ubyte.gz", kIdx + "tiny-labels-idx1-ubyte.gz", "bad magic"},
        CorruptCase{kCorrupt + "truncated-images-idx3-ubyte.gz", kIdx + "tiny-labels-idx1-ubyte.gz", "truncated-images"},
        CorruptCase{kCorrupt + "short-images-idx3-ubyte.gz", kIdx + "tiny-labels-idx1-ubyte.gz", "short-images"},
        CorruptCase{kIdx + "tiny-images-idx3-ubyte.gz", kCorrupt + "mismatch-labels-idx1-ubyte.gz", "19 labels"}));

TEST(FashionMnistTest, LoadsDebianPackage) {
  auto test = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(test->images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(test->num_classes, 10);
  EXPECT_EQ(test->name, "fashion-mnist/test");
  // Balanced classes: 1000 test images per class.
  EXPECT_EQ(torch::bincount(test->labels).min().item<int64_t>(), 1000);
}

TEST(FashionMnistTest, MissingDirectoryIsNotFound) {
  auto d = LoadFashionMnist("/no/such/dir", Split::kTrain);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("/no/such/dir/train-images-idx3-ubyte.gz"), std::string::npos);
}

TEST(Cifar10Test, LoadsBatchesAndRefusesShortFile) {
  const std::string dir = TempDir() + "/cifar";
  fs::create_directories(dir);
  // A valid test batch of 3 records: label byte then 3072 pixel bytes.
  std::string batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back(static_cast<char>(i + 4));
    batch.append(3072, static_cast<char>(i * 50));
  }
  std::ofstream(dir + "/test_batch.bin", std::ios::binary) << batch;
  auto d = LoadCifar10(dir, Split::kTest);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->images.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  EXPECT_EQ(d->labels[2].item<int64_t>(), 6);
  EXPECT_FLOAT_EQ(d->images[1][2][31][31].item<float>(), 50 / 255.0f);

  auto missing = LoadCifar10(dir, Split::kTrain);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("data_batch_1.bin"), std::string::npos);
}

TEST(Cifar10Test, ShortBatchIsDataLoss) {
  const std::string dir = TempDir() + "/cifar_short";
  fs::create_directories(dir);
  fs::copy_file(kCorrupt + "cifar_short.bin", dir + "/test_batch.bin", fs::copy_options::overwrite_existing);
  auto d = LoadCifar10(dir, Split::kTest);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(d.status().message().find("test_batch.bin"), std::string::npos);
}

TEST(ImageFolderTest, LoadsClassesInSortedOrder) {
  const std::string root = TempDir() + "/folder";
  for (const char* cls : {"cat", "ant"}) {
    fs::create_directories(root + "/" + cls);
    for (int i = 0; i < 2; ++i) {
      at::Tensor img = torch::full({3, 8, 8}, cls[0] == 'a' ? 0.2f : 0.8f);
      ASSERT_TRUE(SavePng(root + "/" + cls + "/" + std::to_string(i) + ".png", img).ok());
    }
  }
  auto d = LoadImageFolder(root);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->num_classes, 2);
  EXPECT_EQ(d->images.sizes(), (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_EQ(d->labels[0].item<int64_t>(), 0);  // "ant" sorts first
  EXPECT_NEAR(d->images[0].mean().item<float>(), 0.2f, 1.0f / 255);
  EXPECT_NEAR(d->images[3].mean().item<float>(), 0.8f, 1.0f / 255);
}

TEST(ImageFolderTest, MixedSizesAndBadFilesAreRefused) {
  const std::string root = TempDir() + "/folder_bad";
  fs::create_directories(root + "/a");
  ASSERT_TRUE(SavePng(root + "/a/0.png", torch::zeros({1, 8, 8})).ok());
  ASSERT_TRUE(SavePng(root + "/a/1.png", torch::zeros({1, 9, 8})).ok());
  auto d = LoadImageFolder(root);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("1.png"), std::string::npos);

  fs::remove(root + "/a/1.png");
  fs::copy_file(kCorrupt + "not_an_image.png", root + "/a/2.png");
  d = LoadImageFolder(root);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(d.status().message().find("2.png"), std::string::npos);

  EXPECT_EQ(LoadImageFolder(TempDir() + "/none").status().code(), absl::StatusCode::kNotFound);
}

TEST(ImageTest, StyleImagesLoadAndPngRoundTrips) {
  auto style = LoadImage("testdata/style_leopard.png");
  ASSERT_TRUE(style.ok()) << style.status();
  EXPECT_EQ(style->size(0), 3);
  EXPECT_EQ(style->size(1), 62);
  EXPECT_EQ(style->size(2), 64);
  const std::string path = TempDir() + "/round.png";
  ASSERT_TRUE(SavePng(path, *style).ok());
  auto again = LoadImage(path);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(*style, *again));
}

TEST(ImageTest, BadImagesAreRefused) {
  auto bad = LoadImage(kCorrupt + "not_an_image.png");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not_an_image.png"), std::string::npos);
  EXPECT_EQ(LoadImage("testdata/missing.png").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SavePng(TempDir() + "/x.png", torch::full({3, 4, 4}, 1.5f)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageTest, ScoreStripsDrawOneBandPerRow) {
  ScoreRow a{{0.9, 0.95, 0.99}, {0.1, 0.05, 0.2}, true};
  ScoreRow b{{0.1}, {0.12}, false};
  const std::string path = TempDir() + "/scores.png";
  ASSERT_TRUE(SaveScoreStrips(path, {a, b, {}}).ok());
  auto img = LoadImage(path);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->size(2), 512);
  EXPECT_EQ(img->size(1), 3 * 52 + 6);
  // Red appears (the flagged suspect's bars), so does grey.
  at::Tensor red = img->select(0, 0).gt(0.8) & img->select(0, 1).lt(0.2);
  EXPECT_GT(red.sum().item<int64_t>(), 0);
  EXPECT_EQ(SaveScoreStrips(path, {ScoreRow{{1.5}, {0.1}, false}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SaveScoreStrips(path, {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(DatasetTest, ToRgbSubsetAndValidation) {
  Dataset d;
  d.images = torch::rand({10, 1, 5, 5});
  d.labels = torch::arange(10, torch::kInt64) % 3;
  d.num_classes = 3;
  Dataset rgb = ToRgb(d);
  EXPECT_EQ(rgb.channels(), 3);
  EXPECT_TRUE(torch::equal(rgb.images.select(1, 2), d.images.select(1, 0)));
  auto sub = SampleSubset(d, 4, 7);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->size(), 4);
  EXPECT_TRUE(torch::equal(sub->labels, SampleSubset(d, 4, 7)->labels));
  EXPECT_EQ(SampleSubset(d, 11, 7).status().code(), absl::StatusCode::kInvalidArgument);

  Dataset bad = d;
  bad.labels = bad.labels.narrow(0, 0, 9);
  EXPECT_EQ(ValidateDataset(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = d;
  bad.images = bad.images * 2;
  EXPECT_NE(ValidateDataset(bad).message().find("[0, 1]"), std::string::npos);
}

}  // namespace
}  // namespace move
