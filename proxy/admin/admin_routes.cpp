#include "proxy/admin/admin_routes.h"

#include <cmath>

#include <initializer_list>

#include "common/json.h"

namespace pgcutover::proxy {
namespace {

void write_clients(json::Writer& w, const std::vector<ClientInfo>& clients) {
  w.begin_array();
  for (const auto& c : clients) {
    w.begin_object()
        .field("client_id", static_cast<std::uint64_t>(c.client_id))
        .field("user", c.user)
        .field("database", c.database)
        .field("application_name", c.application_name)
        .field("address", c.address)
        .field("transaction_age_ms", static_cast<std::int64_t>(c.transaction_age.count()))
        .end_object();
  }
  w.end_array();
}

void write_sessions(json::Writer& w, const std::vector<SessionInfo>& sessions) {
  w.begin_array();
  for (const auto& s : sessions) {
    w.begin_object()
        .field("client_id", static_cast<std::uint64_t>(s.client_id))
        .field("user", s.user)
        .field("database", s.database)
        .field("reason", s.reason)
        .end_object();
  }
  w.end_array();
}

HttpReply reply_for(const CommandResult& r) {
  HttpReply reply;
  reply.status = http_status(r.error);
  reply.body = render_result(r);
  return reply;
}

// A parsed body plus typed getters that record the first problem.
class Body {
 public:
  Body(const HttpRequest& req, std::initializer_list<std::string_view> allowed) {
    std::string_view text = req.body;
    bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
    if (blank) return;  // no body: every field takes its default
    std::string err;
    auto obj = json::parse_flat_object(text, err);
    if (!obj) {
      error_ = "invalid JSON body: " + err;
      return;
    }
    for (const auto& [k, v] : *obj) {
      bool known = false;
      for (auto a : allowed) known = known || a == k;
      if (!known) {
        error_ = "unknown field '" + k + "'";
        return;
      }
    }
    obj_ = std::move(*obj);
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  std::optional<std::string> string(std::string_view k) {
    auto v = get(k);
    if (!v) return std::nullopt;
    if (v->type != json::Value::Type::kString) return bad(k, "a string");
    return v->s;
  }
  std::optional<bool> boolean(std::string_view k) {
    auto v = get(k);
    if (!v) return std::nullopt;
    if (v->type != json::Value::Type::kBool) return bad(k, "true or false");
    return v->b;
  }
  std::optional<std::int64_t> non_negative(std::string_view k) {
    auto v = get(k);
    if (!v) return std::nullopt;
    if (v->type != json::Value::Type::kInt || v->i < 0) return bad(k, "a non-negative integer");
    return v->i;
  }
  std::optional<double> non_negative_number(std::string_view k) {
    auto v = get(k);
    if (!v) return std::nullopt;
    double d = v->type == json::Value::Type::kInt      ? static_cast<double>(v->i)
               : v->type == json::Value::Type::kDouble ? v->d
                                                       : -1;
    if (d < 0) return bad(k, "a non-negative number");
    return d;
  }
  std::optional<Millis> millis(std::string_view k) {
    auto v = get(k);
    if (!v) return std::nullopt;
    if (v->type != json::Value::Type::kInt || v->i <= 0 || v->i > 3600 * 1000) {
      return bad(k, "milliseconds between 1 and 3600000");
    }
    return Millis(v->i);
  }
  void require(std::string_view k) {
    if (error_.empty() && obj_.find(k) == obj_.end())
      error_ = "missing field '" + std::string(k) + "'";
  }

 private:
  const json::Value* get(std::string_view k) {
    auto it = obj_.find(k);
    if (it == obj_.end() || it->second.type == json::Value::Type::kNull) return nullptr;
    return &it->second;
  }
  std::nullopt_t bad(std::string_view k, const char* expected) {
    if (error_.empty()) error_ = "field '" + std::string(k) + "' must be " + expected;
    return std::nullopt;
  }
  json::FlatObject obj_;
  std::string error_;
};

HttpReply bad_request(const std::string& message) {
  return HttpReply::error(400, "bad_request", message);
}

// What the held clients of a pause waited (all zero when the command reopened no gate).
void write_client_waits(json::Writer& w, const ClientWaits& c) {
  w.begin_object()
      .field("held", c.held)
      .field("answered", c.answered)
      .field("worst", static_cast<std::int64_t>(std::llround(c.worst_ms)))
      .field("p99", static_cast<std::int64_t>(std::llround(c.p99_ms)))
      .end_object();
}

}  // namespace

std::string render_result(const CommandResult& r) {
  json::Writer w;
  w.begin_object()
      .field("command", r.command)
      .field("ok", r.ok())
      .field("result", to_string(r.error))
      .field("message", r.message)
      .field("changed", r.changed)
      .field("state", to_string(r.state))
      .field("backend", r.backend)
      .field("previous_backend", r.previous_backend)
      .field("epoch", static_cast<std::uint64_t>(r.epoch))
      .field("read_only", r.read_only);
  w.key("timings_ms")
      .begin_object()
      .field("prewarm", static_cast<std::int64_t>(r.prewarm.count()))
      .field("drain", static_cast<std::int64_t>(r.drain.count()))
      .field("flip", static_cast<std::int64_t>(r.flip.count()))
      .field("pause", static_cast<std::int64_t>(r.pause.count()))
      .end_object();
  w.field("in_flight_at_pause", r.in_flight_at_pause).field("held_clients", r.held_clients);
  w.key("client_wait_ms");
  write_client_waits(w, r.client_waits);
  w.key("blockers");
  write_clients(w, r.blockers);
  w.key("unmovable_sessions");
  write_sessions(w, r.unmovable);
  // A pause: the backend processes of `backend` this proxy holds, quiet while paused (the
  // controller's fence spares them).
  w.key("quiet_server_pids").begin_array();
  for (std::int32_t pid : r.quiet_server_pids) w.value(static_cast<std::int64_t>(pid));
  w.end_array();
  w.end_object();
  return w.take();
}

std::string render_status(const CutoverStatus& s) {
  json::Writer w;
  w.begin_object()
      .field("state", to_string(s.state))
      .field("backend", s.backend)
      .field("previous_backend", s.previous_backend)
      .field("epoch", static_cast<std::uint64_t>(s.epoch))
      .field("read_only", s.read_only)
      .field("held_clients", s.held_clients)
      .field("transactions_in_flight", s.transactions_in_flight)
      .field("pinned_sessions", s.pinned_sessions)
      .field("paused_ms", static_cast<std::int64_t>(s.paused_for.count()))
      .field("dead_man_remaining_ms", static_cast<std::int64_t>(s.dead_man_remaining.count()));
  w.key("command");
  if (s.command.empty()) {
    w.null();
  } else {
    w.value(s.command);
  }
  w.key("last_pause").begin_object();
  w.field("gate_closed_ms", static_cast<std::int64_t>(s.last_gate_closed.count()));
  w.key("client_wait_ms");
  write_client_waits(w, s.last_client_waits);
  w.end_object();
  w.key("hold");
  if (s.hold.empty()) {
    w.null();
  } else {
    w.value(s.hold);
  }
  w.key("backends").begin_array();
  for (const auto& b : s.backends) w.value(b);
  w.end_array();
  w.key("unmovable_sessions");
  write_sessions(w, s.unmovable);
  w.end_object();
  return w.take();
}

void register_admin_routes(AdminServer& server, CutoverEngine& engine, AdminRouteOptions options) {
  CutoverEngine* e = &engine;
  // Liveness only: answers while the admin thread runs, reveals nothing.
  server.route(
      "GET", "/healthz",
      [](const HttpRequest&) { return HttpReply::json(200, "{\"status\":\"ok\"}"); },
      RouteAccess::kPublic);
  // Readiness for load balancers / Kubernetes probes (which rarely carry tokens): a yes or no.
  server.route(
      "GET", "/readyz",
      [ready = options.ready](const HttpRequest&) {
        if (!ready) return HttpReply::json(200, "{\"ready\":true}");
        std::string body;
        bool ok = ready(body);
        return HttpReply::json(ok ? 200 : 503, std::move(body));
      },
      RouteAccess::kPublic);
  if (options.metrics_text) {
    server.route(
        "GET", "/metrics",
        [text = options.metrics_text](const HttpRequest&) {
          HttpReply r;
          r.content_type = "text/plain; version=0.0.4; charset=utf-8";
          r.body = text();
          return r;
        },
        options.metrics_public ? RouteAccess::kPublic : RouteAccess::kToken);
  }
  server.route(
      "GET", "/v1/status",
      [e, routes = options.routes_json, member = options.fleet_member](const HttpRequest&) {
        std::string body = render_status(e->status());
        if (routes && !body.empty() && body.back() == '}') {
          body.pop_back();  // one more member in the same object
          body += ",\"routes\":" + routes() + "}";
        }
        if (!member.empty() && !body.empty() && body.back() == '}') {
          json::Writer w;
          w.begin_object().field("fleet_member", member).end_object();
          std::string extra = w.take();  // {"fleet_member":"..."}
          body.pop_back();
          body += "," + extra.substr(1);
        }
        return HttpReply::json(200, body);
      });
  server.route("POST", "/v1/pause", [e](const HttpRequest& req) {
    Body b(req, {"drain_timeout_ms", "drain_policy", "max_pause_ms"});
    PauseRequest p;
    p.drain_timeout = b.millis("drain_timeout_ms");
    p.max_pause = b.millis("max_pause_ms");
    if (auto policy = b.string("drain_policy")) {
      DrainPolicy dp;
      if (!parse_drain_policy(*policy, dp))
        return bad_request("drain_policy must be abort or cancel");
      p.drain_policy = dp;
    }
    if (!b.ok()) return bad_request(b.error());
    return reply_for(e->pause(p));
  });
  server.route("POST", "/v1/resume", [e](const HttpRequest& req) {
    Body b(req, {});
    if (!b.ok()) return bad_request(b.error());
    return reply_for(e->resume());
  });
  // flip and follow take the same body: {"backend": name, "epoch": n}.
  using MoveCommand = CommandResult (CutoverEngine::*)(const std::string&, std::uint64_t);
  auto move_route = [e](MoveCommand command) {
    return [e, command](const HttpRequest& req) {
      Body b(req, {"backend", "epoch"});
      b.require("backend");
      b.require("epoch");
      auto backend = b.string("backend");
      auto epoch = b.non_negative("epoch");
      if (!b.ok() || !backend || !epoch)
        return bad_request(b.ok() ? "backend and epoch are required" : b.error());
      return reply_for((e->*command)(*backend, static_cast<std::uint64_t>(*epoch)));
    };
  };
  server.route("POST", "/v1/flip", move_route(&CutoverEngine::flip));
  server.route("POST", "/v1/follow", move_route(&CutoverEngine::follow));
  server.route("POST", "/v1/revert", [e](const HttpRequest& req) {
    Body b(req, {"epoch"});
    auto epoch = b.non_negative("epoch");
    if (!b.ok()) return bad_request(b.error());
    std::optional<std::uint64_t> expected;
    if (epoch) expected = static_cast<std::uint64_t>(*epoch);
    return reply_for(e->revert(expected));
  });
  server.route("POST", "/v1/readonly", [e](const HttpRequest& req) {
    Body b(req, {"enabled"});
    b.require("enabled");
    auto enabled = b.boolean("enabled");
    if (!b.ok() || !enabled) return bad_request(b.ok() ? "enabled is required" : b.error());
    return reply_for(e->set_read_only(*enabled));
  });
  if (options.publish_lag) {
    server.route(
        "POST", "/v1/replication_lag", [publish = options.publish_lag](const HttpRequest& req) {
          Body b(req, {"method", "direction", "ok", "bytes", "seconds", "measured_at_unix"});
          b.require("method");
          b.require("ok");
          LagReading r;
          auto method = b.string("method");
          auto direction = b.string("direction");
          auto ok = b.boolean("ok");
          r.bytes = b.non_negative_number("bytes");
          r.seconds = b.non_negative_number("seconds");
          auto at = b.non_negative_number("measured_at_unix");
          if (!b.ok() || !method || !ok)
            return bad_request(b.ok() ? "method and ok are required" : b.error());
          if (direction && *direction != "forward" && *direction != "reverse")
            return bad_request("direction must be forward or reverse");
          r.method = *method;
          r.direction = direction.value_or("");
          r.ok = *ok;
          r.measured_at_unix = at.value_or(0);
          publish(r);
          return HttpReply::json(200, "{\"ok\":true}");
        });
  }
  server.route("POST", "/v1/prewarm", [e](const HttpRequest& req) {
    Body b(req, {"backend", "timeout_ms", "writable"});
    b.require("backend");
    auto backend = b.string("backend");
    auto timeout = b.millis("timeout_ms");
    auto writable = b.boolean("writable");
    if (!b.ok() || !backend) return bad_request(b.ok() ? "backend is required" : b.error());
    return reply_for(e->prewarm(*backend, timeout, writable.value_or(false)));
  });
}

}  // namespace pgcutover::proxy
