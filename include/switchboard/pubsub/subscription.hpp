// switchboard/pubsub/subscription.hpp
//
// `basic_subscription`: the RAII handle of a subscription made by `basic_broker::subscribe`. Destroying it (or
// `unsubscribe`) leaves the topic; moving it moves the subscription.
//
// Events reach the subscriber in one of two ways, chosen at `subscribe`:
//  - a callback (`subscription_options::on_event`), called on the subscription's executor for each event;
//  - `co_await sub.async_receive(asio::use_awaitable)` (or any completion token), one event per call.
//
// Per topic, events come in sequence order, with a gap event exactly where messages were lost (see event.hpp).
// Under `overflow_policy::conflate` a newer message with the same key replaces a queued one: the older one is taken
// out and the newer one queued at the back, so messages still come in sequence order; a replaced message is counted
// as `superseded`, not reported as a gap, since the newer one carries its state. For a pattern
// subscription the key is compared across its topics: use the topic as (part of) the key when they may collide.
#pragma once

#include <switchboard/core/metrics.hpp>
#include <switchboard/pubsub/detail/broker_core.hpp>
#include <switchboard/pubsub/detail/subscriber.hpp>
#include <switchboard/pubsub/event.hpp>
#include <switchboard/pubsub/stats.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::pubsub {

template <class Message>
class basic_broker;

/// A subscription to a topic or a pattern. Move-only; unsubscribes when destroyed.
///
/// Thread safety: every member may be called from any thread. Destroying the handle (or `unsubscribe`) on the
/// subscription's executor guarantees that no callback runs afterwards; from another thread it does not wait: a
/// callback already running finishes, and one that the executor was about to start (it checked the subscription
/// just before) may still start, once; none after that. Post the unsubscribe to the executor when the callback
/// must not run again. The handle may outlive its broker: the subscription is then closed.
template <class Message>
class basic_subscription {
 public:
  using event_type = basic_event<Message>;
  using executor_type = asio::any_io_executor;

  /// A handle that holds no subscription.
  basic_subscription() noexcept = default;
  basic_subscription(basic_subscription&&) noexcept = default;
  /// Unsubscribes from the current subscription, then takes over `other`'s.
  basic_subscription& operator=(basic_subscription&& other) noexcept {
    if (this != &other) {
      unsubscribe();
      state_ = std::move(other.state_);
      broker_ = std::move(other.broker_);
    }
    return *this;
  }
  ~basic_subscription() { unsubscribe(); }

  /// True while it holds a subscription (closed ones included).
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// Leaves the topic or pattern now: nothing more is queued, queued events are discarded, a waiting
  /// `async_receive` completes with `asio::error::operation_aborted`, and publishers waiting for room in this
  /// subscriber's queue go on. Idempotent.
  void unsubscribe() noexcept {
    if (!state_) return;
    auto state = std::move(state_);
    auto wake = state->cancel();
    if (auto broker = broker_.lock()) broker->unsubscribe(state, std::move(wake));
    broker_.reset();
  }

  /// Waits for the next event. Completion signature: `void(std::error_code, event_type)`.
  ///  - Completes with a message or a gap event, in order.
  ///  - Once the subscription is closed and everything queued before was received: completes with
  ///    `switchboard::error::overflow_disconnect` (its `disconnect` policy cut it off) or `switchboard::error::closed`
  ///    (the broker was destroyed), whichever came first, and an empty event; every later call completes the same
  ///    way.
  ///  - Completes through the subscription's executor: when the handler's associated executor is that same
  ///    executor, it runs inside the broker's delivery there without another post.
  /// Only one `async_receive` may wait at a time; it must not be used on a subscription with a callback (both throw
  /// `std::logic_error`). Cancellation: per-operation cancellation (any type) completes a waiting receive with
  /// `asio::error::operation_aborted`; no event is lost. Destroying the subscription completes it the same way.
  template <class Token>
  auto async_receive(Token&& token) {
    if (!state_) throw std::logic_error("switchboard::pubsub: async_receive on an empty subscription");
    return asio::async_initiate<Token, void(std::error_code, event_type)>(
        [](auto handler, std::shared_ptr<detail::subscriber<Message>> s) {
          const asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
          s->receive(std::move(handler), slot);
        },
        token, state_);
  }

  /// The queue and counters now. Precondition: `*this` holds a subscription.
  subscription_stats stats() const { return state_->stats(); }

  /// The topic or pattern subscribed to. Precondition: `*this` holds a subscription.
  std::string_view topic() const noexcept { return state_->name; }
  /// True for a pattern subscription. Precondition: `*this` holds a subscription.
  bool is_pattern() const noexcept { return state_->is_pattern; }
  /// The bounds and overflow policy of its queue. Precondition: `*this` holds a subscription.
  const queue_limits& limits() const noexcept { return state_->limits(); }
  /// Where its events are delivered. Precondition: `*this` holds a subscription.
  executor_type get_executor() const noexcept { return state_->group->executor; }

  /// Exposes its queue and counters in `registry`, labelled `subscription="<name>"`, for as long as the returned
  /// handles live: `switchboard_pubsub_subscription_queue_depth` and `..._queue_bytes` (gauges),
  /// `..._delivered_total`, `..._dropped_total` and `..._gaps_total` (counters). The handles keep the counters
  /// readable after unsubscribing; they must not outlive the registry. Throws `std::logic_error` on an empty handle.
  std::vector<metric_callback> export_metrics(metrics_registry& registry, std::string_view name) const {
    // Checked now: the callbacks would read through a null state at the next scrape.
    if (!state_) throw std::logic_error("switchboard::pubsub: export_metrics on an empty subscription");
    std::vector<metric_callback> out;
    const std::vector<metric_label> labels{{"subscription", name}};
    auto s = state_;
    out.push_back(registry.gauge_callback("switchboard_pubsub_subscription_queue_depth",
                                          "Messages queued for a subscriber.", labels,
                                          [s] { return double(s->stats().depth); }));
    out.push_back(registry.gauge_callback("switchboard_pubsub_subscription_queue_bytes",
                                          "Bytes queued for a subscriber.", labels,
                                          [s] { return double(s->stats().bytes); }));
    out.push_back(registry.counter_callback("switchboard_pubsub_subscription_delivered_total",
                                            "Messages delivered to a subscriber.", labels,
                                            [s] { return s->stats().delivered; }));
    out.push_back(registry.counter_callback("switchboard_pubsub_subscription_dropped_total",
                                            "Messages a subscriber's overflow policy discarded.", labels,
                                            [s] { return s->stats().dropped; }));
    out.push_back(registry.counter_callback("switchboard_pubsub_subscription_gaps_total",
                                            "Gap events delivered to a subscriber.", labels,
                                            [s] { return s->stats().gaps; }));
    return out;
  }

 private:
  friend class basic_broker<Message>;

  basic_subscription(std::shared_ptr<detail::subscriber<Message>> state, std::weak_ptr<detail::broker_core<Message>> b)
      : state_(std::move(state)), broker_(std::move(b)) {}

  std::shared_ptr<detail::subscriber<Message>> state_;
  std::weak_ptr<detail::broker_core<Message>> broker_;
};

/// The subscription of the default message type.
using subscription = basic_subscription<message>;

}  // namespace switchboard::pubsub
