// switchboard/pubsub/detail/resp_frames.hpp
//
// The frame a `resp_server` sends for a published message. Redis formats each message again for every receiving
// client, into that client's buffer; here a thread encodes a message once per protocol for all its clients of a
// channel (or pattern), and each client's output queue takes those bytes (see resp_shard.hpp).
#pragma once

#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/resp/encoder.hpp>

#include <string>
#include <string_view>

namespace switchboard::pubsub::detail {

/// The push a subscription gets for a message.
enum class resp_delivery { message, pmessage, smessage };

/// Appends the push of `m` to `out`: [message, channel, payload], [pmessage, pattern, channel, payload] or
/// [smessage, channel, payload], as a RESP3 push or a RESP2 array.
inline void append_delivery(std::string& out, resp::protocol version, resp_delivery kind, std::string_view pattern,
                            const message& m) {
  resp::encoder e(out, version);
  switch (kind) {
    case resp_delivery::message: e.push_header(3).bulk("message"); break;
    case resp_delivery::smessage: e.push_header(3).bulk("smessage"); break;
    case resp_delivery::pmessage: e.push_header(4).bulk("pmessage").bulk(pattern); break;
  }
  e.bulk(m.topic()).bulk(m.data());
}

/// The push of `m` (see append_delivery), shared by every client that takes it. A small frame is encoded in this
/// thread's scratch string and copied once into its shared block (one allocation); a large one is encoded into
/// its own string, which the shared bytes take without a copy.
inline shared_bytes encode_delivery(resp::protocol version, resp_delivery kind, std::string_view pattern,
                                    const message& m) {
  const std::size_t estimate = m.topic().size() + m.data().size() + pattern.size() + 64;
  if (estimate > shared_bytes::inline_limit) {
    std::string out;
    out.reserve(estimate);
    append_delivery(out, version, kind, pattern, m);
    return shared_bytes(std::move(out));
  }
  thread_local std::string scratch;
  scratch.clear();
  append_delivery(scratch, version, kind, pattern, m);
  return shared_bytes::copy(scratch);
}

}  // namespace switchboard::pubsub::detail
