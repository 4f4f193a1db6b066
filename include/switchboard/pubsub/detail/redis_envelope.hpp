// switchboard/pubsub/detail/redis_envelope.hpp
//
// How the Redis bridge carries a message through a Redis channel: the payload, prefixed by a small envelope with
// the publishing process's origin id (so that a bridge drops its own messages when Redis echoes them back), the
// conflation key and the headers. Sequence numbers are not carried: they are local to each process.
//
//   "\0sb1\n" origin "\n" <key length> ":" key <header count> "\n" (<n> ":" name <n> ":" value)* payload
//
// The leading NUL byte keeps text payloads of other publishers (redis-cli, another service) from being taken for
// an envelope; a payload that does not start with the whole magic, or whose envelope does not parse, is taken as
// it is, without origin, key or headers.
#pragma once

#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/message.hpp>

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

inline constexpr std::string_view envelope_magic{"\0sb1\n", 5};

/// Wraps `m` for Redis, marked with `origin` (which must not contain a line feed).
inline std::string encode_envelope(std::string_view origin, const message& m) {
  std::string out;
  out.reserve(envelope_magic.size() + origin.size() + m.size() + 32);
  out.append(envelope_magic).append(origin).push_back('\n');
  const auto field = [&](std::string_view f) { out.append(std::to_string(f.size())).append(":").append(f); };
  field(m.conflation_key());
  out.append(std::to_string(m.headers().size())).push_back('\n');
  for (const message_header& h : m.headers()) {
    field(h.name);
    field(h.value);
  }
  out.append(m.data());
  return out;
}

/// What `decode_envelope` found.
struct envelope {
  std::string origin;  ///< empty for a payload without envelope
  message_draft draft;
};

namespace envelope_parse {

// Reads a decimal number up to `end` from `in`, consuming both.
inline std::optional<std::size_t> number(std::string_view& in, char end) {
  std::size_t n = 0;
  const auto [ptr, ec] = std::from_chars(in.data(), in.data() + in.size(), n);
  if (ec != std::errc() || ptr == in.data() + in.size() || *ptr != end) return std::nullopt;
  in.remove_prefix(static_cast<std::size_t>(ptr - in.data()) + 1);
  return n;
}

// Reads "<n>:<n bytes>".
inline std::optional<std::string> field(std::string_view& in) {
  const auto n = number(in, ':');
  if (!n || *n > in.size()) return std::nullopt;
  std::string out(in.substr(0, *n));
  in.remove_prefix(*n);
  return out;
}

}  // namespace envelope_parse

/// Unwraps what came from Redis.
inline envelope decode_envelope(std::string_view wire) {
  envelope e;
  std::string_view in = wire;
  if (in.substr(0, envelope_magic.size()) == envelope_magic) {
    in.remove_prefix(envelope_magic.size());
    const std::size_t eol = in.find('\n');
    if (eol != std::string_view::npos) {
      std::string origin(in.substr(0, eol));
      in.remove_prefix(eol + 1);
      auto key = envelope_parse::field(in);
      auto count = key ? envelope_parse::number(in, '\n') : std::nullopt;
      std::vector<message_header> headers;
      bool ok = count && *count <= in.size();  // each header takes at least 4 bytes: a bound before reserving
      for (std::size_t i = 0; ok && i < *count; ++i) {
        auto name = envelope_parse::field(in);
        auto value = name ? envelope_parse::field(in) : std::nullopt;
        if (!value) ok = false;
        else headers.push_back({std::move(*name), std::move(*value)});
      }
      if (ok) {
        e.origin = std::move(origin);
        e.draft = message_draft{shared_bytes::copy(in), std::move(headers), std::move(*key)};
        return e;
      }
    }
  }
  e.draft.payload = shared_bytes::copy(wire);
  return e;
}

}  // namespace switchboard::pubsub::detail
