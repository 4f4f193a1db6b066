// switchboard/http/detail/server_connection.hpp
//
// One HTTP/1.1 server connection: a state machine driven by completion handlers on its shard's thread.
//
//   idle ──bytes──> header ──header parsed──> [body] ──> handling ──response──> (next request | idle | close)
//                                                           └─ streamed response ─> streaming ─> ...
//
// Reading: an idle TCP connection holds no buffer (it waits for readability, then borrows a block from its
// shard's pool). The header section is parsed in place; the request's views point into the read buffer until the
// buffer has to change (more body to read, or a handler that completes later), when the request copies what it
// views (`request::make_self_contained`).
//
// Writing: responses are queued in order and written together after each batch of pipelined requests; a TCP
// connection first tries a non-blocking write and only waits when the socket is full.
//
// Timeouts: the deadline of the connection's phase (header, body, idle, close, or a stream's wake time) and, while a
// write is in progress, that of the write, checked by the shard's clock.
#pragma once

#include <switchboard/core/detail/exact_allocator.hpp>
#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/http/detail/serializer.hpp>
#include <switchboard/http/detail/server_shard.hpp>
#include <switchboard/http/body_stream.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/handler.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/router.hpp>

#include <asio/co_spawn.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <span>
#include <thread>

namespace switchboard::http::detail {

template <class Stream>
struct stream_traits;

template <>
struct stream_traits<asio::ip::tcp::socket> {
  static constexpr bool tls = false;
  static asio::ip::tcp::socket& socket(asio::ip::tcp::socket& s) noexcept { return s; }
};

template <>
struct stream_traits<asio::ssl::stream<asio::ip::tcp::socket>> {
  static constexpr bool tls = true;
  static asio::ip::tcp::socket& socket(asio::ssl::stream<asio::ip::tcp::socket>& s) noexcept { return s.next_layer(); }
};

/// Logs an exception thrown by a handler (the client only sees a generic 500).
void log_handler_exception(std::string_view where, std::exception_ptr e);

template <class Stream>
class server_connection final : public connection_base,
                                public response_sink,
                                public body_source,
                                public body_writer,
                                public std::enable_shared_from_this<server_connection<Stream>> {
  using traits = stream_traits<Stream>;
  using clock = std::chrono::steady_clock;

 public:
  /// A connection from `remote` (admitted by `server_shard::admit`).
  server_connection(std::shared_ptr<server_shard> shard, Stream stream, const asio::ip::tcp::endpoint& remote)
      : shard_(std::move(shard)), stream_(std::move(stream)) {
    remote_ = remote;
  }

  ~server_connection() {
    // Normally unlinked by close(); this only runs when the io_context was destroyed with the connection open.
    if (linked_) shard_->remove(this, false);
  }

  void start() {
    shard_->add(this);
    if constexpr (traits::tls) {
      phase_ = phase::header;
      set_deadline(shard_->options().timeouts.header);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](std::error_code ec) {
        if (ec) return self->close();
        self->phase_ = phase::idle;
        self->read_more();
      });
    } else {
      read_more();
    }
  }

  // -- connection_base (called by the shard)
  void check_deadline(clock::time_point now) override {
    if (closed_) return;
    if (writing_ && now >= write_deadline_) {
      // The peer does not take the response.
      shard_->shared().timeouts.fetch_add(1, std::memory_order_relaxed);
      return close();
    }
    // A stream handler's wake time (wake_at) waits for the write in progress (on_stream_written).
    if (now < deadline_ || (phase_ == phase::streaming && writing_)) return park_if_idle(now);
    if (phase_ == phase::streaming && !streaming_->producer) return wake_stream();
    if (phase_ != phase::idle || writing_) shard_->shared().timeouts.fetch_add(1, std::memory_order_relaxed);
    if (pending_body_read_) {
      // A handler streaming the request body waits for bytes that do not come.
      auto h = std::move(pending_body_read_);
      h.complete(error::body_timeout, {});
      return close();
    }
    if ((phase_ == phase::header || phase_ == phase::body) && !writing_ && ex_ && !close_after_write_) {
      // A request started but did not arrive in time: say so (408), then close without lingering.
      respond_error(phase_ == phase::header ? error::header_timeout : error::body_timeout);
      lingering_ = false;
      write();
      return;
    }
    if (phase_ == phase::idle && !writing_ && !saying_goodbye_) return close_gracefully();
    close();
  }

  void leave() override {
    leaving_ = true;
    if (phase_ == phase::idle && !writing_ && !saying_goodbye_) close_gracefully();
    end_stream_for_drain();
  }

  // A streamed response (an event stream, say) has no natural end: on a drain, stop its producer, or tell its
  // handler and end the body once the write in progress is out. Also for a stream that begins during the drain (its
  // handler answered after the drain began).
  void end_stream_for_drain() {
    if (phase_ != phase::streaming) return;
    if (streaming_->producer) return cancel_handler();
    streaming_->finishing = true;
    if (!streaming_->started) return;  // the head is still being written: the handler never starts, and the
                                       // body ends once the head is out (on_stream_written)
    cancel_handler();                 // on_end
    if (streaming_) settle_stream();  // (when the handler had been told already)
  }

  void cut() override {
    cut_ = true;
    close();
  }

  // -- response_sink (responders call these, from any thread)
  void deliver(std::uint64_t sequence, response r) override {
    if (dispatch_thread_.load(std::memory_order_acquire) == std::this_thread::get_id() && sequence == sequence_ && ex_) {
      ex_->sync_response.emplace(std::move(r));  // the handler answered before returning: no post needed
      return;
    }
    if (shard_->in_own_thread()) return shard_->post_response(this->shared_from_this(), sequence, std::move(r));
    asio::post(shard_->executor(), [self = this->shared_from_this(), sequence, r = std::move(r)]() mutable {
      self->on_async_response(sequence, std::move(r));
    });
  }

  void deliver_exception(std::uint64_t sequence, std::exception_ptr e) override {
    deliver(sequence, response_for_exception(std::move(e)));
  }

  void release_request(std::uint64_t sequence) override {
    if (dispatch_thread_.load(std::memory_order_acquire) == std::this_thread::get_id() && sequence == sequence_) {
      release_wanted_ = true;  // the handler is still being called: dispatch() releases when it returns
      return;
    }
    asio::post(shard_->executor(), [self = this->shared_from_this(), sequence] {
      if (sequence == self->sequence_ && self->phase_ == phase::handling) self->release_request_state();
    });
  }

  asio::any_io_executor sink_executor() const override { return shard_->executor(); }

  // -- body_source (streamed request bodies)
  void start_body_read(read_handler handler) override {
    if (closed_ || !ex_) {
      handler.complete(asio::error::operation_aborted, {});
      return;
    }
    if (ex_->parser.done()) {
      handler.complete({}, {});
      return;
    }
    pending_body_read_ = std::move(handler);
    if (ex_->parser.expect_continue() && !ex_->continue_sent) send_continue();
    continue_body_read();
  }
  asio::any_io_executor body_executor() const override { return shard_->executor(); }

  // -- body_writer (streamed responses)
  bool closed() const noexcept override { return closed_ || peer_gone_; }
  asio::any_io_executor get_executor() const override { return shard_->executor(); }

 protected:
  void start_write(std::string_view data, shared_bytes owner, completion done) override {
    if (closed_ || peer_gone_ || phase_ != phase::streaming) {
      done.complete(asio::error::connection_reset);
      return;
    }
    if (!ex_) ex_ = shard_->acquire_exchange();  // given back while the stream waited (release_between_writes)
    if (data.empty()) {
      done.complete({});
      return;
    }
    begin_body_piece(data.size());
    if (owner.size() != 0) ex_->out.append_shared(std::move(owner));
    else ex_->out.append(data);
    end_body_piece();
    pending_stream_write_ = std::move(done);
    write();
  }

 private:
  enum class phase : std::uint8_t { idle, header, body, handling, streaming, upgrading };

  const server_options& options() const noexcept { return shard_->options(); }

  void set_deadline(std::chrono::milliseconds timeout) noexcept {
    deadline_ =
        timeout.count() > 0 ? switchboard::detail::saturating_add(coarse_now(), timeout) : clock::time_point::max();
  }

  // ---------------------------------------------------------------- reading

  // Waits for more bytes into the read buffer; a TCP connection that has been idle for a while waits without one
  // (see `park`).
  void read_more() {
    if (closed_) return;
    const bool idle = !ex_ || (ex_->in.empty() && phase_ == phase::idle);
    if (idle) {
      // Told to leave (a drain) while a response was still being written: the connection ends now that it is
      // out, over TLS with the closure alert like any other purposeful close (RFC 9112 §9.8).
      if (leaving_) return close_gracefully();
      phase_ = phase::idle;
      set_deadline(options().timeouts.idle);
      idle_since_ = coarse_now();
    }
    // Still reading: the wait that watched for a disconnect while a deferred handler ran, which now waits for
    // the next request (its handler reads it). The connection is idle from now all the same.
    if (reading_) return;
    if constexpr (!traits::tls) {
      if (!ex_) {
        // Parked: wait for readability without holding a buffer (the wait's operation sized exactly: see
        // exact_allocator.hpp).
        reading_ = true;
        stream_.async_wait(asio::socket_base::wait_read,
                           switchboard::detail::long_wait([self = this->shared_from_this()](std::error_code ec) {
                             self->reading_ = false;
                             if (ec) return self->close();
                             self->on_readable();
                           }));
        return;
      }
    }
    // Keep the buffer for the next request, the fast path of a busy keep-alive connection: Asio tries the read at
    // once (a recv that finds nothing) and then waits on the descriptor it already registered, with no epoll_ctl
    // (which a wait for readability costs on every start, see watch_for_disconnect).
    if (!ex_) ex_ = shard_->acquire_exchange();
    auto space = prepare_read();
    if (space.second == 0) return close();  // cannot happen: the limits are checked before the buffer is full
    reading_ = true;
    stream_.async_read_some(asio::buffer(space.first, space.second),
                            [self = this->shared_from_this()](std::error_code ec, std::size_t n) {
                              self->reading_ = false;
                              self->on_read(ec, n);
                            });
  }

  // A keep-alive connection idle for longer than `timeouts.park_idle_after` gives its per-request state (buffer,
  // parser, request) back to the shard's pool, so that thousands of idle connections cost little memory. Called by
  // the shard's clock; the pending read (or disconnect watch) is cancelled and replaced by a wait without a buffer.
  void park_if_idle(clock::time_point now) {
    if constexpr (!traits::tls) {
      // Not a lingering close, idle too: cancelling its read would close it, and the reset that the client's bytes
      // then meet could destroy the error response before the client has read it (shutdown_and_close).
      if (phase_ != phase::idle || !reading_ || parking_ || discarding_ || !ex_ || !ex_->in.empty() || writing_) return;
      if (now - idle_since_ < options().timeouts.park_idle_after) return;
      parking_ = true;
      std::error_code ignored;
      stream_.cancel(ignored);
    }
  }

  // The clock cancelled the pending read to park the connection (park_if_idle): give the request state back and
  // wait without it. False when the read ended for another reason.
  bool finish_parking(std::error_code ec) {
    if (!std::exchange(parking_, false) || ec != asio::error::operation_aborted) return false;
    shard_->release_exchange(std::move(ex_));
    read_more();
    return true;
  }

  std::pair<char*, std::size_t> prepare_read() {
    if (ex_->views_in_buffer) {
      ex_->req.make_self_contained(ex_->in.storage(), ex_->in.capacity());
      ex_->views_in_buffer = false;
    }
    return ex_->in.prepare(1024, shard_->max_read_buffer());
  }

  // TCP only: the socket is readable; read what is there without waiting.
  void on_readable() {
    if (closed_) return;
    if (!ex_) ex_ = shard_->acquire_exchange();
    auto space = prepare_read();
    std::error_code ec;
    const std::size_t n = stream_.read_some(asio::buffer(space.first, space.second), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return read_more();
    on_read(ec, n);
  }

  void on_read(std::error_code ec, std::size_t n) {
    if (closed_) return;
    if (saying_goodbye_) return close_gracefully();  // the read was cancelled for it (bytes that came meanwhile too)
    if (discarding_) return ec ? close() : linger();  // a read begun before the lingering close: discarded too
    if (finish_parking(ec)) return;
    if (ec) {
      // EOF between requests is the normal end of a keep-alive connection (over TLS, the client's closure alert,
      // which ours answers: RFC 8446 §6.1); in the middle of one it is not.
      if (phase_ == phase::handling || phase_ == phase::streaming) peer_went_away();
      else if (ec == asio::error::eof && phase_ == phase::idle) return close_gracefully();
      return close();
    }
    ex_->in.commit(n);
    if (phase_ == phase::handling || phase_ == phase::streaming) return;  // read only to watch for EOF
    if (pending_body_read_) return continue_body_read();
    // `timeouts.body` bounds each wait for more of the body, as for a streamed body, not the whole body.
    if (phase_ == phase::body) set_deadline(options().timeouts.body);
    process();
  }

  // ---------------------------------------------------------------- parsing and dispatch

  // Parses and answers as many complete requests as the buffer holds, then writes or reads more.
  void process() {
    while (!closed_ && !close_after_write_ && (phase_ == phase::idle || phase_ == phase::header || phase_ == phase::body)) {
      if (ex_->out.size() >= options().max_pending_output) break;
      const std::string_view input = ex_->in.data();
      if (phase_ != phase::body) {
        if (input.empty()) break;
        if (phase_ == phase::idle) {
          phase_ = phase::header;
          set_deadline(options().timeouts.header);
        }
        std::error_code ec;
        const std::size_t n = ex_->parser.put(input, ec);
        if (ec) {
          respond_error(ec);
          break;
        }
        // Consumed even when the header is incomplete: empty lines before a request line (RFC 9112 §2.2), which
        // would otherwise stay and fill the buffer.
        ex_->in.consume(n);
        if (!ex_->parser.header_done()) break;  // need more bytes
        ex_->views_in_buffer = true;
        begin_request();
        continue;
      }
      // Reading a body that the handler gets whole.
      std::error_code ec;
      const std::size_t n = ex_->parser.put(input, ec);
      if (ec) {
        respond_error(ec);
        break;
      }
      take_body_piece(ex_->parser.body_piece());
      ex_->in.consume(n);
      if (ex_->parser.done()) {
        dispatch();
        continue;
      }
      // Need more bytes: none are left, or only the start of a chunk line or of the trailer section, which the
      // decoder consumes once it is complete (reading on appends the rest after it).
      if (n == 0 || ex_->in.empty()) break;
    }
    after_processing();
  }

  void after_processing() {
    if (closed_) return;
    if (ex_ && !ex_->out.empty()) return write();  // (no exchange: a handler released its request, and waits)
    if (phase_ == phase::handling || phase_ == phase::streaming) return;
    if (close_after_write_) return shutdown_and_close();
    read_more();
  }

  void take_body_piece(std::string_view piece) {
    if (piece.empty()) return;
    if (ex_->body_pieces++ == 0 && ex_->views_in_buffer) {
      ex_->req.set_body_view(piece);  // the common case: the whole body arrived with its header, no copy
    } else {
      ex_->req.append_body(piece);
    }
  }

  void begin_request() {
    shard_->shared().requests.fetch_add(1, std::memory_order_relaxed);
    exchange& x = *ex_;
    const request_parser& p = x.parser;
    x.req.reset(request::fill{p.method(), p.method_string(), p.target(), p.version_minor(), &p.fields(), p.keep_alive()},
                this, &cancel_);
    x.req.set_remote_endpoint(remote_, traits::tls);
    route_match match = shard_->routes().match(x.req);
    if (match.result != route_match::kind::found) return answer_without_route(match);
    x.current_route = match.matched;
    const std::uint64_t limit = match.matched->body_limit().value_or(options().limits.max_body);
    x.parser.set_body_limit(limit);
    if (p.framing() == body_framing::length && p.content_length() > limit) {
      // Refuse before the body is sent (and before "100 Continue"): RFC 9110 §10.1.1.
      return respond_error(error::body_too_large);
    }
    if (p.framing() == body_framing::none || match.matched->streams_body()) return dispatch();
    phase_ = phase::body;
    set_deadline(options().timeouts.body);
    if (p.expect_continue() && x.in.empty()) send_continue();
  }

  void send_continue() {
    ex_->continue_sent = true;
    ex_->out.append("HTTP/1.1 100 Continue\r\n\r\n");
  }

  void answer_without_route(const route_match& match) {
    response r;
    switch (match.result) {
      case route_match::kind::not_found:
        r = response::problem(status::not_found, "No resource at this path.");
        break;
      case route_match::kind::method_not_allowed:
        r = response::problem(status::method_not_allowed, "This resource does not support the method.");
        r.set("Allow", match.allow);
        break;
      case route_match::kind::options:
        r = response(status::no_content);
        r.set("Allow", match.allow);
        break;
      case route_match::kind::bad_path:
        r = response::problem(status::bad_request, "Malformed path.");
        break;
      case route_match::kind::found:
        break;
    }
    // The request's body, if any, is not read: end the connection after the answer so that it is never parsed
    // as a request.
    if (ex_->parser.framing() != body_framing::none) r.close_connection();
    ex_->parser.set_body_limit(0);
    finish(std::move(r));
  }

  void dispatch() {
    phase_ = phase::handling;
    deadline_ = clock::time_point::max();  // a handler may take its time (a parked long poll); no read is pending
    const std::uint64_t sequence = ++sequence_;
    release_wanted_ = false;
    exchange& x = *ex_;
    dispatch_thread_.store(std::this_thread::get_id(), std::memory_order_release);
    try {
      if (auto early = x.current_route->run_before(x.req)) {
        x.sync_response.emplace(std::move(*early));
      } else {
        x.current_route->handler()(x.req, responder(this->shared_from_this(), sequence));
      }
    } catch (...) {
      x.sync_response.emplace(response_for_exception(std::current_exception()));
    }
    dispatch_thread_.store(std::thread::id(), std::memory_order_release);
    if (x.sync_response) {
      finish(std::move(*x.sync_response));  // finish() resets sync_response with the rest of the request state
      return;
    }
    // The handler answers later: free the request if it said it is done with it, else the read buffer if we can;
    // and watch for the client going away.
    if (!x.current_route->streams_body()) {
      if (!release_wanted_ || !release_request_state()) {
        x.req.make_self_contained(x.in.storage(), x.in.capacity());
        x.views_in_buffer = false;
        x.in.release_if_empty();
      }
      watch_for_disconnect();
    }
  }

  // The handler will not read its request again (responder::release_request): give the exchange back to the
  // shard, keeping only what framing the response needs. Not when after-middleware will read the request, nor when
  // the body is streamed or more requests are buffered. The response gets a fresh exchange (finish).
  bool release_request_state() {
    if (closed_ || !ex_ || request_released_) return false;
    const exchange& x = *ex_;
    if (x.current_route == nullptr || x.current_route->has_after() || x.current_route->streams_body()) return false;
    // Nothing else in the exchange: no buffered request, no earlier response still queued or being written. (A
    // read pending while a handler runs is the disconnect watch, which uses no buffer.)
    if (!x.in.empty() || !x.out.empty() || writing_ || !x.parser.done() || x.parser.upgrade()) return false;
    released_framing_ = framing_of(x);
    request_released_ = true;
    shard_->release_exchange(std::move(ex_));
    return true;
  }

  void on_async_response(std::uint64_t sequence, response r) override {
    if (closed_ || (!ex_ && !request_released_) || sequence != sequence_ || phase_ != phase::handling) {
      if (closed_ && ex_ && !reading_ && !writing_) shard_->release_exchange(std::move(ex_));
      return;
    }
    finish(std::move(r));
    // A producer coroutine sends the head with its first write; a stream handler starts once the head is out.
    if (phase_ != phase::streaming || !streaming_->producer) process();
  }

  // While a handler runs, a readable socket means either a pipelined request (kept for later) or EOF (the client
  // went away: cancel the handler). A read into the exchange's buffer would serve as well and costs the same one
  // system call to start (Asio 1.22 tries every read at once: a recv that finds nothing, where this wait costs an
  // epoll_ctl); the wait leaves a pipelined request in the socket, where it costs nothing.
  void watch_for_disconnect() {
    if (closed_ || reading_) return;
    if constexpr (!traits::tls) {
      reading_ = true;
      stream_.async_wait(asio::socket_base::wait_read, [self = this->shared_from_this()](std::error_code ec) {
        self->reading_ = false;
        if (self->closed_) return;
        if (self->discarding_) return ec ? self->close() : self->linger();  // the response was an error: linger
        if (self->finish_parking(ec)) return;  // the handler finished, and the connection has idled since
        if (ec) return self->close();
        if (self->phase_ != phase::handling && self->phase_ != phase::streaming) {
          // The handler finished meanwhile: this is the next request arriving.
          return self->on_readable();
        }
        char probe;
        const ssize_t n = ::recv(self->stream_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          self->peer_went_away();
          return self->close();
        }
        // Data: a pipelined request, left in the socket until the handler is done. Waiting again would wake at
        // once, so disconnects are noticed at the next write instead.
        if (self->phase_ == phase::streaming && !self->streaming_->producer) {
          // A stream driven by its handler holds nothing of its own between writes (no coroutine, no timer): this
          // wait was what kept the connection alive. Without it the connection went away under the handler, which
          // kept using its stream and never heard on_end. The stream keeps it now, until it ends (close,
          // end_streaming).
          self->streaming_->owner = self;
        }
      });
    }
  }

  void peer_went_away() {
    peer_gone_ = true;
    cancel_handler();
  }

  // Tells the running handler (once per request) that its client has gone or its connection is being closed.
  void cancel_handler() {
    if (handler_cancelled_) return;
    handler_cancelled_ = true;
    cancel_.emit(asio::cancellation_type::terminal);
    end_stream_handler();
  }

  // A finished handler's (or body producer's) cancellation handler must not outlive it; the next request's handler
  // may be cancelled in its turn.
  void end_cancellation() {
    cancel_.slot().clear();
    handler_cancelled_ = false;
  }

  static response response_for_exception(std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const problem_error& p) {
      return response::problem(p.get());
    } catch (...) {
      log_handler_exception("http handler", std::current_exception());
      return response::problem(status::internal_server_error, "The server could not answer this request.");
    }
  }

  // ---------------------------------------------------------------- answering

  // What framing a response needs to know of its request.
  struct request_framing {
    bool head = false;        // HEAD: the head only
    bool upgrade = false;     // the request asked to switch protocols
    bool body_left = false;   // its body was not read completely
    bool keep_alive = false;  // the request allows the connection to stay open
    bool routed = false;      // a handler answers (not a parse error or a missing route)
    std::uint8_t version_minor = 1;
  };

  static request_framing framing_of(const exchange& x) noexcept {
    const request_parser& p = x.parser;
    request_framing f;
    f.head = x.req.method() == method::head;
    f.upgrade = p.upgrade();
    // A body that was not read completely (streamed routes whose handler stopped reading) leaves the connection
    // out of step: close it after the response.
    f.body_left = !p.done() && p.framing() != body_framing::none;
    f.keep_alive = p.keep_alive();
    f.routed = x.current_route != nullptr;
    f.version_minor = static_cast<std::uint8_t>(p.version_minor());
    return f;
  }

  // Queues the response to the current request and gets ready for the next one.
  void finish(response&& r) {
    deadline_ = clock::time_point::max();  // the request's phase is over: its write's deadline holds until the next
    const bool released = std::exchange(request_released_, false);
    if (!ex_) ex_ = shard_->acquire_exchange();  // the request was released: the response needs only an output queue
    exchange& x = *ex_;
    if (x.current_route != nullptr) {  // (a released request's route has no after-middleware)
      try {
        x.current_route->run_after(x.req, r);
      } catch (...) {
        r = response_for_exception(std::current_exception());
      }
    }
    const request_framing f = released ? released_framing_ : framing_of(x);
    // A 101 hands the connection to another protocol; only a request that asked to upgrade may get one.
    // An Upgrade in an HTTP/1.0 request is ignored (RFC 9110 §7.8).
    const bool upgrading = r.is_upgrade() && r.status() == status::switching_protocols && f.upgrade &&
                           f.version_minor == 1 && !leaving_;
    if (r.is_upgrade() && !upgrading) {
      r = response::problem(status::internal_server_error, "The server could not switch protocols.");
    } else if (!upgrading && (to_int(r.status()) < 200 || to_int(r.status()) > 599)) {
      // A 1xx is interim (RFC 9110 §15.2): the client would go on waiting for the final response. Past 599 a
      // status code is invalid (§15), and a client reads it as a 5xx anyway.
      r = response::problem(status::internal_server_error, "The server gave no final response.");
    }
    if (r.status() == status::internal_server_error && f.routed) {
      shard_->shared().handler_errors.fetch_add(1, std::memory_order_relaxed);
    }
    count_status(r.status());
    const bool no_content = has_no_content(r.status());
    // 205 Reset Content: no content (RFC 9110 §15.3.6), but framed, with Content-Length: 0 (RFC 9112 §6.3).
    const bool reset_content = r.status() == status{205};
    const bool streamed = r.is_streamed() && !f.head && !no_content && !reset_content;
    bool keep_alive = f.keep_alive && !r.closes_connection() && !leaving_ && !f.body_left && !shard_->draining();
    if (streamed && f.version_minor == 0) keep_alive = false;  // no chunked coding: the body ends with the connection
    head_info info;
    info.version_minor = f.version_minor;
    info.keep_alive = keep_alive;
    info.upgrade = upgrading;
    info.chunked = streamed && f.version_minor == 1;
    // A HEAD of a streamed response: its GET's length is not known, so none is sent (RFC 9110 §8.6), not 0.
    info.send_length = (!r.is_streamed() || reset_content) && !no_content;
    info.content_length = reset_content ? 0 : r.body_size();
    info.date = shard_->date();
    info.server = options().server_header;
    append_response_head(x.out.text(), r, info);
    if (!f.head && !no_content && !streamed && !reset_content) {
      x.out.append_owned(std::move(r.body()));
      if (!r.shared_body().empty()) x.out.append_shared(r.shared_body());
    }
    if (!keep_alive) close_after_write_ = true;
    // A response given before its request's body was read (a streamed body the handler stopped reading, a body
    // to a missing route) is followed by the rest of that body. Closing with those bytes unread makes the TCP
    // stack send a reset, which can destroy the response in the client's receive buffer before the client has
    // read it: half-close, then read and discard for a while, as after a parse error (RFC 9112 §9.6).
    if (f.body_left) lingering_ = true;
    body_producer producer = streamed ? std::move(r.producer()) : body_producer();
    std::shared_ptr<body_stream_handler> stream_handler = streamed ? std::move(r.stream_handler()) : nullptr;
    if (upgrading) upgrade_ = std::make_unique<upgrade_handler>(std::move(r.upgrade_target()));
    x.reset_request();  // may destroy `r` (when it is the exchange's sync_response)
    end_cancellation();
    if (upgrading) {
      phase_ = phase::upgrading;  // no more requests: the next bytes belong to the new protocol
    } else if (streamed) {
      start_streaming(std::move(producer), std::move(stream_handler), info.chunked);
      if (leaving_) end_stream_for_drain();
    } else {
      phase_ = phase::idle;
    }
  }

  void count_status(status s) {
    const unsigned code = to_int(s);
    auto& shared = shard_->shared();
    if (code >= 500) shared.responses_5xx.fetch_add(1, std::memory_order_relaxed);
    else if (code >= 400) shared.responses_4xx.fetch_add(1, std::memory_order_relaxed);
    else if (code >= 200 && code < 300) shared.responses_2xx.fetch_add(1, std::memory_order_relaxed);
  }

  // A request that cannot be answered normally (parse error, timeout): answer with its status and close.
  void respond_error(std::error_code ec) {
    shard_->shared().bad_requests.fetch_add(1, std::memory_order_relaxed);
    const status s = ec.category() == http_category() ? status_for(static_cast<error>(ec.value())) : status::bad_request;
    response r = response::problem(s, ec.message());
    r.close_connection();
    ex_->current_route = nullptr;
    if (!ex_->parser.header_done()) {
      // No request to answer to: a minimal parser state for framing decisions.
      count_status(s);
      head_info info;
      info.keep_alive = false;
      info.content_length = r.body().size();
      info.date = shard_->date();
      info.server = options().server_header;
      append_response_head(ex_->out.text(), r, info);
      ex_->out.append_owned(std::move(r.body()));
      close_after_write_ = true;
      lingering_ = true;
      phase_ = phase::idle;
      deadline_ = clock::time_point::max();  // as in finish()
      return;
    }
    lingering_ = true;
    finish(std::move(r));
  }

  // ---------------------------------------------------------------- streamed request bodies

  void continue_body_read() {
    exchange& x = *ex_;
    std::error_code ec;
    const std::size_t n = x.parser.put(x.in.data(), ec);
    if (ec) {
      auto h = std::move(pending_body_read_);
      h.complete(ec, {});
      return;
    }
    x.in.consume(n);
    const std::string_view piece = x.parser.body_piece();
    if (!piece.empty() || x.parser.done()) {
      deadline_ = clock::time_point::max();
      auto h = std::move(pending_body_read_);
      h.complete({}, piece);
      return;
    }
    // Need more bytes from the peer (after any queued "100 Continue" has gone out).
    set_deadline(options().timeouts.body);
    if (!x.out.empty()) return write();
    read_body_more();
  }

  void read_body_more() {
    if (reading_ || closed_) return;
    auto space = prepare_read();
    reading_ = true;
    stream_.async_read_some(asio::buffer(space.first, space.second),
                            [self = this->shared_from_this()](std::error_code ec, std::size_t n) {
                              self->reading_ = false;
                              if (self->closed_) return;
                              if (self->saying_goodbye_) return self->close_gracefully();
                              if (self->discarding_) return ec ? self->close() : self->linger();  // answered early
                              if (ec) {
                                if (auto h = std::move(self->pending_body_read_)) h.complete(error::partial_message, {});
                                return self->close();
                              }
                              self->ex_->in.commit(n);
                              if (self->pending_body_read_) self->continue_body_read();
                            });
  }

  // ---------------------------------------------------------------- streamed responses

  void start_streaming(body_producer producer, std::shared_ptr<body_stream_handler> handler, bool chunked) {
    phase_ = phase::streaming;
    chunked_stream_ = chunked;
    streaming_ = std::make_unique<streaming_state>(*this);
    if (producer) {
      // The producer function lives here until its coroutine has finished: a coroutine lambda's captures live in
      // the lambda object, not in the coroutine frame.
      streaming_->producer = std::move(producer);
      auto self = this->shared_from_this();
      asio::co_spawn(shard_->executor(), streaming_->producer(*this),
                     asio::bind_cancellation_slot(cancel_.slot(), [self, chunked](std::exception_ptr e) {
                       self->end_streaming(e, chunked);
                     }));
    } else {
      streaming_->handler = std::move(handler);  // started once the head is out (on_stream_written)
    }
    watch_for_disconnect();
  }

  // A streamed response between two writes (an event stream waiting for its next event) needs no buffer: give
  // the exchange back, as an idle connection does; the next write takes one (within a tick of the server's clock,
  // the same pages: see page_pool::trim).
  void release_between_writes() {
    if (phase_ != phase::streaming || !ex_ || writing_ || !ex_->in.empty() || !ex_->out.empty()) return;
    shard_->release_exchange(std::move(ex_));
  }

  void end_streaming(std::exception_ptr e, bool chunked) {
    release_stream_owner();
    streaming_.reset();
    end_cancellation();
    if (closed_) return;
    if (e && !peer_gone_) log_handler_exception("http body producer", e);
    if (e) return close();  // the head is out: the only way to signal a failed body is to cut the connection
    if (!ex_) ex_ = shard_->acquire_exchange();
    if (chunked) ex_->out.append("0\r\n\r\n");
    phase_ = phase::idle;
    if (!writing_) process();
  }

  // One piece of a streamed body: a chunk (RFC 9112 §7.1) to an HTTP/1.1 client, the bytes alone to HTTP/1.0.
  void begin_body_piece(std::size_t size) {
    if (!chunked_stream_) return;
    char header[20];
    ex_->out.append(std::string_view(header, format_chunk_header(header, size)));
  }
  void end_body_piece() {
    if (chunked_stream_) ex_->out.append("\r\n");
  }

  // ---------------------------------------------------------------- streamed responses driven by a handler
  //
  // The handler (body_stream.hpp) is called from three places: when a write is out (on_stream_written, the first
  // time with on_start once the head is out), when its wake time comes (check_deadline), and when the stream ends
  // without its asking (end_stream_handler). Two rules keep that simple for the handler and safe here:
  // - no call while another runs: a write that the socket takes at once, inside a callback, is reported by the
  //   loop in call_stream_handler when the callback returns (a loop, so a long backlog does not deepen the stack);
  // - what ends the stream (finish, on_end) happens in settle_stream, outside any callback and any write.

  void stream_write(std::span<shared_bytes> pieces) {
    streaming_state& s = *streaming_;
    if (closed_ || peer_gone_ || !s.handler || s.finishing || s.write_pending) return;  // ended, or misused
    s.wake = clock::time_point::max();
    s.write_pending = true;
    std::size_t size = 0;
    for (const shared_bytes& p : pieces) size += p.size();
    if (size == 0) return on_stream_written();
    if (!ex_) ex_ = shard_->acquire_exchange();  // given back while the stream waited (release_between_writes)
    begin_body_piece(size);
    for (shared_bytes& p : pieces) {
      if (!p.empty()) ex_->out.append_shared(std::move(p));
    }
    end_body_piece();
    write();
  }

  void stream_wake_at(clock::time_point when) {
    streaming_->wake = when;
    if (!writing_) deadline_ = when;
  }

  void stream_finish() {
    streaming_->finishing = true;
    settle_stream();
  }

  // A write of a handler-driven stream is out: the head (then the handler starts) or the handler's own.
  void on_stream_written() {
    streaming_state& s = *streaming_;
    deadline_ = s.wake;
    release_between_writes();
    const bool was_handler_write = std::exchange(s.write_pending, false);
    if (s.handler && !s.finishing && !s.end_pending) {
      if (!s.started) {
        s.started = true;
        return call_stream_handler([&s](body_stream_handler& h) { h.on_start(s); });
      }
      if (was_handler_write) {
        if (s.in_callback) {
          s.written_inline = true;
          return;
        }
        return call_stream_handler([](body_stream_handler& h) { h.on_written(); });
      }
    }
    settle_stream();
  }

  // Called by the shard's clock when the stream's deadline (its wake time) has come and no write is in progress.
  void wake_stream() {
    streaming_state& s = *streaming_;
    s.wake = clock::time_point::max();
    deadline_ = s.wake;
    if (s.handler && s.started && !s.finishing && !s.end_pending && !s.in_callback) {
      call_stream_handler([](body_stream_handler& h) { h.on_wake(); });
    }
  }

  template <class Call>
  void call_stream_handler(Call call) {
    streaming_state& s = *streaming_;
    s.in_callback = true;
    try {
      call(*s.handler);
      while (s.written_inline && !s.finishing && !s.end_pending) {
        s.written_inline = false;
        s.handler->on_written();
      }
    } catch (...) {
      // As for a producer coroutine: the head is out, so cutting the connection is the only way to say that the
      // body failed. The handler is not called again.
      log_handler_exception("http body stream handler", std::current_exception());
      s.in_callback = false;
      s.handler.reset();
      return close();
    }
    s.written_inline = false;
    s.in_callback = false;
    settle_stream();
  }

  // The stream ends without the handler's asking (client gone, failed write, closing, draining): tell it.
  void end_stream_handler() {
    if (!streaming_ || streaming_->producer || !streaming_->handler) return;
    streaming_->end_pending = true;
    settle_stream();
  }

  // Outside callbacks: tell the handler that the stream has ended, and end the body the handler (or a drain)
  // finished once no write is in progress. May destroy the stream's state: the caller's last step.
  void settle_stream() {
    streaming_state& s = *streaming_;
    if (s.in_callback) return;
    if (s.end_pending) {
      s.end_pending = false;
      if (auto h = std::move(s.handler)) {
        try {
          h->on_end();
        } catch (...) {
          log_handler_exception("http body stream handler", std::current_exception());
        }
      }
    }
    if (s.finishing && !writing_ && !closed_) {
      s.handler.reset();
      end_streaming(nullptr, chunked_stream_);
    }
  }

  // Lets go of the hold a handler-driven stream took on its connection (watch_for_disconnect), later: the caller,
  // and the callers above it, go on using the connection.
  void release_stream_owner() {
    if (!streaming_ || !streaming_->owner) return;
    asio::post(shard_->executor(), [owner = std::move(streaming_->owner)] {});
  }

  // ---------------------------------------------------------------- writing

  // The write has a deadline of its own: the phase's (a header or body being read meanwhile, a deferred handler's
  // none) holds again once the write is out. (It used to replace the phase's, so that a deferred handler pipelined
  // behind a written response was cut at the write deadline, and a 100 Continue lifted the body's.)
  void write() {
    if (writing_ || closed_) return;
    writing_ = true;
    const std::chrono::milliseconds timeout = options().timeouts.write;
    write_deadline_ =
        timeout.count() > 0 ? switchboard::detail::saturating_add(coarse_now(), timeout) : clock::time_point::max();
    // The write takes what is queued now; a response queued while it is in flight (a deferred one, the answer to
    // the next pipelined request) waits for the next write (output_queue::start_write).
    const auto& buffers = ex_->out.start_write();
    if constexpr (!traits::tls) {
      // Most responses fit in the socket buffer: try at once, and only wait if the peer is slow.
      std::error_code ec;
      const std::size_t n = stream_.write_some(buffers, ec);
      if (!ec || ec == asio::error::would_block || ec == asio::error::try_again) {
        ex_->out.consume_sent(ec ? 0 : n);
        if (ex_->out.sent_all()) return on_written({});
      } else {
        return on_written(ec);
      }
    }
    asio::async_write(stream_, ex_->out.sending_buffers(),
                      [self = this->shared_from_this()](std::error_code ec, std::size_t) { self->on_written(ec); });
  }

  void on_written(std::error_code ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      peer_went_away();
      if (auto done = std::move(pending_stream_write_)) done.complete(ec);
      return close();
    }
    ex_->out.finish_write();
    if (!ex_->out.empty()) return write();  // queued while that write was in flight
    if (auto done = std::move(pending_stream_write_)) {
      if (phase_ == phase::streaming) {
        set_deadline(std::chrono::milliseconds(0));  // a producer waiting for data has no deadline
        release_between_writes();
        done.complete({});
        return;
      }
      // The producer returned without awaiting this write, and the stream's end went out with it: complete the
      // write (its handler is posted), then go on with the connection as after any response.
      done.complete({});
    }
    if (phase_ == phase::upgrading) return hand_over();
    if (phase_ == phase::streaming) {
      deadline_ = clock::time_point::max();  // a stream waiting for its next write has no deadline
      if (!streaming_->producer) return on_stream_written();
      return release_between_writes();
    }
    if (phase_ == phase::handling) {
      if (pending_body_read_) read_body_more();
      return;
    }
    if (close_after_write_) return shutdown_and_close();
    process();
  }

  // ---------------------------------------------------------------- upgrading

  // The 101 response is out: give the transport, and the bytes that followed the request, to the new protocol.
  void hand_over() {
    std::error_code ignored;
    if (reading_) traits::socket(stream_).cancel(ignored);  // a disconnect watch; the new owner reads from now on
    upgraded_connection c{std::move(stream_), std::string(ex_->in.data()), shard_->hold_address(remote_)};
    closed_ = true;  // this object no longer owns a connection
    shard_->remove(this, false);
    if (!reading_) shard_->release_exchange(std::move(ex_));
    asio::post(shard_->executor(), [h = std::move(*upgrade_), c = std::move(c)]() mutable { h(std::move(c)); });
  }

  // ---------------------------------------------------------------- closing

  // Ends a connection after a final response. Over TLS, with a closure alert first. Over TCP, after an error, keep
  // reading (and discarding) for a moment before closing, so that the kernel does not answer the client's unread
  // bytes with a reset that destroys our response before the client has read it (RFC 9112 §9.6). The moment is
  // bounded in time only (`timeouts.close`), as nginx's lingering close: a client that sends a large body before it
  // reads (curl without `Expect`, say, posting a few MiB over a route's limit) must be able to finish sending.
  void shutdown_and_close() {
    if constexpr (traits::tls) {
      close_gracefully();
    } else {
      std::error_code ignored;
      traits::socket(stream_).shutdown(asio::socket_base::shutdown_send, ignored);
      if (!lingering_ || options().timeouts.close.count() <= 0) return close();
      lingering_ = false;
      discarding_ = true;
      set_deadline(options().timeouts.close);
      phase_ = phase::idle;
      linger();
    }
  }

  // Closes a connection that the server ends on purpose (after a final response, idle, drained); over TCP, at once.
  // Over TLS a server attempts an exchange of closure alerts first (RFC 9112 §9.8), so that its client can tell the
  // end of the data from a truncation (close_notify, RFC 8446 §6.1). Asio's shutdown sends ours, then waits for the
  // client's; a client that closes instead ends it as well, and one that does neither is closed after
  // `timeouts.close` (check_deadline). A read in progress (an idle connection's wait for its next request, say) is
  // cancelled first: its handler comes back here. Bytes it brought are discarded: the server has decided to close.
  void close_gracefully() {
    if constexpr (!traits::tls) {
      close();
    } else {
      if (closed_) return;
      if (options().timeouts.close.count() <= 0) return close();
      if (!std::exchange(saying_goodbye_, true)) {
        set_deadline(options().timeouts.close);  // bounds all of it, the return of a cancelled read included
        std::error_code ignored;
        if (reading_) traits::socket(stream_).cancel(ignored);
      }
      if (reading_) return;
      if (writing_) return close();  // not expected: every caller waits for the write in progress
      phase_ = phase::idle;
      stream_.async_shutdown([self = this->shared_from_this()](std::error_code) { self->close(); });
    }
  }

  // A read already pending (the disconnect watch of a handler that answered with an error) discards too: its
  // completion comes back here.
  void linger() {
    if (closed_ || reading_) return;
    auto space = ex_->in.prepare(1, shard_->max_read_buffer());
    reading_ = true;
    stream_.async_read_some(asio::buffer(space.first, space.second),
                            // What was read is discarded: the space is reused by the next read.
                            [self = this->shared_from_this()](std::error_code ec, std::size_t) {
                              self->reading_ = false;
                              if (ec) return self->close();  // the client's end, or the deadline's close
                              self->linger();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    if (phase_ == phase::streaming && !chunked_stream_) {
      // A body that the close delimits (to HTTP/1.0, without chunked coding) cut before its end (it failed, or a
      // drain cut it) would read as complete after a FIN: reset the connection instead, which the client reads as
      // an error. (A chunked body cut short lacks its last chunk; a TLS one, its close_notify.)
      traits::socket(stream_).set_option(asio::socket_base::linger(true, 0), ignored);
    }
    traits::socket(stream_).close(ignored);
    shard_->remove(this, cut_);
    cancel_handler();
    release_stream_owner();
    if (ex_) {
      if (auto h = std::move(pending_body_read_)) h.complete(asio::error::operation_aborted, {});
      if (auto done = std::move(pending_stream_write_)) done.complete(asio::error::operation_aborted);
      // A handler still running may use its request: keep the exchange until it answers.
      if (phase_ != phase::handling && phase_ != phase::streaming && !reading_ && !writing_) {
        shard_->release_exchange(std::move(ex_));
      }
    }
  }

  std::shared_ptr<server_shard> shard_;
  Stream stream_;
  exchange_ptr ex_;
  // Here rather than in the exchange: it outlives an exchange released while the handler waits (release_request).
  asio::cancellation_signal cancel_;
  clock::time_point deadline_ = clock::time_point::max();        // the phase's (see check_deadline)
  clock::time_point write_deadline_ = clock::time_point::max();  // the write's, while writing_
  clock::time_point idle_since_{};
  std::uint64_t sequence_ = 0;
  std::atomic<std::thread::id> dispatch_thread_{};
  read_handler pending_body_read_;
  completion pending_stream_write_;
  // A streamed response in progress: a producer coroutine, or a handler that the connection calls back. It is the
  // handler's body_stream too (the connection does not carry another vtable pointer for it).
  struct streaming_state final : body_stream {
    explicit streaming_state(server_connection& c) : connection(c) {}
    void write(std::span<shared_bytes> pieces) override { connection.stream_write(pieces); }
    void wake_at(clock::time_point when) override { connection.stream_wake_at(when); }
    void finish() override { connection.stream_finish(); }
    asio::any_io_executor get_executor() const override { return connection.shard_->executor(); }

    server_connection& connection;
    body_producer producer;                        // the coroutine's function, alive until the coroutine ends
    std::shared_ptr<body_stream_handler> handler;  // or the handler, until the stream ends
    std::shared_ptr<server_connection> owner;      // the connection, when nothing else keeps it (see its setter)
    clock::time_point wake = clock::time_point::max();  // the handler's wake_at
    bool started = false;         // on_start was called
    bool write_pending = false;   // the handler's write is in progress
    bool in_callback = false;     // the handler is being called (call_stream_handler)
    bool written_inline = false;  // its write went out during that call
    bool finishing = false;       // finish() (or a drain): end the body once no write is in progress
    bool end_pending = false;     // on_end is owed
  };

  // Rare (streamed responses, upgrades): behind a pointer, so that every connection does not carry them.
  std::unique_ptr<streaming_state> streaming_;
  std::unique_ptr<upgrade_handler> upgrade_;
  phase phase_ = phase::idle;
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool cut_ = false;
  bool leaving_ = false;
  bool close_after_write_ = false;
  bool lingering_ = false;
  bool discarding_ = false;  // the lingering close has begun: what the client still sends is read and thrown away
  bool saying_goodbye_ = false;  // TLS: the closure alert is on its way (close_gracefully)
  bool peer_gone_ = false;
  bool parking_ = false;
  bool chunked_stream_ = false;
  bool handler_cancelled_ = false;  // cancel_ was emitted for the current request
  bool release_wanted_ = false;     // the handler called release_request while it was being called
  bool request_released_ = false;   // the exchange went back to the shard while the handler waits
  request_framing released_framing_;
};

}  // namespace switchboard::http::detail
