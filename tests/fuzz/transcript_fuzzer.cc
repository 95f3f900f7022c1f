// Fuzz target: recorded evidence read back: a transcript opened for replay and offline
// answers (JSON or CSV) matched against a query manifest; then one lookup through each.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "sdk/blackbox.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string transcript = move::fuzz::ScratchPath("transcript.jsonl");
  static const std::string dir = move::fuzz::ScratchPath("queries");
  static const std::string answers = move::fuzz::ScratchPath("answers.csv");
  static const bool made = [] {
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/manifest.json") << R"({"format":"move.queries.v1","numClasses":"2","queries":[)"
                                             R"({"id":"q000000","file":"q000000.png","imageSha256":"ab"},)"
                                             R"({"id":"q000001","file":"q000001.png","imageSha256":"cd"}]})";
    return true;
  }();
  (void)made;
  const at::Tensor image = torch::zeros({1, 1, 4, 4});
  move::fuzz::WriteInput(transcript, data, size);
  if (auto replay = move::OpenReplayChannel(transcript); replay.ok()) (void)(*replay)->Predict(image);
  move::fuzz::WriteInput(answers, data, size);
  if (auto offline = move::OpenOfflineChannel(dir, answers); offline.ok()) (void)(*offline)->Predict(image);
  return 0;
}
