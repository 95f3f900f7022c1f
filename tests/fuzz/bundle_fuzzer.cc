// Fuzz target: the signed-bundle reader (protobuf parse, signature, SHA-256 checks).
#include <cstddef>
#include <cstdint>

#include "sdk/bundle.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = move::fuzz::ScratchPath("bundle.move");
  move::fuzz::WriteInput(path, data, size);
  (void)move::ReadBundle(path);
  return 0;
}
