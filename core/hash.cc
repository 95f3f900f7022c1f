#include "core/hash.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace move::core {
namespace {

crypto_hash_sha256_state* State(unsigned char* raw) {
  static_assert(sizeof(crypto_hash_sha256_state) <= 128, "state buffer too small");
  return reinterpret_cast<crypto_hash_sha256_state*>(raw);
}

void EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

Sha256::Sha256() {
  EnsureSodium();
  crypto_hash_sha256_init(State(state_));
}

void Sha256::Update(absl::string_view bytes) {
  crypto_hash_sha256_update(State(state_), reinterpret_cast<const unsigned char*>(bytes.data()),
                            bytes.size());
}

void Sha256::UpdateTensor(const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  Update(absl::StrCat(std::string(t.dtype().name()), "[", absl::StrJoin(t.sizes(), ","), "]"));
  Update(absl::string_view(static_cast<const char*>(t.data_ptr()), t.nbytes()));
}

std::string Sha256::HexDigest() {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(State(state_), out);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(out), sizeof(out)));
}

std::string Sha256Hex(absl::string_view bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.HexDigest();
}

std::string TensorSha256(const at::Tensor& tensor) {
  Sha256 h;
  h.UpdateTensor(tensor);
  return h.HexDigest();
}

}  // namespace move::core
