// switchboard/push/hub.hpp
//
// `push::hub`: bridges broker topics to browsers and other clients over Server-Sent Events and WebSocket.
//
//     pubsub::broker broker(rt.executor(0), {.retention = {.max_messages = 1000}});
//     push::hub hub(broker);
//     rt.add(hub);                                                       // WebSocket clients leave on drain
//     routes.get("/topics/{topic}/events", [&](http::request& req) { return hub.sse(req, req.param("topic")); });
//     routes.get("/topics/{topic}/ws", [&](http::request& req) { return hub.websocket(req, req.param("topic")); });
//     routes.get("/ws", [&](http::request& req) { return hub.rooms(req); });
//
// Encoded once: each topic with clients has one feed (one broker subscription). The feed encodes each message
// once per transport (one SSE event; one WebSocket frame, and one compressed frame per permessage-deflate window
// size in use) and queues the same bytes to every client, whose connection writes them without copying.
//
// Resume: SSE clients send `Last-Event-ID` (an EventSource does on reconnection) or `?lastEventId=N`; WebSocket
// clients pass `?from=N` or `"from"` in a join. The hub replays what the topic retains after N, then goes live,
// with nothing missed or repeated at the switch; messages older than what is retained arrive as a gap first.
// A replay is paced by the client's queue: it is read from the topic's retention half a queue at a time, the next
// half once the client has written the previous one, so a replay longer than the queue loses nothing to it.
// Without a cursor a client starts with the next message published.
//
// Backpressure (DESIGN promise 2): each client has its own bounded queue (`hub_options::client_queue`, an
// `outbox`) with an overflow policy; what it drops becomes a gap for that client only. Rooms: one WebSocket
// joins and leaves several topics with JSON control messages (docs/push.md has the protocol). Encodings: see
// encoding.hpp.
#pragma once

#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/push/encoding.hpp>
#include <switchboard/push/outbox.hpp>
#include <switchboard/sse/stream.hpp>
#include <switchboard/ws/accept.hpp>

#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::push {

/// The limits and defaults of a hub. Usable with designated initializers.
struct hub_options {
  /// Each client's queue (see `outbox`): 1,024 events or 1 MiB, `drop_oldest` (the client gets a gap for what it
  /// lost). `disconnect` ends the client's connection instead (it resumes when it reconnects); `conflate` keeps
  /// the latest message per conflation key; `wait` is refused (`std::invalid_argument`).
  queue_limits client_queue{.max_messages = 1024, .max_bytes = 1024 * 1024, .policy = overflow_policy::drop_oldest};
  /// Heartbeats (default every 15 s) and the `retry` field of SSE streams. The server's clock wakes a stream for
  /// its heartbeat, so one may come up to a second late (a quarter of the server's shortest timeout).
  sse::stream_options sse{};
  /// When not zero, an SSE stream ends after this long (at the next moment it has nothing to write, and up to a
  /// second late, as heartbeats): the client reconnects at once and resumes from its last id. Long-lived
  /// connections then spread again over the instances behind a load balancer after a scale-out. Default 0: streams
  /// last as long as the client stays.
  std::chrono::milliseconds max_stream_age{0};
  /// The SSE event type of gaps. Must be one non-empty line of UTF-8 (without one, a gap would read as a message).
  std::string gap_event = "gap";
  /// The query parameter that carries a resume point for clients that cannot send `Last-Event-ID`.
  std::string last_event_id_param = "lastEventId";
  /// The WebSocket handshake (origin allow-list: same origin by default; permessage-deflate: off by default) and
  /// sessions (keep-alive pings, timeouts). The hub sets `group` and replaces `session.send_queue` with
  /// `socket_queue`: the client queue above is where the overflow policy applies.
  ws::accept_options websocket{};
  /// Each WebSocket's own send queue, behind its client queue: a few frames waiting for the socket.
  queue_limits socket_queue{.max_messages = 64, .max_bytes = 1024 * 1024, .policy = overflow_policy::wait};
  /// Most topics one WebSocket may have joined at once. Default 64.
  std::size_t max_rooms = 64;
  /// Largest message (a join or leave) a WebSocket client may send, in bytes; a larger one closes the connection
  /// with 1009 (the hub sets the session's message and frame limits to it). Default 4 KiB.
  std::size_t max_control_bytes = 4096;
  /// Most retained messages replayed to one resuming client; older ones are reported as a gap. Default 10,000.
  std::size_t max_replay = 10'000;
  /// Most clients (SSE streams and WebSockets) at once; more are refused with 503. Default 100,000.
  std::size_t max_clients = 100'000;
  /// The broker subscription of each topic's feed: 65,536 messages or 64 MiB, `drop_oldest`. A feed only
  /// encodes and hands out, so it falls behind only when the process is overloaded; its gaps go to every client.
  queue_limits feed_queue{.max_messages = 65'536, .max_bytes = 64 * 1024 * 1024, .policy = overflow_policy::drop_oldest};
  /// Where feeds run (each on its own strand). Unset: the broker's executor.
  asio::any_io_executor executor{};
};

/// The hub's counters.
struct hub_stats {
  std::size_t feeds = 0;      ///< topics with at least one client
  std::size_t clients = 0;    ///< SSE streams and WebSockets open now
  std::uint64_t dropped = 0;  ///< items the client queues discarded under their policy (conflate's replacements too)
  std::uint64_t gaps = 0;     ///< gaps handed out to clients for what their queues dropped
  std::uint64_t cut = 0;      ///< clients whose connection an overflow ended (`disconnect`, or too many controls held)
};

namespace detail {

/// What the clients of a hub add up, each from its own executor (`hub_stats`).
struct client_counters {
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> gaps{0};
  std::atomic<std::uint64_t> cut{0};
};

/// Which encoding a client takes: SSE, an uncompressed WebSocket frame, or a frame compressed with a window of
/// `window_bits` (9-15).
struct variant {
  enum class kind : std::uint8_t { sse, ws, ws_deflate } type = kind::sse;
  int window_bits = 0;
};

class feed;

/// A connected client: its queue and executor. Items reach it from feeds on other executors.
class client : public std::enable_shared_from_this<client> {
 public:
  /// `counters` must outlive the client (the hub's state, which its subclasses hold).
  client(asio::any_io_executor ex, variant v, const queue_limits& limits, outbox::gap_encoder encode_gap,
         client_counters& counters)
      : executor_(std::move(ex)), variant_(v), box_(limits, std::move(encode_gap)),
        half_messages_(limits.max_messages / 2), half_bytes_(limits.max_bytes / 2), counters_(counters) {}
  virtual ~client() = default;

  /// Queues `item` on the client's executor. Safe from any thread.
  void deliver(outbound item) {
    asio::dispatch(executor_, [self = shared_from_this(), item = std::move(item)]() mutable {
      const bool queued = self->box_.offer(std::move(item));
      self->count_losses();
      if (queued) {
        self->ready();
      } else {
        self->overflowed();
      }
    });
  }

  /// After the items `f` delivered before this call: tells `f` to continue the replay of its attachment `link` once
  /// the queue is at most half full (at once if it is). Safe from any thread.
  void when_half_empty(std::weak_ptr<feed> f, std::uint64_t link) {
    asio::dispatch(executor_, [self = shared_from_this(), f = std::move(f), link]() mutable {
      self->waiting_replays_.emplace_back(std::move(f), link);
      self->resume_replays();
    });
  }

  const variant& encoding() const noexcept { return variant_; }
  outbox& box() noexcept { return box_; }

 protected:
  /// For a client whose executor is known only once it starts (before any delivery).
  void set_executor(asio::any_io_executor ex) { executor_ = std::move(ex); }

  /// On the executor: the next item to write (`outbox::next`); what subclasses take their items with, so that the
  /// replays waiting for room continue as the queue empties.
  std::optional<outbound> next_item() {
    std::optional<outbound> item = box_.next();
    if (item && !item->source) count_losses();  // maybe a gap the outbox made (or a control item, a retention gap)
    if (!waiting_replays_.empty()) resume_replays();
    return item;
  }

  /// On the executor: something was queued.
  virtual void ready() = 0;
  /// On the executor: the `disconnect` policy cut the client.
  virtual void overflowed() = 0;

 private:
  // Lets the feeds whose replays wait for room continue, if the queue is at most half full.
  void resume_replays();

  // Adds what the queue dropped, the gaps it made and its overflow since the last call to the hub's counters.
  void count_losses() {
    const outbox_stats s = box_.stats();
    if (s.queue.dropped != counted_dropped_) {
      counters_.dropped.fetch_add(s.queue.dropped - counted_dropped_, std::memory_order_relaxed);
      counted_dropped_ = s.queue.dropped;
    }
    if (s.gaps != counted_gaps_) {
      counters_.gaps.fetch_add(s.gaps - counted_gaps_, std::memory_order_relaxed);
      counted_gaps_ = s.gaps;
    }
    if (s.overflowed && !counted_cut_) {
      counted_cut_ = true;
      counters_.cut.fetch_add(1, std::memory_order_relaxed);
    }
  }

  asio::any_io_executor executor_;
  variant variant_;
  outbox box_;
  std::size_t half_messages_;  // a replay continues when the queue holds at most these
  std::size_t half_bytes_;
  std::vector<std::pair<std::weak_ptr<feed>, std::uint64_t>> waiting_replays_;  // feed and link, on the executor
  client_counters& counters_;
  std::uint64_t counted_dropped_ = 0;  // what count_losses has added to counters_ already
  std::uint64_t counted_gaps_ = 0;
  bool counted_cut_ = false;
};

/// The encodings of one message or gap, each made on first use and then shared by every client that takes it.
class encodings {
 public:
  explicit encodings(const pubsub::message& m) : message_(&m) {}
  explicit encodings(const pubsub::gap& g) : gap_(&g) {}

  /// `deflate` gives the zlib settings of a compressed frame.
  shared_bytes get(const variant& v, std::string_view gap_event, std::map<int, ws::deflate_compressor>& compressors,
                   const ws::deflate_options& deflate) {
    switch (v.type) {
      case variant::kind::sse:
        if (sse_.empty()) sse_ = message_ ? sse_message(*message_) : sse_gap(*gap_, gap_event);
        return sse_;
      case variant::kind::ws:
        if (ws_.empty()) ws_ = ws_text_frame(text());
        return ws_;
      case variant::kind::ws_deflate: {
        shared_bytes& frame = deflated_[v.window_bits];
        if (frame.empty()) {
          auto it = compressors.find(v.window_bits);
          if (it == compressors.end()) {
            const ws::deflate_params params{.server_no_context_takeover = true,
                                            .server_max_window_bits = v.window_bits,
                                            .compression_level = deflate.compression_level,
                                            .memory_level = deflate.memory_level};
            it = compressors.try_emplace(v.window_bits, ws::role::server, params).first;
          }
          frame = ws_compressed_frame(text(), it->second);
        }
        return frame;
      }
    }
    return {};
  }

 private:
  const std::string& text() {
    if (text_.empty()) text_ = message_ ? ws_message_text(*message_) : ws_gap_text(*gap_);
    return text_;
  }

  const pubsub::message* message_ = nullptr;
  const pubsub::gap* gap_ = nullptr;
  std::string text_;
  shared_bytes sse_;
  shared_bytes ws_;
  std::map<int, shared_bytes> deflated_;
};

struct hub_state;

/// One topic's broker subscription and the clients it serves. Everything but construction runs on its strand.
class feed : public std::enable_shared_from_this<feed> {
 public:
  feed(std::shared_ptr<hub_state> hub, std::string topic, asio::strand<asio::any_io_executor> strand)
      : hub_(std::move(hub)), topic_(std::move(topic)), strand_(std::move(strand)) {}

  /// Subscribes to the broker (throws `std::system_error` as `broker::subscribe` does).
  void start(pubsub::broker& broker, const queue_limits& limits) {
    std::weak_ptr<feed> weak = weak_from_this();
    subscription_ = broker.subscribe(topic_, {.limits = limits, .executor = strand_,
                                              .on_event = [weak](std::error_code ec, const pubsub::event& ev) {
                                                auto self = weak.lock();
                                                if (!self || ec) return;
                                                if (ev.is_message()) self->publish(ev.message());
                                                else if (ev.is_gap()) self->publish_gap(ev.gap());
                                              }});
  }

  /// Adds `c`: `ack` (if any) with the topic's last sequence number, a replay after `from` (if any), then live.
  void attach(std::shared_ptr<client> c, std::optional<std::uint64_t> from,
              std::function<shared_bytes(std::uint64_t)> ack);

  /// Removes `c` (it receives nothing more from this topic), then delivers `ack` (if any) to `notify`: after every
  /// message the feed gave it, as `attach`'s ack comes before them.
  // Posted, never run inline: a client can end, and detach, inside a delivery of `publish` (a write that fails at
  // once ends an SSE stream then and there), and `links_` must not change under its loop.
  void detach(const client* c, std::shared_ptr<client> notify = nullptr, shared_bytes ack = {}) {
    asio::post(strand_, [self = shared_from_this(), c, notify = std::move(notify), ack = std::move(ack)]() mutable {
      std::erase_if(self->links_, [c](const link& l) { return l.target.get() == c; });
      if (notify) notify->deliver(outbound{.bytes = std::move(ack), .topic = self->topic_});
    });
  }

  /// Continues the replay of attachment `link` (`client::when_half_empty`), if it is still attached and replaying.
  void resume(std::uint64_t link) {
    // Posted, not dispatched: called from a client's executor that may be running this strand's delivery, it must
    // not start a round inside another.
    asio::post(strand_, [self = shared_from_this(), link] { self->replay_round(link); });
  }

  /// Leaves the broker topic. Posted, as `detach` is (the last client's detach stops the feed).
  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->subscription_.unsubscribe();
      self->links_.clear();
    });
  }

  const std::string& topic() const noexcept { return topic_; }

 private:
  struct link {
    std::shared_ptr<client> target;
    std::uint64_t after = 0;   // messages up to this one reached the client by replay
    std::uint64_t id = 0;      // this attachment (a client that leaves and joins again gets a new one)
    bool replaying = false;    // catching up from retention: live messages are left to the replay
  };

  void publish(const pubsub::message& m);
  void publish_gap(const pubsub::gap& g);
  void replay_round(std::uint64_t id);
  link* find_link(std::uint64_t id) {
    const auto it = std::find_if(links_.begin(), links_.end(), [id](const link& l) { return l.id == id; });
    return it == links_.end() ? nullptr : &*it;
  }
  shared_bytes encode(encodings& e, const variant& v);

  std::shared_ptr<hub_state> hub_;  // released when the feed stops: the feed is then out of the hub's map
  std::string topic_;
  asio::strand<asio::any_io_executor> strand_;
  pubsub::subscription subscription_;
  std::vector<link> links_;
  std::uint64_t last_link_id_ = 0;
  std::map<int, ws::deflate_compressor> compressors_;  // one per window size in use, reset after each message
};

/// A client's hold on a feed: releases it (and detaches the client) when destroyed.
class feed_lease {
 public:
  feed_lease(std::shared_ptr<hub_state> hub, std::shared_ptr<feed> f) : hub_(std::move(hub)), feed_(std::move(f)) {}
  feed_lease(feed_lease&&) noexcept = default;
  feed_lease& operator=(feed_lease&&) = delete;
  feed_lease(const feed_lease&) = delete;
  feed_lease& operator=(const feed_lease&) = delete;
  ~feed_lease();

  feed& get() const noexcept { return *feed_; }
  /// The client this lease detaches when it ends.
  void bind(const client* c) noexcept { client_ = c; }

 private:
  std::shared_ptr<hub_state> hub_;
  std::shared_ptr<feed> feed_;
  const client* client_ = nullptr;
};

/// What the hub's handles and its clients share; outlives the `hub` object while clients remain.
struct hub_state : std::enable_shared_from_this<hub_state> {
  hub_state(pubsub::broker& b, hub_options o)
      : broker(b), options(std::move(o)), executor(options.executor ? options.executor : b.get_executor()) {
    if (options.client_queue.policy == overflow_policy::wait) {
      throw std::invalid_argument("switchboard::push::hub: client_queue cannot use overflow_policy::wait");
    }
    (void)sse_gap(pubsub::gap{}, options.gap_event);  // checks the name now rather than at the first gap
    options.websocket.session.send_queue = options.socket_queue;
    options.websocket.session.limits.max_message_size = options.max_control_bytes;
    options.websocket.session.limits.max_frame_size = options.max_control_bytes;
    options.websocket.group = group;
    retry_field = sse::detail::retry_block(options.sse.retry);  // throws for a negative one
  }

  /// The feed of `topic`, made (and subscribed) if absent. Throws `std::system_error` when the broker refuses.
  feed_lease acquire(std::string_view topic) {
    std::lock_guard lock(mutex);
    auto it = feeds.find(topic);
    if (it == feeds.end()) {
      auto f = std::make_shared<feed>(shared_from_this(), std::string(topic), asio::make_strand(executor));
      f->start(broker, options.feed_queue);
      it = feeds.emplace(std::string(topic), entry{std::move(f), 0}).first;
    }
    ++it->second.users;
    return feed_lease(shared_from_this(), it->second.f);
  }

  /// Gives back a lease; the last one stops the feed.
  void release(const std::shared_ptr<feed>& f) {
    std::lock_guard lock(mutex);
    auto it = feeds.find(f->topic());
    if (it == feeds.end() || it->second.f != f) return;
    if (--it->second.users > 0) return;
    f->stop();
    feeds.erase(it);
  }

  /// True when `max_clients` are connected (a quick refusal before a handshake).
  bool full() const noexcept { return clients.load() >= options.max_clients; }

  /// Counts a client in; false when `max_clients` are already connected.
  bool admit() {
    if (clients.fetch_add(1) < options.max_clients) return true;
    clients.fetch_sub(1);
    return false;
  }
  void leave() noexcept { clients.fetch_sub(1); }

  struct entry {
    std::shared_ptr<feed> f;
    std::size_t users = 0;
  };

  pubsub::broker& broker;
  hub_options options;
  shared_bytes heartbeat{std::string(":\n")};  // an SSE comment (WHATWG HTML §9.2.6), shared by every stream
  shared_bytes retry_field;                       // `retry: <ms>` when options.sse.retry is set
  asio::any_io_executor executor;
  std::shared_ptr<ws::session_group> group = std::make_shared<ws::session_group>();
  std::mutex mutex;
  std::map<std::string, entry, std::less<>> feeds;
  std::atomic<std::size_t> clients{0};
  client_counters counters;
};

inline feed_lease::~feed_lease() {
  if (!feed_) return;
  if (client_) feed_->detach(client_);
  hub_->release(feed_);
}

inline shared_bytes feed::encode(encodings& e, const variant& v) {
  return e.get(v, hub_->options.gap_event, compressors_, hub_->options.websocket.deflate);
}

// Both deliver by index: a delivery runs client code, and although nothing it reaches removes a link at once (detach
// and stop are posted), an index stays valid where an iterator would not.
inline void feed::publish(const pubsub::message& m) {
  encodings e(m);
  for (std::size_t i = 0; i < links_.size(); ++i) {
    if (links_[i].replaying || m.sequence() <= links_[i].after) continue;  // the replay brings it, or brought it
    client& target = *links_[i].target;
    target.deliver(outbound{encode(e, target.encoding()), m});
  }
}

inline void feed::publish_gap(const pubsub::gap& g) {
  encodings e(g);
  for (std::size_t i = 0; i < links_.size(); ++i) {
    // A replay reads what is retained, and is told what is not.
    if (links_[i].replaying || g.last <= links_[i].after) continue;
    client& target = *links_[i].target;
    target.deliver(outbound{encode(e, target.encoding()), std::nullopt, g});
  }
}

inline void feed::attach(std::shared_ptr<client> c, std::optional<std::uint64_t> from,
                         std::function<shared_bytes(std::uint64_t)> ack) {
  asio::dispatch(strand_, [self = shared_from_this(), c = std::move(c), from, ack = std::move(ack)] {
    // Serialised with `publish` on the strand: every message after `last` is still to come through the feed (its
    // subscription was made before this read); those up to it are skipped for this client, or replayed.
    const std::uint64_t last = self->hub_->broker.last_sequence(self->topic_);
    // The ack carries its topic: a gap of the topic (a replay's, or for dropped messages) is not written before it.
    if (ack) c->deliver(outbound{.bytes = ack(last), .topic = self->topic_});
    const std::uint64_t id = ++self->last_link_id_;
    if (!from) {
      self->links_.push_back(link{std::move(c), last, id, false});
      return;
    }
    // A cursor of another life of the topic (restart, erase): replay what is retained.
    std::uint64_t after = *from > last ? 0 : *from;
    if (last - after > self->hub_->options.max_replay) {
      // Older than the replay limit: report them as one gap, as if they were no longer retained.
      const pubsub::gap g{self->topic_, after + 1, last - self->hub_->options.max_replay,
                          pubsub::gap_reason::retention};
      encodings e(g);
      c->deliver(outbound{self->encode(e, c->encoding()), std::nullopt, g});
      after = g.last;
    }
    self->links_.push_back(link{std::move(c), after, id, true});
    self->replay_round(id);
  });
}

// Queues the next part of the replay of link `id`: what the topic retains after its cursor, at most half the
// client's queue (in items and bytes; at least one), so that a replay alone never overflows the queue. Then the link
// goes live when nothing more is retained, else the client calls back (`resume`) once it has written down to half a
// queue. The link is looked up again after the deliveries: one may end the client at once, on this strand, and
// detach it.
inline void feed::replay_round(std::uint64_t id) {
  const link* start = find_link(id);
  if (!start || !start->replaying) return;
  const std::shared_ptr<client> target = start->target;
  std::uint64_t after = start->after;
  const queue_limits& queue = hub_->options.client_queue;
  const std::size_t max_items = std::max<std::size_t>(1, queue.max_messages / 2);
  const std::size_t max_bytes = std::max<std::size_t>(1, queue.max_bytes / 2);
  std::size_t items = 0;
  std::size_t bytes = 0;
  bool caught_up = false;
  while (items < max_items && bytes < max_bytes) {
    const auto r = hub_->broker.read(topic_, after, max_items - items);
    if (r.error || r.next_cursor == after) {
      caught_up = true;  // what is published next comes through `publish`
      break;
    }
    if (r.missed) {
      encodings e(*r.missed);
      target->deliver(outbound{encode(e, target->encoding()), std::nullopt, *r.missed});
      after = r.missed->last;
      ++items;
    }
    for (const pubsub::message& m : r.messages) {
      if (items >= max_items || bytes >= max_bytes) break;  // the rest is read again next round
      encodings e(m);
      shared_bytes encoded = encode(e, target->encoding());
      bytes += encoded.size();
      ++items;
      after = m.sequence();
      target->deliver(outbound{std::move(encoded), m});
    }
  }
  link* l = find_link(id);
  if (!l) return;
  l->after = after;
  l->replaying = !caught_up;
  if (!caught_up) target->when_half_empty(weak_from_this(), id);
}

inline void client::resume_replays() {
  const outbox_stats s = box_.stats();
  if (s.queue.depth > half_messages_ || s.queue.bytes > half_bytes_) return;
  for (auto& [f, link] : std::exchange(waiting_replays_, {})) {
    if (const auto target = f.lock()) target->resume(link);
  }
}

/// An SSE client: the handler of its response's body (http/body_stream.hpp), which writes the client's queue as the
/// connection makes room. No coroutine and no timer (the server's clock wakes it for heartbeats): an idle
/// subscriber costs little more than its connection.
class sse_client final : public client, public http::body_stream_handler {
 public:
  sse_client(std::shared_ptr<hub_state> state, feed_lease lease, std::optional<std::uint64_t> from);
  ~sse_client() override;

  void on_start(http::body_stream& out) override;
  void on_written() override {
    writing_ = false;
    last_write_ = std::chrono::steady_clock::now();
    pump();
  }
  void on_wake() override;
  void on_end() override {
    out_ = nullptr;
    lease_.reset();  // detaches at once
  }

 private:
  void ready() override { pump(); }
  void overflowed() override { pump(); }

  // Writes what is queued (up to a batch, as one chunk), else ends (overflow) or waits.
  void pump();
  // Asks to be woken for the next heartbeat or the end of the stream's age.
  void wait();
  void write(shared_bytes bytes) {
    writing_ = true;
    out_->write(std::span<shared_bytes>(&bytes, 1));
  }
  void finish() {
    lease_.reset();
    std::exchange(out_, nullptr)->finish();
  }
  const hub_options& options() const noexcept;

  std::shared_ptr<hub_state> state_;
  std::optional<feed_lease> lease_;
  std::optional<std::uint64_t> from_;
  http::body_stream* out_ = nullptr;  // from on_start to the end
  std::chrono::steady_clock::time_point last_write_{};
  std::chrono::steady_clock::time_point end_of_age_ = std::chrono::steady_clock::time_point::max();
  bool admitted_ = false;
  bool writing_ = false;
};

inline sse_client::sse_client(std::shared_ptr<hub_state> state, feed_lease lease, std::optional<std::uint64_t> from)
    : client({}, variant{}, state->options.client_queue,
             [hub = state.get()](const pubsub::gap& g) { return sse_gap(g, hub->options.gap_event); }, state->counters),
      state_(std::move(state)), lease_(std::move(lease)), from_(from) {}

inline sse_client::~sse_client() {
  if (admitted_) state_->leave();
}

inline const hub_options& sse_client::options() const noexcept { return state_->options; }

inline void sse_client::on_start(http::body_stream& out) {
  if (!state_->admit()) return out.finish();  // filled up since the request was admitted: end at once
  admitted_ = true;
  out_ = &out;
  set_executor(out.get_executor());
  last_write_ = std::chrono::steady_clock::now();
  // Saturating: an age too long to reach ("for ever", milliseconds::max()) must not wrap around into the past.
  if (options().max_stream_age.count() > 0) {
    end_of_age_ = switchboard::detail::saturating_add(last_write_, options().max_stream_age);
  }
  lease_->bind(this);
  if (!state_->retry_field.empty()) write(state_->retry_field);
  lease_->get().attach(shared_from_this(), from_, nullptr);  // deliveries come later, on this executor
  if (!writing_) wait();
}

inline void sse_client::on_wake() {
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now >= end_of_age_) return finish();
  const auto heartbeat = options().sse.heartbeat;
  if (heartbeat.count() > 0 && now >= switchboard::detail::saturating_add(last_write_, heartbeat)) {
    return write(state_->heartbeat);
  }
  wait();
}

inline void sse_client::pump() {
  if (!out_ || writing_) return;
  std::array<shared_bytes, 16> batch;
  std::size_t n = 0;
  while (n < batch.size()) {
    std::optional<outbound> item = next_item();
    if (!item) break;
    batch[n++] = std::move(item->bytes);
  }
  if (n > 0) {
    writing_ = true;
    return out_->write(std::span<shared_bytes>(batch.data(), n));
  }
  if (box().overflowed()) return finish();  // the `disconnect` policy: the client resumes when it reconnects
  wait();
}

inline void sse_client::wait() {
  if (std::chrono::steady_clock::now() >= end_of_age_) return finish();
  auto when = end_of_age_;
  if (options().sse.heartbeat.count() > 0) {
    when = std::min(when, switchboard::detail::saturating_add(last_write_, options().sse.heartbeat));
  }
  out_->wake_at(when);
}

/// A WebSocket client (one topic or rooms): its queue is moved to the session's send queue one frame at a time.
class ws_client final : public client {
 public:
  ws_client(std::shared_ptr<hub_state> hub, const std::shared_ptr<ws::session>& s, variant v)
      : client(s->get_executor(), v, hub->options.client_queue,
               [](const pubsub::gap& g) {
                 encodings e(g);
                 std::map<int, ws::deflate_compressor> none;
                 return e.get(variant{variant::kind::ws}, {}, none, {});
               },
               hub->counters),
        hub_(std::move(hub)), session_(s) {}

  ~ws_client() override { hub_->leave(); }

  /// Handles a control message from the client (on the session's executor).
  void on_message(const ws::message& m) {
    const nlohmann::json j = nlohmann::json::parse(m.data, nullptr, false);
    if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) return reply_error("expected {\"op\": ...}", {});
    const std::string op = j["op"].get<std::string>();
    const auto topic = j.find("topic");
    if (topic == j.end() || !topic->is_string() || topic->get_ref<const std::string&>().empty()) {
      return reply_error("expected a \"topic\" string", {});
    }
    const std::string& name = topic->get_ref<const std::string&>();
    if (op == "join") {
      std::optional<std::uint64_t> from;
      if (const auto f = j.find("from"); f != j.end()) {
        if (!f->is_number_unsigned()) return reply_error("\"from\" must be a sequence number", name);
        from = f->get<std::uint64_t>();
      }
      return join(name, from);
    }
    if (op == "leave") return leave(name);
    reply_error("unknown op (join, leave)", name);
  }

  /// Joins `topic`, replaying after `from` if given (on the session's executor).
  void join(const std::string& topic, std::optional<std::uint64_t> from) {
    if (rooms_.contains(topic)) return reply_error("already joined", topic);
    if (rooms_.size() >= hub_->options.max_rooms) return reply_error("too many topics on this socket", topic);
    std::optional<feed_lease> lease;
    try {
      lease.emplace(hub_->acquire(topic));
    } catch (const std::system_error& e) {
      return reply_error(e.code().message(), topic);
    }
    lease->bind(this);
    feed& f = lease->get();
    rooms_.emplace(topic, std::move(*lease));
    f.attach(shared_from_this(), from, [topic](std::uint64_t last) {
      return control_frame({{"op", "joined"}, {"topic", topic}, {"seq", last}});
    });
  }

  /// Leaves every topic (the session closed).
  void leave_all() { rooms_.clear(); }

 private:
  // "left" comes from the feed once this client is detached, after the last message it delivered here: nothing of
  // the topic follows it (messages the feed was delivering meanwhile would, if it were sent from here).
  void leave(const std::string& topic) {
    const auto room = rooms_.find(topic);
    if (room == rooms_.end()) return reply_error("not joined", topic);
    room->second.get().detach(this, shared_from_this(), control_frame({{"op", "left"}, {"topic", topic}}));
    rooms_.erase(room);  // its lease's own detach finds nothing left
  }

  void reply_error(std::string_view what, std::string_view topic) {
    nlohmann::json j{{"op", "error"}, {"error", what}};
    if (!topic.empty()) j["topic"] = topic;
    reply(j);
  }

  // Control replies go through the queue too, so that they keep their place among the topic's messages.
  void reply(const nlohmann::json& j) { deliver(outbound{control_frame(j)}); }

  static shared_bytes control_frame(const nlohmann::json& j) {
    return ws_text_frame(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  void close(ws::close_code code, std::string reason) {
    if (auto s = session_.lock()) s->close(code, std::move(reason));
  }

  void ready() override { pump(); }
  // The `disconnect` policy: the frames already queued go first (a resuming client whose replay overflows its queue
  // still makes progress, see outbox::offer), then close 1008.
  void overflowed() override { pump(); }

  // Moves queued frames to the session one at a time: its send queue (`wait`) completes when there is room. Closes
  // once an overflowed queue is empty.
  void pump() {
    if (sending_) return;
    auto s = session_.lock();
    if (!s || !s->is_open()) return;
    std::optional<outbound> item = next_item();
    if (!item) {
      if (box().overflowed()) close(ws::close_code::policy_violation, "client too slow");
      return;
    }
    sending_ = true;
    s->async_send(ws::outgoing{std::move(item->bytes), ws::opcode::text, true, {}},
                  [self = std::static_pointer_cast<ws_client>(shared_from_this())](std::error_code ec, push_outcome) {
                    self->sending_ = false;
                    if (!ec) self->pump();
                  });
  }

  std::shared_ptr<hub_state> hub_;
  std::weak_ptr<ws::session> session_;
  std::map<std::string, feed_lease, std::less<>> rooms_;
  bool sending_ = false;
};

inline variant encoding_of(const ws::session& s) {
  if (!s.deflate()) return {variant::kind::ws};
  return {variant::kind::ws_deflate, s.deflate()->server_max_window_bits};
}

}  // namespace detail

/// Serves broker topics to SSE and WebSocket clients (see the file comment). Not copyable. Thread-safe: its
/// handlers run on any connection's executor. Must outlive the server's routes that use it; the broker must
/// outlive the hub and its clients.
class hub final : public drainable {
 public:
  /// Throws `std::invalid_argument` for a `wait` client queue, a gap event name that is not one line or a negative
  /// `sse.retry`.
  explicit hub(pubsub::broker& broker, hub_options options = {})
      : state_(std::make_shared<detail::hub_state>(broker, std::move(options))) {}

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  /// Answers `GET` with an event stream of `topic` (see the file comment): resumes after `Last-Event-ID` or the
  /// `lastEventId` query parameter when it is a sequence number (other ids are ignored: the stream starts live).
  /// Refuses with 503 when `max_clients` are connected, 400 for a topic the broker refuses.
  http::response sse(http::request& req, std::string_view topic) {
    std::optional<std::uint64_t> from;
    if (auto id = sse::last_event_id(req, state_->options.last_event_id_param)) from = sse::parse_sequence_id(*id);
    if (state_->full()) return busy();
    try {
      return sse::stream_response(std::make_shared<detail::sse_client>(state_, state_->acquire(topic), from));
    } catch (const std::system_error& e) {
      return http::response::problem(http::status::bad_request, e.code().message());
    }
  }

  /// Answers a WebSocket handshake for one topic: the client receives the topic's messages (resuming after the
  /// `from` query parameter, if given) and may join and leave others with the rooms protocol.
  http::response websocket(http::request& req, std::string_view topic) {
    std::optional<std::uint64_t> from;
    if (auto f = req.query_param("from")) {
      from = sse::parse_sequence_id(*f);
      if (!from) return http::response::problem(http::status::bad_request, "from must be a sequence number");
    }
    return accept(req, std::string(topic), from);
  }

  /// Answers a WebSocket handshake for rooms: the client joins and leaves topics with JSON control messages.
  http::response rooms(http::request& req) { return accept(req, {}, std::nullopt); }

  /// Closes every WebSocket with 1001 and cuts those still open at `deadline`. (SSE streams are responses of the
  /// HTTP server, which ends them when it drains.)
  void async_drain(std::chrono::steady_clock::time_point deadline, std::function<void(drain_report)> done) override {
    state_->group->async_drain(deadline, std::move(done));
  }

  /// Feeds and clients now, and what the client queues lost since the start. Any thread.
  hub_stats stats() const {
    std::lock_guard lock(state_->mutex);
    const detail::client_counters& c = state_->counters;
    return {state_->feeds.size(), state_->clients.load(), c.dropped.load(std::memory_order_relaxed),
            c.gaps.load(std::memory_order_relaxed), c.cut.load(std::memory_order_relaxed)};
  }

  /// Exposes `stats()` in `registry`, labelled `hub="<name>"`, for as long as the returned handles live: the gauges
  /// `switchboard_push_feeds` and `switchboard_push_clients`, and the counters `switchboard_push_dropped_total`,
  /// `switchboard_push_gaps_total` and `switchboard_push_cut_total`.
  std::vector<metric_callback> export_metrics(metrics_registry& registry, std::string_view name = "push") const {
    std::vector<metric_callback> out;
    const std::vector<metric_label> labels{{"hub", name}};
    const std::shared_ptr<detail::hub_state> state = state_;
    out.push_back(registry.gauge_callback("switchboard_push_feeds", "Topics with at least one push client.", labels,
                                          [state] {
                                            std::lock_guard lock(state->mutex);
                                            return double(state->feeds.size());
                                          }));
    out.push_back(registry.gauge_callback("switchboard_push_clients", "SSE streams and WebSockets of the hub.", labels,
                                          [state] { return double(state->clients.load()); }));
    const std::shared_ptr<detail::client_counters> counters(state, &state->counters);  // shares the state's life
    const auto counter = [&](const char* metric, const char* help,
                             std::atomic<std::uint64_t> detail::client_counters::*field) {
      out.push_back(registry.counter_field(metric, help, labels, counters, field));
    };
    counter("switchboard_push_dropped_total", "Items discarded by the client queues' overflow policies.",
            &detail::client_counters::dropped);
    counter("switchboard_push_gaps_total", "Gaps handed out to clients for what their queues dropped.",
            &detail::client_counters::gaps);
    counter("switchboard_push_cut_total", "Clients whose connection an overflow of their queue ended.",
            &detail::client_counters::cut);
    return out;
  }

  const hub_options& options() const noexcept { return state_->options; }

 private:
  static http::response busy() {
    http::response r = http::response::problem(http::status::service_unavailable, "Too many clients.");
    r.set("Retry-After", "5");
    return r;
  }

  http::response accept(http::request& req, std::string topic, std::optional<std::uint64_t> from) {
    if (state_->full()) return busy();
    std::shared_ptr<detail::hub_state> state = state_;
    return ws::accept(req, state->options.websocket, [state, topic, from](std::shared_ptr<ws::session> s) {
      if (!state->admit()) return s->close(ws::close_code::try_again_later, "too many clients");
      auto c = std::make_shared<detail::ws_client>(state, s, detail::encoding_of(*s));
      std::weak_ptr<detail::ws_client> weak = c;
      s->on_message([weak](ws::message&& m) {
        if (auto self = weak.lock()) self->on_message(m);
      });
      // The session's handlers hold the client until it closes, then the client lets go of its topics.
      s->on_close([c](const ws::close_info&) { c->leave_all(); });
      if (!topic.empty()) c->join(topic, from);
    });
  }

  std::shared_ptr<detail::hub_state> state_;
};

}  // namespace switchboard::push
