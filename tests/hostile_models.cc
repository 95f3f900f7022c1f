#include "tests/hostile_models.h"

#include <zip.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "sdk/model.h"

namespace move::testing {

absl::Status SaveModule(const std::string& path, const std::string& body, const torch::jit::Module* weights_from,
                        const std::string& extra_buffer) {
  try {
    torch::jit::Module m(c10::QualifiedName({"__torch__", "suspect", "Model"}));
    if (weights_from != nullptr) {
      for (const auto& p : weights_from->named_parameters(false)) m.register_parameter(p.name, p.value.detach().clone(), false);
      for (const auto& b : weights_from->named_buffers(false)) m.register_buffer(b.name, b.value.clone());
    }
    if (!extra_buffer.empty()) m.register_buffer(extra_buffer, torch::ones({7}));
    m.define(absl::StrCat("def forward(self, x):\n", body));
    return SaveModel(m, path);
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

std::string ReadsFileBody(const std::string& victim_file) {
  return absl::StrCat("    t = torch.from_file(\"", victim_file, "\", False, 8, dtype=0)\n",
                      "    return torch.zeros([x.size(0), 10]) + t[0].float()\n");
}

std::string WritesFileBody(const std::string& victim_file) {
  return absl::StrCat("    t = torch.from_file(\"", victim_file, "\", True, 8, dtype=0)\n",
                      "    t.fill_(88)\n",
                      "    return torch.zeros([x.size(0), 10]) + t[0].float() * 0.0 + 0.1\n");
}

std::string EndlessLoopBody() {
  return "    n = x.size(0)\n"
         "    while n > 0:\n"
         "        n = n + 1\n"
         "    return torch.zeros([x.size(0), 10])\n";
}

std::string MemoryBombBody() {
  return "    hoard: List[Tensor] = []\n"
         "    n = x.size(0)\n"
         "    while n > 0:\n"
         "        hoard.append(torch.ones([16777216]))\n"
         "        n = n + 1\n"
         "    return torch.zeros([x.size(0), 10]) + float(len(hoard))\n";
}

absl::Status WriteParserCrash(const std::string& src, const std::string& dst) {
  int err = 0;
  zip_t* in = zip_open(src.c_str(), ZIP_RDONLY, &err);
  if (in == nullptr) return absl::InternalError("cannot open the source archive");
  zip_t* out = zip_open(dst.c_str(), ZIP_CREATE | ZIP_EXCL, &err);
  if (out == nullptr) {
    zip_discard(in);
    return absl::InternalError("cannot create the crashing archive");
  }
  std::vector<std::string> keep;  // zip_source_buffer does not copy
  keep.reserve(zip_get_num_entries(in, 0));
  const std::string nested = absl::StrCat(std::string(100000, '('), "x", std::string(100000, ')'));
  for (zip_int64_t k = 0; k < zip_get_num_entries(in, 0); ++k) {
    zip_stat_t st;
    zip_stat_index(in, k, 0, &st);
    std::string data(st.size, '\0');
    zip_file_t* f = zip_fopen_index(in, k, 0);
    zip_fread(f, data.data(), st.size);
    zip_fclose(f);
    const std::string name = st.name;
    if (absl::StrContains(name, "/code/") && absl::EndsWith(name, ".py")) {
      const size_t ret = data.find("return ");
      if (ret != std::string::npos) data = absl::StrCat(data.substr(0, ret), "return ", nested, "\n");
    }
    keep.push_back(std::move(data));
    zip_source_t* s = zip_source_buffer(out, keep.back().data(), keep.back().size(), 0);
    zip_int64_t idx = zip_file_add(out, name.c_str(), s, ZIP_FL_OVERWRITE);
    zip_set_file_compression(out, idx, ZIP_CM_STORE, 0);
  }
  zip_discard(in);
  if (zip_close(out) != 0) return absl::InternalError("cannot write the crashing archive");
  return absl::OkStatus();
}

}  // namespace move::testing
