// move_bundle: keys and verifier bundles.
//
//   move_bundle keygen --key=vendor.key          # writes vendor.key (0600) and vendor.key.pub
//   move_bundle inspect victim.move [--trusted_key=vendor.key.pub]
//
// `inspect` prints what a bundle holds and whether its Ed25519 signature verifies (and, with
// --trusted_key, whether the vendor's key signed it). Exit status 0 when the bundle
// authenticates; otherwise 1 with one readable line on stderr.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/bundle.h"

ABSL_FLAG(std::string, key, "vendor.key", "keygen: where to write the key pair (the .pub file goes beside it).");
ABSL_FLAG(std::string, trusted_key, "", "inspect: the vendor's public key file; the signer must be this key.");

namespace {

absl::Status Run(const std::vector<char*>& args) {
  if (args.size() < 2) {
    return absl::InvalidArgumentError("usage: move_bundle keygen --key=FILE | move_bundle inspect BUNDLE [--trusted_key=FILE.pub]");
  }
  const std::string command = args[1];
  if (command == "keygen") {
    absl::StatusOr<move::SigningKey> key = move::GenerateSigningKey();
    if (!key.ok()) return key.status();
    const std::string path = absl::GetFlag(FLAGS_key);
    if (absl::Status s = move::SaveSigningKey(*key, path); !s.ok()) return s;
    std::printf("wrote %s (secret, mode 0600) and %s.pub\nfingerprint %s\n", path.c_str(), path.c_str(),
                move::KeyFingerprint(key->public_key).c_str());
    return absl::OkStatus();
  }
  if (command == "inspect") {
    if (args.size() != 3) return absl::InvalidArgumentError("inspect: expected exactly one bundle path");
    std::string trusted;
    if (!absl::GetFlag(FLAGS_trusted_key).empty()) {
      absl::StatusOr<std::string> pub = move::LoadPublicKey(absl::GetFlag(FLAGS_trusted_key));
      if (!pub.ok()) return absl::Status(pub.status().code(), absl::StrCat("--trusted_key: ", pub.status().message()));
      trusted = *pub;
    }
    absl::StatusOr<move::OpenedBundle> bundle = move::ReadBundle(args[2], trusted);
    if (!bundle.ok()) return bundle.status();
    std::printf("%s", move::DescribeBundle(*bundle).c_str());
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown command '", command, "' (expected keygen or inspect)"));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("move_bundle keygen --key=FILE | move_bundle inspect BUNDLE [--trusted_key=FILE.pub]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  absl::Status s = Run(args);
  if (!s.ok()) {
    std::fprintf(stderr, "move_bundle: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
