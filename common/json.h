// The small amount of JSON the admin API needs, without Boost.JSON (Debian's 1.81 ships no
// compiled library for it, and only one target may include <boost/json/src.hpp>: control/).
// Writer: correct escaping, invalid UTF-8 replaced by U+FFFD (client-supplied names such as
// application_name reach status output). Parser: one flat object of scalars, which is every
// request body of the API; anything else is refused with a message.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgcutover::json {

// Appends `s` as a JSON string literal (with quotes) to `out`.
void append_string(std::string& out, std::string_view s);

class Writer {
 public:
  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  Writer& key(std::string_view k);
  Writer& value(std::string_view v);
  Writer& value(const char* v) { return value(std::string_view(v)); }
  Writer& value(const std::string& v) { return value(std::string_view(v)); }
  Writer& value(bool v);
  Writer& value(std::int64_t v);
  Writer& value(std::uint64_t v);
  Writer& value(int v) { return value(static_cast<std::int64_t>(v)); }
  Writer& null();
  template <class T>
  Writer& field(std::string_view k, const T& v) {
    return key(k).value(v);
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

struct Value {
  enum class Type { kNull, kBool, kInt, kDouble, kString };
  Type type = Type::kNull;
  bool b = false;
  std::int64_t i = 0;
  double d = 0;
  std::string s;
};

using FlatObject = std::map<std::string, Value, std::less<>>;

// Parses `{"k": scalar, ...}` (whitespace allowed; strings with every JSON escape; integers that
// fit int64 become kInt, other numbers kDouble). Nested objects/arrays, duplicate keys, trailing
// bytes and invalid UTF-8 in strings are errors. nullopt with `error` set on failure.
std::optional<FlatObject> parse_flat_object(std::string_view text, std::string& error);

}  // namespace pgcutover::json
