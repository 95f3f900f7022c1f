// SHA-256 digests (libsodium) of bytes and tensors, as lowercase hex.
#ifndef MOVE_CORE_HASH_H_
#define MOVE_CORE_HASH_H_

#include <string>

#include <ATen/core/Tensor.h>

#include "absl/strings/string_view.h"

namespace move::core {

// Returns the SHA-256 of `bytes` as 64 lowercase hex characters.
std::string Sha256Hex(absl::string_view bytes);

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void Update(absl::string_view bytes);
  // Hashes a tensor's dtype name, shape and contiguous CPU bytes (native little-endian).
  void UpdateTensor(const at::Tensor& tensor);
  std::string HexDigest();

 private:
  alignas(64) unsigned char state_[128];
};

// Returns the SHA-256 of a tensor as defined by Sha256::UpdateTensor.
std::string TensorSha256(const at::Tensor& tensor);

}  // namespace move::core

#endif  // MOVE_CORE_HASH_H_
