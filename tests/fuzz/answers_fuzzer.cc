// Fuzz target: a suspect's prediction-protocol answer (JSON PredictResponse), as every
// query line checks it; the first byte picks the image count, class count, logits mode and
// whether label-only answers are taken (label agreement).
#include <cstddef>
#include <cstdint>
#include <string>

#include "verifier/channels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int64_t n = 1 + (data[0] & 3), k = 2 + ((data[0] >> 2) & 15);
  const bool logits = (data[0] >> 6) & 1, labels = (data[0] >> 7) & 1;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)move::verifier_internal::ParseAnswers(body, n, k, logits, labels);
  return 0;
}
