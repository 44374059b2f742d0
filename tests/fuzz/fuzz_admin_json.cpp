// libFuzzer target: the admin API's JSON body parser (json::parse_flat_object), which reads
// every POST body before the handler sees it. Any text either parses or sets an error; a parsed
// object written back with json::Writer must parse again to the same keys and values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"

using namespace pgcutover;

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto obj = json::parse_flat_object(text, error);
  if (!obj) {
    check(!error.empty());
    return 0;
  }
  json::Writer w;
  w.begin_object();
  for (const auto& [k, v] : *obj) {
    w.key(k);
    switch (v.type) {
      case json::Value::Type::kNull:
        w.null();
        break;
      case json::Value::Type::kBool:
        w.value(v.b);
        break;
      case json::Value::Type::kInt:
        w.value(v.i);
        break;
      case json::Value::Type::kDouble:
        w.null();
        break;  // the writer has no doubles
      case json::Value::Type::kString:
        w.value(v.s);
        break;
    }
  }
  w.end_object();
  std::string error2;
  const auto again = json::parse_flat_object(w.str(), error2);
  check(again.has_value() && again->size() == obj->size());
  for (const auto& [k, v] : *obj) {
    const auto it = again->find(k);
    check(it != again->end());
    if (v.type == json::Value::Type::kString) check(it->second.s == v.s);
    if (v.type == json::Value::Type::kInt) check(it->second.i == v.i);
    if (v.type == json::Value::Type::kBool) check(it->second.b == v.b);
  }
  return 0;
}
