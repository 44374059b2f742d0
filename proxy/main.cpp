// pgcutover-proxy: the PostgreSQL proxy the application's DATABASE_URL points at.
//
//   pgcutover-proxy -c /etc/pgcutover/pgcutover.toml
//   pgcutover-proxy --check -c FILE     validate the configuration and exit
//   pgcutover-proxy --check --connect -c FILE   ... and log in to every backend once
//   pgcutover-proxy --handover -c FILE   take the port over from the running proxy of FILE
//
// Exit codes: 0 clean shutdown, 1 runtime failure (cannot listen), 2 bad configuration.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "common/log.h"
#include "proxy/cutover/state_file.h"
#include "proxy/fleet/authority.h"
#include "proxy/pool/route_table.h"
#include "proxy/runtime/control_plane.h"
#include "proxy/runtime/data_plane.h"
#include "proxy/runtime/handover.h"
#include "proxy/runtime/readiness.h"
#include "proxy/settings/settings.h"

#ifndef PGCUTOVER_VERSION
#define PGCUTOVER_VERSION "0.1.0"
#endif

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "Usage: pgcutover-proxy [-c FILE] [--check [--connect] | --handover]\n"
      "PostgreSQL proxy and pooler that can move an application between databases.\n\n"
      "  -c, --config FILE  configuration file (default /etc/pgcutover/pgcutover.toml)\n"
      "      --check        validate the configuration (and TLS files, state file) and exit\n"
      "      --connect      with --check: also log in to every backend once (exit 1 if any\n"
      "                     refuses), e.g. after rotating a backend password\n"
      "      --handover     replace the running proxy of this configuration (an upgrade):\n"
      "                     take its listening sockets, so no connection is refused; it\n"
      "                     stops accepting and exits once its clients are done. Refused\n"
      "                     unless the file and the state file's epoch are the same\n"
      "  -h, --help         show this help\n"
      "  -V, --version      show the version\n\n"
      "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT shut down gracefully.\n"
      "Exit status: 0 ok, 1 runtime error, 2 bad configuration or usage.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pgcutover;
  using namespace pgcutover::proxy;
  std::string config_path = "/etc/pgcutover/pgcutover.toml";
  bool check_only = false, check_connect = false, config_given = false, handover = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-V" || a == "--version") {
      std::printf("pgcutover-proxy %s\n", PGCUTOVER_VERSION);
      return 0;
    } else if (a == "--check") {
      check_only = true;
    } else if (a == "--connect") {
      check_connect = true;
    } else if (a == "--handover") {
      handover = true;
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
      config_given = true;
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
      config_given = true;
    } else {
      std::fprintf(stderr, "pgcutover-proxy: unknown argument '%s' (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (handover && check_only) {
    std::fputs("pgcutover-proxy: --handover starts a proxy; it does not go with --check\n", stderr);
    return 2;
  }
  if (check_connect && !check_only) {
    std::fputs("pgcutover-proxy: --connect goes with --check (try --help)\n", stderr);
    return 2;
  }
  // A client vanishing mid-write must be an error code, not a signal that kills the proxy.
  ::signal(SIGPIPE, SIG_IGN);

  std::shared_ptr<const Settings> settings;
  try {
    settings = Settings::build(Config::load(config_path));
  } catch (const ConfigError& e) {
    if (!config_given && !std::filesystem::exists(config_path)) {
      std::fprintf(stderr,
                   "pgcutover-proxy: no configuration: pass -c FILE (the default, %s, does not "
                   "exist); see --help and docs/configuration.md\n",
                   config_path.c_str());
      return 2;
    }
    std::fprintf(stderr, "pgcutover-proxy: %s\n", e.what());
    return 2;
  }
  log::Level level;
  if (log::parse_level(settings->config.proxy.log_level, level)) log::set_level(level);

  // Which backend is active is state, not config: the state file wins over initial_backend.
  ActiveBackend active{settings->config.cutover.initial_backend, 0};
  StateFileRead state = read_state_file(settings->config.proxy.state_file);
  if (state.status == StateFileStatus::kError) {
    std::fprintf(stderr, "pgcutover-proxy: %s\n", state.error.c_str());
    return 2;
  }
  if (state.status == StateFileStatus::kOk) {
    if (!settings->endpoint(state.state.backend)) {
      std::fprintf(stderr,
                   "pgcutover-proxy: %s: active backend \"%s\" has no [backends.%s] in %s\n",
                   settings->config.proxy.state_file.c_str(), state.state.backend.c_str(),
                   state.state.backend.c_str(), config_path.c_str());
      return 2;
    }
    active = state.state;
  }
  if (settings->config.fleet.enabled && !check_only) {
    // The databases, not the state file, say where the fleet is (docs/fleet.md).
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        settings->config.proxy.server_connect_timeout);
    auto readings = read_fleet_authority(*settings, timeout);
    for (const auto& r : readings)
      if (!r.answered)
        log::warn("fleet_authority_unread", {{"backend", r.channel_backend}, {"error", r.error}});
    auto best = highest_authority(readings);
    if (best && best->epoch > active.epoch) {
      if (!settings->endpoint(*best->backend)) {
        log::error("fleet_authority_unknown_backend",
                   {{"backend", *best->backend}, {"epoch", std::to_string(best->epoch)}});
      } else {
        log::info("fleet_authority_adopted", {{"backend", *best->backend},
                                              {"epoch", std::to_string(best->epoch)},
                                              {"was", active.backend},
                                              {"was_epoch", std::to_string(active.epoch)},
                                              {"read_from", best->channel_backend}});
        active = ActiveBackend{*best->backend, best->epoch};
        if (std::string err = write_state_file(settings->config.proxy.state_file, active);
            !err.empty()) {
          std::fprintf(stderr, "pgcutover-proxy: proxy.state_file: %s\n", err.c_str());
          return 2;
        }
        state.status = StateFileStatus::kOk;
      }
    }
  }
  {
    std::string error;
    if (!RouteTable::build(*settings, active.backend, error)) {
      std::fprintf(stderr, "pgcutover-proxy: %s: active backend \"%s\": %s\n", config_path.c_str(),
                   active.backend.c_str(), error.c_str());
      return 2;
    }
  }
  if (check_only) {
    std::printf("pgcutover-proxy: %s is valid (active backend: %s, epoch %llu)\n",
                config_path.c_str(), active.backend.c_str(),
                static_cast<unsigned long long>(active.epoch));
    if (!check_connect) return 0;
    int rc = 0;
    for (const BackendLogin& b : check_backend_logins(*settings)) {
      if (b.ok)
        std::printf("pgcutover-proxy: backend %s: login ok (%.0f ms)\n", b.backend.c_str(), b.ms);
      else
        std::printf("pgcutover-proxy: backend %s: login FAILED: %s\n", b.backend.c_str(),
                    b.error.c_str());
      if (!b.ok) rc = 1;
    }
    return rc;
  }
  if (state.status == StateFileStatus::kMissing) {
    // Record the starting point now, so that the state file always exists once we serve.
    if (std::string err = write_state_file(settings->config.proxy.state_file, active);
        !err.empty()) {
      std::fprintf(stderr, "pgcutover-proxy: proxy.state_file: %s\n", err.c_str());
      return 2;
    }
  }
  HandoverGrant grant;
  if (handover) {
    grant = request_handover(
        handover_socket_path(settings->config.proxy.state_file),
        {static_cast<long>(::getpid()), active.epoch, config_digest(settings->config.path)});
    if (!grant.ok) {
      std::fprintf(stderr, "pgcutover-proxy: --handover: %s\n", grant.error.c_str());
      return 1;
    }
    log::info("handover_taken", {{"from_pid", std::to_string(grant.predecessor_pid)},
                                 {"its_clients", std::to_string(grant.predecessor_clients)}});
  }
  try {
    DataPlane plane(settings, active);
    ControlPlane control(plane, *settings);
    if (handover) {
      plane.inherit(grant.sockets);
      control.inherit(grant);
    }
    plane.on_listening([&control] { control.offer_handover(); });
    plane.before_accepting([&control] { control.sync_fleet(); });
    std::string error;
    if (!control.start(error)) {
      std::fprintf(stderr, "pgcutover-proxy: admin API: %s\n", error.c_str());
      return 1;
    }
    plane.on_shutdown_begin([&control] { control.stop(); });
    int rc = plane.run();
    control.stop();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pgcutover-proxy: %s\n", e.what());
    return 1;
  }
}
