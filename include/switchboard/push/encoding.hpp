// switchboard/push/encoding.hpp
//
// How the push hub writes broker messages and gaps on each transport. Both carry the topic's sequence number
// (DESIGN promise 4: one cursor for every transport), so a client can resume on either.
//
// Server-Sent Events (one event per message):
//
//   id: 42                        the topic's sequence number: an EventSource sends it back as Last-Event-ID
//   event: <type>                 only when the message has an `event` header
//   data: <payload>               one `data` line per line of the payload
//
//   event: gap                    a gap (the name is configurable; default "gap")
//   id: 41                        its last sequence number, so that a reconnection resumes after it
//   data: {"topic":"news","first":3,"last":41,"reason":"retention"}
//
// WebSocket (one text message per message, JSON):
//
//   {"topic":"news","seq":42,"data":"<payload>"}                   plus "event" when the message has that header
//   {"topic":"news","gap":{"first":3,"last":41,"reason":"overflow"}}
//
// Payloads are text: bytes that are not well-formed UTF-8 are written as U+FFFD (as a browser would decode them
// anyway); publishers of binary data encode it (base64) first. `reason` is "overflow" (a queue on the way
// dropped them) or "retention" (they are older than what the topic retains).
#pragma once

#include <switchboard/core/detail/utf8.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/core/utf8.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/sse/encoder.hpp>
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace switchboard::push {

/// The name of the header whose value becomes the SSE event type and the WebSocket message's "event".
inline constexpr std::string_view event_header = "event";

namespace detail {

/// `text`, or a copy with ill-formed UTF-8 replaced by U+FFFD.
inline std::string_view as_text(std::string_view text, std::string& storage) {
  if (is_valid_utf8(text)) return text;
  switchboard::detail::append_utf8_replacing_invalid(text, storage);
  return storage;
}

/// The gap's fields as JSON, without its topic.
inline nlohmann::json gap_fields(const pubsub::gap& g) {
  return {{"first", g.first}, {"last", g.last}, {"reason", pubsub::to_string(g.reason)}};
}

}  // namespace detail

/// One SSE event for `m` (see the file comment). An `event` header with a line break is left out (it cannot be
/// an event type).
inline shared_bytes sse_message(const pubsub::message& m) {
  std::string storage;
  const std::string id = std::to_string(m.sequence());
  std::string_view type = m.header(event_header).value_or(std::string_view());
  if (sse::detail::has_break(type, false) || !is_valid_utf8(type)) type = {};
  std::string out;
  const std::error_code ec = sse::encode({.data = detail::as_text(m.data(), storage), .type = type, .id = id}, out);
  (void)ec;  // the id is digits, the type and data were made valid above: nothing is refused
  return shared_bytes(std::move(out));
}

/// One SSE event of type `event_name` for `g` (see the file comment). `event_name` must be one non-empty line
/// (`std::invalid_argument`): without an `event:` field a browser would take the gap for a message.
inline shared_bytes sse_gap(const pubsub::gap& g, std::string_view event_name) {
  if (event_name.empty()) throw std::invalid_argument("switchboard::push: the gap event needs a name");
  nlohmann::json data = detail::gap_fields(g);
  data["topic"] = g.topic;
  const std::string text = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string id = std::to_string(g.last);
  std::string out;
  if (sse::encode({.data = text, .type = event_name, .id = id}, out)) {
    throw std::invalid_argument("switchboard::push: the gap event name must be one line of UTF-8");
  }
  return shared_bytes(std::move(out));
}

/// The JSON text of the WebSocket message for `m` (see the file comment).
inline std::string ws_message_text(const pubsub::message& m) {
  nlohmann::json j{{"topic", m.topic()}, {"seq", m.sequence()}, {"data", m.data()}};
  if (auto type = m.header(event_header)) j["event"] = *type;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The JSON text of the WebSocket message for `g` (see the file comment).
inline std::string ws_gap_text(const pubsub::gap& g) {
  const nlohmann::json j{{"topic", g.topic}, {"gap", detail::gap_fields(g)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A complete server text frame with `payload` (compressed when `compressed`: RSV1 set), to queue with
/// `ws::session::send_frame`. A server's frames are never masked, so the writer never draws a key.
inline shared_bytes ws_text_frame(std::string_view payload, bool compressed = false) {
  ws::frame_writer writer(ws::role::server);
  std::string frame(writer.frame_size(payload.size()), '\0');
  frame.resize(writer.write_frame(frame, ws::opcode::text, payload, true, compressed));
  return shared_bytes(std::move(frame));
}

/// A complete server text frame carrying `text` compressed by `compressor` (permessage-deflate). The compressor
/// must reset after each message (`server_no_context_takeover`), so that the frame can be shared by every client
/// whose agreed server window is at least the compressor's.
inline shared_bytes ws_compressed_frame(std::string_view text, ws::deflate_compressor& compressor) {
  std::string payload;
  compressor.compress(text, true, payload);
  return ws_text_frame(payload, true);
}

}  // namespace switchboard::push
