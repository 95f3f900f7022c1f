// The framing between the examiner and a sandboxed suspect worker (verifier/sandbox.cc and
// verifier/suspect_worker.cc): one stream socket, frames of a 12-byte header (u32 type, u64
// payload length, little-endian) and a payload. Tensors travel as u32 ndim, ndim x i64 sizes,
// then float32 values in C order.
#ifndef MOVE_VERIFIER_SANDBOX_PROTOCOL_H_
#define MOVE_VERIFIER_SANDBOX_PROTOCOL_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace move::sandbox {

enum FrameType : uint32_t {
  kLoadModel = 1,       // payload: the model file's bytes
  kPredict = 2,         // payload: an N x C x H x W tensor
  kOk = 101,            // payload: empty
  kProbabilities = 102, // payload: an N x K tensor
  kError = 103,         // payload: a message
};

constexpr size_t kHeaderBytes = 12;

inline void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out->push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

inline uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[k])) << (8 * k);
  return v;
}

inline std::string Header(uint32_t type, uint64_t length) {
  std::string h;
  PutLe(&h, type, 4);
  PutLe(&h, length, 8);
  return h;
}

// Encodes sizes and float32 data (`n` values).
inline std::string EncodeTensor(const std::vector<int64_t>& sizes, const float* data, size_t n) {
  std::string out;
  PutLe(&out, sizes.size(), 4);
  for (int64_t s : sizes) PutLe(&out, static_cast<uint64_t>(s), 8);
  out.append(reinterpret_cast<const char*>(data), n * sizeof(float));
  return out;
}

// Decodes a tensor payload; false if it is malformed (sizes disagree with the length).
inline bool DecodeTensor(const std::string& payload, std::vector<int64_t>* sizes, std::vector<float>* data) {
  if (payload.size() < 4) return false;
  const uint64_t ndim = GetLe(payload.data(), 4);
  if (ndim < 1 || ndim > 8 || payload.size() < 4 + 8 * ndim) return false;
  uint64_t n = 1;
  sizes->clear();
  for (uint64_t d = 0; d < ndim; ++d) {
    const uint64_t s = GetLe(payload.data() + 4 + 8 * d, 8);
    if (s > (uint64_t{1} << 31)) return false;
    n *= s;
    if (n > (uint64_t{1} << 34)) return false;
    sizes->push_back(static_cast<int64_t>(s));
  }
  if (payload.size() != 4 + 8 * ndim + n * sizeof(float)) return false;
  data->resize(n);
  if (n > 0) std::memcpy(data->data(), payload.data() + 4 + 8 * ndim, n * sizeof(float));
  return true;
}

}  // namespace move::sandbox

#endif  // MOVE_VERIFIER_SANDBOX_PROTOCOL_H_
