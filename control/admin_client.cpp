#include "control/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <regex>

namespace pgcutover::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

AdminResponse admin_request(const std::string& admin_url, const std::string& method,
                            const std::string& path, const std::string& token,
                            std::chrono::milliseconds timeout, const std::string& body) {
  AdminResponse out;
  static const std::regex kUrl(R"(^http://(\[[^\]]+\]|[^:/]+)(?::(\d+))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(admin_url, m, kUrl)) {
    out.error = admin_url.rfind("https://", 0) == 0
                    ? "https admin URLs are not supported yet; use http:// on a private network"
                    : "admin_url must look like http://host:port";
    return out;
  }
  std::string host = m[1].str();
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = m[2].matched ? m[2].str() : "80";
  std::string prefix = m[3].matched ? m[3].str() : "";
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();

  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get,
                                       prefix + path, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::user_agent, "pgcutoverctl");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  std::string failure;

  // One deadline for the whole exchange: every async step re-arms the stream's timer with
  // what is left of it.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] { return deadline - std::chrono::steady_clock::now(); };
  resolver.async_resolve(host, port, [&](beast::error_code ec, tcp::resolver::results_type rs) {
    if (ec) {
      failure = "resolve " + host + ": " + ec.message();
      return;
    }
    stream.expires_after(left());
    stream.async_connect(rs, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) {
        failure = "connect: " + ec2.message();
        return;
      }
      stream.expires_after(left());
      http::async_write(stream, req, [&](beast::error_code ec3, size_t) {
        if (ec3) {
          failure = "send: " + ec3.message();
          return;
        }
        stream.expires_after(left());
        http::async_read(stream, buffer, res, [&](beast::error_code ec4, size_t) {
          if (ec4) failure = "read: " + ec4.message();
        });
      });
    });
  });
  ioc.run_for(timeout + std::chrono::milliseconds(100));
  if (!ioc.stopped()) {
    // The resolver has no timer of its own; give up on it here.
    failure = "no answer within " + std::to_string(timeout.count()) + " ms";
  }
  if (!failure.empty()) {
    out.error = failure;
    return out;
  }
  out.reachable = true;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  return out;
}

}  // namespace pgcutover::control
