#include "tests/lib/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace pgcutover::testing {
namespace {

const char* const kClusterScript = PGCUTOVER_SOURCE_DIR "/tests/lib/pgcluster.sh";

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs argv[0] with stdout captured and stderr passed through, so a failing cluster start
// shows the script's message and the server log's tail in the test's output. No shell in
// between: the script's parent is this process, which its watchdog watches.
CommandResult run_command(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears O_CLOEXEC on the child's stdout only; the read end stays closed in the child.
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv[0]);
  }
  CommandResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::map<std::string, std::string> parse_record(const std::string& text) {
  std::map<std::string, std::string> record;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    // A repeated key (`setting`) keeps its last value; nothing here needs the others.
    record[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return record;
}

const char* shape_name(Shape shape) {
  switch (shape) {
    case Shape::kHeroku:
      return "heroku";
    case Shape::kRds:
      return "rds";
    case Shape::kPlain:
      return "plain";
  }
  return "?";
}

Shape shape_from_name(const std::string& name) {
  if (name == "heroku") return Shape::kHeroku;
  if (name == "rds") return Shape::kRds;
  if (name == "plain") return Shape::kPlain;
  throw std::runtime_error("pgcluster.sh reported unknown shape '" + name + "'");
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  std::string pattern = "/tmp/" + std::string(prefix) + ".XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks a free one
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(), "bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool port_is_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool open = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return open;
}

bool process_is_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  // Field 3, after the parenthesised command name (which may itself contain spaces).
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z';
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

TlsFiles make_tls(const std::string& dir, std::string_view label) {
  CommandResult result =
      run_command({"bash", kClusterScript, "tls", "--dir", dir, "--label", std::string(label)});
  if (result.exit_code != 0) throw std::runtime_error("pgcluster.sh tls failed for " + dir);
  auto record = parse_record(result.out);
  return {record["ca_file"], record["cert_file"], record["key_file"]};
}

std::string conninfo_quote(std::string_view value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

std::string sql_literal(std::string_view value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  return quoted + "'";
}

// ---- PgConn ----------------------------------------------------------------------------------

PgConn PgConn::connect(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn.conn_ == nullptr) {
    conn.error_ = "out of memory";
  } else if (PQstatus(conn.conn_) != CONNECTION_OK) {
    conn.error_ = PQerrorMessage(conn.conn_);
  }
  return conn;
}

PgConn::PgConn(PgConn&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), error_(std::move(other.error_)) {}

PgConn& PgConn::operator=(PgConn&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
    error_ = std::move(other.error_);
  }
  return *this;
}

PgConn::~PgConn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

bool PgConn::ok() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

std::vector<PgConn::Row> PgConn::exec(const std::string& sql) {
  if (!ok()) throw std::runtime_error("not connected: " + error_);
  // PQexec returns only the last result of a multi-statement string; that is what we want.
  PGresult* res = PQexec(conn_, sql.c_str());
  ExecStatusType status = PQresultStatus(res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    error_ = PQresultErrorMessage(res);
    if (error_.empty()) error_ = PQerrorMessage(conn_);
    PQclear(res);
    throw std::runtime_error("query failed: " + sql + ": " + error_);
  }
  std::vector<Row> rows;
  for (int r = 0; r < PQntuples(res); ++r) {
    Row row;
    for (int c = 0; c < PQnfields(res); ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(res);
  return rows;
}

std::string PgConn::value(const std::string& sql) {
  auto rows = exec(sql);
  if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
  return *rows[0][0];
}

// ---- PgCluster -------------------------------------------------------------------------------

std::unique_ptr<PgCluster> PgCluster::from_script(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"bash", kClusterScript};
  argv.insert(argv.end(), args.begin(), args.end());
  // The script's watchdog stops the cluster if this process dies without running destructors.
  argv.insert(argv.end(), {"--owner-pid", std::to_string(getpid())});
  CommandResult result = run_command(argv);
  if (result.exit_code != 0) {
    throw std::runtime_error("pgcluster.sh " + args.at(0) + " failed (exit " +
                             std::to_string(result.exit_code) + "); see its stderr above");
  }
  auto record = parse_record(result.out);
  if (!record.contains("dir") || !record.contains("port")) {
    throw std::runtime_error("pgcluster.sh printed no cluster record: " + result.out);
  }
  Shape shape = shape_from_name(record["shape"]);
  return std::unique_ptr<PgCluster>(new PgCluster(shape, std::move(record)));
}

std::unique_ptr<PgCluster> PgCluster::start(Shape shape, const std::string& name,
                                            const ClusterOptions& options) {
  std::vector<std::string> args = {"start",
                                   "--shape",
                                   shape_name(shape),
                                   "--name",
                                   name,
                                   "--max-connections",
                                   std::to_string(options.max_connections),
                                   "--app-user",
                                   options.app_user};
  if (options.logical) args.push_back("--logical");
  if (options.durable) args.push_back("--durable");
  for (const auto& setting : options.settings) args.insert(args.end(), {"--set", setting});
  return from_script(args);
}

std::unique_ptr<PgCluster> PgCluster::start_replica(const std::string& name) const {
  return from_script({"replica", "--name", name, "--primary-dir", dir()});
}

void PgCluster::promote() {
  CommandResult result = run_command({"bash", kClusterScript, "promote", "--dir", dir()});
  if (result.exit_code != 0) throw std::runtime_error("pgcluster.sh promote failed");
  record_ = parse_record(result.out);
}

PgCluster::~PgCluster() {
  try {
    stop();
  } catch (const std::exception&) {
    // The watchdog removes the cluster once this process exits; nothing better to do here.
  }
}

void PgCluster::stop() {
  if (stopped_) return;
  stopped_ = true;
  CommandResult result = run_command({"bash", kClusterScript, "stop", "--dir", dir()});
  if (result.exit_code != 0) throw std::runtime_error("pgcluster.sh stop failed for " + dir());
}

const std::string& PgCluster::record(const std::string& key) const {
  auto it = record_.find(key);
  if (it == record_.end()) throw std::out_of_range("no '" + key + "' in the cluster record");
  return it->second;
}

int PgCluster::port() const {
  return std::stoi(record("port"));
}

std::string PgCluster::app_conninfo(std::string_view extra) const {
  std::string info = "host=127.0.0.1 port=" + record("port") +
                     " dbname=app user=" + conninfo_quote(app_user()) +
                     " password=" + conninfo_quote(app_password());
  switch (shape_) {
    case Shape::kHeroku:
      info += " sslmode=require";
      break;
    case Shape::kRds:
      info += " sslmode=verify-full sslrootcert=" + conninfo_quote(ca_file());
      break;
    case Shape::kPlain:
      info += " sslmode=disable";
      break;
  }
  if (!extra.empty()) info += " " + std::string(extra);
  return info;
}

std::string PgCluster::admin_conninfo(std::string_view dbname) const {
  return "host=" + conninfo_quote(record("socket_dir")) + " port=" + record("port") +
         " user=" + conninfo_quote(record("admin_user")) + " dbname=" + conninfo_quote(dbname);
}

std::string PgCluster::query(const std::string& sql) const {
  PgConn conn = PgConn::connect(admin_conninfo());
  if (!conn.ok()) throw std::runtime_error("admin connection failed: " + conn.error());
  std::string out;
  for (const auto& row : conn.exec(sql)) {
    if (!out.empty()) out += '\n';
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out += '|';
      if (row[c]) out += *row[c];
    }
  }
  return out;
}

}  // namespace pgcutover::testing
