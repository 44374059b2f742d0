// Base64 (RFC 4648 section 4, standard alphabet, with padding) as SCRAM uses it for nonces,
// salts, proofs and signatures (RFC 5802 section 7) and PostgreSQL for its verifiers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pgcutover::protocol {

std::string base64_encode(std::string_view raw);
// Strict: no whitespace, padding required, only at the end, and canonical (the unused bits of
// the last symbol are zero). Anything else is std::nullopt: these values come from the network.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pgcutover::protocol
