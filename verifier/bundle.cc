// Signed verifier bundles (implements sdk/bundle.h).
#include <sodium.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <ctime>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <torch/torch.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/bundle.h"

namespace move {
namespace {

constexpr char kSignedFormat[] = "move.signed_bundle.v1";
constexpr char kContentsFormat[] = "move.bundle.v1";

absl::Status InitSodium() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

absl::StatusOr<std::string> HexToBytes(absl::string_view hex, size_t bytes, const std::string& what) {
  hex = absl::StripAsciiWhitespace(hex);
  if (hex.size() != 2 * bytes || hex.find_first_not_of("0123456789abcdefABCDEF") != absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat(what, ": expected ", 2 * bytes, " hex characters"));
  }
  return absl::HexStringToBytes(hex);
}

}  // namespace

absl::StatusOr<SigningKey> GenerateSigningKey() {
  MOVE_RETURN_IF_ERROR(InitSodium());
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  SigningKey key{std::string(reinterpret_cast<char*>(pk), sizeof(pk)), std::string(reinterpret_cast<char*>(sk), sizeof(sk))};
  sodium_memzero(sk, sizeof(sk));
  return key;
}

absl::Status SaveSigningKey(const SigningKey& key, const std::string& path) {
  // A signing key is never replaced: bundles signed with it could no longer be re-signed,
  // and a published public key would stop matching.
  for (const std::string& p : {path, path + ".pub"}) {
    std::error_code ec;
    if (std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found) {
      return absl::AlreadyExistsError(absl::StrCat(p, " already exists; a signing key is never overwritten"));
    }
  }
  MOVE_RETURN_IF_ERROR(core::WriteViaTempFile(path, [&](const std::string& tmp) -> absl::Status {
    // Created 0600 from the start: the secret key is never readable by others, even briefly.
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    const std::string text = absl::StrCat(absl::BytesToHexString(key.public_key), "\n",
                                          absl::BytesToHexString(key.secret_key), "\n");
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok ? absl::OkStatus() : absl::DataLossError(absl::StrCat("write error on ", tmp));
  }));
  return core::WriteNewFileAtomically(path + ".pub", absl::BytesToHexString(key.public_key) + "\n");
}

absl::StatusOr<SigningKey> LoadSigningKey(const std::string& path) {
  MOVE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.size() != 2) return absl::DataLossError(absl::StrCat(path, ": not a MOVE signing key file"));
  SigningKey key;
  MOVE_ASSIGN_OR_RETURN(key.public_key, HexToBytes(lines[0], crypto_sign_PUBLICKEYBYTES, path));
  MOVE_ASSIGN_OR_RETURN(key.secret_key, HexToBytes(lines[1], crypto_sign_SECRETKEYBYTES, path));
  return key;
}

absl::StatusOr<std::string> LoadPublicKey(const std::string& path) {
  MOVE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(path));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty()) return absl::DataLossError(absl::StrCat(path, ": empty key file"));
  return HexToBytes(lines[0], crypto_sign_PUBLICKEYBYTES, path);
}

std::string KeyFingerprint(const std::string& public_key) { return core::Sha256Hex(public_key); }

absl::Status WriteBundle(const BundleContents& contents, const SigningKey& key, const std::string& path) {
  MOVE_RETURN_IF_ERROR(InitSodium());
  if (key.secret_key.size() != crypto_sign_SECRETKEYBYTES || key.public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return absl::InvalidArgumentError("key: not an Ed25519 key pair");
  }
  if (contents.format() != kContentsFormat) {
    return absl::InvalidArgumentError(absl::StrCat("contents.format: must be '", kContentsFormat, "'"));
  }
  SignedBundle signed_bundle;
  signed_bundle.set_format(kSignedFormat);
  {
    // Deterministic: map fields (classifier states, metadata) in key order, so the same
    // contents always give the same signed bytes.
    google::protobuf::io::StringOutputStream out(signed_bundle.mutable_contents());
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    if (!contents.SerializeToCodedStream(&coded)) return absl::InternalError("cannot serialise bundle contents");
  }
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(signed_bundle.contents().data()),
                       signed_bundle.contents().size(),
                       reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  signed_bundle.set_signature(std::string(reinterpret_cast<char*>(sig), sizeof(sig)));
  signed_bundle.set_public_key(key.public_key);
  std::string bytes;
  if (!signed_bundle.SerializeToString(&bytes)) return absl::InternalError("cannot serialise bundle");
  return core::WriteFileAtomically(path, bytes);
}

absl::StatusOr<OpenedBundle> ReadBundle(const std::string& path, const std::string& trusted_public_key) {
  MOVE_RETURN_IF_ERROR(InitSodium());
  // Protocol buffers hold at most 2 GiB: a larger file cannot be a bundle.
  MOVE_ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path, (int64_t{2} << 30) - 1));
  SignedBundle signed_bundle;
  if (bytes.empty() || !signed_bundle.ParseFromString(bytes) || signed_bundle.format() != kSignedFormat) {
    return absl::DataLossError(absl::StrCat(path, ": not a MOVE bundle, or truncated"));
  }
  if (signed_bundle.signature().empty() || signed_bundle.public_key().empty()) {
    return absl::UnauthenticatedError(absl::StrCat(path, ": bundle is not signed"));
  }
  if (signed_bundle.signature().size() != crypto_sign_BYTES ||
      signed_bundle.public_key().size() != crypto_sign_PUBLICKEYBYTES ||
      crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signed_bundle.signature().data()),
                                  reinterpret_cast<const unsigned char*>(signed_bundle.contents().data()),
                                  signed_bundle.contents().size(),
                                  reinterpret_cast<const unsigned char*>(signed_bundle.public_key().data())) != 0) {
    return absl::UnauthenticatedError(absl::StrCat(path, ": signature does not verify; the bundle was altered"));
  }
  OpenedBundle out;
  out.public_key = signed_bundle.public_key();
  out.signer_fingerprint = KeyFingerprint(out.public_key);
  if (!trusted_public_key.empty()) {
    if (trusted_public_key != out.public_key) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": signed by key ", out.signer_fingerprint.substr(0, 16),
                                                      "..., not by the trusted key ",
                                                      KeyFingerprint(trusted_public_key).substr(0, 16), "..."));
    }
    out.signer_pinned = true;
  }
  if (!out.contents.ParseFromString(signed_bundle.contents()) || out.contents.format() != kContentsFormat) {
    return absl::DataLossError(absl::StrCat(path, ": signed contents are not a ", kContentsFormat, " bundle"));
  }
  out.file_sha256 = core::Sha256Hex(bytes);
  return out;
}

TensorProto ToTensorProto(const at::Tensor& tensor) {
  TensorProto p;
  at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  if (t.scalar_type() != torch::kInt64) t = t.to(torch::kFloat32);
  p.set_dtype(t.scalar_type() == torch::kInt64 ? "int64" : "float32");
  for (int64_t s : t.sizes()) p.add_shape(s);
  p.set_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
  return p;
}

absl::StatusOr<at::Tensor> FromTensorProto(const TensorProto& p) {
  std::vector<int64_t> shape(p.shape().begin(), p.shape().end());
  int64_t numel = 1;
  for (int64_t s : shape) {
    if (s < 0) return absl::DataLossError("tensor: negative dimension");
    numel *= s;
  }
  c10::ScalarType type;
  if (p.dtype() == "float32") type = torch::kFloat32;
  else if (p.dtype() == "int64") type = torch::kInt64;
  else return absl::DataLossError(absl::StrCat("tensor: unknown dtype '", p.dtype(), "'"));
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(type);
  if (p.data().size() != bytes) {
    return absl::DataLossError(absl::StrCat("tensor: ", p.data().size(), " bytes for shape [", absl::StrJoin(shape, ","),
                                            "] (", bytes, " expected)"));
  }
  at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  std::memcpy(t.data_ptr(), p.data().data(), bytes);
  return t;
}

std::string DescribeBundle(const OpenedBundle& b) {
  const BundleContents& c = b.contents;
  std::string out = absl::StrCat("format:            ", c.format(), "\n", "signature:         valid (Ed25519), signer ",
                                 b.signer_fingerprint.substr(0, 16), "...", b.signer_pinned ? " = trusted key\n" : " (not pinned: pass the vendor's public key to check who signed)\n",
                                 "file sha256:       ", b.file_sha256, "\n", "sdk version:       ", c.sdk_version(), "\n",
                                 "created at:        ", c.created_at(), "\n", "victim sha256:     ", c.victim_model_sha256(), "\n",
                                 "style commitment:  ", c.style_image_sha256(), "\n");
  absl::StrAppend(&out, "watermark record:  ", c.watermark_record().picked_indices_size(), " styled samples, gamma ",
                  c.watermark_record().gamma(), ", engine ", c.watermark_record().engine(), "\n");
  if (c.samples().has_labels() && c.samples().labels().shape_size() > 0) {
    absl::StrAppend(&out, "verification set:  ", c.samples().labels().shape(0), " styled images\n");
  }
  for (const auto& v : c.verifiers()) {
    absl::StrAppend(&out, "verifier:          ", v.architecture(), " (", v.features().kind(), "), Type-I ",
                    v.type1_error(), ", Type-II ", v.type2_error(), ", trained on ", v.watermarked_models(), "+",
                    v.benign_models(), " models, reference ", v.reference_model_sha256().substr(0, 16), "..., ",
                    v.sound() ? "soundness check passed" : "UNSOUND: " + v.unsound_reason(), ", ",
                    v.benign_scores_size(), " held-out benign models for the model-level test\n");
  }
  if (c.has_blackbox() && !c.blackbox().features().kind().empty()) {
    const BlackBoxVerifier& v = c.blackbox();
    absl::StrAppend(&out, "black-box:         ", v.features().kind(), " (", v.num_classes(), " classes, shift ",
                    v.features().parameters().count("shift") ? v.features().parameters().at("shift") : "?",
                    "), Type-I ", v.type1_error(), ", Type-II ", v.type2_error(), ", trained on ", v.watermarked_models(),
                    "+", v.benign_models(), " models of ", absl::StrJoin(v.population_architectures(), ", "),
                    ", reference ", v.reference_architecture(), " ", v.reference_model_sha256().substr(0, 16), "..., ",
                    v.sound() ? "soundness check passed" : "UNSOUND: " + v.unsound_reason(), ", ",
                    v.benign_scores_size(), " held-out benign models for the model-level test\n");
  } else {
    absl::StrAppend(&out, "black-box:         none in this bundle\n");
  }
  if (c.has_fingerprint() && !c.fingerprint().method().empty()) {
    const FingerprintVerifier& v = c.fingerprint();
    const TensorProto& pts = v.points();
    absl::StrAppend(&out, "fingerprint:       ", v.method(), " (", v.uap_fooling_rate_size(), " UAPs, L-inf ", v.epsilon(),
                    ", fooling rate ", absl::StrJoin(v.uap_fooling_rate(), "/"), "; ",
                    pts.shape_size() == 5 ? pts.shape(0) : 0, " fingerprints of ", pts.shape_size() == 5 ? pts.shape(1) : 0,
                    " points), Type-I ", v.type1_error(), ", Type-II ", v.type2_error(), ", ",
                    v.sound() ? "soundness check passed" : "UNSOUND: " + v.unsound_reason(), ", ", v.models_size(),
                    " helper models recorded, ", v.benign_scores_size(), " held-out independents for the model-level test\n");
  } else {
    absl::StrAppend(&out, "fingerprint:       none in this bundle\n");
  }
  if (c.has_label_agreement() && !c.label_agreement().method().empty()) {
    const LabelAgreementVerifier& v = c.label_agreement();
    const TensorProto& err = v.error_images();
    const TensorProto& cov = v.cover_images();
    absl::StrAppend(&out, "label agreement:   ", v.method(), " (", err.shape_size() == 4 ? err.shape(0) : 0,
                    " of the victim's mistakes + ", cov.shape_size() == 4 ? cov.shape(0) : 0, " covers; victim error rate ",
                    absl::StrFormat("%.3f", v.victim_error_rate()), " on ", v.pool_images(), " held-out images), Type-I ",
                    v.type1_error(), ", Type-II ", v.type2_error(), ", ",
                    v.sound() ? "soundness check passed" : "UNSOUND: " + v.unsound_reason(), ", ", v.benign_scores_size(),
                    " held-out benign models for the model-level test\n");
  } else {
    absl::StrAppend(&out, "label agreement:   none in this bundle\n");
  }
  for (const auto& [k, v] : c.metadata()) absl::StrAppend(&out, "meta ", k, ": ", v, "\n");
  return out;
}

}  // namespace move
