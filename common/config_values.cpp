// The values inside the configuration: enum names, ${ENV} substitution, backend URLs
// (common/config.h).
#include <cstdlib>
#include <string>

#include "common/config.h"

namespace pgcutover {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, std::string_view what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) {
        throw ConfigError("bad percent-encoding in the URL's " + std::string(what));
      }
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0)
        throw ConfigError("bad percent-encoding in the URL's " + std::string(what));
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::string_view to_string(PoolMode m) {
  return m == PoolMode::kSession ? "session" : "transaction";
}
std::string_view to_string(ClientTls m) {
  switch (m) {
    case ClientTls::kDisable:
      return "disable";
    case ClientTls::kAllow:
      return "allow";
    case ClientTls::kRequire:
      return "require";
  }
  return "?";
}
std::string_view to_string(SslMode m) {
  switch (m) {
    case SslMode::kDisable:
      return "disable";
    case SslMode::kRequire:
      return "require";
    case SslMode::kVerifyCa:
      return "verify-ca";
    case SslMode::kVerifyFull:
      return "verify-full";
  }
  return "?";
}
std::string_view to_string(AuthType m) {
  return m == AuthType::kMd5 ? "md5" : "scram-sha-256";
}
std::string_view to_string(DrainPolicy m) {
  return m == DrainPolicy::kCancel ? "cancel" : "abort";
}

bool parse_drain_policy(std::string_view text, DrainPolicy& out) {
  if (text == "abort") {
    out = DrainPolicy::kAbort;
  } else if (text == "cancel") {
    out = DrainPolicy::kCancel;
  } else {
    return false;
  }
  return true;
}

std::string substitute_env(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) throw ConfigError("unterminated ${...} reference");
      std::string name(text.substr(i + 2, close - i - 2));
      if (name.empty()) throw ConfigError("empty ${} reference");
      const char* value = std::getenv(name.c_str());
      if (!value) throw ConfigError("environment variable " + name + " is not set");
      out += value;
      i = close;
      continue;
    }
    out += '$';
  }
  return out;
}

BackendUrl parse_backend_url(std::string_view url) {
  BackendUrl out;
  std::string_view rest;
  if (url.rfind("postgres://", 0) == 0) {
    rest = url.substr(11);
  } else if (url.rfind("postgresql://", 0) == 0) {
    rest = url.substr(13);
  } else {
    throw ConfigError("expected a postgres:// or postgresql:// URL");
  }
  // A password with an unescaped '/' or '?' would be split into the path or the query, and
  // whatever error that caused would quote part of it: refuse it before splitting, without
  // quoting anything (found by tests/fuzz/fuzz_config).
  if (const auto end = rest.find_first_of("/?");
      end != std::string_view::npos && rest.substr(0, end).find('@') == std::string_view::npos &&
      rest.find('@', end) != std::string_view::npos) {
    throw ConfigError(
        "the URL's user or password contains an unescaped '/' or '?' (or the host an '@'): "
        "percent-encode it (%2F, %3F, %40)");
  }
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (auto s = rest.find('/'); s != std::string_view::npos) {
    path = rest.substr(s + 1);
    rest = rest.substr(0, s);
  }
  // The password may contain '@' only percent-encoded, so the last '@' ends the userinfo.
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      out.user = percent_decode(userinfo.substr(0, colon), "user");
      out.password = percent_decode(userinfo.substr(colon + 1), "password");
    } else {
      out.user = percent_decode(userinfo, "user");
    }
  }
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) throw ConfigError("unterminated [IPv6] host in the URL");
    out.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw ConfigError("unexpected text after the URL's [IPv6] host");
      port = rest.substr(1);
    }
  } else if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    out.host = percent_decode(rest.substr(0, colon), "host");
    port = rest.substr(colon + 1);
  } else {
    out.host = percent_decode(rest, "host");
  }
  if (out.host.empty()) throw ConfigError("the URL has no host");
  if (rest.find(',') != std::string_view::npos)
    throw ConfigError("multi-host URLs are not supported");
  if (!port.empty()) {
    int p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535)
        throw ConfigError("bad port in the URL");
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) throw ConfigError("bad port in the URL");
    out.port = static_cast<std::uint16_t>(p);
  }
  if (out.user.empty()) throw ConfigError("the URL has no user");
  out.dbname = path.empty() ? out.user : percent_decode(path, "database name");
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) throw ConfigError("URL parameter without a value");
    std::string name = percent_decode(item.substr(0, eq), "parameters");
    std::string value = percent_decode(item.substr(eq + 1), "parameters");
    if (name == "sslmode") {
      out.sslmode = value;
    } else if (name == "sslrootcert") {
      out.sslrootcert = value;
    } else if (name == "application_name" || name == "options") {
      out.startup_params.emplace_back(name, value);
    } else if (name == "password" || name == "user" || name == "dbname" || name == "port" ||
               name == "host") {
      throw ConfigError("URL parameter \"" + name +
                        "\" is not supported: put it in the URL itself");
    } else if (name == "connect_timeout") {
      // Ignored on purpose: proxy.server_connect_timeout governs every backend.
    } else {
      throw ConfigError("unsupported URL parameter \"" + name + "\"");
    }
  }
  return out;
}

}  // namespace pgcutover
