// The move_bundle CLI on real bundles: keygen, inspect (pinned and not), and refusal of a
// tampered bundle with one readable line and a non-zero exit.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sdk/bundle.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun Cli(const std::string& args) {
  const std::string out = TempDir() + "/cli.out", err = TempDir() + "/cli.err";
  const int status = std::system(absl::StrCat("cli/move_bundle ", args, " > ", out, " 2> ", err).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  return CliRun{WEXITSTATUS(status), slurp(out), slurp(err)};
}

TEST(MoveBundleCliTest, KeygenInspectAndTamper) {
  const std::string key = TempDir() + "/vendor.key";
  CliRun keygen = Cli(absl::StrCat("keygen --key=", key));
  ASSERT_EQ(keygen.rc, 0) << keygen.err;
  EXPECT_NE(keygen.out.find("fingerprint"), std::string::npos);

  auto pair = LoadSigningKey(key);
  ASSERT_TRUE(pair.ok()) << pair.status();
  BundleContents c;
  c.set_format("move.bundle.v1");
  c.set_sdk_version("cli-test");
  c.set_victim_model_sha256(std::string(64, 'e'));
  c.add_verifiers()->set_architecture("wrn-16-1");
  const std::string bundle = TempDir() + "/victim.move";
  ASSERT_TRUE(WriteBundle(c, *pair, bundle).ok());

  CliRun inspect = Cli(absl::StrCat("inspect ", bundle, " --trusted_key=", key, ".pub"));
  EXPECT_EQ(inspect.rc, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("= trusted key"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("wrn-16-1"), std::string::npos);

  std::ifstream in(bundle, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes[bytes.find(std::string(64, 'e'))] = 'f';
  std::ofstream(TempDir() + "/tampered.move", std::ios::binary) << bytes;
  CliRun tampered = Cli(absl::StrCat("inspect ", TempDir(), "/tampered.move"));
  EXPECT_EQ(tampered.rc, 1);
  EXPECT_EQ(std::count(tampered.err.begin(), tampered.err.end(), '\n'), 1) << tampered.err;
  EXPECT_NE(tampered.err.find("signature does not verify"), std::string::npos) << tampered.err;

  CliRun missing = Cli("inspect /no/such.move");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.err.find("/no/such.move"), std::string::npos);
  CliRun bad = Cli("frobnicate");
  EXPECT_EQ(bad.rc, 1);
}

}  // namespace
}  // namespace move
