// Image files for the MOVE SDK: reading style images, writing PNGs people can look at.
//
//   absl::StatusOr<at::Tensor> style = move::LoadImage("testdata/style_leopard.png");
//   // style: 3 x H x W float32 in [0, 1]
//   absl::Status s = move::SaveContactSheet("sheet.png", originals, styled, /*columns=*/8);
#ifndef MOVE_SDK_IMAGE_H_
#define MOVE_SDK_IMAGE_H_

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace move {

// Loads a PNG/JPEG/BMP file as a 3 x H x W float32 RGB tensor in [0, 1] (grey files are
// repeated over the three channels, alpha is dropped). kNotFound if the file is missing,
// kInvalidArgument if it cannot be decoded (the message says why).
absl::StatusOr<at::Tensor> LoadImage(const std::string& path);

// Writes a C x H x W (C = 1 or 3) float tensor in [0, 1] as an 8-bit PNG, atomically.
// Values outside [0, 1] are an error (kInvalidArgument), not clipped.
absl::Status SavePng(const std::string& path, const at::Tensor& image);

// Arranges N x C x H x W images into one C x H' x W' grid image with `columns` images per
// row and a 1-pixel white border.
at::Tensor MakeGrid(const at::Tensor& images, int columns);

// Writes a contact sheet: rows alternate between `originals` and `styled` (both
// N x C x H x W, same shape), `columns` images per row, scaled up by `scale` (nearest
// neighbour) so small images stay visible.
// One row of a score plot: meta-classifier scores in [0, 1] of a suspect and of the benign
// reference on the same samples.
struct ScoreRow {
  std::vector<double> suspect, reference;
  // Draw the suspect in red (e.g. flagged) instead of blue.
  bool highlight = false;
};

// Writes a picture of score distributions, one band per row, top to bottom: a 50-bin
// square-root-scaled histogram of the reference's scores (grey) over one of the suspect's (red or blue), score 0
// at the left and 1 at the right, with guides at 0.25, 0.5 and 0.75. kInvalidArgument for
// scores outside [0, 1].
absl::Status SaveScoreStrips(const std::string& path, const std::vector<ScoreRow>& rows);

absl::Status SaveContactSheet(const std::string& path, const at::Tensor& originals,
                              const at::Tensor& styled, int columns, int scale = 3);

}  // namespace move

#endif  // MOVE_SDK_IMAGE_H_
