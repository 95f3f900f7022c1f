// Dataset loaders (implements sdk/dataset.h).
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/dataset.h"
#include "stb/stb_image.h"

namespace move {
namespace {

namespace fs = std::filesystem;

// Reads a whole gzip file. A missing file is kNotFound; a corrupt or truncated stream is
// kDataLoss naming the file.
absl::StatusOr<std::string> ReadGzip(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat("file not found: ", path));
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path));
  std::string out;
  std::vector<char> buf(1 << 20);
  while (true) {
    int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      return absl::DataLossError(absl::StrCat(path, ": corrupt gzip stream (", msg, ")"));
    }
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  // zlib reports a stream cut short only at close time (Z_BUF_ERROR).
  int rc = gzclose(f);
  if (rc != Z_OK) {
    return absl::DataLossError(absl::StrCat(path, ": truncated or corrupt gzip file"));
  }
  return out;
}

uint32_t BigEndian32(const std::string& s, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

absl::StatusOr<at::Tensor> ParseIdxImages(const std::string& path, const std::string& raw) {
  if (raw.size() < 16) return absl::DataLossError(absl::StrCat(path, ": too short for an IDX image header"));
  const uint32_t magic = BigEndian32(raw, 0);
  if (magic != 0x00000803) {
    return absl::DataLossError(absl::StrCat(path, ": bad magic number 0x", absl::Hex(magic),
                                            " (expected 0x803, unsigned byte 3-D images)"));
  }
  const int64_t n = BigEndian32(raw, 4), h = BigEndian32(raw, 8), w = BigEndian32(raw, 12);
  if (n == 0 || h == 0 || w == 0) return absl::DataLossError(absl::StrCat(path, ": empty image file"));
  const uint64_t expected = 16 + static_cast<uint64_t>(n) * h * w;
  if (raw.size() != expected) {
    return absl::DataLossError(absl::StrCat(path, ": holds ", raw.size(), " bytes but its header (",
                                            n, " images of ", h, "x", w, ") needs ", expected));
  }
  at::Tensor bytes = torch::from_blob(const_cast<char*>(raw.data() + 16), {n, 1, h, w}, torch::kUInt8);
  return bytes.to(torch::kFloat32).div_(255.0f).contiguous();
}

absl::StatusOr<at::Tensor> ParseIdxLabels(const std::string& path, const std::string& raw,
                                          int64_t num_classes) {
  if (raw.size() < 8) return absl::DataLossError(absl::StrCat(path, ": too short for an IDX label header"));
  const uint32_t magic = BigEndian32(raw, 0);
  if (magic != 0x00000801) {
    return absl::DataLossError(absl::StrCat(path, ": bad magic number 0x", absl::Hex(magic),
                                            " (expected 0x801, unsigned byte labels)"));
  }
  const int64_t n = BigEndian32(raw, 4);
  if (raw.size() != 8 + static_cast<uint64_t>(n)) {
    return absl::DataLossError(absl::StrCat(path, ": holds ", raw.size() - 8, " labels but its header says ", n));
  }
  at::Tensor labels =
      torch::from_blob(const_cast<char*>(raw.data() + 8), {n}, torch::kUInt8).to(torch::kInt64);
  const int64_t max_label = n > 0 ? labels.max().item<int64_t>() : 0;
  if (max_label >= num_classes) {
    return absl::DataLossError(absl::StrCat(path, ": label ", max_label, " out of range for ",
                                            num_classes, " classes"));
  }
  return labels;
}

}  // namespace

absl::StatusOr<Dataset> LoadIdxPair(const std::string& images_path,
                                    const std::string& labels_path, int64_t num_classes) {
  return core::GuardTorch("loading IDX data", [&]() -> absl::StatusOr<Dataset> {
    MOVE_ASSIGN_OR_RETURN(std::string raw_images, ReadGzip(images_path));
    MOVE_ASSIGN_OR_RETURN(std::string raw_labels, ReadGzip(labels_path));
    MOVE_ASSIGN_OR_RETURN(at::Tensor images, ParseIdxImages(images_path, raw_images));
    MOVE_ASSIGN_OR_RETURN(at::Tensor labels, ParseIdxLabels(labels_path, raw_labels, num_classes));
    if (images.size(0) != labels.size(0)) {
      return absl::DataLossError(absl::StrCat(images_path, " holds ", images.size(0), " images but ",
                                              labels_path, " holds ", labels.size(0), " labels"));
    }
    Dataset d;
    d.images = images;
    d.labels = labels;
    d.num_classes = num_classes;
    d.name = images_path;
    return d;
  });
}

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  MOVE_ASSIGN_OR_RETURN(Dataset d, LoadIdxPair(absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte.gz"),
                                               absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte.gz"),
                                               /*num_classes=*/10));
  d.name = absl::StrCat("fashion-mnist/", split == Split::kTrain ? "train" : "test");
  return d;
}

absl::StatusOr<Dataset> LoadCifar10(const std::string& dir, Split split) {
  return core::GuardTorch("loading CIFAR-10", [&]() -> absl::StatusOr<Dataset> {
    std::vector<std::string> files;
    if (split == Split::kTrain) {
      for (int i = 1; i <= 5; ++i) files.push_back(absl::StrCat(dir, "/data_batch_", i, ".bin"));
    } else {
      files.push_back(absl::StrCat(dir, "/test_batch.bin"));
    }
    constexpr int64_t kRecord = 1 + 3 * 32 * 32;
    std::vector<at::Tensor> images, labels;
    for (const std::string& file : files) {
      MOVE_ASSIGN_OR_RETURN(std::string raw, core::ReadFile(file));
      if (raw.empty() || raw.size() % kRecord != 0) {
        return absl::DataLossError(absl::StrCat(file, ": size ", raw.size(),
                                                " is not a positive multiple of the 3073-byte CIFAR-10 record"));
      }
      const int64_t n = raw.size() / kRecord;
      at::Tensor records =
          torch::from_blob(raw.data(), {n, kRecord}, torch::kUInt8).clone();
      at::Tensor l = records.select(1, 0).to(torch::kInt64);
      if (l.max().item<int64_t>() > 9) {
        return absl::DataLossError(absl::StrCat(file, ": label byte above 9; not a CIFAR-10 batch"));
      }
      labels.push_back(l);
      images.push_back(records.narrow(1, 1, kRecord - 1).reshape({n, 3, 32, 32}));
    }
    Dataset d;
    d.images = torch::cat(images).to(torch::kFloat32).div_(255.0f).contiguous();
    d.labels = torch::cat(labels).contiguous();
    d.num_classes = 10;
    d.name = absl::StrCat("cifar10/", split == Split::kTrain ? "train" : "test");
    return d;
  });
}

absl::StatusOr<Dataset> LoadImageFolder(const std::string& root) {
  return core::GuardTorch("loading image folder", [&]() -> absl::StatusOr<Dataset> {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      return absl::NotFoundError(absl::StrCat("image folder not found: ", root));
    }
    std::vector<std::string> classes;
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.is_directory()) classes.push_back(entry.path().filename().string());
    }
    std::sort(classes.begin(), classes.end());
    if (classes.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(root, ": no class sub-directories"));
    }
    std::vector<std::pair<std::string, int64_t>> files;
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> class_files;
      for (const auto& entry : fs::directory_iterator(fs::path(root) / classes[c])) {
        std::string ext = entry.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
        if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp") {
          class_files.push_back(entry.path().string());
        }
      }
      std::sort(class_files.begin(), class_files.end());
      for (auto& f : class_files) files.emplace_back(f, c);
    }
    if (files.empty()) return absl::InvalidArgumentError(absl::StrCat(root, ": no image files"));
    // First pass: sizes and channel counts.
    int width = 0, height = 0;
    bool any_colour = false;
    for (const auto& [path, label] : files) {
      int w, h, c;
      if (!stbi_info(path.c_str(), &w, &h, &c)) {
        return absl::DataLossError(absl::StrCat(path, ": cannot decode image (", stbi_failure_reason(), ")"));
      }
      if (width == 0) { width = w; height = h; }
      if (w != width || h != height) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": size ", w, "x", h, " differs from ",
                                                       width, "x", height, " of the first image"));
      }
      any_colour |= (c >= 3);
    }
    const int channels = any_colour ? 3 : 1;
    at::Tensor images = torch::empty({static_cast<int64_t>(files.size()), channels, height, width});
    at::Tensor labels = torch::empty({static_cast<int64_t>(files.size())}, torch::kInt64);
    for (size_t i = 0; i < files.size(); ++i) {
      int w, h, c;
      unsigned char* pixels = stbi_load(files[i].first.c_str(), &w, &h, &c, channels);
      if (pixels == nullptr) {
        return absl::DataLossError(absl::StrCat(files[i].first, ": cannot decode image (", stbi_failure_reason(), ")"));
      }
      at::Tensor hwc = torch::from_blob(pixels, {height, width, channels}, torch::kUInt8);
      images[i].copy_(hwc.permute({2, 0, 1}).to(torch::kFloat32).div(255.0f));
      stbi_image_free(pixels);
      labels[i] = files[i].second;
    }
    Dataset d;
    d.images = images;
    d.labels = labels;
    d.num_classes = static_cast<int64_t>(classes.size());
    d.name = root;
    return d;
  });
}

absl::Status ValidateDataset(const Dataset& d) {
  if (!d.images.defined() || !d.labels.defined()) {
    return absl::InvalidArgumentError("dataset: images and labels must be set");
  }
  if (d.images.dim() != 4) {
    return absl::InvalidArgumentError(absl::StrCat("dataset.images: expected N x C x H x W, got ", d.images.dim(), " dimensions"));
  }
  if (d.images.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError("dataset.images: expected float32");
  }
  if (d.labels.dim() != 1 || d.labels.scalar_type() != torch::kInt64) {
    return absl::InvalidArgumentError("dataset.labels: expected a 1-D int64 tensor");
  }
  if (d.images.size(0) != d.labels.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("dataset: ", d.images.size(0), " images but ",
                                                   d.labels.size(0), " labels"));
  }
  if (d.images.size(0) == 0) return absl::InvalidArgumentError("dataset: empty (0 samples)");
  if (d.images.size(1) != 1 && d.images.size(1) != 3) {
    return absl::InvalidArgumentError(absl::StrCat("dataset.images: expected 1 or 3 channels, got ", d.images.size(1)));
  }
  if (d.num_classes < 2) return absl::InvalidArgumentError("dataset.num_classes: must be at least 2");
  if (d.labels.min().item<int64_t>() < 0 || d.labels.max().item<int64_t>() >= d.num_classes) {
    return absl::InvalidArgumentError("dataset.labels: values outside [0, num_classes)");
  }
  if (!torch::isfinite(d.images).all().item<bool>() || d.images.min().item<float>() < 0.0f ||
      d.images.max().item<float>() > 1.0f) {
    return absl::InvalidArgumentError("dataset.images: values must be finite and in [0, 1]");
  }
  return absl::OkStatus();
}

Dataset ToRgb(const Dataset& d) {
  if (d.channels() != 1) return d;
  Dataset out = d;
  out.images = d.images.expand({-1, 3, -1, -1}).contiguous();
  return out;
}

absl::StatusOr<Dataset> SelectSamples(const Dataset& d, const at::Tensor& indices) {
  return core::GuardTorch("selecting samples", [&]() -> absl::StatusOr<Dataset> {
    Dataset out = d;
    at::Tensor idx = indices.to(torch::kInt64);
    out.images = d.images.index_select(0, idx).contiguous();
    out.labels = d.labels.index_select(0, idx).contiguous();
    return out;
  });
}

absl::StatusOr<Dataset> SampleSubset(const Dataset& d, int64_t count, uint64_t seed) {
  if (count < 1 || count > d.size()) {
    return absl::InvalidArgumentError(absl::StrCat("count: ", count, " is not in [1, ", d.size(), "]"));
  }
  return core::GuardTorch("sampling a subset", [&]() -> absl::StatusOr<Dataset> {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    at::Tensor perm = torch::randperm(d.size(), gen, torch::TensorOptions().dtype(torch::kInt64)).narrow(0, 0, count);
    return SelectSamples(d, perm);
  });
}

}  // namespace move
