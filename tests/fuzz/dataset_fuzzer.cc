// Fuzz target: the dataset and image loaders: an gzip IDX image/label pair (the
// input is split at a point its first byte chooses) and the same bytes as an image file.
#include <cstddef>
#include <cstdint>

#include "sdk/dataset.h"
#include "sdk/image.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string images = move::fuzz::ScratchPath("images-idx3-ubyte");
  static const std::string labels = move::fuzz::ScratchPath("labels-idx1-ubyte");
  static const std::string picture = move::fuzz::ScratchPath("picture.png");
  if (size < 1) return 0;
  const size_t split = 1 + (size - 1) * data[0] / 255;
  move::fuzz::WriteInput(images, data + 1, split - 1);
  move::fuzz::WriteInput(labels, data + split, size - split);
  (void)move::LoadIdxPair(images, labels, 10);
  move::fuzz::WriteInput(picture, data, size);
  (void)move::LoadImage(picture);
  return 0;
}
