#include "control/command/proxy_fleet.h"

#include <unistd.h>

#include <set>
#include <thread>

#include "control/command/admin_client.h"

namespace pgcutover::control {

namespace json = boost::json;

ProxyAnswer parse_proxy_answer(const std::string& admin_url, bool reachable, int status,
                               const std::string& body, const std::string& error) {
  ProxyAnswer a;
  a.admin_url = admin_url;
  a.reachable = reachable;
  a.http_status = status;
  a.answered_at = std::chrono::steady_clock::now();
  if (!reachable) {
    a.result = "unreachable";
    a.error = error;
    return a;
  }
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    a.result = "bad_answer";
    a.error = "HTTP " + std::to_string(status) +
              (status == 401 ? " (wrong or missing token: [[control.proxies]] token must equal "
                               "that proxy's [admin] token)"
                             : "") +
              ", not a JSON object";
    return a;
  }
  a.body = v.as_object();
  auto s = [&](const char* k) {
    auto it = a.body.find(k);
    return it != a.body.end() && it->value().is_string() ? std::string(it->value().as_string())
                                                         : std::string();
  };
  a.state = s("state");
  if (auto* w = a.body.if_contains("client_wait_ms"); w && w->is_object()) {
    const auto& o = w->as_object();
    auto num = [&](const char* k) -> std::optional<double> {
      auto* x = o.if_contains(k);
      return x && x->is_number() ? std::optional<double>(x->to_number<double>()) : std::nullopt;
    };
    auto held = num("held");
    if (held && *held > 0) {
      a.clients_held = static_cast<int>(*held);
      a.client_wait_worst_ms = num("worst");
      a.client_wait_p99_ms = num("p99");
    }
  }
  a.backend = s("backend");
  if (auto it = a.body.find("epoch"); it != a.body.end() && it->value().is_number())
    a.epoch = it->value().to_number<uint64_t>();
  if (auto it = a.body.find("changed"); it != a.body.end() && it->value().is_bool())
    a.changed = it->value().as_bool();
  a.result = s("result");
  bool cmd_ok = true;
  if (auto it = a.body.find("ok"); it != a.body.end() && it->value().is_bool())
    cmd_ok = it->value().as_bool();
  a.ok = status == 200 && cmd_ok;
  if (a.result.empty()) a.result = a.ok ? "ok" : s("error");
  if (!a.ok) {
    std::string msg = s("message");
    a.error = "HTTP " + std::to_string(status) + " " + a.result + (msg.empty() ? "" : ": " + msg);
  }
  return a;
}

std::vector<ProxyAnswer> ProxyFleet::call(const std::vector<size_t>& which,
                                          const std::string& method, const std::string& path,
                                          const std::vector<std::string>& bodies,
                                          std::chrono::milliseconds timeout) {
  std::vector<ProxyAnswer> out(which.size());
  std::vector<std::thread> threads;
  std::vector<size_t> through_fleet;  // positions k in `which`
  for (size_t k = 0; k < which.size(); ++k) {
    if (which[k] >= proxies_.size()) {
      through_fleet.push_back(k);
      continue;
    }
    threads.emplace_back([&, k] {
      const auto& p = proxies_[which[k]];
      AdminResponse r =
          admin_request(p, method, path, timeout, k < bodies.size() ? bodies[k] : std::string());
      out[k] = parse_proxy_answer(p.admin_url, r.reachable, r.status, r.body, r.error);
    });
  }
  if (!through_fleet.empty()) {
    // One transaction per database for all members, beside the admin calls.
    threads.emplace_back([&] {
      std::vector<FleetCommand> commands;
      for (size_t k : through_fleet)
        commands.push_back(
            {members_[which[k] - proxies_.size()], k < bodies.size() ? bodies[k] : std::string()});
      // The whole fleet paused, flipped or resumed: a proxy joining meanwhile does the same.
      std::optional<std::string> broadcast;
      std::chrono::milliseconds ttl{0};
      if (through_fleet.size() == members_.size() &&
          (path == "/v1/pause" || path == "/v1/flip" || path == "/v1/resume")) {
        broadcast = commands.front().body;
        // A pause holds for up to its max_pause (the proxies' dead-man timer): so does the
        // window in which a joining proxy pauses too, unless a resume supersedes it first.
        boost::system::error_code ec;
        auto v = json::parse(*broadcast, ec);
        if (!ec && v.is_object())
          if (auto* m = v.as_object().if_contains("max_pause_ms"); m && m->is_number())
            ttl = std::chrono::milliseconds(m->to_number<long>());
      }
      std::vector<FleetAnswer> answers;
      {
        std::lock_guard<std::mutex> lock(channel_mutex_);
        std::vector<std::string> known = members_;
        known.insert(known.end(), admin_members_.begin(), admin_members_.end());
        answers = channel_->send(method, path, commands, timeout, broadcast, ttl, known);
      }
      for (size_t j = 0; j < through_fleet.size(); ++j) {
        const FleetAnswer& a = answers[j];
        out[through_fleet[j]] = parse_proxy_answer(
            "fleet:" + commands[j].member, a.answered, a.status, a.body,
            a.answered ? std::string()
            : !a.problem.empty()
                ? a.problem
                : "no answer through the fleet channel within " + std::to_string(timeout.count()) +
                      " ms (its control session is gone or it is stuck: `pgcutoverctl "
                      "fleet`)");
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

size_t ProxyFleet::add_fleet(std::shared_ptr<FleetChannel> channel) {
  if (!channel) return 0;
  channel_ = std::move(channel);
  // A proxy reached by its admin API too says its member name in /v1/status: command it once.
  std::set<std::string> reached_by_admin;
  if (!proxies_.empty())
    for (const auto& a : status())
      if (auto* n = a.body.if_contains("fleet_member"); n && n->is_string())
        reached_by_admin.insert(std::string(n->as_string()));
  size_t added = 0;
  admin_members_.assign(reached_by_admin.begin(), reached_by_admin.end());
  for (const FleetMember& m : channel_->members()) {
    if (!m.live || reached_by_admin.count(m.name)) continue;
    members_.push_back(m.name);
    ++added;
  }
  return added;
}

size_t ProxyFleet::join_fleet(const ControlSettings& settings, std::chrono::seconds connect_timeout,
                              std::string& problems) {
  std::vector<std::string> why;
  auto ch = FleetChannel::open(settings, connect_timeout, why);
  for (const auto& p : why) problems += (problems.empty() ? "" : "; ") + p;
  return ch ? add_fleet(std::shared_ptr<FleetChannel>(std::move(ch))) : 0;
}

std::string ProxyFleet::record_authority(const std::string& backend, uint64_t epoch) {
  if (!channel_) return {};
  std::lock_guard<std::mutex> lock(channel_mutex_);
  return channel_->record_authority(backend, epoch);
}

std::string ProxyFleet::record_run_begin(const std::string& run, const std::string& direction,
                                         const std::string& begin_data) {
  if (!channel_) return {};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string controller = "pgcutoverctl pid " + std::to_string(::getpid()) +
                           (host[0] ? std::string(" on ") + host : std::string());
  std::lock_guard<std::mutex> lock(channel_mutex_);
  return channel_->record_run_begin(run, direction, controller, begin_data);
}

std::string ProxyFleet::record_run_end(const std::string& run, const std::string& outcome) {
  if (!channel_) return {};
  std::lock_guard<std::mutex> lock(channel_mutex_);
  return channel_->record_run_end(run, outcome);
}

std::optional<CutoverRunRecord> ProxyFleet::last_run() {
  if (!channel_) return std::nullopt;
  std::lock_guard<std::mutex> lock(channel_mutex_);
  return channel_->last_run();
}

std::vector<FleetAuthority> ProxyFleet::authority() {
  if (!channel_) return {};
  std::lock_guard<std::mutex> lock(channel_mutex_);
  return channel_->authority();
}

namespace {
std::vector<size_t> all_of(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}
}  // namespace

std::vector<ProxyAnswer> ProxyFleet::status() {
  return call(all_of(size()), "GET", "/v1/status", {},
              std::min(timeout_, std::chrono::milliseconds(3000)));
}

std::vector<ProxyAnswer> ProxyFleet::prewarm(const std::string& backend, int timeout_ms,
                                             bool writable) {
  json::object o{{"backend", backend}, {"timeout_ms", timeout_ms}};
  if (writable) o["writable"] = true;  // older proxies refuse fields they do not know
  std::string body = json::serialize(o);
  return call(all_of(size()), "POST", "/v1/prewarm", std::vector<std::string>(size(), body),
              std::chrono::milliseconds(timeout_ms) + timeout_);
}

std::vector<ProxyAnswer> ProxyFleet::publish_lag(const std::string& reading) {
  return call(all_of(size()), "POST", "/v1/replication_lag",
              std::vector<std::string>(size(), reading), timeout_);
}

std::vector<ProxyAnswer> ProxyFleet::pause(int drain_timeout_ms, int max_pause_ms) {
  std::string body = json::serialize(
      json::object{{"drain_timeout_ms", drain_timeout_ms}, {"max_pause_ms", max_pause_ms}});
  // The HTTP bound covers the drain: the proxy answers only once drained or timed out.
  return call(all_of(size()), "POST", "/v1/pause", std::vector<std::string>(size(), body),
              std::chrono::milliseconds(drain_timeout_ms) + timeout_);
}

std::vector<ProxyAnswer> ProxyFleet::resume() {
  return call(all_of(size()), "POST", "/v1/resume", {}, timeout_);
}

std::vector<ProxyAnswer> ProxyFleet::flip(const std::string& backend,
                                          const std::vector<uint64_t>& epochs) {
  std::vector<std::string> bodies;
  for (size_t i = 0; i < size(); ++i)
    bodies.push_back(json::serialize(json::object{
        {"backend", backend}, {"epoch", i < epochs.size() ? epochs[i] : uint64_t{0}}}));
  return call(all_of(size()), "POST", "/v1/flip", bodies, timeout_);
}

std::string all_running_on(const std::vector<ProxyAnswer>& answers, const std::string& backend,
                           uint64_t& epoch) {
  std::optional<uint64_t> seen;
  for (const auto& a : answers) {
    if (!a.ok) return "proxy " + a.admin_url + " is " + a.result + ": " + a.error;
    if (a.state != "running") return "proxy " + a.admin_url + " is " + a.state + ", not running";
    if (a.backend != backend)
      return "proxy " + a.admin_url + " is on backend " + a.backend + ", not " + backend;
    if (seen && *seen != a.epoch)
      return "proxies disagree on the epoch (" + std::to_string(*seen) + " vs " +
             std::to_string(a.epoch) + " at " + a.admin_url + ")";
    seen = a.epoch;
  }
  epoch = seen.value_or(0);
  return {};
}

bool all_ok(const std::vector<ProxyAnswer>& answers) {
  for (const auto& a : answers)
    if (!a.ok) return false;
  return true;
}

std::string describe_failures(const std::vector<ProxyAnswer>& answers) {
  std::string s;
  for (const auto& a : answers) {
    if (a.ok) continue;
    if (!s.empty()) s += "; ";
    s += a.admin_url + ": " + (a.reachable ? a.error : "unreachable (" + a.error + ")");
  }
  return s;
}

json::array to_json(const std::vector<ProxyAnswer>& answers) {
  json::array arr;
  for (const auto& a : answers) {
    json::object o{{"admin_url", a.admin_url}, {"ok", a.ok},           {"result", a.result},
                   {"state", a.state},         {"backend", a.backend}, {"epoch", a.epoch}};
    if (!a.error.empty()) o["error"] = a.error;
    // The proxy's own figures for this command (docs/cutover.md "Figures"): gate closed,
    // drain and held clients, under the names the proxy's log uses.
    if (auto* t = a.body.if_contains("timings_ms"); t && t->is_object()) {
      const auto& tm = t->as_object();
      if (auto* v = tm.if_contains("pause"); v && v->is_number() && v->to_number<double>() > 0)
        o["gate_closed_ms"] = *v;
      if (auto* v = tm.if_contains("drain"); v && v->is_number() && v->to_number<double>() > 0)
        o["drain_ms"] = *v;
    }
    if (auto* h = a.body.if_contains("held_clients"); h && h->is_number()) o["held_clients"] = *h;
    // A pause: the backend processes the proxy holds, quiet behind its gate (the fence spares
    // them).
    if (auto* q = a.body.if_contains("quiet_server_pids");
        q && q->is_array() && !q->as_array().empty())
      o["quiet_server_pids"] = *q;
    if (a.client_wait_worst_ms) {
      o["client_wait_worst_ms"] = *a.client_wait_worst_ms;
      o["client_wait_p99_ms"] = a.client_wait_p99_ms.value_or(0);
    }
    arr.push_back(o);
  }
  return arr;
}

}  // namespace pgcutover::control
