// The JSON the admin API speaks (common/json.h): writer escaping (including hostile bytes from
// client-supplied names) and the flat-object parser on good and malformed input.
#include "common/json.h"

#include <gtest/gtest.h>

#include <random>

namespace pgcutover {
namespace {

// Quotes, backslashes, control characters and invalid UTF-8 all come out as valid JSON.
TEST(CommonJson, WriterEscapes) {
  json::Writer w;
  w.begin_object()
      .field("q", "a\"b\\c")
      .field("ctl", std::string_view("\n\t\x01\x7f", 4))
      .field("utf8", "h\xC3\xA9")
      .field("bad", "x\xFF\xC3y")
      .field("n", static_cast<std::int64_t>(-3))
      .field("u", static_cast<std::uint64_t>(18446744073709551615ull))
      .field("b", true);
  w.key("arr").begin_array().value("a").value(1).null().end_array();
  w.end_object();
  EXPECT_EQ(w.str(),
            "{\"q\":\"a\\\"b\\\\c\",\"ctl\":\"\\n\\t\\u0001\\u007f\",\"utf8\":\"h\xC3\xA9\","
            "\"bad\":\"x\xEF\xBF\xBD\xEF\xBF\xBDy\",\"n\":-3,\"u\":18446744073709551615,\"b\":true,"
            "\"arr\":[\"a\",1,null]}");
  std::string err;
  // The writer's output parses back (scalars only, so drop the array).
  json::Writer w2;
  w2.begin_object().field("s", "x\xFF\"\n").end_object();
  auto obj = json::parse_flat_object(w2.str(), err);
  ASSERT_TRUE(obj) << err;
  EXPECT_EQ(obj->at("s").s, "x\xEF\xBF\xBD\"\n");
}

// Every scalar type of a request body.
TEST(CommonJson, ParsesFlatObject) {
  std::string err;
  auto obj = json::parse_flat_object(
      " {\"backend\": \"target\", \"epoch\": 3, \"enabled\": false, \"x\": null, \"d\": -1.5e2, "
      "\"esc\": \"\\u00e9\\ud83d\\ude00\\/\"} ",
      err);
  ASSERT_TRUE(obj) << err;
  EXPECT_EQ(obj->at("backend").s, "target");
  EXPECT_EQ(obj->at("epoch").type, json::Value::Type::kInt);
  EXPECT_EQ(obj->at("epoch").i, 3);
  EXPECT_EQ(obj->at("enabled").type, json::Value::Type::kBool);
  EXPECT_FALSE(obj->at("enabled").b);
  EXPECT_EQ(obj->at("x").type, json::Value::Type::kNull);
  EXPECT_EQ(obj->at("d").type, json::Value::Type::kDouble);
  EXPECT_DOUBLE_EQ(obj->at("d").d, -150);
  EXPECT_EQ(obj->at("esc").s, "\xC3\xA9\xF0\x9F\x98\x80/");
  EXPECT_TRUE(json::parse_flat_object("{}", err));
}

// Malformed and unsupported bodies are refused with a message, never a crash.
TEST(CommonJson, RejectsMalformed) {
  const char* bad[] = {
      "",
      "[]",
      "{",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "{\"a\":1 \"b\":2}",
      "{a:1}",
      "{\"a\":'x'}",
      "{\"a\":01}",
      "{\"a\":1.}",
      "{\"a\":-}",
      "{\"a\":1e}",
      "{\"a\":tru}",
      "{\"a\":\"unterminated}",
      "{\"a\":\"\\x\"}",
      "{\"a\":\"\\u12\"}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\":\"\\udc00\"}",
      "{\"a\":\"\xFF\"}",
      "{\"a\":\"\xC0\xAF\"}",
      "{\"a\":\"\n\"}",
      "{\"a\":{\"b\":1}}",
      "{\"a\":[1]}",
      "{\"a\":1,\"a\":2}",
      "{\"a\":1} x",
      "{\"a\":1e999}",
  };
  for (const char* text : bad) {
    std::string err;
    EXPECT_FALSE(json::parse_flat_object(text, err)) << text;
    EXPECT_FALSE(err.empty()) << text;
  }
  std::string err;
  EXPECT_FALSE(json::parse_flat_object(std::string_view("{\"a\":\"\0\"}", 8), err));
}

// Integers beyond int64 are kept as doubles (so a huge epoch is refused by type, not wrapped).
TEST(CommonJson, HugeIntegerIsNotInt) {
  std::string err;
  auto obj = json::parse_flat_object("{\"epoch\": 99999999999999999999}", err);
  ASSERT_TRUE(obj) << err;
  EXPECT_EQ(obj->at("epoch").type, json::Value::Type::kDouble);
}

// Random bytes and truncations of a valid body never crash the parser.
TEST(CommonJson, RandomInputDoesNotCrash) {
  std::mt19937 rng(1234);
  std::string valid = "{\"backend\":\"target\",\"epoch\":3,\"enabled\":true,\"s\":\"\\u00e9\"}";
  std::string err;
  for (std::size_t i = 0; i <= valid.size(); ++i) json::parse_flat_object(valid.substr(0, i), err);
  for (int n = 0; n < 20000; ++n) {
    std::string s = valid;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng() & 0xFF);
    json::parse_flat_object(s, err);
  }
}

}  // namespace
}  // namespace pgcutover
