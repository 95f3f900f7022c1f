// Protobuf messages as indented JSON, one way everywhere (reports, records, summaries).
#ifndef MOVE_CORE_PROTO_JSON_H_
#define MOVE_CORE_PROTO_JSON_H_

#include <string>

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

namespace move::core {

// Field names as in the .proto, every primitive field printed (zeros included), indented.
inline std::string ProtoToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, opts);
  return json;
}

}  // namespace move::core

#endif  // MOVE_CORE_PROTO_JSON_H_
