// Base64 as SCRAM uses it: RFC 4648 section 10 vectors, and strict rejection of anything a
// peer could send that is not canonical base64.
#include <gtest/gtest.h>

#include <string>

#include "protocol/base64.h"

namespace pgcutover::protocol {
namespace {

TEST(AuthBase64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [raw, b64] : vectors) {
    EXPECT_EQ(base64_encode(raw), b64);
    const auto back = base64_decode(b64);
    ASSERT_TRUE(back) << b64;
    EXPECT_EQ(*back, raw);
  }
  // The GS2 headers of SCRAM's c= attribute.
  EXPECT_EQ(base64_encode("n,,"), "biws");
  EXPECT_EQ(base64_encode("y,,"), "eSws");
}

TEST(AuthBase64, AllByteValuesRoundTrip) {
  std::string raw;
  for (int i = 0; i < 256; ++i) raw.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= raw.size(); n += 7) {
    const auto back = base64_decode(base64_encode(raw.substr(0, n)));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, raw.substr(0, n));
  }
}

TEST(AuthBase64, InvalidInputIsRejected) {
  for (std::string_view bad : {"Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zm=v", "Zm9v\n",
                               " Zm9v", "Zm9-", "Zm9_", "Zh==", "Zm9=", "Zm8=Zm9v", "=Zm9"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
  EXPECT_FALSE(base64_decode(std::string_view("Zm\0v", 4)));
}

}  // namespace
}  // namespace pgcutover::protocol
