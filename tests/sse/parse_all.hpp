// Helpers shared by the SSE tests: run a parser over a stream cut into pieces and collect what it did.
#pragma once

#include <switchboard/sse/parser.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sse_test {

/// Everything a client observes after a stream: the events dispatched, the error (if any), the last event ID
/// and the reconnection time.
struct outcome {
  std::vector<switchboard::sse::message> messages = {};
  std::error_code error = {};
  std::string last_event_id = {};
  std::optional<std::chrono::milliseconds> retry = {};

  bool operator==(const outcome&) const = default;
};

/// Feeds `pieces` in order to a fresh parser (stopping at the first error) and reports the outcome.
inline outcome parse_pieces(const std::vector<std::string_view>& pieces, switchboard::sse::parser_options options) {
  switchboard::sse::parser p(options);
  outcome out;
  for (std::string_view piece : pieces) {
    out.error = p.feed(piece, [&](const switchboard::sse::message& m) { out.messages.push_back(m); });
    if (out.error) break;
  }
  out.last_event_id = p.last_event_id();
  out.retry = p.retry();
  return out;
}

/// Parses `stream` whole, cut in two at every offset, and one byte at a time; every way must give the same
/// outcome. Returns it.
inline outcome parse_every_split(std::string_view stream, switchboard::sse::parser_options options = {}) {
  const outcome whole = parse_pieces({stream}, options);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("cut at byte " << cut);
    REQUIRE(parse_pieces({stream.substr(0, cut), stream.substr(cut)}, options) == whole);
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  INFO("byte by byte");
  REQUIRE(parse_pieces(bytes, options) == whole);
  return whole;
}

/// A message as a client would dispatch it.
inline switchboard::sse::message msg(std::string type, std::string data, std::string last_event_id = {}) {
  return {std::move(type), std::move(data), std::move(last_event_id)};
}

}  // namespace sse_test

namespace Catch {
template <>
struct StringMaker<switchboard::sse::message> {
  static std::string convert(const switchboard::sse::message& m) {
    std::ostringstream s;
    s << "{type=" << StringMaker<std::string>::convert(m.type) << " data=" << StringMaker<std::string>::convert(m.data)
      << " last_event_id=" << StringMaker<std::string>::convert(m.last_event_id) << "}";
    return s.str();
  }
};
template <>
struct StringMaker<sse_test::outcome> {
  static std::string convert(const sse_test::outcome& o) {
    std::ostringstream s;
    s << "{messages=[";
    for (const auto& m : o.messages) s << StringMaker<switchboard::sse::message>::convert(m) << " ";
    s << "] error=" << (o.error ? o.error.message() : "none") << " last_event_id="
      << StringMaker<std::string>::convert(o.last_event_id)
      << " retry=" << (o.retry ? std::to_string(o.retry->count()) : "none") << "}";
    return s.str();
  }
};
}  // namespace Catch
