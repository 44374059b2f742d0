#include "control/cutover/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgcutover::control {

namespace json = boost::json;

bool Journal::append(const json::object& record, std::string& error, bool sync) {
  std::string line = json::serialize(record) + "\n";
  struct stat st {};
  bool existed = ::stat(path_.c_str(), &st) == 0;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "journal " + path_ + ": " + std::strerror(errno) +
            " (set [control] journal to a writable path, or pass --journal FILE)";
    return false;
  }
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "journal " + path_ + ": write: " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  // The record must be on disk before the step it records has any consequence.
  if (sync && ::fsync(fd) != 0) {
    error = "journal " + path_ + ": fsync: " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  ::close(fd);
  if (!existed && sync) {
    // A new file's directory entry is durable only once the directory is synced.
    std::string dir =
        path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/'));
    if (dir.empty()) dir = "/";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return true;
}

std::vector<JournalRecord> Journal::read(std::string& error) const {
  std::ifstream in(path_);
  if (!in) {
    if (errno != ENOENT) error = "journal " + path_ + ": " + std::strerror(errno);
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_journal(ss.str());
}

namespace {
std::string str(const json::object& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}
}  // namespace

std::vector<JournalRecord> parse_journal(const std::string& text) {
  std::vector<JournalRecord> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;  // torn last line: never fsync'd, never acted on
    JournalRecord r;
    r.raw = v.as_object();
    r.run = str(r.raw, "run");
    r.event = str(r.raw, "event");
    r.step = str(r.raw, "step");
    if (auto it = r.raw.find("data"); it != r.raw.end() && it->value().is_object())
      r.data = it->value().as_object();
    if (r.run.empty() || r.event.empty()) continue;
    out.push_back(std::move(r));
  }
  return out;
}

JournalSummary summarize(const std::vector<JournalRecord>& records) {
  JournalSummary s;
  std::string run;
  for (const auto& r : records)
    if (r.event == "begin") run = r.run;
  if (run.empty()) return s;
  s.have_run = true;
  s.run_id = run;
  for (const auto& r : records) {
    if (r.run != run) continue;
    if (r.event == "begin") {
      if (auto d = parse_direction(str(r.raw, "direction"))) s.direction = *d;
    } else if (r.event == "start") {
      if (auto st = parse_step(r.step)) s.last_started = *st;
    } else if (r.event == "done") {
      if (auto st = parse_step(r.step)) s.last_done = *st;
    } else if (r.event == "end") {
      s.ended = true;
    }
  }
  return s;
}

json::object step_data(const std::vector<JournalRecord>& records, const std::string& run,
                       const std::string& event, const std::string& step) {
  json::object d;
  for (const auto& r : records)
    if (r.run == run && r.event == event && r.step == step) d = r.data;
  return d;
}

json::object begin_data(const std::vector<JournalRecord>& records, const std::string& run) {
  json::object d;
  for (const auto& r : records)
    if (r.run == run && r.event == "begin") d = r.data;
  return d;
}

}  // namespace pgcutover::control
