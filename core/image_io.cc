// Image files via stb (implements sdk/image.h).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/image.h"
#include "stb/stb_image.h"
#include "stb/stb_image_write.h"

namespace move {

absl::StatusOr<at::Tensor> LoadImage(const std::string& path) {
  MOVE_ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path));
  return core::GuardTorch(absl::StrCat("loading image ", path), [&]() -> absl::StatusOr<at::Tensor> {
    int w = 0, h = 0, c = 0;
    unsigned char* pixels =
        stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()),
                              static_cast<int>(bytes.size()), &w, &h, &c, 3);
    if (pixels == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot decode image (", stbi_failure_reason(), ")"));
    }
    at::Tensor image = torch::from_blob(pixels, {h, w, 3}, torch::kUInt8)
                           .permute({2, 0, 1})
                           .to(torch::kFloat32)
                           .div(255.0f)
                           .contiguous();
    stbi_image_free(pixels);
    return image;
  });
}

absl::Status SavePng(const std::string& path, const at::Tensor& image) {
  if (!image.defined() || image.dim() != 3 || (image.size(0) != 1 && image.size(0) != 3)) {
    return absl::InvalidArgumentError(absl::StrCat("SavePng(", path, "): expected a C x H x W tensor with C = 1 or 3"));
  }
  return core::GuardTorch(absl::StrCat("writing PNG ", path), [&]() -> absl::Status {
    at::Tensor f = image.detach().to(torch::kCPU).to(torch::kFloat32);
    if (!torch::isfinite(f).all().item<bool>() || f.min().item<float>() < 0.0f ||
        f.max().item<float>() > 1.0f) {
      return absl::InvalidArgumentError(absl::StrCat("SavePng(", path, "): pixel values outside [0, 1]"));
    }
    at::Tensor hwc = f.mul(255.0f).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    std::string png;
    auto append = [](void* ctx, void* data, int size) {
      static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size);
    };
    const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1)),
              c = static_cast<int>(hwc.size(2));
    if (!stbi_write_png_to_func(append, &png, w, h, c, hwc.data_ptr(), w * c)) {
      return absl::InternalError(absl::StrCat("SavePng(", path, "): PNG encoding failed"));
    }
    return core::WriteFileAtomically(path, png);
  });
}

at::Tensor MakeGrid(const at::Tensor& images, int columns) {
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t cols = std::max<int64_t>(1, std::min<int64_t>(columns, n));
  const int64_t rows = (n + cols - 1) / cols;
  at::Tensor grid = torch::ones({c, rows * (h + 1) + 1, cols * (w + 1) + 1});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / cols, col = i % cols;
    grid.narrow(1, 1 + r * (h + 1), h).narrow(2, 1 + col * (w + 1), w).copy_(images[i]);
  }
  return grid;
}

absl::Status SaveContactSheet(const std::string& path, const at::Tensor& originals,
                              const at::Tensor& styled, int columns, int scale) {
  if (!originals.defined() || !styled.defined() || originals.dim() != 4 || styled.dim() != 4 ||
      originals.size(0) != styled.size(0) || originals.size(2) != styled.size(2) ||
      originals.size(3) != styled.size(3)) {
    return absl::InvalidArgumentError("SaveContactSheet: originals and styled must be N x C x H x W of the same size");
  }
  if (columns < 1 || scale < 1) {
    return absl::InvalidArgumentError("SaveContactSheet: columns and scale must be >= 1");
  }
  return core::GuardTorch("making contact sheet", [&]() -> absl::Status {
    at::Tensor a = originals.detach().to(torch::kCPU).expand({-1, 3, -1, -1});
    at::Tensor b = styled.detach().to(torch::kCPU).expand({-1, 3, -1, -1});
    // Interleave one row of originals with the matching row of styled images.
    std::vector<at::Tensor> rows;
    for (int64_t start = 0; start < a.size(0); start += columns) {
      const int64_t len = std::min<int64_t>(columns, a.size(0) - start);
      rows.push_back(a.narrow(0, start, len));
      rows.push_back(b.narrow(0, start, len));
    }
    std::vector<at::Tensor> padded;
    for (auto& r : rows) {
      if (r.size(0) < columns) {
        r = torch::cat({r, torch::ones({columns - r.size(0), 3, r.size(2), r.size(3)})});
      }
      padded.push_back(r);
    }
    at::Tensor all = torch::cat(padded).clamp(0.0, 1.0);
    if (scale > 1) {
      all = all.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
    }
    return SavePng(path, MakeGrid(all, columns));
  });
}

absl::Status SaveScoreStrips(const std::string& path, const std::vector<ScoreRow>& rows) {
  constexpr int kBins = 50, kBinWidth = 10, kHalf = 22, kMargin = 6;
  const int width = kBins * kBinWidth + 2 * kMargin, band = 2 * kHalf + 8;
  if (rows.empty()) return absl::InvalidArgumentError("SaveScoreStrips: no rows");
  for (const ScoreRow& r : rows) {
    for (const auto* v : {&r.suspect, &r.reference}) {
      for (double x : *v) {
        if (!(x >= 0 && x <= 1)) return absl::InvalidArgumentError("SaveScoreStrips: scores must be in [0, 1]");
      }
    }
  }
  return core::GuardTorch("drawing score strips", [&]() -> absl::Status {
    const int height = static_cast<int>(rows.size()) * band + kMargin;
    at::Tensor img = torch::ones({3, height, width});
    auto a = img.accessor<float, 3>();
    auto fill = [&](int y0, int y1, int x0, int x1, float r, float g, float b) {
      for (int y = std::max(0, y0); y < std::min(height, y1); ++y) {
        for (int x = std::max(0, x0); x < std::min(width, x1); ++x) a[0][y][x] = r, a[1][y][x] = g, a[2][y][x] = b;
      }
    };
    for (size_t i = 0; i < rows.size(); ++i) {
      const int top = kMargin + static_cast<int>(i) * band;
      fill(top - 1, top, kMargin, width - kMargin, 0.6f, 0.6f, 0.6f);  // band separator
      for (double q : {0.25, 0.5, 0.75}) {
        const int x = kMargin + static_cast<int>(q * kBins * kBinWidth);
        fill(top, top + 2 * kHalf + 2, x, x + 1, 0.85f, 0.85f, 0.85f);
      }
      auto histogram = [&](const std::vector<double>& v, int baseline, float r, float g, float b) {
        if (v.empty()) return;
        std::vector<int> counts(kBins, 0);
        for (double x : v) counts[std::min(kBins - 1, static_cast<int>(x * kBins))]++;
        const int most = *std::max_element(counts.begin(), counts.end());
        for (int k = 0; k < kBins; ++k) {
          if (counts[k] == 0) continue;
          // Square-root scale: a few stray scores stay visible next to a full bin.
          const int h = std::max(2, static_cast<int>(std::lround(std::sqrt(static_cast<double>(counts[k]) / most) * (kHalf - 2))));
          fill(baseline - h, baseline, kMargin + k * kBinWidth + 1, kMargin + (k + 1) * kBinWidth - 1, r, g, b);
        }
      };
      const ScoreRow& row = rows[i];
      histogram(row.reference, top + kHalf, 0.55f, 0.55f, 0.55f);
      histogram(row.suspect, top + 2 * kHalf + 2, row.highlight ? 0.85f : 0.2f, row.highlight ? 0.15f : 0.35f,
                row.highlight ? 0.1f : 0.8f);
    }
    return SavePng(path, img);
  });
}

}  // namespace move
