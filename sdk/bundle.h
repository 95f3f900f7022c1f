// Verifier bundles: one signed file holding what ownership verification needs.
//
//   absl::StatusOr<move::SigningKey> key = move::GenerateSigningKey();
//   absl::Status s = move::SaveSigningKey(*key, "vendor.key");        // keep it secret
//   move::BundleContents contents = ...;                               // see sdk/bundle.proto
//   s = move::WriteBundle(contents, *key, "victim.move");              // atomic
//   absl::StatusOr<move::OpenedBundle> b = move::ReadBundle("victim.move", key->public_key);
//
// Reading checks the Ed25519 signature before anything else is parsed: a truncated file is
// kDataLoss, a tampered or unsigned one kUnauthenticated, a valid signature by a key other
// than the pinned one kPermissionDenied.
#ifndef MOVE_SDK_BUNDLE_H_
#define MOVE_SDK_BUNDLE_H_

#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/bundle.pb.h"

namespace move {

// An Ed25519 key pair (libsodium): 32-byte public key, 64-byte secret key.
struct SigningKey {
  std::string public_key;
  std::string secret_key;
};

// Makes a fresh random key pair.
absl::StatusOr<SigningKey> GenerateSigningKey();

// Writes the key pair (secret part included) to `path` with mode 0600, atomically, and the
// public key alone to `path + ".pub"`. Both are hex text. kAlreadyExists if either exists:
// a key is never overwritten.
absl::Status SaveSigningKey(const SigningKey& key, const std::string& path);

// Reads a key pair written by SaveSigningKey. kNotFound / kDataLoss.
absl::StatusOr<SigningKey> LoadSigningKey(const std::string& path);

// Reads a public key (hex, 64 characters) from a ".pub" file or from SaveSigningKey's file.
absl::StatusOr<std::string> LoadPublicKey(const std::string& path);

// Hex SHA-256 fingerprint of a public key, for reports.
std::string KeyFingerprint(const std::string& public_key);

// Signs `contents` with `key` and writes the bundle to `path` atomically.
absl::Status WriteBundle(const BundleContents& contents, const SigningKey& key, const std::string& path);

struct OpenedBundle {
  BundleContents contents;
  // Signer's public key and its fingerprint; whether it equals the pinned key.
  std::string public_key;
  std::string signer_fingerprint;
  bool signer_pinned = false;
  // SHA-256 of the whole bundle file.
  std::string file_sha256;
};

// Reads and authenticates a bundle. With `trusted_public_key` empty any valid signature is
// accepted and reported as not pinned; otherwise the signer must be that key. Only regular
// files of at most 2 GiB (the protocol-buffer limit) are read: kInvalidArgument for a device
// or pipe, kResourceExhausted naming the limit for a larger file.
absl::StatusOr<OpenedBundle> ReadBundle(const std::string& path, const std::string& trusted_public_key = "");

// Converts tensors to and from TensorProto (float32 or int64).
TensorProto ToTensorProto(const at::Tensor& tensor);
absl::StatusOr<at::Tensor> FromTensorProto(const TensorProto& proto);

// A human-readable description of a bundle (what `move_bundle inspect` prints).
std::string DescribeBundle(const OpenedBundle& bundle);

}  // namespace move

#endif  // MOVE_SDK_BUNDLE_H_
