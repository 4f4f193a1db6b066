// switchboard/longpoll/batch.hpp
//
// The long-poll wire format: the JSON body of `GET /topics/{topic}/poll`, written by the endpoint and read by the
// client. Free of I/O.
//
//   {"cursor":42,"messages":[{"data":"hello","seq":41},{"data":"AAEC","encoding":"base64","seq":42}]}
//   {"cursor":60,"gap":{"first":1,"last":40,"reason":"retention"},"messages":[...]}
//   {"cursor":17,"messages":[],"reset":true}
//
//  - `messages`: consecutive messages after the cursor the client sent, oldest first. `data` is the payload as a
//    string when it is valid UTF-8, else its base64 form with `"encoding": "base64"` (JSON strings hold Unicode
//    text only, RFC 8259 §8.1).
//  - `cursor`: what to send next time (`?cursor=N`, or as the ETag in `If-None-Match`).
//  - `gap`: messages `first..last` came after the client's cursor but are no longer retained (`reason`
//    "retention"), or never reached this process (`upstream`: a bridge to Redis lost them): they are lost to this
//    client, and said so (DESIGN promise 3: loss is never silent). They come before `messages`.
//  - `reset`: the client's cursor is past the topic's last sequence number, so it belongs to an earlier life of
//    the topic (the server restarted, or the topic was erased): `cursor` is the topic's last sequence number now.
#pragma once

#include <switchboard/core/utf8.hpp>
#include <switchboard/longpoll/detail/base64.hpp>
#include <switchboard/pubsub/error.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/pubsub/results.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::longpoll {

/// One message as the client receives it.
struct polled_message {
  /// Its sequence number in the topic.
  std::uint64_t sequence = 0;
  /// Its payload (decoded from base64 when it was sent so).
  std::string data;
};

/// Messages the client will never receive: they are no longer retained.
struct missed_range {
  std::uint64_t first = 0;  ///< the first sequence number lost
  std::uint64_t last = 0;   ///< the last sequence number lost
};

/// One long-poll answer.
struct batch {
  /// Lost messages, which come before `messages`.
  std::optional<missed_range> missed;
  /// Consecutive messages, oldest first (empty when the poll timed out).
  std::vector<polled_message> messages;
  /// The cursor for the next poll.
  std::uint64_t cursor = 0;
  /// True when the cursor sent was ahead of the topic (an earlier life of it); `cursor` is the topic's now.
  bool reset = false;
};

namespace detail {

/// Appends `text`, valid UTF-8, as a JSON string (RFC 8259 §7): `"` and `\` escaped, control characters as
/// their short escapes or `\u00XX`, everything else as it is (UTF-8 needs no escaping in JSON text).
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out.append(escape, sizeof escape);
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

inline void append_json_number(std::string& out, std::uint64_t n) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

}  // namespace detail

/// The JSON body for what `broker::read` or `async_read` returned. Written directly rather than through a JSON
/// document: the endpoint encodes one per answered poll, for every parked poll a publish wakes. Keys in the order
/// a JSON library with sorted objects would write them.
inline std::string encode_batch(const pubsub::basic_read_result<pubsub::message>& r) {
  std::string out;
  std::size_t size = 64;
  for (const pubsub::message& m : r.messages) size += m.data().size() + 48;
  out.reserve(size);
  const bool reset = r.error == pubsub::error::cursor_ahead;
  out += "{\"cursor\":";
  detail::append_json_number(out, reset ? r.last_sequence : r.next_cursor);
  if (r.missed) {
    out += ",\"gap\":{\"first\":";
    detail::append_json_number(out, r.missed->first);
    out += ",\"last\":";
    detail::append_json_number(out, r.missed->last);
    out += ",\"reason\":\"";
    out += pubsub::to_string(r.missed->reason);  // retention, or upstream: a bridge lost them (pubsub/event.hpp)
    out += "\"}";
  }
  out += ",\"messages\":[";
  for (std::size_t i = 0; i < r.messages.size(); ++i) {
    const pubsub::message& m = r.messages[i];
    if (i > 0) out += ',';
    out += "{\"data\":";
    const std::string_view data = m.data();
    if (is_valid_utf8(data)) {
      detail::append_json_string(out, data);
    } else {
      detail::append_json_string(out, detail::base64_encode(data));
      out += ",\"encoding\":\"base64\"";
    }
    out += ",\"seq\":";
    detail::append_json_number(out, m.sequence());
    out += '}';
  }
  out += ']';
  if (reset) out += ",\"reset\":true";
  out += '}';
  return out;
}

/// Reads a long-poll JSON body; nullopt when it is not one (wrong types, a bad base64 payload, sequence numbers
/// that do not follow each other).
inline std::optional<batch> decode_batch(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto cursor = j.find("cursor");
  const auto messages = j.find("messages");
  if (cursor == j.end() || !cursor->is_number_unsigned() || messages == j.end() || !messages->is_array()) {
    return std::nullopt;
  }
  batch b;
  b.cursor = cursor->get<std::uint64_t>();
  if (const auto reset = j.find("reset"); reset != j.end()) {
    if (!reset->is_boolean()) return std::nullopt;
    b.reset = reset->get<bool>();
  }
  if (const auto gap = j.find("gap"); gap != j.end()) {
    if (!gap->is_object() || !gap->contains("first") || !gap->contains("last") || !(*gap)["first"].is_number_unsigned() ||
        !(*gap)["last"].is_number_unsigned()) {
      return std::nullopt;
    }
    b.missed = missed_range{(*gap)["first"].get<std::uint64_t>(), (*gap)["last"].get<std::uint64_t>()};
    if (b.missed->first == 0 || b.missed->last < b.missed->first) return std::nullopt;
  }
  // The number before the next message's: the gap's last, then each message's. Compared without adding one to it,
  // which would wrap to 0 after UINT64_MAX and let anything follow.
  std::optional<std::uint64_t> previous;
  if (b.missed) previous = b.missed->last;
  for (const nlohmann::json& m : *messages) {
    if (!m.is_object()) return std::nullopt;
    const auto seq = m.find("seq");
    const auto data = m.find("data");
    if (seq == m.end() || !seq->is_number_unsigned() || data == m.end() || !data->is_string()) return std::nullopt;
    polled_message out{seq->get<std::uint64_t>(), data->get<std::string>()};
    if (previous && (*previous == std::numeric_limits<std::uint64_t>::max() || out.sequence != *previous + 1)) {
      return std::nullopt;
    }
    previous = out.sequence;
    if (const auto encoding = m.find("encoding"); encoding != m.end()) {
      if (*encoding != "base64") return std::nullopt;
      auto decoded = detail::base64_decode(out.data);
      if (!decoded) return std::nullopt;
      out.data = std::move(*decoded);
    }
    b.messages.push_back(std::move(out));
  }
  if (!b.reset && !b.messages.empty() && b.cursor != b.messages.back().sequence) return std::nullopt;
  return b;
}

}  // namespace switchboard::longpoll
