#include "proxy/fleet/authority.h"

#include "proxy/fleet/control_link.h"
#include "proxy/net/asio.h"

namespace pgcutover::proxy {

std::vector<AuthorityReading> read_fleet_authority(const Settings& settings,
                                                   std::chrono::milliseconds timeout) {
  asio::io_context io;
  std::vector<AuthorityReading> out;
  const auto& channel = settings.config.fleet.channel;
  out.reserve(channel.size());
  std::vector<std::shared_ptr<ControlLink>> sessions(channel.size());
  for (std::size_t i = 0; i < channel.size(); ++i) {
    out.push_back(AuthorityReading{channel[i], false, std::nullopt, 0, {}});
    auto endpoint = settings.endpoint(channel[i]);
    if (!endpoint) {
      out.back().error = "no such backend";
      continue;
    }
    asio::co_spawn(
        io,
        [&io, endpoint, timeout, limits = settings.server_limits, &reading = out.back(),
         &session = sessions[i]]() -> awaitable<void> {
          ConnectResult c = co_await connect_server(endpoint, 0, timeout, limits);
          if (!c.conn) {
            reading.error = c.error.sqlstate + " " + c.error.message;
            co_return;
          }
          session = std::make_shared<ControlLink>(std::move(c.conn), limits, nullptr);
          session->start(io.get_executor());
          QueryRows r =
              co_await session->query("SELECT backend, epoch FROM pgcutover.fleet_authority");
          if (!r.ok && r.sqlstate == "42P01") {
            reading.answered = true;  // no fleet schema: no record
          } else if (!r.ok) {
            reading.error = r.sqlstate + " " + r.error;
          } else {
            reading.answered = true;
            if (!r.rows.empty() && r.rows[0].size() == 2 && r.rows[0][0] && r.rows[0][1]) {
              reading.backend = *r.rows[0][0];
              reading.epoch = std::stoull(*r.rows[0][1]);
            }
          }
          session->close();
        },
        asio::detached);
  }
  // Login and query together within `timeout`: whatever has not answered by then is given up
  // (the proxy starts on its state file's backend and the agent follows the authority later).
  io.run_for(timeout);
  for (auto& s : sessions)
    if (s) s->close();
  for (auto& r : out)
    if (!r.answered && r.error.empty()) r.error = "no answer within the timeout";
  return out;
}

std::optional<AuthorityReading> highest_authority(const std::vector<AuthorityReading>& readings) {
  std::optional<AuthorityReading> best;
  for (const auto& r : readings)
    if (r.backend && (!best || r.epoch > best->epoch)) best = r;
  return best;
}

}  // namespace pgcutover::proxy
