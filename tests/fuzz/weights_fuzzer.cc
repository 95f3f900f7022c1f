// Fuzz target: the weights-only model reader (zip archives through libzip and the restricted
// pickle reader, safetensors), then loading what it read into the SDK's graph.
#include <cstddef>
#include <cstdint>

#include "sdk/model.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = move::fuzz::ScratchPath("model.pt");
  move::fuzz::WriteInput(path, data, size);
  move::ReadWeightsOptions o;
  o.max_bytes = 64 << 20;
  absl::StatusOr<move::ModelWeights> w = move::ReadModelWeights(path, o);
  if (w.ok()) {
    move::ModelSpec spec;
    (void)move::ModelFromWeights(spec, *w);
  }
  return 0;
}
