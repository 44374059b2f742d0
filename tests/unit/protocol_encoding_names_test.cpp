// PostgreSQL's spelling of client encodings, as the server reports them in ParameterStatus.
#include "protocol/encoding_names.h"

#include <gtest/gtest.h>

namespace pgcutover::protocol {
namespace {

TEST(EncodingNames, AliasesAreAnsweredAsTheServerSpellsThem) {
  EXPECT_EQ(postgres_encoding_name("utf-8"), "UTF8");
  EXPECT_EQ(postgres_encoding_name("UTF8"), "UTF8");
  EXPECT_EQ(postgres_encoding_name("Unicode"), "UTF8");
  EXPECT_EQ(postgres_encoding_name("euc-jp"), "EUC_JP");
  EXPECT_EQ(postgres_encoding_name("EUC_JIS_2004"), "EUC_JIS_2004");
  EXPECT_EQ(postgres_encoding_name("iso-8859-1"), "LATIN1");
  EXPECT_EQ(postgres_encoding_name("ISO_8859_5"), "ISO_8859_5");
  EXPECT_EQ(postgres_encoding_name("windows-1252"), "WIN1252");
  EXPECT_EQ(postgres_encoding_name("Shift_JIS"), "SJIS");
  EXPECT_EQ(postgres_encoding_name("sql_ascii"), "SQL_ASCII");
}

TEST(EncodingNames, UnknownNamesAreLeftToTheServer) {
  EXPECT_FALSE(postgres_encoding_name("klingon"));
  EXPECT_FALSE(postgres_encoding_name(""));
  EXPECT_FALSE(postgres_encoding_name("utf-16"));
}

}  // namespace
}  // namespace pgcutover::protocol
