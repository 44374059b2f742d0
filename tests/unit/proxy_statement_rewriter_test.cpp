// The statement rewriter of transaction mode (proxy/session/statement_rewriter.h), fed the
// message sequences a driver and the server exchange, as the relay would feed them: each
// client message in turn (what goes to the server instead), then each server message in turn
// (which ones the client sees, and the answers the proxy makes up in between).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "protocol/builders.h"
#include "protocol/framing.h"
#include "protocol/messages.h"
#include "proxy/session/statement_rewriter.h"

namespace pgcutover::proxy {
namespace {
namespace be = protocol::backend;

using Message = std::pair<char, std::string>;  // type, body

std::vector<Message> split(const std::string& bytes) {
  std::vector<Message> out;
  std::size_t at = 0;
  while (at + protocol::kHeaderSize <= bytes.size()) {
    auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[at + 1 + i]); };
    std::size_t len =
        (std::size_t{b(0)} << 24) | (std::size_t{b(1)} << 16) | (std::size_t{b(2)} << 8) | b(3);
    out.emplace_back(bytes[at], bytes.substr(at + protocol::kHeaderSize, len - 4));
    at += 1 + len;
  }
  EXPECT_EQ(at, bytes.size());
  return out;
}

std::string types(const std::string& whole) {
  return std::string(1, whole[0]);
}

// A client: its messages as a driver sends them, through the rewriter onto one connection.
struct Client {
  StatementRewriter rewriter;
  explicit Client(std::size_t cap) : rewriter(cap, 1) {}

  // Sends the messages in `batch` (whole messages); returns what reaches the server.
  std::string send(ConnectionStatements& conn, const std::string& batch) {
    std::string to_server;
    for (const auto& [type, body] : split(batch)) {
      std::string replacement;
      if (rewriter.client_message(conn, type, protocol::as_bytes(body), replacement)) {
        to_server += replacement;
      } else {
        to_server += type;
        std::string whole;
        std::uint32_t len = static_cast<std::uint32_t>(body.size() + 4);
        for (int i = 3; i >= 0; --i) whole += static_cast<char>(len >> (8 * i));
        to_server += whole + body;
      }
    }
    return to_server;
  }

  // The server's answers, in order; returns the message types the client sees.
  std::string answer(ConnectionStatements& conn, const std::string& from_server) {
    std::string seen;
    std::string made_up;
    for (const auto& [type, body] : split(from_server)) {
      if (rewriter.synthetic_at_head()) {
        made_up.clear();
        rewriter.emit_synthetic(made_up);
        for (const auto& m : split(made_up)) seen += m.first;
      }
      if (!rewriter.server_message(conn, type, protocol::as_bytes(body), false)) seen += type;
    }
    if (rewriter.synthetic_at_head()) {
      made_up.clear();
      rewriter.emit_synthetic(made_up);
      for (const auto& m : split(made_up)) seen += m.first;
    }
    return seen;
  }
};

std::string bind_rest() {
  return std::string(6, '\0');
}  // no formats, no parameters, text

std::string parse(std::string_view name, std::string_view query) {
  std::string m;
  protocol::append_parse(m, name, query, 0, {});
  return m;
}
std::string bind(std::string_view statement) {
  std::string m, rest = bind_rest();
  protocol::append_bind(m, "", statement, protocol::as_bytes(rest));
  return m;
}
std::string execute_sync() {
  std::string m;
  protocol::append_execute(m, "", 0);
  protocol::append_sync(m);
  return m;
}
std::string ok_answer(bool with_parse) {
  std::string m;
  if (with_parse) protocol::append_parse_complete(m);
  protocol::append_bind_complete(m);
  protocol::append_command_complete(m, "SELECT 1");
  protocol::append_ready_for_query(m, 'I');
  return m;
}

// The name the server sees for a client statement: the shared one, never the client's.
std::string server_name_of(const std::string& to_server, char type) {
  for (const auto& [t, body] : split(to_server)) {
    if (t != type) continue;
    std::size_t start = type == 'B' ? body.find('\0') + 1 : 0;  // Bind: after the portal
    return body.substr(start, body.find('\0', start) - start);
  }
  return {};
}

TEST(StatementRewriter, ClientNamesBecomeTheSharedServerName) {
  ConnectionStatements conn;
  Client c(16);
  std::string sent = c.send(conn, parse("s1", "SELECT 1") + bind("s1") + execute_sync());
  std::string shared = server_name_of(sent, 'P');
  EXPECT_EQ(shared.rfind("pgc_", 0), 0u) << shared;
  EXPECT_EQ(server_name_of(sent, 'B'), shared);
  EXPECT_EQ(c.answer(conn, ok_answer(true)), "12CZ");  // the client's own Parse: its answer
  EXPECT_EQ(conn.prepared.size(), 1u);
}

TEST(StatementRewriter, AParseTheConnectionHasIsAnsweredByTheProxy) {
  ConnectionStatements conn;
  Client first(16), second(16);
  first.send(conn, parse("a", "SELECT 1") + bind("a") + execute_sync());
  first.answer(conn, ok_answer(true));
  // Another client parses the same text under its own name: nothing to prepare; the proxy's
  // ParseComplete comes before the server's BindComplete.
  std::string sent = second.send(conn, parse("b", "SELECT 1") + bind("b") + execute_sync());
  EXPECT_EQ(types(sent), "B");
  EXPECT_EQ(second.answer(conn, ok_answer(false)), "12CZ");
}

TEST(StatementRewriter, ABindOnAnotherConnectionPreparesFirstAndHidesThatAnswer) {
  ConnectionStatements one, other;
  Client c(16);
  c.send(one, parse("s1", "SELECT 1") + bind("s1") + execute_sync());
  c.answer(one, ok_answer(true));
  c.rewriter.reset_conversation();  // the next transaction runs on another connection
  std::string sent = c.send(other, bind("s1") + execute_sync());
  auto msgs = split(sent);
  ASSERT_GE(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].first, 'P');  // prepared there first
  EXPECT_EQ(msgs[1].first, 'B');
  EXPECT_EQ(c.answer(other, ok_answer(true)), "2CZ");  // its ParseComplete swallowed
}

TEST(StatementRewriter, EvictsTheOldestAtTheCapAndHidesItsClose) {
  ConnectionStatements conn;
  Client c(1);
  c.send(conn, parse("a", "SELECT 1") + bind("a") + execute_sync());
  c.answer(conn, ok_answer(true));
  // In the same conversation a portal bound from "a" may still exist: no eviction yet, the
  // connection keeps both until the transaction is over.
  std::string same = c.send(conn, parse("b", "SELECT 2"));
  EXPECT_EQ(types(same), "P");
  EXPECT_EQ(conn.prepared.size(), 2u);
  std::string answer0;
  protocol::append_parse_complete(answer0);
  EXPECT_EQ(c.answer(conn, answer0), "1");
  c.rewriter.reset_conversation();  // the next transaction, as the relay attaches it
  std::string sent = c.send(conn, parse("c", "SELECT 3") + bind("c") + execute_sync());
  auto msgs = split(sent);
  ASSERT_EQ(msgs[0].first, 'C');  // Close of the oldest first
  ASSERT_EQ(msgs[1].first, 'C');  // down to the cap of 1 before the new one
  EXPECT_EQ(msgs[2].first, 'P');
  std::string answer;
  protocol::append_close_complete(answer);
  protocol::append_close_complete(answer);
  answer += ok_answer(true);
  EXPECT_EQ(c.answer(conn, answer), "12CZ");
  EXPECT_EQ(conn.prepared.size(), 1u);
}

TEST(StatementRewriter, AFailedParseIsForgottenAndTheRestSkippedToSync) {
  ConnectionStatements conn;
  Client c(16);
  c.send(conn, parse("bad", "SELEC 1") + bind("bad") + execute_sync());
  std::string answer;
  protocol::append_error_response(answer, {.severity = "ERROR",
                                           .sqlstate = "42601",
                                           .message = "syntax error",
                                           .detail = {},
                                           .hint = {}});
  protocol::append_ready_for_query(answer, 'I');
  EXPECT_EQ(c.answer(conn, answer), "EZ");
  EXPECT_EQ(conn.prepared.size(), 0u);
  EXPECT_EQ(c.rewriter.statements().count("bad"), 0u);
  // Nothing left outstanding: the next batch starts clean.
  c.send(conn, parse("good", "SELECT 1") + bind("good") + execute_sync());
  EXPECT_EQ(c.answer(conn, ok_answer(true)), "12CZ");
}

TEST(StatementRewriter, SqlDeallocateOfATrackedNameIsAnsweredAsDeallocate) {
  ConnectionStatements conn;
  Client c(16);
  c.send(conn, parse("s1", "SELECT 1") + bind("s1") + execute_sync());
  c.answer(conn, ok_answer(true));
  std::string q;
  protocol::append_query(q, "DEALLOCATE s1");
  std::string sent = c.send(conn, q);
  auto msgs = split(sent);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].first, 'Q');
  EXPECT_EQ(msgs[0].second, std::string(1, '\0'));  // an empty query stands in
  std::string answer;
  protocol::append_empty_query_response(answer);
  protocol::append_ready_for_query(answer, 'I');
  EXPECT_EQ(c.answer(conn, answer), "CZ");  // CommandComplete DEALLOCATE, made up
  EXPECT_EQ(c.rewriter.statements().count("s1"), 0u);
  EXPECT_EQ(conn.prepared.size(), 1u);  // the shared statement stays for other clients
}

TEST(StatementRewriter, AFlushBehindAMadeUpAnswerGetsItOut) {
  ConnectionStatements conn;
  Client first(16), second(16);
  first.send(conn, parse("a", "SELECT 1") + bind("a") + execute_sync());
  first.answer(conn, ok_answer(true));
  std::string flush;
  protocol::append_flush(flush);
  std::string sent = second.send(conn, parse("b", "SELECT 1") + flush);
  auto msgs = split(sent);
  // The server has nothing to answer for the Parse: a Close of a portal nobody uses carries
  // the made-up ParseComplete out.
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].first, 'C');
  EXPECT_EQ(msgs[1].first, 'H');
  std::string answer;
  protocol::append_close_complete(answer);
  EXPECT_EQ(second.answer(conn, answer), "1");
}

}  // namespace
}  // namespace pgcutover::proxy
