// switchboard/pubsub/detail/resp_frames.hpp
//
// The frame a `resp_server` sends for a published message. Redis formats each message again for every receiving
// client, into that client's buffer; here a thread encodes a message once per protocol for all its clients of a
// channel (or pattern), and each client's output queue takes those bytes (see resp_shard.hpp).
#pragma once

#include <switchboard/pubsub/message.hpp>
#include <switchboard/resp/encoder.hpp>

#include <string>
#include <string_view>

namespace switchboard::pubsub::detail {

/// The push a subscription gets for a message.
enum class resp_delivery { message, pmessage, smessage };

/// Encodes the push of `m`: [message, channel, payload], [pmessage, pattern, channel, payload] or
/// [smessage, channel, payload], as a RESP3 push or a RESP2 array.
inline std::string encode_delivery(resp::protocol version, resp_delivery kind, std::string_view pattern,
                                   const message& m) {
  std::string out;
  out.reserve(m.topic().size() + m.data().size() + pattern.size() + 48);
  resp::encoder e(out, version);
  switch (kind) {
    case resp_delivery::message: e.push_header(3).bulk("message"); break;
    case resp_delivery::smessage: e.push_header(3).bulk("smessage"); break;
    case resp_delivery::pmessage: e.push_header(4).bulk("pmessage").bulk(pattern); break;
  }
  e.bulk(m.topic()).bulk(m.data());
  return out;
}

}  // namespace switchboard::pubsub::detail
