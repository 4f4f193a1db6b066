// switchboard/pubsub/message.hpp
//
// What the broker carries: `message`, the default message type, and `broker_message`, what `basic_broker<M>`
// requires of its own message types.
//
// A message is made once per publish and then shared: every subscriber queue and the topic's retention log hold a
// copy of the same handle, so publishing to N subscribers copies no payload and no header. The broker stamps each
// message with its topic and the topic's sequence number (DESIGN promise 3) when it is published; after that the
// message never changes, so threads can read it without locks.
#pragma once

#include <switchboard/core/shared_bytes.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::pubsub {

/// What the broker decides about a message when it publishes it.
struct message_stamp {
  /// The topic it was published to (the view is valid during the constructor call only).
  std::string_view topic;
  /// Its position in the topic: 1 for the topic's first message, then one more for each.
  std::uint64_t sequence = 0;
};

/// What `basic_broker<M>` requires of a message type `M`:
///  - `typename M::draft_type`: what a publisher passes to `publish`;
///  - `M(const message_stamp&, M::draft_type&&)`: called once per publish, under the topic's lock, to make the
///    message that every subscriber shares;
///  - `m.topic()` and `m.sequence()`: the stamp;
///  - cheap copies that share the contents (a handle), since each subscriber queue holds a copy.
/// Sizes and conflation keys are read through `switchboard::queue_traits<M>`: `m.size()` is counted against the
/// queue and retention byte limits, and `m.conflation_key()` (if `M` has one) is the key of the `conflate` policy.
template <class M>
concept broker_message = std::copy_constructible<M> && std::is_nothrow_move_constructible_v<M> &&
                         requires(const M& m, const message_stamp& stamp, typename M::draft_type draft) {
                           M(stamp, std::move(draft));
                           { m.topic() } -> std::convertible_to<std::string_view>;
                           { m.sequence() } -> std::convertible_to<std::uint64_t>;
                         };

/// One header of a message, e.g. `{"content-type", "application/json"}` or an SSE event name.
struct message_header {
  std::string name{};
  std::string value{};
};

/// What a publisher gives for a `message`: `broker.publish("prices", {.payload = bytes, .key = "AAPL"})`.
struct message_draft {
  /// The payload, shared (not copied) by every subscriber.
  shared_bytes payload{};
  /// Optional headers, in order. Names compare exactly: use lowercase names.
  std::vector<message_header> headers{};
  /// The conflation key: under `overflow_policy::conflate`, a queued message with the same key is replaced by this
  /// one. Empty: never conflated.
  std::string key{};
};

/// The default message type: an immutable, reference-counted record of topic, sequence number, payload, headers
/// and conflation key. Copying a `message` copies one pointer.
class message {
 public:
  using draft_type = message_draft;

  /// Stamps `draft`: called by the broker when it publishes.
  message(const message_stamp& stamp, message_draft&& draft)
      : body_(std::make_shared<const body>(std::string(stamp.topic), stamp.sequence, std::move(draft))) {}

  /// The topic it was published to.
  std::string_view topic() const noexcept { return body_->topic; }
  /// Its sequence number in that topic (1 for the first message).
  std::uint64_t sequence() const noexcept { return body_->sequence; }
  /// The payload.
  const shared_bytes& payload() const noexcept { return body_->draft.payload; }
  /// The payload's bytes.
  std::string_view data() const noexcept { return body_->draft.payload.view(); }
  /// The headers, in the order given.
  std::span<const message_header> headers() const noexcept { return body_->draft.headers; }
  /// The value of the first header named `name` (exact match), if any.
  std::optional<std::string_view> header(std::string_view name) const noexcept {
    for (const message_header& h : body_->draft.headers) {
      if (h.name == name) return std::string_view(h.value);
    }
    return std::nullopt;
  }
  /// The `content-type` header, or empty.
  std::string_view content_type() const noexcept { return header("content-type").value_or(std::string_view()); }
  /// The conflation key (empty: none).
  std::string_view conflation_key() const noexcept { return body_->draft.key; }
  /// The bytes counted against queue and retention limits: payload, header names and values, and key.
  std::size_t size() const noexcept { return body_->bytes; }
  /// Whether `other` is a copy of this message (the same published message), not merely one with equal contents.
  bool is_copy_of(const message& other) const noexcept { return body_ == other.body_; }

 private:
  struct body {
    body(std::string t, std::uint64_t seq, message_draft&& d)
        : topic(std::move(t)), sequence(seq), draft(std::move(d)), bytes(count_bytes(draft)) {}

    static std::size_t count_bytes(const message_draft& d) noexcept {
      std::size_t n = d.payload.size() + d.key.size();
      for (const message_header& h : d.headers) n += h.name.size() + h.value.size();
      return n;
    }

    std::string topic;
    std::uint64_t sequence;
    message_draft draft;
    std::size_t bytes;
  };

  std::shared_ptr<const body> body_;
};

static_assert(broker_message<message>);

}  // namespace switchboard::pubsub
