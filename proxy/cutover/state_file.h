// The active backend and its epoch, persisted so that a proxy restarted after a flip never
// comes back on the old database (DESIGN-NOTES "Operations"). The file is a small JSON object,
// {"backend":"target","epoch":3}, replaced atomically: write a temp file, fsync it, rename it
// over the old one, fsync the directory (so the rename itself survives a power loss).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgcutover::proxy {

struct ActiveBackend {
  std::string backend;
  std::uint64_t epoch = 0;
};

enum class StateFileStatus { kOk, kMissing, kError };

struct StateFileRead {
  StateFileStatus status = StateFileStatus::kMissing;
  ActiveBackend state;
  std::string error;  // kError: what is wrong, naming the file
};

// Reads the state file. kMissing when it does not exist (first start: use
// cutover.initial_backend); kError when it exists but cannot be read or parsed (the proxy must
// then refuse to start rather than guess).
StateFileRead read_state_file(const std::string& path);

// Atomically replaces the state file. Returns an empty string on success, else the error.
// Never throws: the cutover engine calls it before answering a flip.
std::string write_state_file(const std::string& path, const ActiveBackend& state);

}  // namespace pgcutover::proxy
