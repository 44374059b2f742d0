// Proves the unit-test executable links the three libraries.
#include <gtest/gtest.h>
#include <string_view>
namespace pgcutover::protocol {
const char* version();
}
TEST(Build, LibrariesLink) {
  EXPECT_EQ(std::string_view(pgcutover::protocol::version()), "0.1.0");
}
