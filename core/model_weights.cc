// Reading a model's tensors without running any of its code (sdk/model.h: ReadModelWeights,
// ModelFromWeights).
//
// Zip archives (TorchScript and torch.save) are opened with libzip; their data.pkl is read by
// a restricted pickle interpreter that knows the opcodes Python's protocol 2-5 picklers and
// LibTorch's C++ pickler emit for tensors and containers, and calls nothing: the only globals
// it accepts are the handful PyTorch uses to rebuild tensors and ordered dicts (and
// TorchScript's typed-list builders); a TorchScript class is kept as an opaque object with its
// attribute dict; any other global, and any opcode it does not know, ends the read with an
// error naming it. safetensors headers are parsed with protobuf's JSON util.
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/model.h"

namespace move {
namespace {

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxDims = 16;
constexpr size_t kMaxStack = 1 << 20;

// ---- The restricted unpickler's values -------------------------------------------------------

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kObject, kTensor, kStorage, kMark };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                  // string; global "module.name"; object class
  std::vector<ValuePtr> items;                    // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // dict (insertion order)
  ValuePtr state;                                 // object: its BUILD state
  at::Tensor tensor;                              // tensor; storage (1-D, its dtype)
};

ValuePtr Make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

const char* KindName(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kTuple: return "tuple";
    case Value::Kind::kList: return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kGlobal: return "global";
    case Value::Kind::kObject: return "object";
    case Value::Kind::kTensor: return "tensor";
    case Value::Kind::kStorage: return "storage";
    case Value::Kind::kMark: return "mark";
  }
  return "?";
}

// Storage class names PyTorch writes (torch.FloatStorage, ...) and their dtypes.
bool StorageDtype(const std::string& global, at::ScalarType* out) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
  };
  auto it = kTypes.find(global);
  if (it == kTypes.end()) return false;
  *out = it->second;
  return true;
}

// Reads storages (data/<key>) for persistent ids.
using StorageLoader = std::function<absl::StatusOr<at::Tensor>(const std::string& key, at::ScalarType dtype, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(const std::string& bytes, StorageLoader loader) : p_(bytes), loader_(std::move(loader)) {}

  absl::StatusOr<ValuePtr> Run() {
    while (true) {
      if (pos_ >= p_.size()) return Error("ends without STOP");
      const size_t at = pos_;
      const uint8_t op = static_cast<uint8_t>(p_[pos_++]);
      absl::Status s = Step(op);
      if (!s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("data.pkl at byte ", at, ": ", s.message()));
      }
      if (stopped_) {
        if (stack_.size() != 1) return Error("STOP with a malformed stack");
        return stack_.back();
      }
      if (stack_.size() > kMaxStack || memo_.size() > kMaxStack) return Error("too many values");
    }
  }

 private:
  absl::Status Error(absl::string_view what) const { return absl::InvalidArgumentError(what); }

  absl::Status Need(size_t n) const {
    if (p_.size() - pos_ < n) return Error("truncated");
    return absl::OkStatus();
  }
  uint64_t ReadLe(size_t n) {
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[pos_ + k])) << (8 * k);
    pos_ += n;
    return v;
  }
  absl::StatusOr<std::string> ReadLine() {
    const size_t end = p_.find('\n', pos_);
    if (end == std::string::npos || end - pos_ > 4096) return Error("unterminated line");
    std::string out = p_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  absl::StatusOr<std::string> ReadBytes(uint64_t n) {
    if (n > p_.size() - pos_) return Error("truncated string");
    std::string out = p_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  absl::StatusOr<ValuePtr> Pop() {
    if (stack_.empty() || stack_.back()->kind == Value::Kind::kMark) return Error("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<ValuePtr> Top() {
    if (stack_.empty() || stack_.back()->kind == Value::Kind::kMark) return Error("stack underflow");
    return stack_.back();
  }
  // Pops everything down to the last MARK (which is removed too).
  absl::StatusOr<std::vector<ValuePtr>> PopToMark() {
    std::vector<ValuePtr> out;
    while (true) {
      if (stack_.empty()) return Error("no MARK");
      ValuePtr v = stack_.back();
      stack_.pop_back();
      if (v->kind == Value::Kind::kMark) break;
      out.push_back(v);
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  void Push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr Int(int64_t x) {
    ValuePtr v = Make(Value::Kind::kInt);
    v->i = x;
    return v;
  }
  ValuePtr Str(std::string x) {
    ValuePtr v = Make(Value::Kind::kString);
    v->s = std::move(x);
    return v;
  }
  ValuePtr Tuple(std::vector<ValuePtr> items) {
    ValuePtr v = Make(Value::Kind::kTuple);
    v->items = std::move(items);
    return v;
  }
  absl::Status PushGlobal(const std::string& module, const std::string& name) {
    ValuePtr v = Make(Value::Kind::kGlobal);
    v->s = absl::StrCat(module, ".", name);
    static const std::set<std::string> kAllowed = {
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict",
        "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_genericlist", "torch.jit._pickle.restore_type_tag",
        "torch.device"};
    at::ScalarType dtype;
    if (!kAllowed.count(v->s) && !StorageDtype(v->s, &dtype) && !absl::StartsWith(v->s, "__torch__.")) {
      return Error(absl::StrCat("refers to ", v->s, ", which a tensors-only reader does not call"));
    }
    Push(v);
    return absl::OkStatus();
  }
  absl::Status SetItems(const ValuePtr& dict, const std::vector<ValuePtr>& kv) {
    if (dict->kind != Value::Kind::kDict) return Error("SETITEM(S) on a non-dict");
    if (kv.size() % 2 != 0) return Error("SETITEMS with an odd count");
    for (size_t k = 0; k < kv.size(); k += 2) dict->dict.emplace_back(kv[k], kv[k + 1]);
    return absl::OkStatus();
  }
  absl::Status Memo(uint64_t key) {
    MOVE_ASSIGN_OR_RETURN(ValuePtr v, Top());
    memo_[key] = v;
    return absl::OkStatus();
  }
  absl::Status Get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) return Error(absl::StrCat("memo key ", key, " was never stored"));
    Push(it->second);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> AsInt(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::kInt) return Error(absl::StrCat(what, ": expected int, got ", KindName(v->kind)));
    return v->i;
  }
  absl::StatusOr<std::vector<int64_t>> AsInts(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::kTuple && v->kind != Value::Kind::kList) {
      return Error(absl::StrCat(what, ": expected a tuple of ints"));
    }
    if (v->items.size() > kMaxDims) return Error(absl::StrCat(what, ": more than ", kMaxDims, " dimensions"));
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      MOVE_ASSIGN_OR_RETURN(int64_t n, AsInt(x, what));
      out.push_back(n);
    }
    return out;
  }

  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
  absl::StatusOr<ValuePtr> RebuildTensor(const std::vector<ValuePtr>& args) {
    if (args.size() < 4 || args[0]->kind != Value::Kind::kStorage) return Error("_rebuild_tensor_v2: bad arguments");
    const at::Tensor& storage = args[0]->tensor;
    MOVE_ASSIGN_OR_RETURN(int64_t offset, AsInt(args[1], "tensor offset"));
    MOVE_ASSIGN_OR_RETURN(std::vector<int64_t> size, AsInts(args[2], "tensor size"));
    MOVE_ASSIGN_OR_RETURN(std::vector<int64_t> stride, AsInts(args[3], "tensor stride"));
    if (size.size() != stride.size()) return Error("tensor size and stride differ in length");
    // Every element the view reaches must lie inside the storage.
    if (offset < 0) return Error("negative tensor offset");
    __int128 last = offset;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) return Error("negative tensor size or stride");
      if (size[d] == 0) empty = true;
      last += static_cast<__int128>(size[d] > 0 ? size[d] - 1 : 0) * stride[d];
    }
    if (!empty && last >= storage.numel()) {
      return Error(absl::StrCat("tensor view reaches element ", static_cast<int64_t>(std::min<__int128>(last, INT64_MAX)),
                                " of a ", storage.numel(), "-element storage"));
    }
    ValuePtr v = Make(Value::Kind::kTensor);
    v->tensor = empty ? torch::empty(size, storage.options()) : storage.as_strided(size, stride, offset).clone();
    return v;
  }

  absl::Status Reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::Kind::kGlobal) return Error("REDUCE on a non-global");
    if (args->kind != Value::Kind::kTuple) return Error("REDUCE without an argument tuple");
    const std::string& g = fn->s;
    if (g == "torch._utils._rebuild_tensor_v2") {
      MOVE_ASSIGN_OR_RETURN(ValuePtr t, RebuildTensor(args->items));
      Push(t);
    } else if (g == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::kTensor) return Error("_rebuild_parameter: bad arguments");
      Push(args->items[0]);
    } else if (g == "collections.OrderedDict") {
      if (!args->items.empty()) return Error("OrderedDict with arguments");
      Push(Make(Value::Kind::kDict));
    } else if (g == "torch.jit._pickle.restore_type_tag") {
      // (container, "Dict[str, Tensor]"): the C++ pickler's type annotation, nothing to run.
      if (args->items.size() != 2) return Error("restore_type_tag: bad arguments");
      Push(args->items[0]);
    } else if (absl::StartsWith(g, "torch.jit._pickle.build_")) {
      if (args->items.size() != 1 || args->items[0]->kind != Value::Kind::kList) return Error(absl::StrCat(g, ": bad arguments"));
      Push(args->items[0]);
    } else if (g == "torch.device") {
      if (args->items.size() != 1 || args->items[0]->kind != Value::Kind::kString) return Error("torch.device: bad arguments");
      Push(args->items[0]);
    } else {
      return Error(absl::StrCat("calls ", g, ", which a tensors-only reader does not call"));
    }
    return absl::OkStatus();
  }

  // BINPERSID: ('storage', torch.XStorage, key, location, numel)
  absl::Status PersistentLoad(const ValuePtr& pid) {
    if (pid->kind != Value::Kind::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Kind::kString ||
        pid->items[0]->s != "storage" || pid->items[1]->kind != Value::Kind::kGlobal ||
        pid->items[2]->kind != Value::Kind::kString) {
      return Error("persistent id is not a tensor storage");
    }
    at::ScalarType dtype;
    if (!StorageDtype(pid->items[1]->s, &dtype)) return Error(absl::StrCat("unknown storage type ", pid->items[1]->s));
    MOVE_ASSIGN_OR_RETURN(int64_t numel, AsInt(pid->items[4], "storage size"));
    if (numel < 0) return Error("negative storage size");
    const std::string& key = pid->items[2]->s;
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      MOVE_ASSIGN_OR_RETURN(at::Tensor t, loader_(key, dtype, numel));
      it = storages_.emplace(key, t).first;
    } else if (it->second.scalar_type() != dtype || it->second.numel() != numel) {
      return Error(absl::StrCat("storage ", key, " is referred to with two types or sizes"));
    }
    ValuePtr v = Make(Value::Kind::kStorage);
    v->tensor = it->second;
    Push(v);
    return absl::OkStatus();
  }

  absl::Status Step(uint8_t op) {
    switch (op) {
      case 0x80:  // PROTO
        MOVE_RETURN_IF_ERROR(Need(1));
        if (static_cast<uint8_t>(p_[pos_]) > 5) return Error("pickle protocol above 5");
        pos_ += 1;
        return absl::OkStatus();
      case 0x95:  // FRAME
        MOVE_RETURN_IF_ERROR(Need(8));
        pos_ += 8;
        return absl::OkStatus();
      case '.':  // STOP
        stopped_ = true;
        return absl::OkStatus();
      case '(':  // MARK
        Push(Make(Value::Kind::kMark));
        return absl::OkStatus();
      case ')':  // EMPTY_TUPLE
        Push(Tuple({}));
        return absl::OkStatus();
      case 't': {  // TUPLE
        MOVE_ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
        Push(Tuple(std::move(items)));
        return absl::OkStatus();
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const int n = op - 0x84;
        std::vector<ValuePtr> items(n);
        for (int k = n - 1; k >= 0; --k) {
          MOVE_ASSIGN_OR_RETURN(items[k], Pop());
        }
        Push(Tuple(std::move(items)));
        return absl::OkStatus();
      }
      case ']':  // EMPTY_LIST
        Push(Make(Value::Kind::kList));
        return absl::OkStatus();
      case 'l': {  // LIST
        MOVE_ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
        ValuePtr v = Make(Value::Kind::kList);
        v->items = std::move(items);
        Push(v);
        return absl::OkStatus();
      }
      case 'a': {  // APPEND
        MOVE_ASSIGN_OR_RETURN(ValuePtr x, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr list, Top());
        if (list->kind != Value::Kind::kList) return Error("APPEND to a non-list");
        list->items.push_back(x);
        return absl::OkStatus();
      }
      case 'e': {  // APPENDS
        MOVE_ASSIGN_OR_RETURN(std::vector<ValuePtr> items, PopToMark());
        MOVE_ASSIGN_OR_RETURN(ValuePtr list, Top());
        if (list->kind != Value::Kind::kList) return Error("APPENDS to a non-list");
        list->items.insert(list->items.end(), items.begin(), items.end());
        return absl::OkStatus();
      }
      case '}':  // EMPTY_DICT
        Push(Make(Value::Kind::kDict));
        return absl::OkStatus();
      case 'd': {  // DICT
        MOVE_ASSIGN_OR_RETURN(std::vector<ValuePtr> kv, PopToMark());
        ValuePtr v = Make(Value::Kind::kDict);
        MOVE_RETURN_IF_ERROR(SetItems(v, kv));
        Push(v);
        return absl::OkStatus();
      }
      case 's': {  // SETITEM
        MOVE_ASSIGN_OR_RETURN(ValuePtr value, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr key, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr dict, Top());
        return SetItems(dict, {key, value});
      }
      case 'u': {  // SETITEMS
        MOVE_ASSIGN_OR_RETURN(std::vector<ValuePtr> kv, PopToMark());
        MOVE_ASSIGN_OR_RETURN(ValuePtr dict, Top());
        return SetItems(dict, kv);
      }
      case 'N':
        Push(Make(Value::Kind::kNone));
        return absl::OkStatus();
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        ValuePtr v = Make(Value::Kind::kBool);
        v->b = op == 0x88;
        Push(v);
        return absl::OkStatus();
      }
      case 'J':  // BININT
        MOVE_RETURN_IF_ERROR(Need(4));
        Push(Int(static_cast<int32_t>(ReadLe(4))));
        return absl::OkStatus();
      case 'K':  // BININT1
        MOVE_RETURN_IF_ERROR(Need(1));
        Push(Int(static_cast<int64_t>(ReadLe(1))));
        return absl::OkStatus();
      case 'M':  // BININT2
        MOVE_RETURN_IF_ERROR(Need(2));
        Push(Int(static_cast<int64_t>(ReadLe(2))));
        return absl::OkStatus();
      case 0x8a: {  // LONG1
        MOVE_RETURN_IF_ERROR(Need(1));
        const size_t n = ReadLe(1);
        if (n > 8) return Error("integer wider than 64 bits");
        MOVE_RETURN_IF_ERROR(Need(n));
        uint64_t u = ReadLe(n);
        if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);  // sign-extend
        Push(Int(static_cast<int64_t>(u)));
        return absl::OkStatus();
      }
      case 'G': {  // BINFLOAT (big-endian)
        MOVE_RETURN_IF_ERROR(Need(8));
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | static_cast<uint8_t>(p_[pos_ + k]);
        pos_ += 8;
        ValuePtr v = Make(Value::Kind::kFloat);
        std::memcpy(&v->f, &u, sizeof(double));
        Push(v);
        return absl::OkStatus();
      }
      case 'X': case 'B': case 'T': {  // BINUNICODE, BINBYTES, BINSTRING
        MOVE_RETURN_IF_ERROR(Need(4));
        MOVE_ASSIGN_OR_RETURN(std::string s, ReadBytes(ReadLe(4)));
        Push(Str(std::move(s)));
        return absl::OkStatus();
      }
      case 0x8c: case 'C': case 'U': {  // SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING
        MOVE_RETURN_IF_ERROR(Need(1));
        MOVE_ASSIGN_OR_RETURN(std::string s, ReadBytes(ReadLe(1)));
        Push(Str(std::move(s)));
        return absl::OkStatus();
      }
      case 0x8d: case 0x8e: {  // BINUNICODE8, BINBYTES8
        MOVE_RETURN_IF_ERROR(Need(8));
        MOVE_ASSIGN_OR_RETURN(std::string s, ReadBytes(ReadLe(8)));
        Push(Str(std::move(s)));
        return absl::OkStatus();
      }
      case 'c': {  // GLOBAL
        MOVE_ASSIGN_OR_RETURN(std::string module, ReadLine());
        MOVE_ASSIGN_OR_RETURN(std::string name, ReadLine());
        return PushGlobal(module, name);
      }
      case 0x93: {  // STACK_GLOBAL
        MOVE_ASSIGN_OR_RETURN(ValuePtr name, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr module, Pop());
        if (name->kind != Value::Kind::kString || module->kind != Value::Kind::kString) return Error("STACK_GLOBAL of non-strings");
        return PushGlobal(module->s, name->s);
      }
      case 'q':  // BINPUT
        MOVE_RETURN_IF_ERROR(Need(1));
        return Memo(ReadLe(1));
      case 'r':  // LONG_BINPUT
        MOVE_RETURN_IF_ERROR(Need(4));
        return Memo(ReadLe(4));
      case 0x94:  // MEMOIZE
        return Memo(memo_.size());
      case 'h':  // BINGET
        MOVE_RETURN_IF_ERROR(Need(1));
        return Get(ReadLe(1));
      case 'j':  // LONG_BINGET
        MOVE_RETURN_IF_ERROR(Need(4));
        return Get(ReadLe(4));
      case 'Q': {  // BINPERSID
        MOVE_ASSIGN_OR_RETURN(ValuePtr pid, Pop());
        return PersistentLoad(pid);
      }
      case 'R': {  // REDUCE
        MOVE_ASSIGN_OR_RETURN(ValuePtr args, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr fn, Pop());
        return Reduce(fn, args);
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), for TorchScript classes only
        MOVE_ASSIGN_OR_RETURN(ValuePtr args, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr cls, Pop());
        if (cls->kind != Value::Kind::kGlobal || !absl::StartsWith(cls->s, "__torch__.")) {
          return Error(absl::StrCat("NEWOBJ of ", cls->kind == Value::Kind::kGlobal ? cls->s : "a non-class"));
        }
        ValuePtr obj = Make(Value::Kind::kObject);
        obj->s = cls->s;
        Push(obj);
        return absl::OkStatus();
      }
      case 'b': {  // BUILD: an object's state (kept, never applied by code)
        MOVE_ASSIGN_OR_RETURN(ValuePtr state, Pop());
        MOVE_ASSIGN_OR_RETURN(ValuePtr obj, Top());
        if (obj->kind == Value::Kind::kObject) {
          obj->state = state;
        } else if (obj->kind != Value::Kind::kDict && obj->kind != Value::Kind::kTensor) {
          // An OrderedDict's instance attributes (state_dict's _metadata) and a tensor's are ignored.
          return Error(absl::StrCat("BUILD on a ", KindName(obj->kind)));
        }
        return absl::OkStatus();
      }
      case '0':  // POP
        return Pop().status();
      case '1':  // POP_MARK
        return PopToMark().status();
      case '2': {  // DUP
        MOVE_ASSIGN_OR_RETURN(ValuePtr v, Top());
        Push(v);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrFormat("unsupported pickle opcode 0x%02x", op));
    }
  }

  const std::string& p_;
  StorageLoader loader_;
  size_t pos_ = 0;
  bool stopped_ = false;
  std::vector<ValuePtr> stack_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, at::Tensor> storages_;
};

// Collects the tensors under `v`, named as state_dict does (attribute path joined by dots).
absl::Status CollectTensors(const ValuePtr& v, const std::string& prefix, int depth, ModelWeights* out) {
  if (depth > kMaxDepth) return absl::InvalidArgumentError("data.pkl: nested too deeply");
  auto join = [&](const std::string& name) { return prefix.empty() ? name : absl::StrCat(prefix, ".", name); };
  switch (v->kind) {
    case Value::Kind::kTensor:
      out->tensors.emplace_back(prefix, v->tensor);
      return absl::OkStatus();
    case Value::Kind::kObject:
      if (v->state) return CollectTensors(v->state, prefix, depth + 1, out);
      return absl::OkStatus();
    case Value::Kind::kDict:
      for (const auto& [k, x] : v->dict) {
        if (k->kind != Value::Kind::kString) continue;  // not a named attribute
        MOVE_RETURN_IF_ERROR(CollectTensors(x, join(k->s), depth + 1, out));
      }
      return absl::OkStatus();
    default:
      return absl::OkStatus();  // plain attributes (flags, names, numbers) carry no weights
  }
}

// ---- Zip archives -----------------------------------------------------------------------

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};

class ZipArchive {
 public:
  // Opens an archive held in memory (`bytes` must outlive the archive).
  static absl::StatusOr<ZipArchive> Open(const std::string& bytes, int64_t max_bytes) {
    zip_error_t e;
    zip_error_init(&e);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &e);
    zip_t* z = src == nullptr ? nullptr : zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &e);
    if (z == nullptr) {
      std::string msg = zip_error_strerror(&e);
      zip_error_fini(&e);
      if (src != nullptr) zip_source_free(src);
      return absl::InvalidArgumentError(absl::StrCat("not a readable zip archive (", msg, ")"));
    }
    zip_error_fini(&e);
    ZipArchive a;
    a.zip_.reset(z);
    a.max_bytes_ = max_bytes;
    const zip_int64_t n = zip_get_num_entries(z, 0);
    if (n < 0 || n > 1000000) return absl::InvalidArgumentError("zip archive with an unreadable entry count");
    uint64_t total = 0;
    for (zip_int64_t k = 0; k < n; ++k) {
      zip_stat_t st;
      zip_stat_init(&st);
      if (zip_stat_index(z, k, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE)) {
        return absl::InvalidArgumentError("zip archive with an unreadable entry");
      }
      total += st.size;
      if (total > static_cast<uint64_t>(max_bytes)) {
        return absl::ResourceExhaustedError(
            absl::StrCat("zip archive expands to more than the ", max_bytes, "-byte limit (a decompression bomb, or raise "
                         "ReadWeightsOptions::max_bytes)"));
      }
      a.entries_[st.name] = {static_cast<zip_uint64_t>(k), st.size};
    }
    return a;
  }

  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& [n, e] : entries_) out.push_back(n);
    return out;
  }
  uint64_t Size(const std::string& name) const { return entries_.at(name).second; }

  // Reads an entry whole into `dst` (exactly its declared size; libzip checks the CRC).
  absl::Status Read(const std::string& name, void* dst, uint64_t size) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return absl::InvalidArgumentError(absl::StrCat("archive has no ", name));
    if (it->second.second != size) {
      return absl::InvalidArgumentError(absl::StrCat(name, " holds ", it->second.second, " bytes, expected ", size));
    }
    zip_file_t* f = zip_fopen_index(zip_.get(), it->second.first, 0);
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, ": cannot open (", zip_strerror(zip_.get()), ")"));
    uint64_t done = 0;
    char* p = static_cast<char*>(dst);
    while (done < size) {
      const zip_int64_t got = zip_fread(f, p + done, std::min<uint64_t>(size - done, uint64_t{1} << 26));
      if (got <= 0) {
        const std::string msg = got < 0 ? zip_error_strerror(zip_file_get_error(f)) : "ends early";
        zip_fclose(f);
        return absl::DataLossError(absl::StrCat(name, ": ", msg));
      }
      done += static_cast<uint64_t>(got);
    }
    char extra;
    const zip_int64_t more = zip_fread(f, &extra, 1);
    const int rc = zip_fclose(f);
    if (more != 0 || rc != 0) return absl::DataLossError(absl::StrCat(name, ": corrupt (size or CRC mismatch)"));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ReadString(const std::string& name) {
    std::string out(Size(name), '\0');
    MOVE_RETURN_IF_ERROR(Read(name, out.data(), out.size()));
    return out;
  }

 private:
  std::unique_ptr<zip_t, ZipCloser> zip_;
  int64_t max_bytes_ = 0;
  std::map<std::string, std::pair<zip_uint64_t, uint64_t>> entries_;
};

absl::StatusOr<ModelWeights> ReadZipWeights(const std::string& bytes, const ReadWeightsOptions& options) {
  MOVE_ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::Open(bytes, options.max_bytes));
  // The archive's one top-level folder holds data.pkl (TorchScript and torch.save alike).
  std::string prefix;
  int found = 0;
  for (const std::string& n : zip.Names()) {
    const size_t slash = n.find('/');
    if (slash != std::string::npos && n.substr(slash + 1) == "data.pkl") {
      prefix = n.substr(0, slash + 1);
      ++found;
    }
  }
  if (found != 1) {
    return absl::InvalidArgumentError(found == 0 ? "zip archive without a data.pkl: not a PyTorch model file"
                                                 : "zip archive with more than one data.pkl");
  }
  ModelWeights w;
  w.format = zip.Has(prefix + "constants.pkl") || zip.Has(prefix + "code/") ? "torchscript" : "torch.save";
  for (const std::string& n : zip.Names()) {
    if (absl::StartsWith(n, prefix + "code/")) w.format = "torchscript";
  }
  MOVE_ASSIGN_OR_RETURN(std::string pkl, zip.ReadString(prefix + "data.pkl"));
  StorageLoader loader = [&](const std::string& key, at::ScalarType dtype, int64_t numel) -> absl::StatusOr<at::Tensor> {
    const std::string name = absl::StrCat(prefix, "data/", key);
    if (!zip.Has(name)) return absl::InvalidArgumentError(absl::StrCat("storage ", key, " is missing from the archive"));
    const uint64_t bytes = static_cast<uint64_t>(numel) * c10::elementSize(dtype);
    if (numel > 0 && bytes / numel != c10::elementSize(dtype)) return absl::InvalidArgumentError("storage size overflows");
    at::Tensor t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    MOVE_RETURN_IF_ERROR(zip.Read(name, t.data_ptr(), bytes));
    return t;
  };
  Unpickler u(pkl, loader);
  MOVE_ASSIGN_OR_RETURN(ValuePtr root, u.Run());
  if (root->kind != Value::Kind::kObject && root->kind != Value::Kind::kDict) {
    return absl::InvalidArgumentError(absl::StrCat("data.pkl holds a ", KindName(root->kind),
                                                   ", not a module or a state dict"));
  }
  // Training checkpoints often wrap the state dict: {"state_dict": {...}, "epoch": ...}.
  if (root->kind == Value::Kind::kDict) {
    for (const auto& [k, x] : root->dict) {
      if (k->kind == Value::Kind::kString && (k->s == "state_dict" || k->s == "model_state_dict") &&
          x->kind == Value::Kind::kDict) {
        root = x;
        break;
      }
    }
  }
  MOVE_RETURN_IF_ERROR(CollectTensors(root, "", 0, &w));
  return w;
}

// ---- safetensors ------------------------------------------------------------------------

absl::StatusOr<ModelWeights> ReadSafetensors(const std::string& bytes) {
  uint64_t n = 0;
  for (int k = 0; k < 8; ++k) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
  if (n > bytes.size() - 8 || n > (uint64_t{100} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors header length ", n, " exceeds the file"));
  }
  google::protobuf::Struct header;
  google::protobuf::util::JsonParseOptions jo;
  auto st = google::protobuf::util::JsonStringToMessage(bytes.substr(8, n), &header, jo);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("safetensors header is not JSON: ", st.ToString()));
  static const std::map<std::string, at::ScalarType> kDtypes = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool}};
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;
  ModelWeights w;
  w.format = "safetensors";
  // Struct's map is unordered: order the tensors by their offsets, as the file lays them out.
  std::vector<std::tuple<uint64_t, std::string, at::Tensor>> found;
  for (const auto& field : header.fields()) {
    const std::string& name = field.first;
    const google::protobuf::Value& v = field.second;
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors tensor '", name, "': ", why));
    };
    if (!v.has_struct_value()) return bad("not an object");
    const auto& f = v.struct_value().fields();
    if (!f.count("dtype") || !f.count("shape") || !f.count("data_offsets")) return bad("needs dtype, shape and data_offsets");
    auto dt = kDtypes.find(f.at("dtype").string_value());
    if (dt == kDtypes.end()) return bad(absl::StrCat("unsupported dtype '", f.at("dtype").string_value(), "'"));
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    if (!f.at("shape").has_list_value() || f.at("shape").list_value().values_size() > kMaxDims) return bad("bad shape");
    for (const auto& d : f.at("shape").list_value().values()) {
      const double x = d.number_value();
      if (!(x >= 0 && x <= 1e15) || x != static_cast<double>(static_cast<int64_t>(x))) return bad("bad shape");
      shape.push_back(static_cast<int64_t>(x));
      numel *= static_cast<uint64_t>(x);
      if (numel > data_size) return bad("shape larger than the file");
    }
    const auto& off = f.at("data_offsets");
    if (!off.has_list_value() || off.list_value().values_size() != 2) return bad("data_offsets must be [begin, end]");
    const double b = off.list_value().values(0).number_value(), e = off.list_value().values(1).number_value();
    if (!(b >= 0 && e >= b && e <= static_cast<double>(data_size))) return bad("data_offsets outside the file");
    const uint64_t begin = static_cast<uint64_t>(b), end = static_cast<uint64_t>(e);
    if (end - begin != numel * c10::elementSize(dt->second)) return bad("data_offsets disagree with dtype and shape");
    at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dt->second));
    if (numel > 0) std::memcpy(t.data_ptr(), data + begin, end - begin);
    found.emplace_back(begin, name, t);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  for (auto& [o, name, t] : found) w.tensors.emplace_back(name, t);
  return w;
}

}  // namespace

absl::StatusOr<ModelWeights> ReadModelWeights(const std::string& path, const ReadWeightsOptions& options) {
  if (options.max_bytes < 1) return absl::InvalidArgumentError("max_bytes: must be >= 1");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read its size"));
  if (size > static_cast<uintmax_t>(options.max_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", size, " bytes, over the ", options.max_bytes,
                                                     "-byte limit (ReadWeightsOptions::max_bytes)"));
  }
  auto prefixed = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  };
  // Read once: what is parsed is exactly what is hashed.
  MOVE_ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path));
  if (bytes.size() > static_cast<uint64_t>(options.max_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": grew past the ", options.max_bytes, "-byte limit while read"));
  }
  if (bytes.size() < 9) return absl::InvalidArgumentError(absl::StrCat(path, ": too short to be a model file"));
  uint64_t header = 0;
  for (int k = 0; k < 8; ++k) header |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
  absl::StatusOr<ModelWeights> w;
  if (bytes.compare(0, 4, "PK\x03\x04") == 0) {
    w = core::GuardTorch("reading model weights", [&] { return ReadZipWeights(bytes, options); });
  } else if (bytes[8] == '{' && header < bytes.size() - 8) {
    w = core::GuardTorch("reading model weights", [&] { return ReadSafetensors(bytes); });
  } else if (static_cast<uint8_t>(bytes[0]) == 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a legacy (pre-zip) torch.save file, which only Python's general unpickler reads: re-save it with "
              "torch.save(state_dict, path) from PyTorch >= 1.6"));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a model weights file (expected a TorchScript archive, a torch.save zip or safetensors)"));
  }
  if (!w.ok()) return prefixed(w.status());
  if (w->tensors.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": holds no tensors"));
  w->sha256 = core::Sha256Hex(bytes);
  return w;
}

absl::StatusOr<torch::jit::Module> ModelFromWeights(const ModelSpec& spec, const ModelWeights& weights, c10::Device device,
                                                    std::vector<std::string>* unused) {
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, CreateModel(spec));
  return core::GuardTorch("loading weights into the SDK's model", [&]() -> absl::StatusOr<torch::jit::Module> {
    std::map<std::string, at::Tensor> given;
    for (const auto& [name, t] : weights.tensors) {
      std::string n = name;
      if (absl::StartsWith(n, "module.")) n = n.substr(7);  // saved from a DataParallel wrapper
      if (!given.emplace(n, t).second) return absl::InvalidArgumentError(absl::StrCat("tensor '", n, "' appears twice"));
    }
    const std::string arch = ModelSpecName(spec);
    std::set<std::string> used;
    torch::NoGradGuard no_grad;
    auto load = [&](const std::string& name, at::Tensor dst) -> absl::Status {
      auto it = given.find(name);
      if (it == given.end()) {
        return absl::FailedPreconditionError(absl::StrCat("the weights have no '", name, "', which ", arch, " needs"));
      }
      const at::Tensor& src = it->second;
      if (src.sizes() != dst.sizes()) {
        return absl::FailedPreconditionError(absl::StrCat("'", name, "' has shape [", absl::StrJoin(src.sizes(), ","),
                                                          "], ", arch, " needs [", absl::StrJoin(dst.sizes(), ","), "]"));
      }
      if (dst.is_floating_point()) {
        if (!src.is_floating_point()) return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not floating point"));
        if (!torch::isfinite(src).all().item<bool>()) {
          return absl::InvalidArgumentError(absl::StrCat("'", name, "' holds NaN or infinite values"));
        }
      }
      dst.copy_(src.to(dst.scalar_type()));
      used.insert(name);
      return absl::OkStatus();
    };
    for (const auto& p : model.named_parameters(/*recurse=*/true)) MOVE_RETURN_IF_ERROR(load(p.name, p.value));
    for (const auto& b : model.named_buffers(/*recurse=*/true)) MOVE_RETURN_IF_ERROR(load(b.name, b.value));
    std::vector<std::string> extra;
    for (const auto& [n, t] : given) {
      if (!used.count(n)) extra.push_back(n);
    }
    if (unused != nullptr) {
      *unused = extra;
    } else if (!extra.empty()) {
      if (extra.size() > 3) extra.resize(3);
      return absl::FailedPreconditionError(absl::StrCat("the weights hold tensors ", arch, " does not have: ",
                                                        absl::StrJoin(extra, ", ")));
    }
    model.eval();
    model.to(device);
    return model;
  });
}

}  // namespace move
