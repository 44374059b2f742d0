// Progress output for long waits: a bar redrawn in place on a terminal, and on a pipe or a
// log file one line per change (no carriage returns in CI logs).
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>

namespace pgcutover::control {

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool tty) : out_(out), tty_(tty) {}
  // fraction in [0, 1]; `text` follows the bar. Without a terminal, one line per 5 s.
  void update(double fraction, const std::string& text);
  void finish(const std::string& text);

 private:
  std::ostream& out_;
  bool tty_;
  std::string last_text_;
  std::chrono::steady_clock::time_point last_line_{};
};

}  // namespace pgcutover::control
