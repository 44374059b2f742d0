#include "control/command/admin_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <regex>

namespace pgcutover::control {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// One request and its response over an open (and, for https, handshaken) stream.
template <class Stream>
void exchange(Stream& stream, http::request<http::string_body>& req, beast::flat_buffer& buffer,
              http::response<http::string_body>& res, std::string& failure,
              Clock::time_point deadline) {
  beast::get_lowest_layer(stream).expires_after(deadline - Clock::now());
  http::async_write(stream, req, [&, deadline](beast::error_code ec, std::size_t) {
    if (ec) {
      failure = "send: " + ec.message();
      return;
    }
    beast::get_lowest_layer(stream).expires_after(deadline - Clock::now());
    http::async_read(stream, buffer, res, [&](beast::error_code ec2, std::size_t) {
      if (ec2) failure = "read: " + ec2.message();
    });
  });
}

}  // namespace

AdminResponse admin_request(const AdminEndpoint& proxy, const std::string& method,
                            const std::string& path, std::chrono::milliseconds timeout,
                            const std::string& body) {
  AdminResponse out;
  static const std::regex kUrl(R"(^(https?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(proxy.admin_url, m, kUrl)) {
    out.error = "admin_url must look like http://host:port or https://host:port";
    return out;
  }
  const bool tls = m[1].str() == "https";
  std::string host = m[2].str();
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = m[3].matched ? m[3].str() : (tls ? "443" : "80");
  std::string prefix = m[4].matched ? m[4].str() : "";
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();

  // https: the proxy's certificate is verified against ca_file (or the system's trust store)
  // and must name the host of admin_url, as curl and libpq's verify-full do. No way to skip it:
  // the token travels in this connection.
  // Made only for https: an OpenSSL context costs about a millisecond, and the pause and flip
  // calls run while every held client waits.
  std::optional<ssl::context> ctx;
  if (tls) {
    ctx.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (!proxy.ca_file.empty()) {
      ctx->load_verify_file(proxy.ca_file, ec);
      if (ec) {
        out.error = "cannot read ca_file " + proxy.ca_file + ": " + ec.message();
        return out;
      }
    } else {
      ctx->set_default_verify_paths(ec);
    }
  }

  beast::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  const bool numeric_host = !not_ip;
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream plain(ioc);
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  if (tls) {
    secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ctx);
    SSL* s = secure->native_handle();
    if (numeric_host) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host.c_str());
    } else {
      SSL_set_tlsext_host_name(s, host.c_str());
      SSL_set1_host(s, host.c_str());
    }
  }
  beast::tcp_stream& socket = tls ? beast::get_lowest_layer(*secure) : plain;

  http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get,
                                       prefix + path, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::user_agent, "pgcutoverctl");
  if (!proxy.token.empty()) req.set(http::field::authorization, "Bearer " + proxy.token);
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
  const auto deadline = Clock::now() + timeout;
  auto on_resolved = [&](beast::error_code ec, tcp::resolver::results_type rs) {
    if (ec) {
      failure = "resolve " + host + ": " + ec.message();
      return;
    }
    socket.expires_after(deadline - Clock::now());
    socket.async_connect(rs, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) {
        failure = "connect: " + ec2.message();
        return;
      }
      if (!tls) {
        exchange(plain, req, buffer, res, failure, deadline);
        return;
      }
      socket.expires_after(deadline - Clock::now());
      secure->async_handshake(ssl::stream_base::client, [&](beast::error_code ec3) {
        if (ec3) {
          long verify = SSL_get_verify_result(secure->native_handle());
          failure = "TLS handshake: " + ec3.message();
          if (verify != X509_V_OK)
            failure += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) +
                       (proxy.ca_file.empty() ? "; set ca_file for this proxy" : "") + ")";
          return;
        }
        exchange(*secure, req, buffer, res, failure, deadline);
      });
    });
  };
  if (numeric_host) {
    // An address needs no lookup: resolved here, without the thread Asio starts for an
    // asynchronous lookup.
    beast::error_code ec;
    auto rs = resolver.resolve(host, port,
                               tcp::resolver::numeric_host | tcp::resolver::numeric_service, ec);
    on_resolved(ec, rs);
  } else {
    resolver.async_resolve(host, port, on_resolved);
  }
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
