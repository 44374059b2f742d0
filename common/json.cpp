#include "common/json.h"

#include <cerrno>
#include <cstdlib>

namespace pgcutover::json {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not valid (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  std::size_t len;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string& error) : t_(text), error_(error) {}

  std::optional<FlatObject> object() {
    FlatObject out;
    ws();
    if (!eat('{')) return fail("expected a JSON object");
    ws();
    if (eat('}')) return finish(std::move(out));
    for (;;) {
      ws();
      std::string k;
      if (peek() != '"') return fail("expected a string key");
      if (!string(k)) return std::nullopt;
      ws();
      if (!eat(':')) return fail("expected ':'");
      ws();
      Value v;
      if (!value(v)) return std::nullopt;
      if (!out.emplace(std::move(k), std::move(v)).second) return fail("duplicate key");
      ws();
      if (eat(',')) continue;
      if (eat('}')) return finish(std::move(out));
      return fail("expected ',' or '}'");
    }
  }

 private:
  std::optional<FlatObject> finish(FlatObject out) {
    ws();
    if (pos_ != t_.size()) return fail("unexpected bytes after the object");
    return out;
  }
  std::nullopt_t fail(const char* what) {
    error_ = std::string(what) + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }
  char peek() const { return pos_ < t_.size() ? t_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || pos_ >= t_.size()) return false;
    ++pos_;
    return true;
  }
  void ws() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) {
    if (t_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool value(Value& v) {
    char c = peek();
    if (c == '"') {
      v.type = Value::Type::kString;
      return string(v.s);
    }
    if (c == '{' || c == '[') return (fail("nested objects and arrays are not supported"), false);
    if (literal("true")) {
      v.type = Value::Type::kBool;
      v.b = true;
      return true;
    }
    if (literal("false")) {
      v.type = Value::Type::kBool;
      return true;
    }
    if (literal("null")) return true;
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    return (fail("expected a value"), false);
  }
  bool digits() {
    std::size_t start = pos_;
    while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  // RFC 8259 number grammar, checked before conversion so strtod never sees anything odd.
  bool number(Value& v) {
    std::size_t start = pos_;
    eat('-');
    if (peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      return (fail("bad number"), false);
    }
    bool integral = true;
    if (eat('.')) {
      integral = false;
      if (!digits()) return (fail("bad number"), false);
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digits()) return (fail("bad number"), false);
    }
    std::string text(t_.substr(start, pos_ - start));
    errno = 0;
    if (integral) {
      long long n = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v.type = Value::Type::kInt;
        v.i = n;
        v.d = static_cast<double>(n);
        return true;
      }
      errno = 0;
    }
    v.type = Value::Type::kDouble;
    v.d = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE) return (fail("number out of range"), false);
    return true;
  }
  bool hex4(std::uint32_t& out) {
    if (pos_ + 4 > t_.size()) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  bool string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= t_.size()) return (fail("unterminated string"), false);
      auto c = static_cast<unsigned char>(t_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return (fail("control character in string"), false);
      if (c == '\\') {
        ++pos_;
        char e = peek();
        ++pos_;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out.push_back(e);
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'u': {
            std::uint32_t cp;
            if (!hex4(cp)) return (fail("bad \\u escape"), false);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              std::uint32_t lo;
              if (!literal("\\u") || !hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) {
                return (fail("unpaired surrogate"), false);
              }
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return (fail("unpaired surrogate"), false);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            return (fail("bad escape"), false);
        }
        continue;
      }
      std::size_t len = utf8_sequence(t_, pos_);
      if (len == 0) return (fail("invalid UTF-8"), false);
      out.append(t_.substr(pos_, len));
      pos_ += len;
    }
  }

  std::string_view t_;
  std::string& error_;
  std::size_t pos_ = 0;
};

}  // namespace

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c < 0x20 || c == 0x7F) {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else if (c >= 0x80) {
      std::size_t len = utf8_sequence(s, i);
      if (len == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD: keep the document valid whatever came in
        ++i;
        continue;
      }
      out.append(s.substr(i, len));
      i += len;
      continue;
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  out.push_back('"');
}

void Writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

Writer& Writer::begin_object() {
  before_value();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}
Writer& Writer::end_object() {
  out_.push_back('}');
  first_.pop_back();
  return *this;
}
Writer& Writer::begin_array() {
  before_value();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}
Writer& Writer::end_array() {
  out_.push_back(']');
  first_.pop_back();
  return *this;
}
Writer& Writer::key(std::string_view k) {
  before_value();
  append_string(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}
Writer& Writer::value(std::string_view v) {
  before_value();
  append_string(out_, v);
  return *this;
}
Writer& Writer::value(bool v) {
  before_value();
  out_.append(v ? "true" : "false");
  return *this;
}
Writer& Writer::value(std::int64_t v) {
  before_value();
  out_.append(std::to_string(v));
  return *this;
}
Writer& Writer::value(std::uint64_t v) {
  before_value();
  out_.append(std::to_string(v));
  return *this;
}
Writer& Writer::null() {
  before_value();
  out_.append("null");
  return *this;
}

std::optional<FlatObject> parse_flat_object(std::string_view text, std::string& error) {
  return Parser(text, error).object();
}

}  // namespace pgcutover::json
