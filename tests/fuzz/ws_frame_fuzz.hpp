// The body of the ws_frame_server and ws_frame_client fuzz targets: feeds the input to a frame parser of the
// given role, whole and in chunks, and traps if the two runs disagree or the parser breaks its own contract.
//
// Input layout: byte 0 picks the options (bit 0: permessage-deflate agreed; bit 1: small size limits; bit 2: a
// tiny inflate buffer; bits 3-4: context takeover off for either side), byte 1 the chunk size of the second run
// (1-256 bytes), the rest is the bytes received on the wire.
#pragma once

#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/core/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace switchboard::ws::fuzz {

// Traps instead of asserting, so the check also runs in the replay build (NDEBUG).
inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

// "<tag><body>": one event of a run. Built with append, not "literal" + string, which GCC 12 misdiagnoses.
inline std::string tagged(char tag, std::string_view body) {
  std::string s(1, tag);
  s.append(body);
  return s;
}

// Everything a run reported, flattened: complete messages, control frames, and the final error.
inline std::vector<std::string> run(role r, const parser_options& options, std::string_view wire, std::size_t chunk) {
  frame_parser parser(r, options);
  std::vector<std::string> events;
  std::string buffer, message;
  std::size_t given = 0;
  while (given < wire.size()) {
    const std::size_t n = std::min(chunk, wire.size() - given);
    buffer.append(wire.substr(given, n));
    given += n;
    for (;;) {
      const auto res = parser.parse(std::span<char>(buffer.data(), buffer.size()));
      check(res.consumed <= buffer.size());
      switch (res.event) {
        case parse_event::need_more: check(res.consumed == buffer.size()); break;
        case parse_event::data:
          check(res.message_type == opcode::text || res.message_type == opcode::binary);
          message.append(res.payload);
          check(message.size() <= options.max_message_size);
          if (res.message_end) {
            // What the parser calls a complete text message must be valid UTF-8.
            if (res.message_type == opcode::text) check(is_valid_utf8(message));
            events.push_back(tagged(res.message_type == opcode::text ? 't' : 'b', message));
            message.clear();
          }
          break;
        case parse_event::ping: check(res.payload.size() <= 125); events.push_back(tagged('i', res.payload)); break;
        case parse_event::pong: check(res.payload.size() <= 125); events.push_back(tagged('o', res.payload)); break;
        case parse_event::close:
          check(res.reason.size() <= 123 && is_valid_utf8(res.reason));
          events.push_back(tagged('c', std::to_string(static_cast<int>(res.code))).append(res.reason));
          break;
        case parse_event::error:
          check(res.error.category() == ws_category());
          events.push_back(tagged('e', std::to_string(res.error.value())));
          return events;
      }
      buffer.erase(0, res.consumed);
      if (res.event == parse_event::need_more) break;
    }
  }
  return events;
}

inline int fuzz_frames(role r, const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t config = data[0];
  const std::size_t chunk = std::size_t{data[1]} + 1;
  const std::string_view wire(reinterpret_cast<const char*>(data + 2), size - 2);

  parser_options options;
  if (config & 1) {
    options.deflate = deflate_params{.server_no_context_takeover = (config & 8) != 0,
                                     .client_no_context_takeover = (config & 16) != 0};
  }
  if (config & 2) {
    options.max_message_size = 300;
    options.max_frame_size = 100;
  }
  if (config & 4) options.inflate_buffer_size = 3;

  const auto whole = run(r, options, wire, wire.size() + 1);
  const auto chunked = run(r, options, wire, chunk);
  check(whole == chunked);
  return 0;
}

}  // namespace switchboard::ws::fuzz
