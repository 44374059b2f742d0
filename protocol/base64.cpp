// Base64 per RFC 4648 section 4. Decoding is strict because every input arrives from a peer.
#include "protocol/base64.h"

#include <array>
#include <cstdint>

namespace pgcutover::protocol {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Symbol value, or -1 for a byte outside the alphabet.
constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return t;
}
constexpr auto kDecode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view raw) {
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= raw.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(raw[i])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(raw[i + 1])} << 8) |
                            std::uint32_t{static_cast<unsigned char>(raw[i + 2])};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const std::size_t left = raw.size() - i;
  if (left > 0) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(raw[i])} << 16;
    if (left == 2) v |= std::uint32_t{static_cast<unsigned char>(raw[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(left == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    // Only the final quantum may carry padding.
    const std::size_t symbols = last ? 4 - pad : 4;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      std::int8_t d = 0;
      if (j < symbols) {
        d = kDecode[static_cast<unsigned char>(text[i + j])];
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<char>(v >> 16));
    if (symbols > 2) out.push_back(static_cast<char>(v >> 8));
    if (symbols > 3) out.push_back(static_cast<char>(v));
    // Canonical form (RFC 4648 section 3.5): the bits the padding leaves unused must be zero.
    if (symbols == 2 && (v & 0xffff) != 0) return std::nullopt;
    if (symbols == 3 && (v & 0xff) != 0) return std::nullopt;
  }
  return out;
}

}  // namespace pgcutover::protocol
