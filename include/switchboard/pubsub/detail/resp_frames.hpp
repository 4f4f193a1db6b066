// switchboard/pubsub/detail/resp_frames.hpp
//
// The frames a `resp_server` sends for a published message, encoded once and shared by every client of a thread.
//
// Redis formats each message again for every receiving client, into that client's buffer. Here the frame of a
// message depends only on the protocol (RESP2 `*`, RESP3 `>`), on the kind of subscription (message, pmessage,
// smessage) and, for pmessage, on the pattern: a thread's frame cache keeps the frames of the message being
// delivered, so that the broker's delivery of one message to N clients of the thread encodes it once per
// (protocol, kind, pattern), and each client's output queue references (or, when small, copies) those bytes.
#pragma once

#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/resp/encoder.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// The frames of the message being delivered on one thread. Not thread-safe: one per event-loop thread.
class resp_frame_cache {
 public:
  /// At most this many frames of one message are kept (distinct patterns beyond it are encoded per client).
  static constexpr std::size_t max_entries = 16;

  /// The frame of `m` for a client speaking `version` through a subscription of `kind` (to `pattern`).
  shared_bytes frame(const message& m, resp::protocol version, resp_delivery kind, std::string_view pattern) {
    // A message is identified by its body, which the cache keeps alive, so the address cannot be reused.
    if (!current_ || current_->topic().data() != m.topic().data()) {
      current_.emplace(m);
      entries_.clear();
    }
    for (const entry& e : entries_) {
      if (e.version == version && e.kind == kind && e.pattern == pattern) return e.frame;
    }
    shared_bytes bytes(encode_delivery(version, kind, pattern, m));
    if (entries_.size() < max_entries) entries_.push_back({version, kind, std::string(pattern), bytes});
    return bytes;
  }

  /// Lets go of the message (so that its payload is not kept alive by an idle thread).
  void clear() noexcept {
    entries_.clear();
    current_.reset();
  }

 private:
  struct entry {
    resp::protocol version;
    resp_delivery kind;
    std::string pattern;
    shared_bytes frame;
  };
  std::optional<message> current_;
  std::vector<entry> entries_;
};

}  // namespace switchboard::pubsub::detail
