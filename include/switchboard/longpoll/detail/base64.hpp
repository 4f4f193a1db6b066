// switchboard/longpoll/detail/base64.hpp
//
// Base64 (RFC 4648 §4, with padding) for binary payloads in the long-poll JSON. The work is OpenSSL's (DESIGN:
// no hand-rolled codecs where a vetted one exists).
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::longpoll::detail {

/// The base64 form of `bytes`.
inline std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

/// The bytes `text` encodes, or nullopt when it is not padded base64 (length a multiple of 4, at most two '='
/// at the end, only base64 digits before them).
inline std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  // EVP_DecodeBlock skips leading blanks and trailing blanks, line ends and '-': check the digits here.
  const auto is_digit = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  };
  if (!std::ranges::all_of(text.substr(0, text.size() - padding), is_digit)) return std::nullopt;
  std::string out(3 * (text.size() / 4), '\0');
  // It counts the padding as zero bytes: drop those.
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

}  // namespace switchboard::longpoll::detail
