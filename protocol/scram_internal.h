// Pieces shared by the SCRAM files of protocol/; not part of the API (see auth.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pgcutover::protocol {

// RFC 5802 section 3 keys for one password, salt and iteration count.
struct ScramKeys {
  std::array<std::uint8_t, 32> client_key{};
  std::array<std::uint8_t, 32> stored_key{};
  std::array<std::uint8_t, 32> server_key{};
};
ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, int iterations);
// derive_scram_keys, remembered for the next connection with the same password, salt and count
// (scram_key_cache.cpp says why). Thread-safe; bounded.
ScramKeys cached_scram_keys(std::string_view password, std::string_view salt, int iterations);
std::size_t scram_key_cache_entries();  // for tests

// A positive decimal int with nothing else around it ("i=" and the verifier's count).
std::optional<int> parse_scram_iterations(std::string_view digits);

}  // namespace pgcutover::protocol
