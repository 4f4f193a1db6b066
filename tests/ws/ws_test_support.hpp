// Helpers shared by the WebSocket codec tests: building raw frames byte by byte (independently of the frame
// writer, so that parser tests do not lean on the code they check), and feeding a parser an input whole, split
// at every byte position and byte by byte, recording what it reports.
#pragma once

#include <switchboard/ws/frame_parser.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::ws::test {

/// The key the helpers mask client frames with (any key will do; this one has four different bytes).
inline constexpr mask_key test_key{0x37, 0xfa, 0x21, 0x3d};

/// Bytes from a hex string such as "81 05 48 65"; spaces are ignored.
inline std::string hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

/// How to build a raw frame.
struct frame_spec {
  bool fin = true;
  bool rsv1 = false, rsv2 = false, rsv3 = false;
  std::uint8_t opcode = 0x1;
  bool masked = true;
  mask_key key = test_key;
};

/// A frame as RFC 6455 §5.2 lays it out, with the minimal length encoding, built without the library.
inline std::string raw_frame(const frame_spec& s, std::string_view payload) {
  std::string out;
  out.push_back(static_cast<char>((s.fin ? 0x80 : 0) | (s.rsv1 ? 0x40 : 0) | (s.rsv2 ? 0x20 : 0) |
                                  (s.rsv3 ? 0x10 : 0) | s.opcode));
  const int mask_bit = s.masked ? 0x80 : 0;
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | static_cast<int>(n)));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    for (int shift = 8; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  if (s.masked) out.append(reinterpret_cast<const char*>(s.key.data()), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    out.push_back(s.masked ? static_cast<char>(payload[i] ^ static_cast<char>(s.key[i % 4])) : payload[i]);
  }
  return out;
}

/// A masked client frame (what a server receives).
inline std::string client_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
  return raw_frame({.fin = fin, .opcode = opcode}, payload);
}

/// An unmasked server frame (what a client receives).
inline std::string server_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
  return raw_frame({.fin = fin, .opcode = opcode, .masked = false}, payload);
}

/// A close payload: the 2-byte code then the reason.
inline std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}

/// What a parser reported for a whole input: complete messages and control frames in order, each rendered as
/// "text:<payload>", "binary:<payload>", "ping:<payload>", "pong:<payload>" or "close:<code>:<reason>", and the
/// error that stopped it (if any).
struct transcript {
  std::vector<std::string> events;
  std::error_code error;
  bool operator==(const transcript&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const transcript& t) {
  os << "{";
  for (const auto& e : t.events) os << "[" << e << "] ";
  return os << "error=" << (t.error ? t.error.message() : "none") << "}";
}

/// Feeds `input` to a fresh parser in chunks of the given sizes (the last chunk takes whatever is left), the way
/// a driver would: unconsumed bytes stay at the front of the read buffer and new bytes are appended to them.
inline transcript feed(role r, const parser_options& options, std::string_view input,
                       const std::vector<std::size_t>& chunks) {
  frame_parser parser(r, options);
  transcript t;
  std::string buffer;
  std::string message;
  std::size_t given = 0;
  std::size_t chunk_index = 0;
  bool in_message = false;
  opcode type = opcode::binary;
  while (given < input.size() || !buffer.empty()) {
    const std::size_t n = chunk_index < chunks.size() ? std::min(chunks[chunk_index], input.size() - given)
                                                      : input.size() - given;
    ++chunk_index;
    buffer.append(input.substr(given, n));
    given += n;
    for (;;) {
      const auto res = parser.parse(std::span<char>(buffer.data(), buffer.size()));
      // Checked with plain ifs: these run for every parse call and Catch assertions are slow in such loops.
      if (res.consumed > buffer.size()) FAIL("parse consumed more than it was given");
      switch (res.event) {
        case parse_event::need_more:
          if (res.consumed != buffer.size()) FAIL("need_more without consuming everything");
          break;
        case parse_event::data:
          if (in_message && res.message_type != type) FAIL("message type changed inside a message");
          in_message = true;
          type = res.message_type;
          message.append(res.payload);
          if (res.message_end) {
            t.events.push_back((type == opcode::text ? "text:" : "binary:") + message);
            message.clear();
            in_message = false;
          }
          break;
        case parse_event::ping: t.events.push_back("ping:" + std::string(res.payload)); break;
        case parse_event::pong: t.events.push_back("pong:" + std::string(res.payload)); break;
        case parse_event::close:
          t.events.push_back("close:" + std::to_string(static_cast<int>(res.code)) + ":" + std::string(res.reason));
          break;
        case parse_event::error: t.error = res.error; return t;
      }
      buffer.erase(0, res.consumed);
      if (res.event == parse_event::need_more) break;
    }
    if (given == input.size() && buffer.empty()) break;
  }
  return t;
}

/// Feeds `input` whole, then split in two at every position (every 97th position past 4 KiB, to bound the
/// time of big inputs), then byte by byte, and checks that every way gives `expected`.
inline void check_all_splits(role r, const parser_options& options, std::string_view input,
                             const transcript& expected) {
  INFO("input of " << input.size() << " bytes");
  {
    INFO("fed whole");
    CHECK(feed(r, options, input, {input.size()}) == expected);
  }
  const std::size_t stride = input.size() <= 4096 ? 1 : 97;
  for (std::size_t k = 1; k < input.size(); k += stride) {
    INFO("split at " << k);
    const transcript got = feed(r, options, input, {k});
    CHECK(got == expected);
    if (got != expected) break;  // one failing split says enough
  }
  {
    INFO("fed byte by byte");
    CHECK(feed(r, options, input, std::vector<std::size_t>(input.size(), 1)) == expected);
  }
}

/// A transcript with the given events and no error.
inline transcript ok(std::vector<std::string> events) { return {std::move(events), {}}; }

/// A transcript with the given events, then `e`.
inline transcript failed(error e, std::vector<std::string> events = {}) { return {std::move(events), e}; }

}  // namespace switchboard::ws::test
