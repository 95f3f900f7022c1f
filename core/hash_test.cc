#include "core/hash.h"

#include <torch/types.h>

#include "gtest/gtest.h"

namespace move::core {
namespace {

TEST(HashTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, TensorDigestDependsOnValuesAndShape) {
  at::Tensor a = torch::arange(6, torch::kFloat32);
  EXPECT_EQ(TensorSha256(a), TensorSha256(a.clone()));
  EXPECT_NE(TensorSha256(a), TensorSha256(a.view({2, 3})));
  at::Tensor b = a.clone();
  b[5] = 5.0001f;
  EXPECT_NE(TensorSha256(a), TensorSha256(b));
  // Non-contiguous views hash like their contiguous copy.
  at::Tensor m = torch::arange(12, torch::kFloat32).view({3, 4});
  EXPECT_EQ(TensorSha256(m.t()), TensorSha256(m.t().contiguous()));
}

}  // namespace
}  // namespace move::core
