#include "control/command/progress.h"

#include <algorithm>
#include <cstdio>
#include <ostream>

namespace pgcutover::control {

void ProgressBar::update(double fraction, const std::string& text) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  char pct[16];
  std::snprintf(pct, sizeof pct, "%5.1f%%", fraction * 100);
  if (tty_) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(fraction * kWidth);
    std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    out_ << "\r\x1b[K" << bar << pct << "  " << text << std::flush;
    return;
  }
  auto now = std::chrono::steady_clock::now();
  // A pipe or CI log gets one line per 5 s at most (state changes are printed by the caller).
  if (now - last_line_ < std::chrono::seconds(5)) return;
  last_text_ = text;
  last_line_ = now;
  out_ << pct << "  " << text << "\n" << std::flush;
}

void ProgressBar::finish(const std::string& text) {
  if (tty_) out_ << "\r\x1b[K";
  out_ << text << "\n" << std::flush;
}

}  // namespace pgcutover::control
