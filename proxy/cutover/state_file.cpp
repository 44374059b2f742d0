#include "proxy/cutover/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pgcutover::proxy {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string dirname_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A deliberately small JSON reader for exactly one flat object of strings and non-negative
// integers: the file is ours, but it is read at start-up and may have been edited by hand.
class FlatJson {
 public:
  explicit FlatJson(std::string_view text) : s_(text) {}

  bool parse(std::string& backend, bool& has_backend, std::uint64_t& epoch, bool& has_epoch,
             std::string& error) {
    skip_ws();
    if (!eat('{')) return bad(error, "expected '{'");
    skip_ws();
    if (eat('}')) return finish(error);
    while (true) {
      skip_ws();
      std::string key;
      if (!string(key)) return bad(error, "expected a quoted key");
      skip_ws();
      if (!eat(':')) return bad(error, "expected ':'");
      skip_ws();
      if (key == "backend") {
        if (!string(backend)) return bad(error, "\"backend\" must be a string");
        has_backend = true;
      } else if (key == "epoch") {
        if (!number(epoch)) return bad(error, "\"epoch\" must be a non-negative integer");
        has_epoch = true;
      } else {
        // Unknown keys are tolerated (a newer proxy may add some); skip a scalar value.
        std::string ignored;
        std::uint64_t n = 0;
        if (!string(ignored) && !number(n))
          return bad(error, "unsupported value for \"" + key + "\"");
      }
      skip_ws();
      if (eat(',')) continue;
      if (eat('}')) return finish(error);
      return bad(error, "expected ',' or '}'");
    }
  }

 private:
  bool finish(std::string& error) {
    skip_ws();
    if (i_ != s_.size()) return bad(error, "trailing characters");
    return true;
  }
  bool bad(std::string& error, std::string what) {
    error = what + " at offset " + std::to_string(i_);
    return false;
  }
  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    out.clear();
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (i_ >= s_.size()) return false;
        char e = s_[i_++];
        if (e == '"' || e == '\\' || e == '/') {
          out += e;
        } else {
          return false;  // backend names never need other escapes
        }
      } else {
        out += c;
      }
    }
    return false;
  }
  bool number(std::uint64_t& out) {
    std::size_t start = i_;
    out = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      std::uint64_t next = out * 10 + static_cast<std::uint64_t>(s_[i_] - '0');
      if (next / 10 != out) return false;  // overflow
      out = next;
      ++i_;
    }
    return i_ > start;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

StateFileRead read_state_file(const std::string& path) {
  StateFileRead r;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) {
      r.status = StateFileStatus::kMissing;
      return r;
    }
    r.status = StateFileStatus::kError;
    r.error = path + ": cannot open: " + errno_text(errno);
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  bool has_backend = false, has_epoch = false;
  std::string error;
  FlatJson json(text);
  if (!json.parse(r.state.backend, has_backend, r.state.epoch, has_epoch, error)) {
    r.status = StateFileStatus::kError;
    r.error = path + ": malformed state file: " + error;
    return r;
  }
  if (!has_backend || r.state.backend.empty()) {
    r.status = StateFileStatus::kError;
    r.error = path + ": state file has no \"backend\"";
    return r;
  }
  if (!has_epoch) {
    r.status = StateFileStatus::kError;
    r.error = path + ": state file has no \"epoch\"";
    return r;
  }
  r.status = StateFileStatus::kOk;
  return r;
}

std::string write_state_file(const std::string& path, const ActiveBackend& state) {
  std::string body = "{\"backend\":\"" + json_escape(state.backend) +
                     "\",\"epoch\":" + std::to_string(state.epoch) + "}\n";
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tmp + ": cannot create: " + errno_text(errno);
  std::size_t off = 0;
  while (off < body.size()) {
    ssize_t n = ::write(fd, body.data() + off, body.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return tmp + ": write failed: " + errno_text(err);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return tmp + ": fsync failed: " + errno_text(err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return path + ": rename failed: " + errno_text(err);
  }
  // Without this the rename may be lost on a crash and the old backend would come back.
  std::string dir = dirname_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return dir + ": cannot open directory to fsync: " + errno_text(errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) return dir + ": directory fsync failed: " + errno_text(err);
  return {};
}

}  // namespace pgcutover::proxy
