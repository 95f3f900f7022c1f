// Datasets for the MOVE SDK: images as float tensors in [0, 1] with int64 labels.
//
// Loads Fashion-MNIST (the embedded default), CIFAR-10 binary batches and image-folder
// trees, and checks them on the way in:
//
//   absl::StatusOr<move::Dataset> train =
//       move::LoadFashionMnist(move::kDefaultFashionMnistDir, move::Split::kTrain);
//   if (!train.ok()) { std::cerr << train.status() << "\n"; return 1; }
//   // train->images: 60000 x 1 x 28 x 28 float32, train->labels: 60000 int64.
//
// Every loader returns kNotFound for a missing file and kDataLoss for a file that is
// truncated, has a bad magic number or disagrees with its partner (image/label counts), and
// the message names the file.
#ifndef MOVE_SDK_DATASET_H_
#define MOVE_SDK_DATASET_H_

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace move {

// A labelled image dataset held in memory.
struct Dataset {
  // float32, N x C x H x W, values in [0, 1], contiguous, on the CPU.
  at::Tensor images;
  // int64, N, values in [0, num_classes).
  at::Tensor labels;
  // Number of classes K.
  int64_t num_classes = 0;
  // Human-readable origin, e.g. "fashion-mnist/train".
  std::string name;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t channels() const { return images.defined() ? images.size(1) : 0; }
};

// Which half of a dataset with a fixed train/test split to load.
enum class Split { kTrain, kTest };

// Where Debian's `dataset-fashion-mnist` package installs the data.
inline constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Loads Fashion-MNIST from `dir`, which holds the four gzip'd IDX files
// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz. Returns 1-channel 28 x 28 images.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split);

// Loads one pair of gzip'd IDX files (images, labels) such as MNIST-format data.
absl::StatusOr<Dataset> LoadIdxPair(const std::string& images_path,
                                    const std::string& labels_path, int64_t num_classes);

// Loads CIFAR-10 binary batches from `dir` (data_batch_1.bin ... data_batch_5.bin for
// kTrain, test_batch.bin for kTest). Returns 3-channel 32 x 32 images.
absl::StatusOr<Dataset> LoadCifar10(const std::string& dir, Split split);

// Loads an image-folder tree: root/<class name>/<image>.{png,jpg,jpeg,bmp}. Classes are the
// sub-directory names in sorted order; all images must share one size. Images are 1-channel
// if every file is grey, 3-channel otherwise.
absl::StatusOr<Dataset> LoadImageFolder(const std::string& root);

// Checks the invariants documented on Dataset; kInvalidArgument naming the broken one.
absl::Status ValidateDataset(const Dataset& dataset);

// Returns `dataset` with 3 channels: grey images are repeated over R, G and B; 3-channel
// datasets are returned unchanged (sharing storage).
Dataset ToRgb(const Dataset& dataset);

// Returns the samples at `indices` (int64 tensor), in that order.
absl::StatusOr<Dataset> SelectSamples(const Dataset& dataset, const at::Tensor& indices);

// Returns `count` samples drawn without replacement by a seeded shuffle (stable for a given
// seed). kInvalidArgument if count is not in [1, size].
absl::StatusOr<Dataset> SampleSubset(const Dataset& dataset, int64_t count, uint64_t seed);

}  // namespace move

#endif  // MOVE_SDK_DATASET_H_
