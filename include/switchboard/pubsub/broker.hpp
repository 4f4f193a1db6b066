// switchboard/pubsub/broker.hpp
//
// `basic_broker`: in-process publish/subscribe with backpressure, sequence numbers, gap events and retention
// (DESIGN promises 2, 3 and 4). SSE, long polling and WebSocket resume build on its topics' sequence numbers and
// retention. See docs/pubsub.md for the semantics of each policy.
//
//     asio::io_context ctx;
//     switchboard::pubsub::broker broker(ctx.get_executor(), {.retention = {.max_messages = 100}});
//     auto news = broker.subscribe_pattern("news.*", {.on_event = [](std::error_code ec, const auto& ev) {
//       if (ev.is_message()) use(ev.message().data());             // on the subscription's executor
//       else if (ev.is_gap()) resync(ev.gap());                    // lost ev.gap().first..last
//     }});
//     broker.publish("news.eu", {.payload = switchboard::shared_bytes::copy("hello")});   // any thread
//     co_await broker.async_publish("news.eu", {...}, asio::use_awaitable);              // waits for `wait` queues
//     auto sub = broker.subscribe("news.eu", {.from = last_seen});   // replay after last_seen, then live
//     auto ev = co_await sub.async_receive(asio::use_awaitable);     // throws when the subscription ends
//     auto page = broker.read("news.eu", cursor, 100);               // polling
//
// Thread safety: every member may be called from any thread. Publishing takes the broker's lock shared (to find
// the topic) and the topic's lock; subscriptions to different topics do not contend. Destroy the broker (and its
// subscriptions) before the io_contexts their executors belong to, as for any Asio I/O object.
#pragma once

#include <switchboard/core/error.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/pubsub/detail/broker_core.hpp>
#include <switchboard/pubsub/detail/topic_state.hpp>
#include <switchboard/pubsub/error.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/message.hpp>
#include <switchboard/pubsub/observer.hpp>
#include <switchboard/pubsub/options.hpp>
#include <switchboard/pubsub/results.hpp>
#include <switchboard/pubsub/retention.hpp>
#include <switchboard/pubsub/stats.hpp>
#include <switchboard/pubsub/subscription.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/execution_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::pubsub {

/// A publish/subscribe broker for `Message` (see `broker_message` in message.hpp). Not copyable or movable.
template <class Message>
class basic_broker {
  static_assert(broker_message<Message>, "see broker_message in switchboard/pubsub/message.hpp");

 public:
  using message_type = Message;
  using draft_type = typename Message::draft_type;
  using event_type = basic_event<Message>;
  using subscription_type = basic_subscription<Message>;
  using subscription_options = basic_subscription_options<Message>;
  using read_result = basic_read_result<Message>;
  using latest_reading_type = basic_latest_reading<Message>;
  using executor_type = asio::any_io_executor;
  using clock = std::chrono::steady_clock;

  /// A broker whose subscriptions deliver on `executor` unless they name their own. Throws
  /// `std::invalid_argument` on bad options (a limit of 0).
  explicit basic_broker(executor_type executor, broker_options options = {})
      : core_(std::make_shared<core_type>(std::move(executor), std::move(options))) {}

  /// A broker on `context`'s executor.
  template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
  explicit basic_broker(ExecutionContext& context, broker_options options = {})
      : basic_broker(executor_type(context.get_executor()), std::move(options)) {}

  basic_broker(const basic_broker&) = delete;
  basic_broker& operator=(const basic_broker&) = delete;

  /// Closes every subscription (`switchboard::error::closed`, queued messages discarded) and completes waiting
  /// publishers and readers with `switchboard::error::closed`.
  ~basic_broker() { core_->close(); }

  executor_type get_executor() const noexcept { return core_->executor; }
  const broker_options& options() const noexcept { return core_->options; }

  // --- Publishing ---

  /// Publishes `draft` to `topic` now: stamps it with the topic's next sequence number, retains it (if the topic
  /// retains) and queues it for every subscriber under each one's overflow policy. Never waits: if a `wait`
  /// subscriber has no room (or `async_publish` calls are already waiting on this topic), nothing is published and
  /// the result says `error::would_block`; `draft` is consumed either way. Also fails with `too_many_topics`,
  /// `topic_too_long`, or `switchboard::error::closed`.
  publish_result publish(std::string_view topic, draft_type draft) {
    for (;;) {
      std::error_code ec;
      const auto t = core_->topic(topic, ec);
      if (!t) return publish_result{ec};
      if (auto result = t->publish(t, draft)) return *result;
      // The topic was erased meanwhile: publish to the new one.
    }
  }

  /// Publishes `draft` to `topic`, waiting while a `wait` subscriber of the topic is full. Completion signature:
  /// `void(std::error_code, std::uint64_t sequence)`.
  ///  - Completes when the message is published (with its sequence number), that is, when every `wait`
  ///    subscriber had room (other policies never hold a publisher up). Publishers of one topic are served in
  ///    the order they called, so a topic's messages keep that order.
  ///  - With `switchboard::error::timeout` if `timeout` (when not zero) passes first: nothing was published.
  ///  - With `too_many_topics`, `topic_too_long` or `switchboard::error::closed` (the broker was destroyed).
  /// Cancellation: per-operation cancellation (any type) of a waiting publish completes it with
  /// `asio::error::operation_aborted`; nothing is published. The broker keeps `draft` and the topic's name (a
  /// copy of `topic`, or the topic itself when it exists already).
  template <class Token>
  auto async_publish(std::string_view topic, draft_type draft, clock::duration timeout, Token&& token) {
    // An existing topic is found now and its own name serves, so `topic` is not copied (`name` stays empty). A token
    // that initiates later (`asio::deferred`) still publishes to the topic of that name then: an erased topic
    // refuses, and the loop makes the new one.
    topic_ref found = core_->find(topic);
    std::string name = found ? std::string() : std::string(topic);
    return asio::async_initiate<Token, void(std::error_code, std::uint64_t)>(
        [core = core_](auto handler, topic_ref t, std::string name, draft_type draft, clock::duration timeout) {
          typename topic_type::wait_options wait{asio::get_associated_executor(handler, core->executor), timeout,
                                                 asio::get_associated_cancellation_slot(handler)};
          typename topic_type::publish_handler h(std::move(handler), core->executor);
          for (;;) {
            std::error_code ec;
            if (!t) t = core->topic(name, ec);
            if (!t) return h.complete(ec, 0);
            if (t->async_publish(t, draft, h, wait)) return;
            // The topic was erased meanwhile: publish to the new one of its name.
            if (name.empty()) name = t->name;
            t = nullptr;
          }
        },
        token, std::move(found), std::move(name), std::move(draft), timeout);
  }

  /// `async_publish` without a deadline.
  template <class Token>
  auto async_publish(std::string_view topic, draft_type draft, Token&& token) {
    return async_publish(topic, std::move(draft), clock::duration::zero(), std::forward<Token>(token));
  }

  // --- Subscribing ---

  /// Subscribes to `topic` (exact match). With `options.from`, replays what the topic retains after that sequence
  /// number first. Throws `std::system_error` with `too_many_subscriptions`, `too_many_topics`, `topic_too_long`,
  /// `cursor_ahead` or `switchboard::error::closed`, and `std::invalid_argument` on bad options.
  subscription_type subscribe(std::string_view topic, subscription_options options = {}) {
    std::error_code ec;
    auto s = subscribe(topic, std::move(options), ec);
    if (ec) throw std::system_error(ec, "switchboard::pubsub::broker::subscribe");
    return s;
  }

  /// `subscribe`, reporting failure in `ec` (the handle is then empty).
  subscription_type subscribe(std::string_view topic, subscription_options options, std::error_code& ec) {
    return make(core_->subscribe(topic, false, std::move(options), ec));
  }

  /// Subscribes to every topic, present and future, that the Redis glob `pattern` matches (see glob.hpp). Throws
  /// as `subscribe`; `options.from` is not allowed (cursors belong to single topics).
  subscription_type subscribe_pattern(std::string_view pattern, subscription_options options = {}) {
    std::error_code ec;
    auto s = subscribe_pattern(pattern, std::move(options), ec);
    if (ec) throw std::system_error(ec, "switchboard::pubsub::broker::subscribe_pattern");
    return s;
  }

  /// `subscribe_pattern`, reporting failure in `ec`.
  subscription_type subscribe_pattern(std::string_view pattern, subscription_options options, std::error_code& ec) {
    return make(core_->subscribe(pattern, true, std::move(options), ec));
  }

  // --- Polling: the retained log of a topic ---

  /// The sequence number of the topic's newest message (0 before the first, or for an unknown topic).
  std::uint64_t last_sequence(std::string_view topic) const {
    const auto t = core_->find(topic);
    return t ? t->stats().last_sequence : 0;
  }

  /// The topic's newest message, if it is retained.
  std::optional<Message> latest(std::string_view topic) const {
    const auto t = core_->find(topic);
    return t ? t->latest() : std::nullopt;
  }

  /// `latest` with the topic's incarnation and last sequence number, read together from one topic (see
  /// `basic_latest_reading`); all zero and no message for a topic that does not exist.
  latest_reading_type latest_reading(std::string_view topic) const {
    const auto t = core_->find(topic);
    return t ? t->latest_reading() : latest_reading_type{};
  }

  /// What the topic retains after the cursor `after`: a gap first if the messages right after it are no longer
  /// retained, then at most `max` messages, oldest first. A cursor past the last sequence number gives
  /// `error::cursor_ahead` in the result.
  read_result read(std::string_view topic, std::uint64_t after, std::size_t max) const {
    if (const auto t = core_->find(topic)) return t->read(after, max);
    read_result r;  // an unknown topic is a topic without messages
    if (after > 0) r.error = make_error_code(error::cursor_ahead);
    r.next_cursor = after;
    return r;
  }

  /// `read`, but when nothing follows `after` yet, waits for the next message (long polling). Completion
  /// signature: `void(std::error_code, read_result)`.
  ///  - Completes at once when `read` would return a gap, messages or an error (`error::cursor_ahead`).
  ///  - Otherwise when the next message is published (with it, retained or not), with
  ///    `switchboard::error::timeout` and an empty result after `timeout` (when not zero), or with
  ///    `switchboard::error::closed` if the broker is destroyed. Makes the topic if absent (forgotten again if the
  ///    read ends before anything is published: see `broker_options::max_topics`).
  /// Cancellation: per-operation cancellation (any type) completes a waiting read with
  /// `asio::error::operation_aborted`.
  template <class Token>
  auto async_read(std::string_view topic, std::uint64_t after, std::size_t max, clock::duration timeout,
                  Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, read_result)>(
        [core = core_](auto handler, std::string topic, std::uint64_t after, std::size_t max,
                       clock::duration timeout) {
          typename topic_type::wait_options wait{asio::get_associated_executor(handler, core->executor), timeout,
                                                 asio::get_associated_cancellation_slot(handler)};
          typename topic_type::read_handler h(std::move(handler), core->executor);
          for (;;) {
            std::error_code ec;
            const auto t = core->topic(topic, ec);
            if (!t) return h.complete(ec, read_result{});
            if (t->async_read(after, max, h, wait)) return;
          }
        },
        token, std::string(topic), after, max, timeout);
  }

  /// `async_read` without a deadline.
  template <class Token>
  auto async_read(std::string_view topic, std::uint64_t after, std::size_t max, Token&& token) {
    return async_read(topic, after, max, clock::duration::zero(), std::forward<Token>(token));
  }

  // --- Topics ---

  /// Sets how much `topic` retains (making the topic if absent, and keeping it until `erase_topic` or
  /// `retire_topic`), evicting what no longer fits. Throws `std::system_error` when the topic cannot be made.
  void set_retention(std::string_view topic, retention_limits limits) { core_->set_retention(topic, limits); }

  /// Erases `topic`: its retained messages and its numbering (the next message published to that name is number
  /// 1 again, so cursors of the old topic become meaningless; a client holding one gets `error::cursor_ahead` or,
  /// once the new topic has caught up, replays from the wrong place). Refused (false) while exact subscriptions,
  /// waiting publishers or waiting readers use it; pattern subscriptions let go of it. For topics made per entity
  /// (a chat room, a user) that are gone for good.
  bool erase_topic(std::string_view topic) { return core_->erase_topic(topic); }

  /// Erases `topic` as `erase_topic` does, now (true) or, while exact subscriptions, waiting publishers or waiting
  /// readers use it, as soon as the last of them leaves (false). For a per-entity topic whose entity is gone (a
  /// finished job that is forgotten, a closed room) while a client may still listen: with `erase_topic` alone the
  /// topic would stay for good, and such topics would add up to `max_topics`. A message or gap published to it
  /// before then cancels the retirement (the topic is in use again).
  bool retire_topic(std::string_view topic) { return core_->retire_topic(topic); }

  /// Tells the current subscribers of `topic` (if it exists) that messages were lost before this point, for a
  /// `reason` the broker cannot see itself: `gap_reason::upstream` when a bridge to other processes lost its
  /// connection (see redis_bridge.hpp). The gap takes the topic's next sequence number (so that numbers still
  /// account for everything: the one number stands for an unknown count) and comes after the messages published
  /// before the call, including those of `async_publish` calls still waiting for room. The topic's retained log is
  /// cleared (it holds consecutive numbers only): a later replay from before the gap begins with a retention gap.
  void report_gap(std::string_view topic, gap_reason reason) { core_->report_gaps({std::string(topic)}, {}, reason); }

  /// `report_gap` for each existing topic named in `topics` or matched by one of the glob `patterns`, once each.
  void report_gaps(const std::vector<std::string>& topics, const std::vector<std::string>& patterns,
                   gap_reason reason) {
    core_->report_gaps(topics, patterns, reason);
  }

  /// Installs `observer` (null: removes the current one), which learns which topics and patterns gain their first
  /// and lose their last subscription, and of every message published (see observer.hpp). It is first told of
  /// every topic and pattern subscribed now. After this returns, a replaced observer is never called again. One
  /// observer at a time: the Redis bridge is one.
  void set_observer(std::shared_ptr<basic_broker_observer<Message>> observer) {
    core_->set_observer(std::move(observer));
  }

  /// The counters of `topic`, if it exists.
  std::optional<topic_stats> stats(std::string_view topic) const {
    const auto t = core_->find(topic);
    return t ? std::optional<topic_stats>(t->stats()) : std::nullopt;
  }

  /// The broker's totals.
  broker_stats stats() const { return core_->stats(); }

  // --- Metrics ---

  /// Exposes the broker's totals in `registry` for as long as the returned handles live (they must not outlive the
  /// registry): `switchboard_pubsub_topics`, `..._subscriptions` and `..._retained_bytes` (gauges),
  /// `..._published_total`, `..._enqueued_total`, `..._dropped_total` and `..._retained_evicted_total`
  /// (counters). Each scrape walks the topics.
  std::vector<metric_callback> export_metrics(metrics_registry& registry) const {
    std::vector<metric_callback> out;
    const auto core = core_;
    const auto gauge = [&](const char* name, const char* help, auto read) {
      out.push_back(registry.gauge_callback(name, help, {}, [core, read] { return double(read(core->stats())); }));
    };
    const auto counter = [&](const char* name, const char* help, auto read) {
      out.push_back(registry.counter_callback(name, help, {}, [core, read] { return read(core->stats()); }));
    };
    gauge("switchboard_pubsub_topics", "Topics.", [](const broker_stats& s) { return s.topics; });
    gauge("switchboard_pubsub_subscriptions", "Subscriptions.", [](const broker_stats& s) { return s.subscriptions; });
    gauge("switchboard_pubsub_retained_bytes", "Bytes retained over every topic.",
          [](const broker_stats& s) { return s.retained_bytes; });
    counter("switchboard_pubsub_published_total", "Messages published.",
            [](const broker_stats& s) { return s.published; });
    counter("switchboard_pubsub_enqueued_total", "Copies of messages accepted into subscriber queues.",
            [](const broker_stats& s) { return s.enqueued; });
    counter("switchboard_pubsub_retained_evicted_total",
            "Retained messages evicted to keep within max_retained_bytes.",
            [](const broker_stats& s) { return s.retained_evicted; });
    counter("switchboard_pubsub_dropped_total", "Copies of messages discarded by subscribers' overflow policies.",
            [](const broker_stats& s) { return s.dropped; });
    return out;
  }

  /// Exposes the counters of `topic` (made if absent, and kept until `erase_topic` or `retire_topic`) in
  /// `registry`, labelled `topic="<name>"` (the name must be UTF-8), for as long as the returned handles live:
  /// `switchboard_pubsub_topic_last_sequence`, `..._subscribers`, `..._retained_messages` and `..._retained_bytes`
  /// (gauges), `..._published_total`, `..._enqueued_total` and `..._dropped_total` (counters). Throws
  /// `std::system_error` when the topic cannot be made.
  std::vector<metric_callback> export_topic_metrics(metrics_registry& registry, std::string_view topic) const {
    std::error_code ec;
    const auto t = core_->kept_topic(topic, ec);
    if (!t) throw std::system_error(ec, "switchboard::pubsub::broker::export_topic_metrics");
    std::vector<metric_callback> out;
    const std::vector<metric_label> labels{{"topic", topic}};
    const auto gauge = [&](const char* name, const char* help, auto read) {
      out.push_back(registry.gauge_callback(name, help, labels, [t, read] { return double(read(t->stats())); }));
    };
    const auto counter = [&](const char* name, const char* help, auto read) {
      out.push_back(registry.counter_callback(name, help, labels, [t, read] { return read(t->stats()); }));
    };
    gauge("switchboard_pubsub_topic_last_sequence", "Sequence number of the topic's newest message.",
          [](const topic_stats& s) { return s.last_sequence; });
    gauge("switchboard_pubsub_topic_subscribers", "Subscriptions attached to the topic.",
          [](const topic_stats& s) { return s.subscribers; });
    gauge("switchboard_pubsub_topic_retained_messages", "Messages the topic retains.",
          [](const topic_stats& s) { return s.retained; });
    gauge("switchboard_pubsub_topic_retained_bytes", "Bytes the topic retains.",
          [](const topic_stats& s) { return s.retained_bytes; });
    counter("switchboard_pubsub_topic_published_total", "Messages published to the topic.",
            [](const topic_stats& s) { return s.published; });
    counter("switchboard_pubsub_topic_enqueued_total", "Copies of the topic's messages accepted into queues.",
            [](const topic_stats& s) { return s.enqueued; });
    counter("switchboard_pubsub_topic_dropped_total", "Copies of the topic's messages discarded by overflow policies.",
            [](const topic_stats& s) { return s.dropped; });
    return out;
  }

 private:
  using core_type = detail::broker_core<Message>;
  using topic_type = detail::topic_state<Message>;
  using topic_ref = std::shared_ptr<topic_type>;

  subscription_type make(std::shared_ptr<detail::subscriber<Message>> s) const {
    if (!s) return subscription_type();
    return subscription_type(std::move(s), core_);
  }

  std::shared_ptr<core_type> core_;
};

/// The broker of the default message type.
using broker = basic_broker<message>;
/// What `broker::read` returns.
using read_result = basic_read_result<message>;

}  // namespace switchboard::pubsub
