#include "sdk/bundle.h"

#include <fstream>
#include <sys/stat.h>

#include <torch/torch.h>

#include "core/files.h"
#include "gtest/gtest.h"

namespace move {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

BundleContents Sample() {
  BundleContents c;
  c.set_format("move.bundle.v1");
  c.set_sdk_version("test");
  c.set_victim_model_sha256(std::string(64, 'a'));
  c.set_style_image_sha256(std::string(64, 'b'));
  c.mutable_watermark_record()->set_gamma(0.1);
  c.mutable_watermark_record()->add_picked_indices(3);
  ArchitectureVerifier* v = c.add_verifiers();
  v->set_architecture("cnn");
  v->set_type1_error(0.05);
  (*v->mutable_classifier())["w1"] = ToTensorProto(torch::arange(12, torch::kFloat32).view({3, 4}));
  *c.mutable_samples()->mutable_labels() = ToTensorProto(torch::arange(5, torch::kInt64));
  return c;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(BundleTest, RoundTripWithPinnedKey) {
  auto key = GenerateSigningKey();
  ASSERT_TRUE(key.ok());
  const std::string path = TempDir() + "/a.move";
  ASSERT_TRUE(WriteBundle(Sample(), *key, path).ok());
  auto b = ReadBundle(path, key->public_key);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->signer_pinned);
  EXPECT_EQ(b->contents.verifiers(0).architecture(), "cnn");
  auto w1 = FromTensorProto(b->contents.verifiers(0).classifier().at("w1"));
  ASSERT_TRUE(w1.ok());
  EXPECT_TRUE(torch::equal(*w1, torch::arange(12, torch::kFloat32).view({3, 4})));
  auto labels = FromTensorProto(b->contents.samples().labels());
  EXPECT_EQ(labels->scalar_type(), torch::kInt64);
  EXPECT_EQ(b->file_sha256.size(), 64u);
  const std::string text = DescribeBundle(*b);
  EXPECT_NE(text.find("valid (Ed25519)"), std::string::npos);
  EXPECT_NE(text.find("= trusted key"), std::string::npos);
  // Unpinned reading still authenticates but says so.
  auto unpinned = ReadBundle(path);
  ASSERT_TRUE(unpinned.ok());
  EXPECT_FALSE(unpinned->signer_pinned);
  EXPECT_NE(DescribeBundle(*unpinned).find("not pinned"), std::string::npos);
}

TEST(BundleTest, TamperedTruncatedUnsignedAndForeignAreRefused) {
  auto key = GenerateSigningKey();
  const std::string path = TempDir() + "/b.move";
  ASSERT_TRUE(WriteBundle(Sample(), *key, path).ok());
  std::string bytes = *core::ReadFile(path);

  // Flip one byte inside the signed contents (the 64 hex 'a's of the victim hash).
  std::string tampered = bytes;
  const size_t pos = tampered.find(std::string(64, 'a'));
  ASSERT_NE(pos, std::string::npos);
  tampered[pos] = 'c';
  WriteBytes(TempDir() + "/tampered.move", tampered);
  auto t = ReadBundle(TempDir() + "/tampered.move", key->public_key);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnauthenticated) << t.status();

  for (size_t cut : {bytes.size() - 1, bytes.size() / 2, size_t{10}, size_t{0}}) {
    WriteBytes(TempDir() + "/trunc.move", bytes.substr(0, cut));
    auto r = ReadBundle(TempDir() + "/trunc.move", key->public_key);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_TRUE(r.status().code() == absl::StatusCode::kDataLoss ||
                r.status().code() == absl::StatusCode::kUnauthenticated)
        << r.status();
  }

  SignedBundle unsigned_bundle;
  ASSERT_TRUE(unsigned_bundle.ParseFromString(bytes));
  unsigned_bundle.clear_signature();
  WriteBytes(TempDir() + "/unsigned.move", unsigned_bundle.SerializeAsString());
  auto u = ReadBundle(TempDir() + "/unsigned.move");
  EXPECT_EQ(u.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(u.status().message().find("not signed"), std::string::npos);

  // Re-signed by someone else: authentic signature, wrong signer.
  auto other = GenerateSigningKey();
  ASSERT_TRUE(WriteBundle(Sample(), *other, TempDir() + "/other.move").ok());
  auto o = ReadBundle(TempDir() + "/other.move", key->public_key);
  EXPECT_EQ(o.status().code(), absl::StatusCode::kPermissionDenied);

  EXPECT_EQ(ReadBundle(TempDir() + "/none.move").status().code(), absl::StatusCode::kNotFound);
}

TEST(BundleTest, KeysSaveLoadWithPrivatePermissions) {
  auto key = GenerateSigningKey();
  const std::string path = TempDir() + "/vendor.key";
  ASSERT_TRUE(SaveSigningKey(*key, path).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto loaded = LoadSigningKey(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->secret_key, key->secret_key);
  auto pub = LoadPublicKey(path + ".pub");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, key->public_key);
  WriteBytes(TempDir() + "/bad.key", "zz\n");
  EXPECT_EQ(LoadSigningKey(TempDir() + "/bad.key").status().code(), absl::StatusCode::kDataLoss);
}

TEST(BundleTest, TensorProtoRejectsInconsistentData) {
  TensorProto p = ToTensorProto(torch::ones({2, 3}));
  p.set_data(p.data().substr(4));
  EXPECT_EQ(FromTensorProto(p).status().code(), absl::StatusCode::kDataLoss);
  p = ToTensorProto(torch::ones({2}));
  p.set_dtype("complex");
  EXPECT_EQ(FromTensorProto(p).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace move
