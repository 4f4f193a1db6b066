// Helpers for the broker tests: drafts from text, and a readable form of events ("t#3=c" for message 3 of topic t
// with payload c, "t gap 4-6 overflow" for a gap) so that a test compares a whole stream in one CHECK.
#pragma once

#include <switchboard/pubsub/broker.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace switchboard::pubsub::test {

/// A draft with `text` as payload and an optional conflation key.
inline message_draft text(std::string_view text, std::string key = {}) {
  return message_draft{.payload = shared_bytes::copy(text), .key = std::move(key)};
}

/// "t#3=c", "t gap 4-6 overflow", or "error: <message>" for an empty event with an error.
inline std::string describe(std::error_code ec, const event& e) {
  if (ec) return "error: " + ec.message();
  if (e.is_message()) {
    return std::string(e.message().topic()) + "#" + std::to_string(e.message().sequence()) + "=" +
           std::string(e.message().data());
  }
  if (e.is_gap()) {
    return e.gap().topic + " gap " + std::to_string(e.gap().first) + "-" + std::to_string(e.gap().last) + " " +
           std::string(to_string(e.gap().reason));
  }
  return "empty";
}

/// Records what a callback subscription receives.
struct recorder {
  std::vector<std::string> log;
  /// Sequence numbers of the messages received, in order.
  std::vector<std::uint64_t> sequences;

  subscription_options::on_event_type callback() {
    return [this](std::error_code ec, const event& e) {
      log.push_back(describe(ec, e));
      if (!ec && e.is_message()) sequences.push_back(e.message().sequence());
    };
  }
};

/// `n` strings "<prefix>1" .. "<prefix>n".
inline std::vector<std::string> numbered(std::string_view topic, std::uint64_t first, std::uint64_t last,
                                         std::string_view payload_prefix) {
  std::vector<std::string> out;
  for (std::uint64_t i = first; i <= last; ++i) {
    out.push_back(std::string(topic) + "#" + std::to_string(i) + "=" + std::string(payload_prefix) + std::to_string(i));
  }
  return out;
}

}  // namespace switchboard::pubsub::test
