// Helpers shared by the push tests: making broker messages without a broker, and reading a server frame back.
#pragma once

#include <switchboard/pubsub/message.hpp>
#include <switchboard/ws/frame_parser.hpp>

#include "support/catch.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::push::test {

/// A message of `topic` numbered `seq`, as the broker would stamp it.
inline pubsub::message make_message(std::string_view topic, std::uint64_t seq, std::string payload = "x",
                                    std::string key = {}, std::vector<pubsub::message_header> headers = {}) {
  return pubsub::message(pubsub::message_stamp{topic, seq},
                         pubsub::message_draft{.payload = shared_bytes(std::move(payload)),
                                               .headers = std::move(headers),
                                               .key = std::move(key)});
}

/// The payload of the one whole message in `frame` (a server frame, inflated when `deflate` is given).
inline std::string read_frame(std::string_view frame, std::optional<ws::deflate_params> deflate = std::nullopt) {
  ws::frame_parser parser(ws::role::client, {.deflate = deflate});
  std::string bytes(frame);
  std::string payload;
  std::size_t pos = 0;
  for (;;) {
    const ws::parse_result r = parser.parse(std::span<char>(bytes.data() + pos, bytes.size() - pos));
    pos += r.consumed;
    REQUIRE(r.event == ws::parse_event::data);
    payload.append(r.payload);
    if (r.message_end) return payload;
  }
}

}  // namespace switchboard::push::test
