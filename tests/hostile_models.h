// Hostile suspect models made at test time: TorchScript files whose code reads or writes the
// examiner's files, loops forever, allocates without bound, crashes the TorchScript parser, or
// answers differently on large batches.
#ifndef MOVE_TESTS_HOSTILE_MODELS_H_
#define MOVE_TESTS_HOSTILE_MODELS_H_

#include <string>

#include <torch/script.h>

#include "absl/status/status.h"

namespace move::testing {

// Saves a TorchScript module whose forward(self, x) body is `body` (indented 4 spaces per
// line, without the def line). With `weights_from`, the module carries that module's
// parameters and buffers under the same names (a suspect with a victim's exact weights);
// `extra_buffer` adds one more buffer of that name that the victim's architecture lacks.
absl::Status SaveModule(const std::string& path, const std::string& body, const torch::jit::Module* weights_from = nullptr,
                        const std::string& extra_buffer = "");

// forward bodies for 10-class models on N x C x H x W inputs.
std::string ReadsFileBody(const std::string& victim_file);    // maps a file and leaks a byte of it
std::string WritesFileBody(const std::string& victim_file);   // maps a file shared and overwrites it
std::string EndlessLoopBody();
std::string MemoryBombBody();

// Copies the TorchScript archive `src` to `dst` with its code replaced by an expression nested
// so deeply that the TorchScript parser overflows its stack (SIGSEGV) while loading it.
absl::Status WriteParserCrash(const std::string& src, const std::string& dst);

}  // namespace move::testing

#endif  // MOVE_TESTS_HOSTILE_MODELS_H_
