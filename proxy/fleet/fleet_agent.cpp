#include "proxy/fleet/fleet_agent.h"

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <thread>

#include "common/fleet_contract.h"
#include "common/log.h"
#include "proxy/fleet/control_link.h"
#include "proxy/net/asio.h"

namespace pgcutover::proxy {

namespace {

std::string lock_class() {
  return std::to_string(fleet::kFleetLockClass);
}

// Commands answered, remembered so that the copy read from the other database gets the same
// answer instead of a second run.
constexpr std::size_t kRememberedCommands = 512;

// A JSON string literal for a backend name (names are config keys: no control characters).
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string default_member_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "proxy");
  std::string h;
  for (const char* p = host; *p && *p != '.'; ++p) h += *p;
  std::string name;
  if (const char* dyno = std::getenv("DYNO"); dyno && *dyno)
    name = std::string(dyno) + "." + h;
  else
    name = h + "." + std::to_string(::getpid());
  std::string clean;
  for (char c : name) {
    std::string one(1, c);
    clean += fleet::valid_member_name(one) ? c : '-';
  }
  if (clean.size() > 63) clean.resize(63);
  return clean.empty() ? "proxy" : clean;
}

struct FleetAgent::Impl {
  FleetAgentOptions o;
  Execute execute;
  LocalState local_state;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  asio::thread_pool workers{2};
  bool started = false, stopped = false;

  struct Link {
    std::shared_ptr<ControlLink> session;
    bool fetching = false, fetch_again = false;
    std::string last_problem;                   // logged once until it changes
    std::shared_ptr<asio::steady_timer> retry;  // the wait before reconnecting (wake: cancel)
  };
  std::vector<Link> links;

  struct Job {
    bool done = false;
    HttpReply reply;
    MemberState state;
    std::vector<std::size_t> waiting;  // links to answer on once done
    std::string what;                  // "POST /v1/pause", for the log
  };
  std::map<std::string, Job, std::less<>> jobs;
  std::deque<std::string> job_order;
  int running = 0;  // commands (and follows) executing on a worker

  // The first sync (wait_first_sync): joined, authority followed, waiting commands run.
  bool first_fetch_done = false;
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  bool synced = false;
  void maybe_synced() {
    if (!first_fetch_done || running > 0) return;
    std::lock_guard lock(sync_mu);
    if (synced) return;
    synced = true;
    sync_cv.notify_all();
  }

  Impl(FleetAgentOptions options, Execute ex, LocalState ls)
      : o(std::move(options)), execute(std::move(ex)), local_state(std::move(ls)) {
    links.resize(o.channel.size());
  }

  std::string name_literal() const { return fleet::quote_literal(o.name); }

  void problem(std::size_t i, const std::string& what) {
    if (links[i].last_problem == what) return;
    links[i].last_problem = what;
    log::warn("fleet_channel_unavailable",
              {{"backend", o.channel[i].first},
               {"member", o.name},
               {"problem", what},
               {"retry_every_ms", std::to_string(o.reconnect_interval.count())}});
  }

  // The wait before link i reconnects; recheck_authority() cuts it short.
  awaitable<void> wait_retry(std::size_t i) {
    auto t = std::make_shared<asio::steady_timer>(io, o.reconnect_interval);
    links[i].retry = t;
    co_await t->async_wait(use_nothrow);
    links[i].retry.reset();
  }

  // One channel database: connect, join, serve until the session ends, again.
  awaitable<void> serve(std::size_t i) {
    while (!stopped) {
      ConnectResult c =
          co_await connect_server(o.channel[i].second, 0, o.connect_timeout, o.limits);
      if (!c.conn) {
        problem(i, "cannot log in: " + c.error.sqlstate + " " + c.error.message);
        co_await wait_retry(i);
        continue;
      }
      auto session = std::make_shared<ControlLink>(
          std::move(c.conn), o.limits, [this, i](std::string_view channel, std::string_view) {
            if (channel == fleet::kCommandChannel) schedule_fetch(i);
          });
      session->start(io.get_executor());
      links[i].session = session;
      std::string why;
      if (co_await join(*session, why)) {
        links[i].last_problem.clear();
        log::info("fleet_joined", {{"backend", o.channel[i].first},
                                   {"member", o.name},
                                   {"control_pid", std::to_string(session->backend_pid())}});
        co_await follow_authority(i, *session);
        schedule_fetch(i);  // commands issued while this session was away
        co_await session->closed();
        if (!stopped)
          log::warn("fleet_channel_lost", {{"backend", o.channel[i].first}, {"member", o.name}});
      } else {
        problem(i, why);
        // The database answered and has nothing to tell (no schema, say): not worth holding
        // the first client for.
        first_fetch_done = true;
        maybe_synced();
      }
      session->close();
      links[i].session.reset();
      links[i].fetching = false;
      if (!stopped) co_await wait_retry(i);
    }
  }

  // The session's settings, the schema check, registration under the liveness lock, LISTEN.
  awaitable<bool> join(ControlLink& s, std::string& why) {
    // Writable whatever the role's defaults say: the fence sets default_transaction_read_only
    // on the role being left, and this session must still answer from there.
    QueryRows r = co_await s.query(
        "SET application_name = " + fleet::quote_literal(fleet::kApplicationName) +
        "; SET default_transaction_read_only = off; SET standard_conforming_strings = on;"
        " SET statement_timeout = 0; SET lock_timeout = '10s';"
        " SET idle_in_transaction_session_timeout = 0;"
        " SELECT set_config('idle_session_timeout', '0', false)"
        " WHERE current_setting('server_version_num')::int >= 140000");
    if (!r.ok) {
      why = "session settings: " + r.error;
      co_return false;
    }
    r = co_await s.query("SELECT to_regclass('pgcutover.fleet_command') IS NOT NULL");
    if (!r.ok) {
      why = "schema check: " + r.error;
      co_return false;
    }
    if (r.first() != "t") {
      why = "no fleet schema in this database: run `pgcutoverctl fleet setup` once";
      co_return false;
    }
    r = co_await s.query("INSERT INTO pgcutover.fleet_member (name, lock_key) VALUES (" +
                         name_literal() +
                         ", nextval('pgcutover.fleet_member_key')) ON CONFLICT (name) DO NOTHING");
    if (r.ok)
      r = co_await s.query(
          "SELECT pg_try_advisory_lock(" + lock_class() +
          ", lock_key) FROM pgcutover.fleet_member WHERE name = " + name_literal());
    if (!r.ok) {
      why = "registering: " + r.error;
      co_return false;
    }
    if (r.first() != "t") {
      why = "the member name " + o.name +
            " is held by another live proxy ([fleet] name must be unique per process)";
      co_return false;
    }
    MemberState st = local_state();
    r = co_await s.query(
        "UPDATE pgcutover.fleet_member SET host = " + fleet::quote_literal(o.host) +
        ", pid = " + std::to_string(::getpid()) + ", version = " + fleet::quote_literal(o.version) +
        ", admin = " + fleet::quote_literal(o.admin) +
        ", backend = " + fleet::quote_literal(st.backend) +
        ", epoch = " + std::to_string(st.epoch) + ", state = " + fleet::quote_literal(st.state) +
        ", registered_at = now(), seen_at = now() WHERE name = " + name_literal() +
        // Members gone for a day are forgotten (their rows only ever grow the listing).
        "; DELETE FROM pgcutover.fleet_member m WHERE m.seen_at < now() - interval '1 day'"
        " AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND"
        " l.classid = " +
        lock_class() +
        " AND l.objid = m.lock_key AND l.objsubid = 2)"
        "; LISTEN " +
        std::string(fleet::kCommandChannel));
    if (!r.ok) {
      why = "registering: " + r.error;
      co_return false;
    }
    co_return true;
  }

  // The databases say where the fleet is: a proxy that missed a flip (its session was down,
  // its dyno slept) moves there and lands on the fleet's epoch.
  awaitable<void> follow_authority(std::size_t i, ControlLink& s) {
    QueryRows r = co_await s.query("SELECT backend, epoch FROM pgcutover.fleet_authority");
    if (!r.ok || r.rows.empty() || r.rows[0].size() != 2 || !r.rows[0][0] || !r.rows[0][1])
      co_return;
    std::string backend = *r.rows[0][0];
    std::uint64_t epoch = std::stoull(*r.rows[0][1]);
    if (epoch <= local_state().epoch) co_return;
    log::info("fleet_authority_follow", {{"backend", backend},
                                         {"epoch", std::to_string(epoch)},
                                         {"read_from", o.channel[i].first}});
    HttpRequest req;
    req.method = "POST";
    req.path = "/v1/follow";
    req.body = "{\"backend\":" + json_string(backend) + ",\"epoch\":" + std::to_string(epoch) + "}";
    req.content_type = "application/json";
    req.remote = "fleet:" + o.channel[i].first;
    ++running;
    asio::post(workers, [this, req] {
      HttpReply reply = execute(req);
      if (reply.status != 200)
        log::warn("fleet_authority_follow_failed",
                  {{"status", std::to_string(reply.status)}, {"answer", reply.body}});
      asio::post(io, [this] {
        --running;
        maybe_synced();
      });
    });
  }

  void schedule_fetch(std::size_t i) {
    Link& l = links[i];
    if (!l.session) return;
    if (l.fetching) {
      l.fetch_again = true;
      return;
    }
    l.fetching = true;
    asio::co_spawn(io, fetch(i, l.session), asio::detached);
  }

  // Reads the commands addressed to this member that it has not answered on this database.
  awaitable<void> fetch(std::size_t i, std::shared_ptr<ControlLink> session) {
    do {
      links[i].fetch_again = false;
      QueryRows r = co_await session->query(
          "SELECT c.key, c.method, c.path, c.body FROM pgcutover.fleet_command c"
          " WHERE (c.target = " +
          name_literal() + " OR (c.target = '*' AND NOT " + name_literal() +
          " = ANY(c.except_members))) AND c.expires_at > clock_timestamp()"
          " AND NOT EXISTS (SELECT 1 FROM pgcutover.fleet_ack a WHERE a.key = c.key AND"
          " a.member = " +
          name_literal() + ") ORDER BY c.id");
      if (!r.ok) {
        // A schema older than this proxy (a column missing) must not fail silently.
        problem(i, "reading commands: " + r.sqlstate + " " + r.error +
                       (r.sqlstate == "42703" ? " (run `pgcutoverctl fleet setup` again)" : ""));
        break;
      }
      for (auto& row : r.rows) {
        if (row.size() != 4 || !row[0] || !row[1] || !row[2]) continue;
        handle(i, *row[0], *row[1], *row[2], row[3].value_or(""));
      }
    } while (links[i].fetch_again && links[i].session == session);
    if (links[i].session == session) links[i].fetching = false;
    first_fetch_done = true;
    maybe_synced();
  }

  void handle(std::size_t i, const std::string& key, const std::string& method,
              const std::string& target, const std::string& body) {
    if (auto it = jobs.find(key); it != jobs.end()) {
      Job& job = it->second;
      if (job.done)
        ack(i, key, job);
      else if (std::find(job.waiting.begin(), job.waiting.end(), i) == job.waiting.end())
        job.waiting.push_back(i);
      return;
    }
    Job& job = jobs[key];
    job.waiting.push_back(i);
    job.what = method + " " + target;
    job_order.push_back(key);
    HttpRequest req;
    req.method = method;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.body = body;
    req.content_type = "application/json";
    req.remote = "fleet:" + o.channel[i].first;
    // The command may block (a pause waits for its drain): a worker runs it.
    ++running;
    asio::post(workers, [this, key, req] {
      HttpReply reply = execute(req);
      MemberState st = local_state();
      asio::post(io, [this, key, reply = std::move(reply), st = std::move(st)]() mutable {
        finish(key, std::move(reply), std::move(st));
      });
    });
  }

  void finish(const std::string& key, HttpReply reply, MemberState st) {
    auto it = jobs.find(key);
    if (it == jobs.end()) return;
    Job& job = it->second;
    --running;
    job.done = true;
    job.reply = std::move(reply);
    job.state = std::move(st);
    log::info("fleet_command", {{"member", o.name},
                                {"key", key},
                                {"command", job.what},
                                {"status", std::to_string(job.reply.status)}});
    for (std::size_t i : job.waiting) ack(i, key, job);
    job.waiting.clear();
    while (job_order.size() > kRememberedCommands) {
      auto old = jobs.find(job_order.front());
      if (old != jobs.end() && old->second.done) jobs.erase(old);
      job_order.pop_front();
    }
    maybe_synced();
  }

  void ack(std::size_t i, const std::string& key, const Job& job) {
    auto session = links[i].session;
    if (!session) return;  // that database reads the command again after the reconnect
    std::string sql =
        "WITH a AS (INSERT INTO pgcutover.fleet_ack (key, member, status, body) VALUES (" +
        fleet::quote_literal(key) + ", " + name_literal() + ", " +
        std::to_string(job.reply.status) + ", " + fleet::quote_literal(job.reply.body) +
        ") ON CONFLICT DO NOTHING), m AS (UPDATE pgcutover.fleet_member SET state = " +
        fleet::quote_literal(job.state.state) +
        ", backend = " + fleet::quote_literal(job.state.backend) +
        ", epoch = " + std::to_string(job.state.epoch) +
        ", seen_at = now() WHERE name = " + name_literal() + ") SELECT pg_notify(" +
        fleet::quote_literal(fleet::kAckChannel) + ", " + fleet::quote_literal(key) + ")";
    asio::co_spawn(
        io,
        [session, sql = std::move(sql), key, this, i]() -> awaitable<void> {
          QueryRows r = co_await session->query(sql);
          if (!r.ok)
            log::warn("fleet_ack_failed",
                      {{"backend", o.channel[i].first}, {"key", key}, {"error", r.error}});
        },
        asio::detached);
  }
};

FleetAgent::FleetAgent(FleetAgentOptions options, Execute execute, LocalState local_state)
    : impl_(
          std::make_shared<Impl>(std::move(options), std::move(execute), std::move(local_state))) {}

FleetAgent::~FleetAgent() {
  stop();
}

void FleetAgent::start() {
  Impl& s = *impl_;
  if (s.started) return;
  s.started = true;
  s.work.emplace(s.io.get_executor());
  for (std::size_t i = 0; i < s.o.channel.size(); ++i)
    asio::co_spawn(s.io, s.serve(i), asio::detached);
  s.thread = std::thread([&s] { s.io.run(); });
  log::info("fleet_enabled",
            {{"member", s.o.name}, {"channel_databases", std::to_string(s.o.channel.size())}});
}

void FleetAgent::recheck_authority(std::string reason) {
  Impl& s = *impl_;
  asio::post(s.io, [&s, reason = std::move(reason)] {
    if (s.stopped) return;
    for (std::size_t i = 0; i < s.links.size(); ++i)
      if (auto session = s.links[i].session; session && session->is_open()) {
        log::info("fleet_authority_recheck",
                  {{"reason", reason}, {"read_from", s.o.channel[i].first}});
        asio::co_spawn(
            s.io,
            [&s, i, session]() -> awaitable<void> { co_await s.follow_authority(i, *session); },
            asio::detached);
        return;  // one database is enough: the flip writes both
      }
    // No session open: reconnect now instead of at the next retry; joining follows the
    // authority.
    log::info("fleet_authority_recheck", {{"reason", reason}, {"action", "reconnecting now"}});
    for (auto& l : s.links)
      if (l.retry) l.retry->cancel();
  });
}

void FleetAgent::member_changed() {
  Impl& s = *impl_;
  asio::post(s.io, [&s] {
    if (s.stopped) return;
    MemberState st = s.local_state();
    std::string sql =
        "UPDATE pgcutover.fleet_member SET state = " + fleet::quote_literal(st.state) +
        ", backend = " + fleet::quote_literal(st.backend) +
        ", epoch = " + std::to_string(st.epoch) +
        ", seen_at = now() WHERE name = " + s.name_literal();
    for (auto& l : s.links)
      if (l.session)
        asio::co_spawn(
            s.io, [session = l.session, sql]() -> awaitable<void> { co_await session->query(sql); },
            asio::detached);
  });
}

bool FleetAgent::wait_first_sync(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  std::unique_lock lock(s.sync_mu);
  return s.sync_cv.wait_for(lock, timeout, [&s] { return s.synced; });
}

void FleetAgent::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  asio::post(s.io, [&s] {
    s.stopped = true;
    for (auto& l : s.links)
      if (l.session) l.session->close();
  });
  s.work.reset();
  // The sessions close at once; reconnect sleeps would keep run() going, so stop it.
  asio::post(s.io, [&s] { s.io.stop(); });
  if (s.thread.joinable()) s.thread.join();
  s.stopped = true;
  s.workers.join();  // a command still running (the caller reopened any gate first)
}

}  // namespace pgcutover::proxy
