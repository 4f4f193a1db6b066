// switchboard/longpoll/endpoint.hpp
//
// `endpoint`: long polling over a broker topic, for clients that cannot keep a WebSocket or an event stream open.
//
//   GET /topics/{topic}/poll?cursor=N&timeout=S&max=M
//
// answers at once with what the topic retains after cursor N (at most `max`, capped by `max_batch`), or, when the
// client has seen everything, holds ("parks") the request until the next message is published or S seconds pass
// (default 25, capped, shortened by a little random jitter; `timeout=0` answers at once). The body is the JSON of
// batch.hpp; `ETag` carries the next cursor, and a client may send it back in `If-None-Match` instead of `cursor`
// (then an answer with nothing new is 304 Not Modified, RFC 9110 §13.1.2). No cursor at all: start at the newest
// message, i.e. wait for the next one.
//
//   switchboard::runtime rt;
//   switchboard::pubsub::broker broker(rt.executor(), {.retention = {.max_messages = 1000}});
//   switchboard::longpoll::endpoint polls(rt, broker);     // drained with the runtime
//   http::router routes;
//   switchboard::longpoll::add_route(routes, polls);     // GET /topics/{topic}/poll
//
// A parked request holds no thread, nor its HTTP request and buffers (given back with `responder::release_request`):
// it is a waiting `broker::async_read` and a small record here, beyond the connection (docs/long-polling.md has the
// measurement). Its deadline is kept by the clock its thread's parked requests share (core/detail/tick_clock.hpp),
// not by a timer of its own: so a wait ends up to a quarter of its timeout late, at most a second. A client
// that disconnects while parked is noticed by the server (the request's cancellation slot) and its request is
// released at once. Limits: `max_parked_per_client` (429) and `max_parked` (503), both with `Retry-After`. A drain
// answers every parked request at once (with what it has: nothing new, the same cursor), so that a restart does
// not wait out the longest poll.
//
// Thread safety: `handle` runs on the connection's thread, as the server calls it; every other member may be
// called from any thread. The endpoint's state lives while routes or parked requests use it, so destroying the
// `endpoint` object itself only unregisters it from the runtime.
#pragma once

#include <switchboard/core/detail/per_key_count.hpp>
#include <switchboard/core/detail/tick_clock.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/http/etag.hpp>
#include <switchboard/http/handler.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/longpoll/batch.hpp>
#include <switchboard/longpoll/error.hpp>
#include <switchboard/longpoll/options.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/error.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::longpoll {

/// The endpoint's counters.
struct endpoint_stats {
  /// Requests parked now.
  std::size_t parked = 0;
  /// The most parked at once so far.
  std::size_t peak_parked = 0;
  /// Parked requests answered by a publish (with messages).
  std::uint64_t woken = 0;
  /// Parked requests whose wait ran out (answered with nothing new).
  std::uint64_t timed_out = 0;
  /// Parked requests whose client went away.
  std::uint64_t disconnected = 0;
  /// Parked requests answered by a drain.
  std::uint64_t drained = 0;
  /// Requests refused with 429 (`max_parked_per_client`).
  std::uint64_t refused_client = 0;
  /// Requests refused with 503 (`max_parked`).
  std::uint64_t refused_total = 0;
};

namespace detail {

/// What a request asks for, once its query and fields are read.
struct poll_query {
  std::uint64_t cursor = 0;
  std::chrono::milliseconds timeout{0};
  std::size_t max = 0;
  /// The client sent the cursor as an entity tag in `If-None-Match`: nothing new is a 304.
  bool conditional = false;
};

/// The state shared by the endpoint, its routes and its parked requests.
class endpoint_state : public std::enable_shared_from_this<endpoint_state> {
 public:
  endpoint_state(pubsub::broker& broker, endpoint_options options) : broker_(broker), options_(std::move(options)) {
    if (options_.max_batch == 0 || options_.max_parked == 0 || options_.max_parked_per_client == 0) {
      throw std::invalid_argument("switchboard::longpoll::endpoint: max_batch, max_parked and max_parked_per_client "
                                  "must be at least 1");
    }
    if (options_.jitter < 0 || options_.jitter >= 1) {
      throw std::invalid_argument("switchboard::longpoll::endpoint: jitter must be in [0, 1)");
    }
    if (options_.default_timeout > options_.max_timeout) options_.default_timeout = options_.max_timeout;
  }

  void handle(http::request& req, http::responder res) {
    const std::string_view name = req.param(options_.topic_param);
    const std::string topic = options_.topic_prefix + std::string(name);
    if (name.empty() || (options_.allow_topic && !options_.allow_topic(topic))) {
      return res.send(http::response::problem(http::status::not_found, "No such topic."));
    }
    const poll_query q = parse(req, topic);  // throws problem_error (400) on a bad query
    const pubsub::read_result now = broker_.read(topic, q.cursor, q.max);
    if (!caught_up(now) || q.timeout.count() == 0) return res.send(answer(now, q));

    auto p = std::make_shared<parked>(std::move(res), q, http::client_key(options_.client_key, req));
    if (auto refusal = admit(p)) {
      changed();
      return p->res.send(std::move(*refusal));
    }
    // The server emits the request's slot (on this thread) when the client goes away: pass it on to the read.
    p->request_slot = req.cancellation_slot();
    if (p->request_slot.is_connected()) {
      p->request_slot.assign([weak = std::weak_ptr<parked>(p)](asio::cancellation_type type) {
        if (auto self = weak.lock()) self->signal.emit(type);
      });
    }
    const std::chrono::milliseconds wait = jittered(q.timeout);
    auto& clock = switchboard::detail::tick_clock::of(p->executor);
    clock.join(*p, p->executor, std::chrono::steady_clock::now() + wait, wait);
    broker_.async_read(topic, q.cursor, q.max,
                       asio::bind_cancellation_slot(
                           p->signal.slot(),
                           asio::bind_executor(p->executor, [self = shared_from_this(), p](std::error_code ec,
                                                                                           pubsub::read_result r) {
                             self->finish(*p, ec, std::move(r));
                           })));
    // Everything the answer needs is in `p`: the connection may free the request (and its buffers) while it waits.
    p->res.release_request();
    changed();  // once the read waits, so that an observer sees a parked request that a publish will answer
  }

  void drain(std::function<void(drain_report)> done) {
    std::vector<std::shared_ptr<parked>> waiting;
    drain_report report;
    {
      const std::lock_guard lock(mutex_);
      draining_ = true;
      if (!parked_.empty()) {
        drain_waiters_.push_back(std::move(done));
        waiting.assign(parked_.begin(), parked_.end());
      }
      // Nothing parked: the drain is over. A later call (the runtime's second stop, say) gets the same report as the
      // first, as `drainable` promises: the requests this drain answered (none parks once draining, so the count is
      // final), not an empty report.
      report.drained = stats_.drained;
    }
    if (waiting.empty()) {
      if (done) done(report);
      return;
    }
    // Each parked read is cancelled on its connection's thread (signals are not thread-safe), and answered there.
    for (auto& p : waiting) {
      asio::post(p->executor, [p] {
        p->draining = true;
        p->signal.emit(asio::cancellation_type::terminal);
      });
    }
  }

  const endpoint_options& options() const noexcept { return options_; }

  endpoint_stats stats() const {
    const std::lock_guard lock(mutex_);
    endpoint_stats s = stats_;
    s.parked = parked_.size();
    return s;
  }

 private:
  // A parked request. It is a member of its thread's tick clock from when it parks to when it is answered: the
  // clock's tick at its deadline cancels its read, as a client that goes away does.
  struct parked final : switchboard::detail::tick_clock::member, std::enable_shared_from_this<parked> {
    using tick_clock = switchboard::detail::tick_clock;

    parked(http::responder r, const poll_query& query, std::string key)
        : res(std::move(r)), executor(res.get_executor()), q(query), client(std::move(key)) {}
    ~parked() { tick_clock::leave(*this); }

    tick_clock::time_point tick(tick_clock::time_point) override {
      asio::dispatch(executor, [self = shared_from_this()] {  // signals are not thread-safe: on the request's thread
        self->timed_out = true;
        self->signal.emit(asio::cancellation_type::terminal);
      });
      return tick_clock::time_point::max();  // answered now; it leaves the clock then
    }
    std::shared_ptr<tick_clock::member> tick_ref() noexcept override { return weak_from_this().lock(); }

    http::responder res;
    asio::any_io_executor executor;  // the connection's: where the request is answered
    poll_query q;
    std::string client;
    asio::cancellation_signal signal;    // cancels the broker read: client gone, or drain
    asio::cancellation_slot request_slot;  // the server's slot for this request, cleared before answering
    std::list<std::shared_ptr<parked>>::iterator position;
    bool draining = false;   // set (on `executor`) before a drain cancels the read
    bool timed_out = false;  // set (on `executor`) before the deadline cancels the read
  };

  static pubsub::read_result nothing_new(std::uint64_t cursor) {
    pubsub::read_result r;
    r.next_cursor = cursor;
    return r;
  }

  static bool caught_up(const pubsub::read_result& r) noexcept {
    return !r.error && !r.missed && r.messages.empty();
  }

  poll_query parse(const http::request& req, std::string_view topic) const {
    poll_query q;
    q.max = options_.max_batch;
    q.timeout = options_.default_timeout;
    if (const auto asked = req.query_number<std::size_t>("max")) {
      if (*asked == 0) throw http::problem_error(http::status::bad_request, "query parameter 'max' must be at least 1");
      q.max = std::min(*asked, options_.max_batch);
    }
    if (const auto timeout = req.query_seconds("timeout", options_.max_timeout)) q.timeout = *timeout;
    if (const auto cursor = req.query_number<std::uint64_t>("cursor")) {
      q.cursor = *cursor;
    } else if (const auto tagged = cursor_from_tags(req.header("If-None-Match"))) {
      q.cursor = *tagged;
      q.conditional = true;
    } else {
      q.cursor = broker_.last_sequence(topic);  // no cursor: from the newest message on
    }
    return q;
  }

  // The first entity tag in `If-None-Match` that holds a cursor (the ETag this endpoint sent). Weak comparison
  // applies to If-None-Match (RFC 9110 §13.1.2), so W/"N" counts too.
  static std::optional<std::uint64_t> cursor_from_tags(std::string_view list) {
    std::optional<std::uint64_t> found;
    http::for_each_entity_tag(list, [&](std::string_view field) {
      if (found) return;
      const auto tag = http::entity_tag::parse(field);
      if (!tag) return;
      const std::string_view opaque = tag->opaque();
      std::uint64_t value = 0;
      const auto [ptr, ec] = std::from_chars(opaque.data(), opaque.data() + opaque.size(), value);
      if (!opaque.empty() && ec == std::errc() && ptr == opaque.data() + opaque.size()) found = value;
    });
    return found;
  }

  // Shortens the wait by a random part of up to `jitter` of it.
  std::chrono::milliseconds jittered(std::chrono::milliseconds timeout) const {
    if (options_.jitter == 0 || timeout.count() < 2) return timeout;
    thread_local std::minstd_rand rng(std::random_device{}());
    std::uniform_real_distribution<double> cut(0.0, options_.jitter);
    return std::chrono::milliseconds(
        std::max<std::int64_t>(1, static_cast<std::int64_t>(double(timeout.count()) * (1.0 - cut(rng)))));
  }

  // Counts `p` in, or says why not (429 or 503 with Retry-After). A request that comes while the endpoint drains
  // is answered at once, as the drain answers the parked ones.
  std::optional<http::response> admit(const std::shared_ptr<parked>& p) {
    const std::lock_guard lock(mutex_);
    if (draining_) return answer(nothing_new(p->q.cursor), p->q);
    if (parked_.size() >= options_.max_parked) {
      ++stats_.refused_total;
      return refusal(http::status::service_unavailable, error::too_many_parked);
    }
    if (!per_client_.try_add(p->client, options_.max_parked_per_client)) {
      ++stats_.refused_client;
      return refusal(http::status::too_many_requests, error::too_many_for_client);
    }
    p->position = parked_.insert(parked_.end(), p);
    stats_.peak_parked = std::max(stats_.peak_parked, parked_.size());
    return std::nullopt;
  }

  http::response refusal(http::status status, error why) const {
    http::response r = http::response::problem(status, make_error_code(why).message());
    r.set("Retry-After", std::to_string(options_.retry_after.count()));  // RFC 9110 §10.2.3
    return r;
  }

  // On the connection's thread: the parked read completed.
  void finish(parked& p, std::error_code ec, pubsub::read_result r) {
    switchboard::detail::tick_clock::leave(p);
    if (ec == asio::error::operation_aborted && p.timed_out) ec = switchboard::error::timeout;
    std::vector<std::function<void(drain_report)>> drained;
    drain_report report;
    {
      const std::lock_guard lock(mutex_);
      per_client_.remove(p.client);
      parked_.erase(p.position);
      if (!ec) ++stats_.woken;
      else if (ec == switchboard::error::timeout) ++stats_.timed_out;
      else if (ec == asio::error::operation_aborted && p.draining) ++stats_.drained;
      else if (ec == asio::error::operation_aborted) ++stats_.disconnected;
      if (draining_ && parked_.empty()) {
        drained = std::move(drain_waiters_);
        report.drained = stats_.drained;
      }
    }
    if (p.request_slot.is_connected()) p.request_slot.clear();
    if (!ec || ec == pubsub::error::cursor_ahead) {
      p.res.send(answer(r, p.q));
    } else if (ec == switchboard::error::timeout || ec == asio::error::operation_aborted) {
      // Nothing new (a client that went away gets this too; the server drops it).
      p.res.send(answer(nothing_new(p.q.cursor), p.q));
    } else {
      p.res.send(failure(ec));
    }
    changed();
    for (auto& done : drained) {
      if (done) done(report);
    }
  }

  void changed() const {
    if (options_.on_change) options_.on_change();
  }

  static http::response failure(std::error_code ec) {
    if (ec == pubsub::error::topic_too_long) return http::response::problem(http::status::bad_request, ec.message());
    http::response r = http::response::problem(http::status::service_unavailable, ec.message());
    r.set("Retry-After", "1");
    return r;
  }

  // The body for `r`, a batch of one message and nothing else. A publish wakes every poll parked at the newest
  // message with that same batch: the last one this thread encoded is kept, with its message, so that each publish
  // is encoded once per thread and its bytes shared by every answer (and written without a copy from 512 bytes on).
  // The message is held until the next one replaces it.
  static shared_bytes one_message_body(const pubsub::read_result& r) {
    struct encoded {
      std::optional<pubsub::message> message;
      std::uint64_t cursor = 0;
      shared_bytes body;
    };
    thread_local encoded last;
    const pubsub::message& m = r.messages.front();
    if (!last.message || !last.message->is_copy_of(m) || last.cursor != r.next_cursor) {
      last.body = shared_bytes(encode_batch(r));
      last.message = m;
      last.cursor = r.next_cursor;
    }
    return last.body;
  }

  http::response answer(const pubsub::read_result& r, const poll_query& q) const {
    if (r.error && r.error != pubsub::error::cursor_ahead) return failure(r.error);
    const std::uint64_t next = r.error ? r.last_sequence : r.next_cursor;
    http::response out;
    if (q.conditional && caught_up(r)) {
      out.set_status(http::status::not_modified);  // the client's tag still names the newest state
    } else if (!r.error && !r.missed && r.messages.size() == 1) {
      out.set_body(one_message_body(r), "application/json");
    } else {
      out = http::response(http::status::ok, encode_batch(r), "application/json");
    }
    out.set("ETag", http::entity_tag::strong(std::to_string(next)).str());
    // Every poll must reach the server: a cache may keep the answer only to revalidate it (RFC 9111 §5.2.2.4).
    out.set("Cache-Control", "no-cache");
    return out;
  }

  pubsub::broker& broker_;
  endpoint_options options_;
  mutable std::mutex mutex_;
  // Guarded by mutex_:
  std::list<std::shared_ptr<parked>> parked_;
  switchboard::detail::per_key_count<std::string> per_client_;
  endpoint_stats stats_;
  bool draining_ = false;
  std::vector<std::function<void(drain_report)>> drain_waiters_;
};

}  // namespace detail

/// Long polling over the topics of a broker. Not copyable or movable; the broker must outlive it (and its routes
/// and parked requests).
class endpoint final : public drainable {
 public:
  /// An endpoint registered with `rt` for draining. Throws `std::invalid_argument` on bad options.
  endpoint(runtime& rt, pubsub::broker& broker, endpoint_options options = {}) : endpoint(broker, std::move(options)) {
    runtime_ = &rt;
    rt.add(*this);
  }

  /// An endpoint that the application drains itself (`async_drain`).
  explicit endpoint(pubsub::broker& broker, endpoint_options options = {})
      : state_(std::make_shared<detail::endpoint_state>(broker, std::move(options))) {}

  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;
  ~endpoint() {
    if (runtime_ != nullptr) runtime_->remove(*this);
  }

  /// The handler (deferred form): the route must have a `{topic}` parameter. Throws `http::problem_error` (400)
  /// for a malformed query.
  void handle(http::request& req, http::responder res) { state_->handle(req, std::move(res)); }

  /// A handler for `router::get` that keeps the endpoint's state alive as long as the route.
  http::handler_fn handler() const {
    return [state = state_](http::request& req, http::responder&& res) { state->handle(req, std::move(res)); };
  }

  /// Answers every parked request now (nothing new, same cursor); requests that come later are answered at once
  /// instead of parking. `done` is called (from any thread) once none is parked. The deadline is not needed: the
  /// answers go out at once.
  void async_drain(std::chrono::steady_clock::time_point /*deadline*/, std::function<void(drain_report)> done) override {
    state_->drain(std::move(done));
  }

  /// The options in force.
  const endpoint_options& options() const noexcept { return state_->options(); }
  /// The counters (any thread).
  endpoint_stats stats() const { return state_->stats(); }
  /// Requests parked now.
  std::size_t parked() const { return state_->stats().parked; }

 private:
  std::shared_ptr<detail::endpoint_state> state_;
  runtime* runtime_ = nullptr;
};

/// Adds `GET pattern` (default `/topics/{topic}/poll`; the pattern must name the `topic_param` parameter) to
/// `routes`, served by `polls`. HEAD is answered too, as for every GET route.
inline http::route& add_route(http::router& routes, const endpoint& polls,
                              std::string_view pattern = "/topics/{topic}/poll") {
  if (pattern.find("{" + polls.options().topic_param + "}") == std::string_view::npos) {
    throw std::invalid_argument("switchboard::longpoll::add_route: the pattern needs a {" +
                                polls.options().topic_param + "} parameter");
  }
  return routes.add(http::method::get, pattern, polls.handler());
}

}  // namespace switchboard::longpoll
