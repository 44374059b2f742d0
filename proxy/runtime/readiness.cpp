#include "proxy/runtime/readiness.h"

#include <future>

#include "common/json.h"
#include "proxy/net/asio.h"
#include "proxy/pool/server_connection.h"
#include "proxy/runtime/data_plane.h"
#include "proxy/runtime/shard.h"

namespace pgcutover::proxy {

using Clock = std::chrono::steady_clock;

ReadinessAnswer Readiness::check() {
  std::lock_guard lock(mu_);
  auto now = Clock::now();
  std::string backend = plane_.active().backend;
  if (have_last_ && last_.backend == backend) {
    auto age = now - last_at_;
    if (age < (last_.ready ? kFreshOk : kFreshFailed)) {
      ReadinessAnswer a = last_;
      a.age_seconds = std::chrono::duration<double>(age).count();
      return a;
    }
  }
  last_ = probe();
  last_at_ = Clock::now();
  have_last_ = true;
  return last_;
}

ReadinessAnswer Readiness::probe() {
  ReadinessAnswer a;
  auto settings = plane_.settings();
  a.backend = plane_.active().backend;
  auto endpoint = settings->endpoint(a.backend);
  auto shards = plane_.shards();
  if (!endpoint || shards.empty()) {
    a.reason = "no endpoint for the active backend " + a.backend;
    return a;
  }
  auto timeout = std::chrono::duration_cast<asio::chrono::milliseconds>(
      settings->config.proxy.server_connect_timeout);
  auto outcome = std::make_shared<std::promise<ServerError>>();
  auto answer = outcome->get_future();
  // On a shard's io_context, like any server connection; the connection is closed there too.
  asio::co_spawn(
      shards.front()->io(),
      [endpoint, timeout, limits = settings->server_limits, outcome]() -> awaitable<void> {
        ConnectResult r = co_await connect_server(endpoint, 0, timeout, limits);
        outcome->set_value(r.conn ? ServerError{} : r.error);
      },
      asio::detached);
  if (answer.wait_for(timeout + std::chrono::milliseconds(500)) != std::future_status::ready) {
    a.reason = "login to backend " + a.backend + " did not finish within server_connect_timeout";
    return a;
  }
  ServerError e = answer.get();
  a.ready = e.empty();
  if (!a.ready)
    a.reason = "login to backend " + a.backend + " failed: " + e.sqlstate + " " + e.message;
  return a;
}

std::vector<BackendLogin> check_backend_logins(const Settings& settings) {
  asio::io_context io;
  std::vector<BackendLogin> out;
  out.reserve(settings.backends.size());
  auto timeout = std::chrono::duration_cast<asio::chrono::milliseconds>(
      settings.config.proxy.server_connect_timeout);
  for (const auto& [name, endpoint] : settings.backends) {
    out.push_back(BackendLogin{name, false, {}, 0});
    asio::co_spawn(
        io,
        [endpoint, timeout, limits = settings.server_limits,
         &result = out.back()]() -> awaitable<void> {
          auto t0 = Clock::now();
          ConnectResult r = co_await connect_server(endpoint, 0, timeout, limits);
          result.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          result.ok = r.conn != nullptr;
          if (!result.ok) result.error = r.error.sqlstate + " " + r.error.message;
        },
        asio::detached);
  }
  io.run();  // every login ends within its own timeout
  return out;
}

std::string render_readiness(const ReadinessAnswer& a) {
  json::Writer w;
  w.begin_object().field("ready", a.ready).field("backend", a.backend);
  if (a.ready)
    w.field("checked_ms_ago", static_cast<std::int64_t>(a.age_seconds * 1000));
  else
    w.field("reason", a.reason);
  return w.end_object().take();
}

}  // namespace pgcutover::proxy
