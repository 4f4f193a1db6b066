// switchboard/pubsub/detail/broker_core.hpp
//
// The broker's shared state: topics by name (O(1) lookup), pattern subscriptions in a `pattern_index`, the
// executor groups, and the counts the limits apply to. Publishing takes this lock only to find the topic (shared)
// or to make it (exclusive); the rest of a publish runs under the topic's own lock.
//
// Pattern subscriptions are matched when a topic or a pattern is made, not per publish: a new topic asks the
// pattern index which patterns match it (patterns that cannot match cost nothing), and a new pattern is tried on
// every existing topic once. Each topic then keeps the list of subscribers it fans out to.
//
// Subscription handles hold the core weakly: a subscription that outlives its broker is simply closed.
#pragma once

#include <switchboard/core/detail/string_map.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/pubsub/detail/subscriber.hpp>
#include <switchboard/pubsub/detail/topic_state.hpp>
#include <switchboard/pubsub/error.hpp>
#include <switchboard/pubsub/glob.hpp>
#include <switchboard/pubsub/observer.hpp>
#include <switchboard/pubsub/options.hpp>
#include <switchboard/pubsub/pattern_index.hpp>
#include <switchboard/pubsub/stats.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

template <class Message>
class broker_core : public std::enable_shared_from_this<broker_core<Message>> {
 public:
  using topic_type = topic_state<Message>;
  using topic_ref = std::shared_ptr<topic_type>;
  using subscriber_type = subscriber<Message>;
  using subscriber_ref = std::shared_ptr<subscriber_type>;
  using group_type = executor_group<Message>;
  using options_type = basic_subscription_options<Message>;
  using observer_type = basic_broker_observer<Message>;
  using topic_map = switchboard::detail::string_map<topic_ref>;

  /// Throws `std::invalid_argument` on a limit of 0.
  broker_core(asio::any_io_executor ex, broker_options opts) : executor(std::move(ex)), options(std::move(opts)) {
    if (!executor) throw std::invalid_argument("switchboard::pubsub::broker: no executor");
    if (options.max_topics == 0 || options.max_topic_length == 0 || options.max_subscriptions == 0 ||
        options.max_retained_bytes == 0) {
      throw std::invalid_argument("switchboard::pubsub::broker_options: max_topics, max_topic_length, "
                                  "max_subscriptions and max_retained_bytes must be at least 1");
    }
    check_limits(options.subscriber_limits);
  }

  const asio::any_io_executor executor;
  const broker_options options;

  /// The topic `name`, or null.
  topic_ref find(std::string_view name) const {
    const std::shared_lock lock(mutex_);
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : it->second;
  }

  /// The topic `name`, made if absent; null with `ec` set when it cannot be made.
  topic_ref topic(std::string_view name, std::error_code& ec) {
    if (topic_ref t = find(name)) return t;
    const std::unique_lock lock(mutex_);
    return make_topic_locked(name, ec);
  }

  /// `topic`, and kept for good (`topic_state::kept`): the application asked for it.
  topic_ref kept_topic(std::string_view name, std::error_code& ec) {
    for (;;) {
      topic_ref t = topic(name, ec);
      if (!t || t->keep()) return t;  // else reclaimed meanwhile: make it again
    }
  }

  /// Subscribes to the topic or pattern `name`; null with `ec` set on failure. Throws `std::invalid_argument` for
  /// bad options (zero queue limits, `from` on a pattern).
  subscriber_ref subscribe(std::string_view name, bool is_pattern, options_type o, std::error_code& ec) {
    const queue_limits limits = o.limits.value_or(options.subscriber_limits);
    check_limits(limits);
    if (is_pattern && o.from) throw std::invalid_argument("switchboard::pubsub: `from` needs an exact topic");
    const asio::any_io_executor ex = o.executor ? o.executor : executor;

    const std::unique_lock lock(mutex_);
    if (closed_) return fail(ec, switchboard::error::closed);
    if (name.size() > options.max_topic_length) return fail(ec, error::topic_too_long);
    if (subscriptions_ >= options.max_subscriptions) return fail(ec, error::too_many_subscriptions);
    subscriber_ref s;
    if (is_pattern) {
      s = std::make_shared<subscriber_type>(std::string(name), true, limits, group_locked(ex), std::move(o.on_event));
      patterns_.try_emplace(name).first.add(s);
      for (auto& [topic_name, t] : topics_) {
        if (!glob_match(name, topic_name)) continue;
        const std::lock_guard topic_lock(t->mutex);
        t->subscribers.add(s);
        s->topics.push_back(t);
      }
    } else {
      topic_ref t = make_topic_locked(name, ec);
      if (!t) return nullptr;
      // Under the topic's lock, so that every message is either before the replay's end or queued live.
      std::unique_lock topic_lock(t->mutex);
      if (o.from && *o.from > t->last_sequence) {
        topic_lock.unlock();
        reclaim_locked(t);  // if it was made for this subscription
        return fail(ec, error::cursor_ahead);
      }
      s = std::make_shared<subscriber_type>(std::string(name), false, limits, group_locked(ex), std::move(o.on_event));
      if (o.from && *o.from < t->last_sequence) s->start_replay({t, *o.from + 1, t->last_sequence});
      t->subscribers.add(s);
      s->topics.push_back(t);
    }
    ++s->group->members;
    ++subscriptions_;
    all_.add(s);
    if (is_pattern ? patterns_.find(name)->members() == 1 : ++exact_interest_[std::string(name)] == 1) {
      if (observer_) observer_->on_interest(name, is_pattern, true);
    }
    return s;
  }

  /// Detaches `s` (already cancelled) from its topics, pattern and group, and retries the publishers it held up.
  void unsubscribe(const subscriber_ref& s, std::vector<topic_ref> wake) {
    {
      const std::unique_lock lock(mutex_);
      if (closed_) return;
      topic_ref vacated;  // the exact subscription's topic, when nothing else used it
      for (const topic_ref& t : s->topics) {
        const std::lock_guard topic_lock(t->mutex);
        if (t->erased) continue;  // an erased topic has forgotten its subscribers
        t->subscribers.remove_one();
        if (!s->is_pattern && t->reclaimable_locked()) vacated = t;
      }
      s->topics.clear();
      if (vacated) reclaim_locked(vacated);
      bool last = false;
      if (s->is_pattern) {
        auto* list = patterns_.find(s->name);
        list->remove_one();
        last = list->empty();
        if (last) patterns_.erase(s->name);
      } else if (const auto it = exact_interest_.find(s->name); --it->second == 0) {
        exact_interest_.erase(it);
        last = true;
      }
      if (last && observer_) observer_->on_interest(s->name, s->is_pattern, false);
      if (--s->group->members == 0) std::erase(groups_, s->group);
      --subscriptions_;
      all_.remove_one();
    }
    for (const topic_ref& t : wake) t->retry_publishers();
  }

  /// Replaces the observer (null: none). The new one is first told of every name that has subscriptions now. After
  /// this returns, the old one is never called again.
  void set_observer(std::shared_ptr<observer_type> o) {
    const std::unique_lock lock(mutex_);
    if (closed_) return;
    for (auto& entry : topics_) {
      const std::lock_guard topic_lock(entry.second->mutex);
      entry.second->observer = o.get();
    }
    observer_ = std::move(o);
    if (!observer_) return;
    for (const auto& entry : exact_interest_) observer_->on_interest(entry.first, false, true);
    patterns_.for_each([&](std::string_view pattern, const auto&) { observer_->on_interest(pattern, true, true); });
  }

  /// Gives the subscribers of each existing topic named in `topics` or matched by one of `patterns` one gap of
  /// `reason` (see `basic_broker::report_gap`).
  void report_gaps(const std::vector<std::string>& topics, const std::vector<std::string>& patterns,
                   gap_reason reason) {
    std::vector<topic_ref> found;
    {
      const std::shared_lock lock(mutex_);
      for (const std::string& name : topics) {
        if (const auto it = topics_.find(name); it != topics_.end()) found.push_back(it->second);
      }
      if (!patterns.empty()) {
        for (const auto& entry : topics_) {
          const auto matches = [&](const std::string& p) { return glob_match(p, entry.first); };
          if (std::any_of(patterns.begin(), patterns.end(), matches)) found.push_back(entry.second);
        }
      }
    }
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    for (const topic_ref& t : found) {
      if (!t->report_gap(t, reason)) report_gaps({t->name}, {}, reason);  // erased meanwhile: its successor, if any
    }
  }

  /// Erases the topic `name` if only pattern subscriptions refer to it. Its sequence numbers start again at 1.
  bool erase_topic(std::string_view name) { return erase_or_retire(name, false); }

  /// As `erase_topic`, and when something else still uses the topic, marks it retired (`topic_state::retired`)
  /// so that it is reclaimed when that leaves.
  bool retire_topic(std::string_view name) { return erase_or_retire(name, true); }

  /// Erases `t` if it is still the topic of its name and reclaimable (`topic_state::reclaimable_locked`): retired,
  /// or made by a subscriber or a waiting read for a name nobody published to; and they have left. Without this,
  /// clients subscribing to or polling made-up names (or still listening to a retired topic when it was retired)
  /// would use up `max_topics`, and then nobody could make a topic.
  void reclaim(const topic_ref& t) {
    const std::unique_lock lock(mutex_);
    reclaim_locked(t);
  }

  /// Sets the retention of `name` (made if absent, and kept). Throws `std::system_error` when it cannot be made.
  void set_retention(std::string_view name, retention_limits limits) {
    std::error_code ec;
    const topic_ref t = kept_topic(name, ec);
    if (!t) throw std::system_error(ec, "switchboard::pubsub::broker::set_retention");
    t->set_retention(limits);
  }

  broker_stats stats() const {
    std::vector<topic_ref> topics;
    broker_stats s;
    {
      const std::shared_lock lock(mutex_);
      s.topics = topics_.size();
      s.subscriptions = subscriptions_;
      s.patterns = patterns_.size();
      s.published = erased_.published;
      s.enqueued = erased_.enqueued;
      topics.reserve(topics_.size());
      for (const auto& entry : topics_) topics.push_back(entry.second);
    }
    for (const topic_ref& t : topics) {
      const topic_stats ts = t->stats();
      s.published += ts.published;
      s.enqueued += ts.enqueued;
      s.retained_bytes += ts.retained_bytes;
    }
    s.dropped = dropped_->load(std::memory_order_relaxed);
    s.retained_evicted = budget_->evicted.load(std::memory_order_relaxed);
    return s;
  }

  /// The topics retain more than `max_retained_bytes` (told once by the topic whose append passed it): trims on
  /// the broker's executor.
  void post_budget_trim() {
    asio::post(executor, [weak = this->weak_from_this()] {
      if (const auto core = weak.lock()) core->trim_to_budget();
    });
  }

  /// Evicts the oldest retained messages, whichever topics hold them, until the topics retain at most 90% of
  /// `max_retained_bytes` (the margin keeps a broker at its limit from trimming on every publish). One topic's
  /// lock at a time, after the broker's: the order is that of every other path.
  void trim_to_budget() {
    std::vector<topic_ref> topics;
    {
      const std::shared_lock lock(mutex_);
      topics.reserve(topics_.size());
      for (const auto& entry : topics_) topics.push_back(entry.second);
    }
    // The topics by the age of their oldest retained message, oldest first.
    using oldest = std::pair<std::chrono::steady_clock::time_point, std::size_t>;
    std::priority_queue<oldest, std::vector<oldest>, std::greater<>> queue;
    for (std::size_t i = 0; i < topics.size(); ++i) {
      const std::lock_guard topic_lock(topics[i]->mutex);
      if (!topics[i]->log.empty()) queue.emplace(topics[i]->log.oldest_published_at(), i);
    }
    const std::size_t target = budget_->limit - budget_->limit / 10;
    while (budget_->used.load(std::memory_order_relaxed) > target && !queue.empty()) {
      const std::size_t i = queue.top().second;
      queue.pop();
      topic_type& t = *topics[i];
      const std::lock_guard topic_lock(t.mutex);
      if (t.log.empty()) continue;  // emptied meanwhile (evicted by its own limits, or erased)
      t.log.evict_oldest_for_budget();
      if (!t.log.empty()) queue.emplace(t.log.oldest_published_at(), i);
    }
    // Publishes during the trim may have passed the limit again, and told nobody (the trim was pending).
    if (budget_->finish_trim()) post_budget_trim();
  }

  /// The broker is being destroyed: every subscription is closed with `error::closed` (queued messages are
  /// discarded, waiting receives complete), waiting publishers and readers complete with `error::closed`, and the
  /// references between topics and subscribers are dropped so that nothing keeps the other alive.
  void close() {
    const std::unique_lock lock(mutex_);
    closed_ = true;
    for (auto& entry : topics_) entry.second->close();
    for (const subscriber_ref& s : all_.items()) {
      s->close(switchboard::error::closed, true);
      s->topics.clear();
    }
    topics_.clear();
    patterns_ = {};
    exact_interest_.clear();
    observer_.reset();
    groups_.clear();
    all_ = {};
  }

 private:
  static void check_limits(const queue_limits& limits) {
    if (limits.max_messages == 0 || limits.max_bytes == 0) {
      throw std::invalid_argument("switchboard::pubsub: a subscriber queue needs max_messages and max_bytes >= 1");
    }
  }

  static std::nullptr_t fail(std::error_code& ec, std::error_code reason) {
    ec = reason;
    return nullptr;
  }

  bool erase_or_retire(std::string_view name, bool retire) {
    const std::unique_lock lock(mutex_);
    const auto it = topics_.find(name);
    if (it == topics_.end()) return false;
    const topic_ref t = it->second;
    const std::lock_guard topic_lock(t->mutex);
    if (!t->erasable_locked()) {
      t->retired = t->retired || retire;
      return false;
    }
    erase_locked(it);
    return true;
  }

  // `reclaim`, the broker's lock held.
  void reclaim_locked(const topic_ref& t) {
    const auto it = topics_.find(t->name);
    if (it == topics_.end() || it->second != t) return;  // erased already, perhaps made again
    const std::lock_guard topic_lock(t->mutex);
    if (t->reclaimable_locked()) erase_locked(it);
  }

  // Removes the topic at `it`, keeping its counts in the broker's totals. The broker's lock and the topic's held.
  void erase_locked(typename topic_map::iterator it) {
    topic_type& t = *it->second;
    t.erased = true;
    erased_.published += t.published;
    erased_.enqueued += t.enqueued;
    for (const auto& s : t.subscribers.items()) {  // pattern subscribers
      std::erase_if(s->topics, [&](const topic_ref& held) { return held.get() == &t; });
    }
    t.subscribers = {};
    t.log.clear();  // out of the retention budget now, whoever still holds the topic
    topics_.erase(it);  // the caller holds the topic too, and its lock
  }

  topic_ref make_topic_locked(std::string_view name, std::error_code& ec) {
    if (closed_) return fail(ec, switchboard::error::closed);
    if (const auto it = topics_.find(name); it != topics_.end()) return it->second;
    if (name.size() > options.max_topic_length) return fail(ec, error::topic_too_long);
    if (topics_.size() >= options.max_topics) return fail(ec, error::too_many_topics);
    retention_limits retention = options.retention;
    for (const retention_rule& rule : options.retention_rules) {
      if (glob_match(rule.pattern, name)) {
        retention = rule.limits;
        break;
      }
    }
    auto t = std::make_shared<topic_type>(std::string(name), ++topics_made_, retention, budget_, dropped_,
                                          this->weak_from_this());
    t->observer = observer_.get();
    patterns_.for_each_match(name, [&](std::string_view, subscriber_list<subscriber_type>& list) {
      for (const subscriber_ref& s : list.items()) {
        if (s->gone) continue;
        t->subscribers.add(s);
        s->topics.push_back(t);
      }
    });
    topics_.emplace(std::string(name), t);
    return t;
  }

  std::shared_ptr<group_type> group_locked(const asio::any_io_executor& ex) {
    for (const auto& g : groups_) {
      if (g->executor == ex) return g;
    }
    groups_.push_back(std::make_shared<group_type>(ex));
    return groups_.back();
  }


  struct totals {
    std::uint64_t published = 0;
    std::uint64_t enqueued = 0;
  };

  mutable std::shared_mutex mutex_;
  // Guarded by mutex_:
  topic_map topics_;
  pattern_index<subscriber_list<subscriber_type>> patterns_;
  std::vector<std::shared_ptr<group_type>> groups_;
  subscriber_list<subscriber_type> all_;  // every subscription, for close()
  switchboard::detail::string_map<std::size_t> exact_interest_;  // exact subs by topic
  std::shared_ptr<observer_type> observer_;
  std::size_t subscriptions_ = 0;
  totals erased_;  // counts of erased topics, so that the broker's totals never go down
  std::uint64_t topics_made_ = 0;  // the last topic's incarnation (topic_stats::incarnation)
  bool closed_ = false;
  // What every topic's log retains, against `max_retained_bytes` (shared with the logs, which may outlive this).
  const std::shared_ptr<retention_budget> budget_ = std::make_shared<retention_budget>(options.max_retained_bytes);
  // Copies discarded by overflow policies, over every topic, erased ones included (shared with the topics).
  const std::shared_ptr<std::atomic<std::uint64_t>> dropped_ = std::make_shared<std::atomic<std::uint64_t>>(0);
};

}  // namespace switchboard::pubsub::detail
