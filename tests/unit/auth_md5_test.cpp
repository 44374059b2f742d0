// MD5 password authentication against what PostgreSQL stores and what libpq sends.
#include <gtest/gtest.h>

#include <string>

#include "protocol/auth.h"

namespace pgcutover::protocol {
namespace {

// From PostgreSQL 15: SET password_encryption = 'md5';
// CREATE ROLE md5user PASSWORD 'password'; SELECT rolpassword FROM pg_authid.
constexpr std::string_view kPgMd5 = "md56075a92d7b57d336c40304e09cb7fc28";

TEST(AuthMd5, HashMatchesPostgres) {
  EXPECT_EQ(md5_password_hash("md5user", "password"), kPgMd5);
  // The widely quoted md5 of "password" + "postgres".
  EXPECT_EQ(md5_password_hash("postgres", "password"), "md532e12f215ba27cb750c9e093ce4b5127");
}

// The response libpq computes: "md5" + md5(hex(md5(password + user)) + salt).
TEST(AuthMd5, ResponseFromPlaintextAndFromStoredHashAgree) {
  const std::uint8_t salt[4] = {0x01, 0x02, 0x03, 0x04};
  const std::string from_plain = md5_response("md5user", "password", salt);
  EXPECT_EQ(from_plain.size(), 35u);
  EXPECT_EQ(from_plain.substr(0, 3), "md5");
  EXPECT_EQ(md5_response("md5user", kPgMd5, salt), from_plain);
  // Known answer, computed with Python's hashlib:
  // "md5" + md5(b"6075a92d7b57d336c40304e09cb7fc28" + bytes([1,2,3,4])).hexdigest()
  EXPECT_EQ(from_plain, "md5e89d779e61d1031ff4ad66cf8578d48e");
}

TEST(AuthMd5, VerifyAcceptsOnlyTheRightResponse) {
  const std::uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
  const std::uint8_t other_salt[4] = {0xde, 0xad, 0xbe, 0xee};
  const std::string resp = md5_response("alice", "s3cret", salt);
  EXPECT_TRUE(md5_verify("alice", "s3cret", salt, resp));
  EXPECT_TRUE(md5_verify("alice", md5_password_hash("alice", "s3cret"), salt, resp));
  EXPECT_FALSE(md5_verify("alice", "s3cret", other_salt, resp));  // replay with a new salt
  EXPECT_FALSE(md5_verify("bob", "s3cret", salt, resp));          // user is part of the hash
  EXPECT_FALSE(md5_verify("alice", "wrong", salt, resp));
  EXPECT_FALSE(md5_verify("alice", "s3cret", salt, ""));
  EXPECT_FALSE(md5_verify("alice", "s3cret", salt, resp.substr(0, 34)));
  EXPECT_FALSE(md5_verify("alice", "s3cret", salt, resp + "0"));
}

}  // namespace
}  // namespace pgcutover::protocol
