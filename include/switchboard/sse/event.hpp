// switchboard/sse/event.hpp
//
// The two sides of a Server-Sent Event (WHATWG HTML §9.2 "Server-sent events"):
//  - `event`: the fields a server writes in one block of the stream (`event`, `id`, `retry`, `data`);
//  - `message`: what a client dispatches when the block ends (the MessageEvent's type, data and lastEventId).
// They differ on purpose: a client remembers the last id across events, never sees `retry` on an event (it sets
// the reconnection time of the stream), and dispatches nothing for a block without data.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::sse {

/// One event to encode. The fields are views: what they refer to must stay alive for the `encode` call only.
/// Usable with designated initializers: `sse::event{.data = payload, .id = "42"}`.
struct event {
  /// The payload. Line breaks (CR, LF or CRLF) split it into several `data` fields, which the client joins with
  /// LF: so a CR or CRLF in the payload arrives as LF, the one change the format imposes. Absent: the block
  /// carries no `data` field, so the client dispatches nothing (used to set `id` or `retry` alone). Present and
  /// empty: an event with empty data is dispatched.
  std::optional<std::string_view> data = {};
  /// The event type (`event` field), which selects the client's listener. Empty: no field, the client uses its
  /// default type "message". Must not contain CR or LF, and needs `data` (see `error`).
  std::string_view type = {};
  /// The id (`id` field) that the client remembers and sends back as `Last-Event-ID` when it reconnects.
  /// Absent: no field, the client keeps its last id. Empty: the client forgets its last id. Must not contain CR,
  /// LF or NUL.
  std::optional<std::string_view> id = {};
  /// The reconnection time (`retry` field) the client waits before reconnecting. Must not be negative.
  std::optional<std::chrono::milliseconds> retry = {};
};

/// An event as a client dispatches it (§9.2.6 "dispatch the event"), delivered by `sse::parser`.
struct message {
  /// The event type: the value of the block's last `event` field, or "message" when it had none or an empty one.
  std::string type = {};
  /// The values of the block's `data` fields, joined with LF.
  std::string data = {};
  /// The stream's last event id when the event was dispatched: set by this block's `id` field or an earlier
  /// one (a block without `id` keeps it), empty if none was ever set.
  std::string last_event_id = {};

  bool operator==(const message&) const = default;
};

}  // namespace switchboard::sse
