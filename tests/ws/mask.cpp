// Masking against the definition of RFC 6455 §5.3 (byte i XOR key[i mod 4]), for every length up to a few
// words, every alignment of the data, every key phase, and payloads masked in pieces.
#include <switchboard/ws/mask.hpp>

#include "support/catch.hpp"

#include <string>
#include <vector>

using switchboard::ws::apply_mask;
using switchboard::ws::mask_key;

namespace {

std::string naive_mask(std::string s, mask_key key, std::size_t offset) {
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(s[i] ^ static_cast<char>(key[(offset + i) % 4]));
  return s;
}

std::string sample(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + 7);
  return s;
}

}  // namespace

TEST_CASE("mask: matches the byte-wise definition for any length, alignment and offset", "[ws][mask]") {
  const mask_key key{0x37, 0xfa, 0x21, 0x3d};
  std::vector<char> storage(128 + 16);
  for (std::size_t align = 0; align < 16; ++align) {
    for (std::size_t length = 0; length <= 100; ++length) {
      for (std::size_t offset = 0; offset < 8; ++offset) {
        const std::string data = sample(length);
        std::copy(data.begin(), data.end(), storage.begin() + static_cast<std::ptrdiff_t>(align));
        apply_mask(std::span<char>(storage.data() + align, length), key, offset);
        const std::string got(storage.data() + align, length);
        REQUIRE(got == naive_mask(data, key, offset));
      }
    }
  }
}

TEST_CASE("mask: masking twice restores the data", "[ws][mask]") {
  std::string data = sample(1000);
  const std::string original = data;
  apply_mask(std::span<char>(data.data(), data.size()), {1, 2, 3, 4}, 3);
  CHECK(data != original);
  apply_mask(std::span<char>(data.data(), data.size()), {1, 2, 3, 4}, 3);
  CHECK(data == original);
}

TEST_CASE("mask: a payload masked in pieces equals one masked whole", "[ws][mask]") {
  const mask_key key{0xde, 0xad, 0xbe, 0xef};
  const std::string data = sample(257);
  const std::string whole = naive_mask(data, key, 0);
  for (std::size_t piece : {1, 2, 3, 5, 7, 16, 33}) {
    std::string pieces = data;
    for (std::size_t at = 0; at < pieces.size(); at += piece) {
      const std::size_t n = std::min(piece, pieces.size() - at);
      apply_mask(std::span<char>(pieces.data() + at, n), key, at);
    }
    CHECK(pieces == whole);
  }
}

TEST_CASE("mask: RFC 6455 §5.7 masked \"Hello\"", "[ws][mask]") {
  std::string hello = "Hello";
  apply_mask(std::span<char>(hello.data(), hello.size()), {0x37, 0xfa, 0x21, 0x3d});
  CHECK(hello == "\x7f\x9f\x4d\x51\x58");
}
