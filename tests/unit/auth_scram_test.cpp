// SCRAM-SHA-256 against RFC 7677's published exchange, against a verifier made by a real
// PostgreSQL 15, and client <-> server round trips with every way the exchange can go wrong.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/base64.h"
#include "protocol/scram_internal.h"

namespace pgcutover::protocol {
namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view kRfcPassword = "pencil";
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Made by PostgreSQL 15 here: SET password_encryption = 'scram-sha-256';
// CREATE ROLE fixture LOGIN PASSWORD 'pgcutover-fixture-pw'; SELECT rolpassword FROM pg_authid.
constexpr std::string_view kPgVerifier =
    "SCRAM-SHA-256$4096:Bus6BLktND94IwZb4OIcXw==$Tv4a2CU50Mf/DEhCDxfx6froU+gRJcgNiWQlsLRiUxc=:"
    "ljSlX2xzjS2ByIhNkXYOocZWINImKLaS1mmiSlj2wYY=";
constexpr std::string_view kPgPassword = "pgcutover-fixture-pw";

ScramVerifier rfc_verifier() {
  return make_scram_verifier(kRfcPassword, 4096, *base64_decode(kRfcSaltB64));
}

// Independent HMAC-SHA-256 straight from OpenSSL, to check the client's proof.
std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return {reinterpret_cast<char*>(out), len};
}
std::string sha256(std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return {reinterpret_cast<char*>(out), len};
}

// One full exchange; returns the server's verdict and whether the client accepted the server.
struct Outcome {
  bool server_ok = false;
  bool client_ok = false;
  std::string server_error;
};
Outcome run_exchange(std::string_view password, const ScramVerifier& v) {
  ScramClient client{std::string(password)};
  ScramServer server(v);
  Outcome o;
  const ScramStep first = server.handle_client_first(client.client_first());
  if (!first.ok) return o;
  const ScramStep final_msg = client.handle_server_first(first.message);
  if (!final_msg.ok) return o;
  const ScramStep verdict = server.handle_client_final(final_msg.message);
  o.server_ok = verdict.ok && server.authenticated();
  o.server_error = verdict.error;
  if (verdict.ok) o.client_ok = client.handle_server_final(verdict.message).ok;
  return o;
}

// The server side reproduces RFC 7677's exchange byte for byte (it ignores n=user, but the
// bare message it hashes is the one the client sent).
TEST(AuthScram, ServerMatchesRfc7677Vector) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_testing(std::string(kRfcServerNonce));
  const ScramStep first = server.handle_client_first(kRfcClientFirst);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.message, kRfcServerFirst);
  const ScramStep final_msg = server.handle_client_final(kRfcClientFinal);
  ASSERT_TRUE(final_msg.ok) << final_msg.error;
  EXPECT_TRUE(server.authenticated());
  EXPECT_EQ(final_msg.message, kRfcServerFinal);
}

// The client side with RFC 7677's nonce and server-first. PostgreSQL clients send "n=", so
// the AuthMessage (and the proof) differ from the RFC's; the expected proof is computed here
// independently from the RFC 5802 section 3 formulas.
TEST(AuthScram, ClientMatchesRfc7677VectorWithEmptyUserName) {
  ScramClient client{std::string(kRfcPassword)};
  client.set_nonce_for_testing(std::string(kRfcClientNonce));
  EXPECT_EQ(client.client_first(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  const ScramStep step = client.handle_server_first(kRfcServerFirst);
  ASSERT_TRUE(step.ok) << step.error;

  const std::string salt = *base64_decode(kRfcSaltB64);
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(kRfcPassword.data(), static_cast<int>(kRfcPassword.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), 4096, EVP_sha256(), 32, salted);
  const std::string salted_s(reinterpret_cast<char*>(salted), 32);
  const std::string client_key = hmac(salted_s, "Client Key");
  const std::string stored_key = sha256(client_key);
  const std::string without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string auth_message =
      "n=,r=rOprNGfwEbeRWgbNEkqO," + std::string(kRfcServerFirst) + "," + without_proof;
  std::string proof = hmac(stored_key, auth_message);
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] ^= client_key[i];
  EXPECT_EQ(step.message, without_proof + ",p=" + base64_encode(proof));

  // And it accepts the server signature computed the same way.
  const std::string server_sig = hmac(hmac(salted_s, "Server Key"), auth_message);
  EXPECT_TRUE(client.handle_server_final("v=" + base64_encode(server_sig)).ok);
}

// A pool's second connection as the same role takes its keys from the cache: the same proof as
// a fresh derivation, and the server still authenticates it; another salt, count or password is
// another entry; the cache stays bounded.
TEST(AuthScram, ClientKeysComeFromTheCacheUnchanged) {
  const std::string salt = *base64_decode(kRfcSaltB64);
  for (int round = 0; round < 2; ++round) {
    const ScramKeys fresh = derive_scram_keys(kRfcPassword, salt, 4096);
    const ScramKeys cached = cached_scram_keys(kRfcPassword, salt, 4096);
    EXPECT_EQ(cached.client_key, fresh.client_key) << round;
    EXPECT_EQ(cached.stored_key, fresh.stored_key) << round;
    EXPECT_EQ(cached.server_key, fresh.server_key) << round;
    const Outcome o = run_exchange(kRfcPassword, rfc_verifier());
    EXPECT_TRUE(o.server_ok) << round << ": " << o.server_error;
    EXPECT_TRUE(o.client_ok) << round;
    // Same salt and count, another password: not the cached keys.
    EXPECT_FALSE(run_exchange("pencil ", rfc_verifier()).server_ok) << round;
  }
  const ScramKeys other_count = cached_scram_keys(kRfcPassword, salt, 4097);
  const ScramKeys other_password = cached_scram_keys("pencil2", salt, 4096);
  const ScramKeys other_salt = cached_scram_keys(kRfcPassword, salt + "x", 4096);
  const ScramKeys rfc = cached_scram_keys(kRfcPassword, salt, 4096);
  EXPECT_NE(other_count.client_key, rfc.client_key);
  EXPECT_NE(other_password.client_key, rfc.client_key);
  EXPECT_NE(other_salt.client_key, rfc.client_key);
  EXPECT_EQ(other_salt.client_key, derive_scram_keys(kRfcPassword, salt + "x", 4096).client_key);
  for (int i = 0; i < 40; ++i) cached_scram_keys("p", "salt" + std::to_string(i), 1);
  EXPECT_EQ(scram_key_cache_entries(), 32u);
}

// The RFC's StoredKey/ServerKey for "pencil" agree with an independent derivation.
TEST(AuthScram, VerifierKeysFollowRfc5802) {
  const ScramVerifier v = rfc_verifier();
  const std::string salt = *base64_decode(kRfcSaltB64);
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC("pencil", 6, reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), 4096, EVP_sha256(), 32, salted);
  const std::string s(reinterpret_cast<char*>(salted), 32);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.stored_key.data()), 32),
            sha256(hmac(s, "Client Key")));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.server_key.data()), 32),
            hmac(s, "Server Key"));
}

// A verifier stored by PostgreSQL 15 parses, formats back identically, and authenticates its
// password (and no other) both through the exchange and as a plaintext check.
TEST(AuthScram, PostgresVerifierFixture) {
  const auto v = parse_scram_verifier(kPgVerifier);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_EQ(v->salt.size(), 16u);
  EXPECT_EQ(format_scram_verifier(*v), kPgVerifier);
  EXPECT_TRUE(scram_verify_password(kPgPassword, *v));
  EXPECT_FALSE(scram_verify_password("pgcutover-fixture-pW", *v));
  const Outcome good = run_exchange(kPgPassword, *v);
  EXPECT_TRUE(good.server_ok) << good.server_error;
  EXPECT_TRUE(good.client_ok);
  EXPECT_FALSE(run_exchange("wrong", *v).server_ok);
  // Same salt and count: make_scram_verifier reproduces PostgreSQL's keys exactly.
  EXPECT_EQ(format_scram_verifier(make_scram_verifier(kPgPassword, 4096, v->salt)), kPgVerifier);
}

TEST(AuthScram, RoundTripRightPassword) {
  const ScramVerifier v = make_scram_verifier("s3cret", 4096);
  const Outcome o = run_exchange("s3cret", v);
  EXPECT_TRUE(o.server_ok) << o.server_error;
  EXPECT_TRUE(o.client_ok);
}

TEST(AuthScram, RoundTripWrongPassword) {
  const ScramVerifier v = make_scram_verifier("s3cret", 4096);
  const Outcome o = run_exchange("s3cret ", v);
  EXPECT_FALSE(o.server_ok);
  EXPECT_FALSE(o.server_error.empty());
  EXPECT_EQ(o.server_error.find("s3cret"), std::string::npos) << "errors never carry secrets";
}

// Non-ASCII passwords are hashed as their raw bytes on both sides (see auth.h: SASLprep).
TEST(AuthScram, NonAsciiPasswordRoundTrip) {
  const std::string pw = "p\xc3\xa4ssw\xc3\xb6rd";
  EXPECT_EQ(scram_prepare_password(pw), pw);
  EXPECT_TRUE(run_exchange(pw, make_scram_verifier(pw, 4096)).server_ok);
}

// Random salts differ; a given salt is kept.
TEST(AuthScram, MakeVerifierSalt) {
  const ScramVerifier a = make_scram_verifier("x", 4096);
  const ScramVerifier b = make_scram_verifier("x", 4096);
  EXPECT_EQ(a.salt.size(), kScramSaltLength);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_EQ(make_scram_verifier("x", 0, "fixed").iterations, kScramDefaultIterations);
  EXPECT_EQ(make_scram_verifier("x", 4096, "fixed").salt, "fixed");
}

TEST(AuthScram, VerifierFormatParseRoundTrip) {
  const ScramVerifier v = make_scram_verifier("pw", 10000);
  const std::string text = format_scram_verifier(v);
  const auto back = parse_scram_verifier(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->iterations, 10000);
  EXPECT_EQ(back->salt, v.salt);
  EXPECT_EQ(back->stored_key, v.stored_key);
  EXPECT_EQ(back->server_key, v.server_key);
}

TEST(AuthScram, MalformedVerifiersAreRejected) {
  const std::string good(kPgVerifier);
  for (const std::string& bad : std::vector<std::string>{
           "", std::string("md5abcdef"),
           "scram-sha-256" + good.substr(13),               // scheme is case-sensitive
           good.substr(0, good.size() - 1),                 // server key truncated
           good + "=",                                      // bad base64
           good + ":x",                                     // extra field
           "SCRAM-SHA-256$0:" + good.substr(19),            // zero iterations
           "SCRAM-SHA-256$-1:" + good.substr(19),           // negative
           "SCRAM-SHA-256$04096:" + good.substr(19),        // leading zero (RFC 5802)
           "SCRAM-SHA-256$99999999999:" + good.substr(19),  // overflow
           "SCRAM-SHA-256$4096" + good.substr(19),          // missing ':'
           "SCRAM-SHA-256$4096:$" + good.substr(44),        // empty salt
           "SCRAM-SHA-256$4096:QUJD$QUJD:QUJD",             // keys not 32 bytes
       }) {
    EXPECT_FALSE(parse_scram_verifier(bad)) << bad;
  }
}

// Unknown users: the mock verifier is deterministic per user and secret, differs between
// users and secrets, looks like a real one (16-byte salt, default count), and never
// authenticates anything.
TEST(AuthScram, MockVerifierDoesNotRevealExistence) {
  const ScramVerifier a1 = mock_scram_verifier("ghost", "deployment-secret");
  const ScramVerifier a2 = mock_scram_verifier("ghost", "deployment-secret");
  const ScramVerifier b = mock_scram_verifier("ghost2", "deployment-secret");
  const ScramVerifier c = mock_scram_verifier("ghost", "other-secret");
  EXPECT_EQ(a1.salt, a2.salt);
  EXPECT_EQ(a1.stored_key, a2.stored_key);
  EXPECT_NE(a1.salt, b.salt);
  EXPECT_NE(a1.salt, c.salt);
  EXPECT_EQ(a1.salt.size(), kScramSaltLength);
  EXPECT_EQ(a1.iterations, kScramDefaultIterations);
  EXPECT_EQ(mock_scram_verifier("ghost", "s", 8192).iterations, 8192);
  // The failure looks exactly like a wrong password for a real user.
  const Outcome mock = run_exchange("anything", a1);
  const Outcome wrong = run_exchange("anything", make_scram_verifier("real", 4096));
  EXPECT_FALSE(mock.server_ok);
  EXPECT_EQ(mock.server_error, wrong.server_error);
  // The server-first message has the same shape: r=..,s=<16 bytes b64>,i=4096.
  ScramServer server(a1);
  ScramClient client("x");
  const ScramStep first = server.handle_client_first(client.client_first());
  ASSERT_TRUE(first.ok);
  EXPECT_NE(first.message.find(",s=" + base64_encode(a1.salt) + ",i=4096"), std::string::npos);
}

// ---- server side: malformed and hostile client messages ----

// Runs client-first through a fresh server; returns the step.
ScramStep server_first_for(std::string_view client_first) {
  ScramServer server(rfc_verifier());
  return server.handle_client_first(client_first);
}

TEST(AuthScram, ServerAcceptsNoAndYesGs2Flags) {
  EXPECT_TRUE(server_first_for("n,,n=,r=abc").ok);
  EXPECT_TRUE(server_first_for("y,,n=,r=abc").ok);
  EXPECT_TRUE(server_first_for("n,,n=user,r=abc,x=ext").ok);
}

// "y,," round trip: the client-final must then carry c=eSws (base64 of "y,,").
TEST(AuthScram, ServerYesFlagNeedsMatchingChannelBindingAttribute) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_testing(std::string(kRfcServerNonce));
  ASSERT_TRUE(server.handle_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").ok);
  // The RFC's final says c=biws ("n,,"): a mismatch with the header we got.
  const ScramStep s = server.handle_client_final(kRfcClientFinal);
  EXPECT_FALSE(s.ok);
  EXPECT_FALSE(server.authenticated());
}

// A client that supports channel binding but was not offered -PLUS sends "y,,": accepted,
// with c=eSws (base64 of "y,,") in the final message and the proof computed over it.
TEST(AuthScram, ServerAcceptsYesFlagWithMatchingProof) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_testing(std::string(kRfcServerNonce));
  const ScramStep first = server.handle_client_first("y,,n=,r=rOprNGfwEbeRWgbNEkqO");
  ASSERT_TRUE(first.ok) << first.error;
  const std::string salt = *base64_decode(kRfcSaltB64);
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC("pencil", 6, reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), 4096, EVP_sha256(), 32, salted);
  const std::string client_key =
      hmac(std::string(reinterpret_cast<char*>(salted), 32), "Client Key");
  const std::string without_proof = "c=eSws,r=rOprNGfwEbeRWgbNEkqO" + std::string(kRfcServerNonce);
  std::string proof =
      hmac(sha256(client_key), "n=,r=rOprNGfwEbeRWgbNEkqO," + first.message + "," + without_proof);
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] ^= client_key[i];
  const ScramStep verdict =
      server.handle_client_final(without_proof + ",p=" + base64_encode(proof));
  EXPECT_TRUE(verdict.ok) << verdict.error;
  EXPECT_TRUE(server.authenticated());
}

TEST(AuthScram, ServerRefusesChannelBindingRequest) {
  const ScramStep s = server_first_for("p=tls-server-end-point,,n=,r=abc");
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.error.find("channel binding"), std::string::npos);
}

TEST(AuthScram, ServerRejectsMalformedClientFirst) {
  for (std::string_view bad :
       {"", "n", "n,", "n,,", "x,,n=,r=abc", "n,a=admin,n=,r=abc", "n,,m=ext,n=,r=abc", "n,,r=abc",
        "n,,n=,", "n,,n=,r=", "n,,n=,r=a,b", "n,,n=,r=abc,", "n,,n=,r=ab\x01", "n,,n=,r=abc,1=x",
        "y,x,n=,r=abc"}) {
    EXPECT_FALSE(server_first_for(bad).ok) << bad;
  }
  EXPECT_FALSE(server_first_for(std::string_view("n,,n=,r=a\0b", 11)).ok);
}

// Messages out of order fail and end the exchange.
TEST(AuthScram, ServerRejectsOutOfOrderMessages) {
  ScramServer server(rfc_verifier());
  EXPECT_FALSE(server.handle_client_final(kRfcClientFinal).ok);
  EXPECT_FALSE(server.handle_client_first(kRfcClientFirst).ok);  // already failed
  ScramServer twice(rfc_verifier());
  EXPECT_TRUE(twice.handle_client_first(kRfcClientFirst).ok);
  EXPECT_FALSE(twice.handle_client_first(kRfcClientFirst).ok);
}

// Client-final variations on the RFC vector: only the exact one passes.
TEST(AuthScram, ServerRejectsTamperedClientFinal) {
  auto verdict = [](std::string_view client_final) {
    ScramServer server(rfc_verifier());
    server.set_nonce_for_testing(std::string(kRfcServerNonce));
    EXPECT_TRUE(server.handle_client_first(kRfcClientFirst).ok);
    const ScramStep s = server.handle_client_final(client_final);
    EXPECT_EQ(s.ok, server.authenticated());
    return s.ok;
  };
  const std::string good(kRfcClientFinal);
  EXPECT_TRUE(verdict(good));
  std::string tampered_proof = good;
  tampered_proof[good.size() - 5] = tampered_proof[good.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verdict(tampered_proof)) << "tampered proof";
  std::string wrong_nonce = good;
  wrong_nonce[10] = 'X';
  EXPECT_FALSE(verdict(wrong_nonce)) << "wrong nonce";
  EXPECT_FALSE(
      verdict("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
      << "client nonce only";
  EXPECT_FALSE(verdict("c=eSws" + good.substr(6))) << "channel binding flag changed";
  EXPECT_FALSE(verdict(good + ",x=1")) << "garbage after proof";
  EXPECT_FALSE(verdict(good.substr(0, good.find(",p=")))) << "no proof";
  EXPECT_FALSE(verdict(good.substr(0, good.size() - 4) + "AA==")) << "short proof";
  EXPECT_FALSE(verdict("")) << "empty";
  EXPECT_FALSE(verdict("p=" + good.substr(good.find(",p=") + 3))) << "proof only";
  // An extension before the proof is allowed by RFC 5802 but changes the AuthMessage.
  EXPECT_FALSE(verdict(good.substr(0, good.find(",p=")) + ",x=y" + good.substr(good.find(",p="))));
}

// ---- client side: malformed and hostile server messages ----

TEST(AuthScram, ClientRejectsServerThatDoesNotExtendItsNonce) {
  auto step = [](std::string_view server_first) {
    ScramClient client("pencil");
    client.set_nonce_for_testing("abc");
    client.client_first();
    return client.handle_server_first(server_first).ok;
  };
  EXPECT_TRUE(step("r=abcdef,s=QUJD,i=4096"));
  EXPECT_FALSE(step("r=abc,s=QUJD,i=4096")) << "server added nothing";
  EXPECT_FALSE(step("r=xbcdef,s=QUJD,i=4096")) << "not our nonce";
  EXPECT_FALSE(step("r=ab,s=QUJD,i=4096"));
  EXPECT_FALSE(step("r=abcdef,s=,i=4096")) << "empty salt";
  EXPECT_FALSE(step("r=abcdef,s=QUJD!,i=4096")) << "bad salt";
  EXPECT_FALSE(step("r=abcdef,s=QUJD,i=0"));
  EXPECT_FALSE(step("r=abcdef,s=QUJD,i=-1"));
  EXPECT_FALSE(step("r=abcdef,s=QUJD,i=4096x"));
  EXPECT_FALSE(step("r=abcdef,s=QUJD,i=04096")) << "leading zero";
  EXPECT_FALSE(step("r=abcdef,s=QUJD,i=2000000000")) << "over the iteration cap";
  EXPECT_FALSE(step("r=abcdef,s=QUJD")) << "no count";
  EXPECT_FALSE(step("m=x,r=abcdef,s=QUJD,i=1"));
  EXPECT_FALSE(step("e=other-error"));
  EXPECT_FALSE(step(""));
}

TEST(AuthScram, ClientRejectsWrongServerSignature) {
  const ScramVerifier v = make_scram_verifier("s3cret", 4096);
  ScramClient client("s3cret");
  ScramServer server(v);
  const ScramStep first = server.handle_client_first(client.client_first());
  ASSERT_TRUE(first.ok);
  const ScramStep final_msg = client.handle_server_first(first.message);
  ASSERT_TRUE(final_msg.ok);
  const ScramStep verdict = server.handle_client_final(final_msg.message);
  ASSERT_TRUE(verdict.ok);
  std::string forged = verdict.message;
  forged[3] = forged[3] == 'A' ? 'B' : 'A';
  const ScramStep s = client.handle_server_final(forged);
  EXPECT_FALSE(s.ok);
  EXPECT_FALSE(s.error.empty());
}

// An impostor that knows neither the password nor the verifier cannot finish the exchange,
// even if it accepts whatever proof it gets.
TEST(AuthScram, ClientRejectsImpostorWithOtherVerifier) {
  ScramClient client("s3cret");
  ScramServer impostor(make_scram_verifier("guess", 4096));
  const ScramStep first = impostor.handle_client_first(client.client_first());
  ASSERT_TRUE(client.handle_server_first(first.message).ok);
  // The impostor's own signature, computed with its verifier, for the same AuthMessage shape.
  EXPECT_FALSE(client.handle_server_final("v=" + base64_encode(std::string(32, 'x'))).ok);
}

TEST(AuthScram, ClientRejectsMalformedServerFinal) {
  for (std::string_view bad : {"", "v=", "v=!!!!", "e=invalid-proof", "x=1", "v=QUJD"}) {
    const ScramVerifier v = make_scram_verifier("pw", 4096);
    ScramClient client("pw");
    ScramServer server(v);
    const ScramStep first = server.handle_client_first(client.client_first());
    ASSERT_TRUE(client.handle_server_first(first.message).ok);
    EXPECT_FALSE(client.handle_server_final(bad).ok) << bad;
  }
  ScramClient fresh("pw");
  EXPECT_FALSE(fresh.handle_server_final("v=QUJD").ok) << "out of order";
  EXPECT_FALSE(fresh.handle_server_first("r=x,s=QUJD,i=1").ok) << "before client-first";
}

// The server's error text is sanitized before it reaches a log.
TEST(AuthScram, ClientSanitizesServerError) {
  const ScramVerifier v = make_scram_verifier("pw", 4096);
  ScramClient client("pw");
  ScramServer server(v);
  ASSERT_TRUE(
      client.handle_server_first(server.handle_client_first(client.client_first()).message).ok);
  const ScramStep s = client.handle_server_final("e=bad\x1b[31mred");
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.error.find('\x1b'), std::string::npos);
}

TEST(AuthScram, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

}  // namespace
}  // namespace pgcutover::protocol
