#include "proxy/session/prepared_statements.h"

#include <openssl/evp.h>

#include <functional>
#include <vector>

#include "protocol/builders.h"
#include "protocol/messages.h"

namespace pgcutover::proxy {

std::string server_statement_name(std::string_view query, std::string_view param_types) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, query.data(), query.size()) == 1 &&
            EVP_DigestUpdate(ctx, "\0", 1) == 1 &&
            EVP_DigestUpdate(ctx, param_types.data(), param_types.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, digest, &len) == 1;
  EVP_MD_CTX_free(ctx);
  std::string name = "pgc_";
  if (!ok || len < 16) {
    // libcrypto failing on SHA-256 is an impossible state; a shared name for different
    // statements would be worse than a visible failure, so fall back to the text itself.
    std::size_t h = std::hash<std::string_view>{}(query) ^
                    (std::hash<std::string_view>{}(param_types)*1099511628211ULL);
    return name + "h" + std::to_string(h) + "_" + std::to_string(query.size());
  }
  static const char* hex = "0123456789abcdef";
  for (unsigned i = 0; i < 16; ++i) {
    name.push_back(hex[digest[i] >> 4]);
    name.push_back(hex[digest[i] & 15]);
  }
  return name;
}

namespace {

bool sql_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// One identifier at the front of `s` (consumed), folded as PostgreSQL's scanner does.
std::optional<std::string> take_identifier(std::string_view& s, bool& quoted) {
  std::string out;
  quoted = !s.empty() && s.front() == '"';
  if (quoted) {
    std::size_t i = 1;
    for (;;) {
      if (i >= s.size()) return std::nullopt;
      if (s[i] == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          out.push_back('"');
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      out.push_back(s[i++]);
    }
    s.remove_prefix(i);
    return out.empty() ? std::nullopt : std::optional<std::string>(out);
  }
  auto start_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
  };
  auto part_char = [&](char c) { return start_char(c) || (c >= '0' && c <= '9') || c == '$'; };
  if (s.empty() || !start_char(s.front())) return std::nullopt;
  std::size_t i = 0;
  while (i < s.size() && part_char(s[i])) out.push_back(lower(s[i++]));
  s.remove_prefix(i);
  return out;
}

void skip_space(std::string_view& s) {
  while (!s.empty() && sql_space(s.front())) s.remove_prefix(1);
}

}  // namespace

std::optional<std::string> sql_deallocate_target(std::string_view sql) {
  std::string_view s = sql;
  skip_space(s);
  bool quoted = false;
  auto word = take_identifier(s, quoted);
  if (!word || quoted || *word != "deallocate") return std::nullopt;
  skip_space(s);
  auto name = take_identifier(s, quoted);
  if (!name) return std::nullopt;
  skip_space(s);
  if (!quoted && *name == "prepare" && !s.empty() && s.front() != ';') {
    name = take_identifier(s, quoted);  // DEALLOCATE PREPARE name
    if (!name) return std::nullopt;
    skip_space(s);
  }
  if (!quoted && *name == "all") return std::nullopt;
  if (!s.empty() && s.front() == ';') s.remove_prefix(1);
  skip_space(s);
  if (!s.empty()) return std::nullopt;  // more than one statement: the server's business
  return name;
}

std::optional<LocalAnswer> answer_without_server(protocol::Bytes buffered,
                                                 ClientStatements& statements,
                                                 const protocol::Limits& limits) {
  namespace fe = protocol::frontend;
  struct Step {
    bool parse;
    protocol::Parse p;  // parse
    protocol::Close c;  // !parse
  };
  std::vector<Step> steps;
  std::size_t pos = 0;
  for (;;) {
    protocol::FrameResult f = protocol::decode_frame(buffered.subspan(pos), limits);
    if (f.status != protocol::DecodeStatus::kMessage) return std::nullopt;
    pos += f.frame.size;
    if (f.frame.type == fe::kSync) break;
    if (f.frame.type == fe::kParse) {
      auto p = protocol::parse_parse(f.frame.body);
      // The unnamed statement lives on one server connection only: the server must see it.
      if (!p || p->name.empty()) return std::nullopt;
      steps.push_back({true, *p, {}});
    } else if (f.frame.type == fe::kClose) {
      auto c = protocol::parse_close(f.frame.body);
      if (!c || (c->kind != 'S' && c->kind != 'P')) return std::nullopt;
      steps.push_back({false, {}, *c});
    } else {
      return std::nullopt;
    }
  }
  LocalAnswer a;
  a.consumed = pos;
  for (const Step& st : steps) {
    if (st.parse) {
      std::string types(reinterpret_cast<const char*>(st.p.param_types.data()),
                        st.p.param_types.size());
      StatementDef def{server_statement_name(st.p.query, types), std::string(st.p.query),
                       st.p.param_count, std::move(types)};
      statements[std::string(st.p.name)] = std::move(def);
      protocol::append_parse_complete(a.reply);
    } else {
      // Outside a transaction no portal exists; a statement's Close drops the client's name
      // (closing an unknown name is no error either: protocol docs, "Close").
      if (st.c.kind == 'S') statements.erase(std::string(st.c.name));
      protocol::append_close_complete(a.reply);
    }
  }
  protocol::append_ready_for_query(a.reply, 'I');
  return a;
}

bool fail_pending_to_sync(ResponseQueue& pending, PreparedLru& prepared,
                          ClientStatements& statements) {
  using Kind = PendingResponse::Kind;
  auto forget = [&](const std::string& client_name, const std::string& server_name) {
    if (client_name.empty()) return;
    auto it = statements.find(client_name);
    if (it != statements.end() && it->second.server_name == server_name) statements.erase(it);
  };
  while (!pending.empty() && pending.front().kind != Kind::kSync) {
    PendingResponse& p = pending.front();
    if (p.kind == Kind::kParse && !p.server_name.empty()) {
      prepared.erase(p.server_name);
      // The client's own Parse failed or never ran: PostgreSQL would not have it either.
      forget(p.client_name, p.server_name);
    } else if (p.kind == Kind::kSynthParse) {
      forget(p.client_name, p.server_name);
    } else if (p.kind == Kind::kClose && p.swallow && !p.server_name.empty()) {
      prepared.insert(p.server_name);
    }
    pending.pop_front();
  }
  return pending.empty();
}

}  // namespace pgcutover::proxy
