// switchboard/longpoll/batch.hpp
//
// The long-poll wire format: the JSON body of `GET /topics/{topic}/poll`, written by the endpoint and read by the
// client. Free of I/O.
//
//   {"messages": [{"seq": 41, "data": "hello"}, {"seq": 42, "data": "AAEC", "encoding": "base64"}],
//    "cursor": 42}
//   {"gap": {"first": 1, "last": 40, "reason": "retention"}, "messages": [...], "cursor": 60}
//   {"messages": [], "cursor": 17, "reset": true}
//
//  - `messages`: consecutive messages after the cursor the client sent, oldest first. `data` is the payload as a
//    string when it is valid UTF-8, else its base64 form with `"encoding": "base64"` (JSON strings hold Unicode
//    text only, RFC 8259 §8.1).
//  - `cursor`: what to send next time (`?cursor=N`, or as the ETag in `If-None-Match`).
//  - `gap`: messages `first..last` came after the client's cursor but are no longer retained: they are lost to
//    this client, and said so (DESIGN promise 4: never silent loss). They come before `messages`.
//  - `reset`: the client's cursor is past the topic's last sequence number, so it belongs to an earlier life of
//    the topic (the server restarted, or the topic was erased): `cursor` is the topic's last sequence number now.
#pragma once

#include <switchboard/core/utf8.hpp>
#include <switchboard/longpoll/detail/base64.hpp>
#include <switchboard/pubsub/error.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/pubsub/results.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
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

/// The JSON body for what `broker::read` or `async_read` returned.
inline std::string encode_batch(const pubsub::basic_read_result<pubsub::message>& r) {
  nlohmann::json body = nlohmann::json::object();
  if (r.missed) {
    body["gap"] = {{"first", r.missed->first}, {"last", r.missed->last}, {"reason", "retention"}};
  }
  nlohmann::json messages = nlohmann::json::array();
  for (const pubsub::message& m : r.messages) {
    const std::string_view data = m.data();
    if (is_valid_utf8(data)) {
      messages.push_back({{"seq", m.sequence()}, {"data", data}});
    } else {
      messages.push_back({{"seq", m.sequence()}, {"data", detail::base64_encode(data)}, {"encoding", "base64"}});
    }
  }
  body["messages"] = std::move(messages);
  if (r.error == pubsub::error::cursor_ahead) {
    body["cursor"] = r.last_sequence;
    body["reset"] = true;
  } else {
    body["cursor"] = r.next_cursor;
  }
  return body.dump();
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
  std::uint64_t expected = b.missed ? b.missed->last + 1 : 0;
  for (const nlohmann::json& m : *messages) {
    if (!m.is_object()) return std::nullopt;
    const auto seq = m.find("seq");
    const auto data = m.find("data");
    if (seq == m.end() || !seq->is_number_unsigned() || data == m.end() || !data->is_string()) return std::nullopt;
    polled_message out{seq->get<std::uint64_t>(), data->get<std::string>()};
    if (expected != 0 && out.sequence != expected) return std::nullopt;
    expected = out.sequence + 1;
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
