// switchboard/ws/session.hpp
//
// `ws::session`: one open WebSocket connection (RFC 6455), over TCP or TLS, driven by the codec in this folder.
//
//  - Receiving: whole messages, to a callback (`on_message`) on the session's executor. Pings are answered
//    automatically; a keep-alive ping goes out after `ping_interval` of silence and the connection is closed if
//    nothing comes back within `pong_timeout` (timed by a clock the sessions of an event loop share, so up to a
//    quarter of the timeout late: core/detail/tick_clock.hpp). A message must arrive whole within
//    `message_timeout` of its first byte (the same clock), so that a peer cannot hold a large partial message.
//  - Sending: `send_text`, `send_binary`, `send(prepared_frame)` from any thread, into a bounded queue with an
//    overflow policy (DESIGN promise 2); `async_send` completes when the message is queued, or, under the `wait`
//    policy, when there is room. The writer gathers everything queued into one write. Under `wait`, a session whose
//    queue is half full also stops reading (and handling) the peer's messages until the writer has made room: a
//    peer that sends requests and does not read the answers is held back by TCP, not by our memory.
//  - Closing: `close(code, reason)` sends what is queued, then the close frame, waits up to `close_timeout` for
//    the peer's, then closes the socket (over TLS after the closure alerts); a peer's close is answered and
//    reported to `on_close`. That answer does not wait for the queue (RFC 6455 §5.5.1: "as soon as practical"; a
//    peer that closed may process nothing more): the messages still queued are discarded and counted in
//    `dropped()`, and only what the writer had taken (a write under way: a frame is never cut) goes first. Input
//    that breaks the protocol is answered with a close frame (1002, 1007, 1009) and the socket is closed as soon
//    as that frame is written (RFC 6455 §7.1.7): nothing more is read from it.
//  - Safety: a `std::shared_ptr<session>` stays valid after the peer has gone; sending then fails with
//    `switchboard::error::closed`, nothing dangles.
#pragma once

#include <switchboard/core/async_queue.hpp>
#include <switchboard/core/detail/coarse_clock.hpp>
#include <switchboard/core/detail/deferred_reads.hpp>
#include <switchboard/core/detail/tick_clock.hpp>
#include <switchboard/core/detail/thread_scratch.hpp>
#include <switchboard/core/detail/exact_allocator.hpp>
#include <switchboard/core/detail/saturating_time.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/error.hpp>
#include <switchboard/ws/frame.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::ws {

/// A received message.
struct message {
  opcode type = opcode::text;  ///< `opcode::text` (valid UTF-8) or `opcode::binary`
  std::string data;
  bool is_text() const noexcept { return type == opcode::text; }
};

/// An outgoing message as queued: a complete server frame encoded once (shared), or a payload to frame (and
/// compress) when it is written. Bounded queues count `size()` bytes and conflate on `conflation_key()`.
struct outgoing {
  shared_bytes bytes;      ///< the frame (`encoded`) or the payload
  opcode type = opcode::text;
  bool encoded = false;    ///< `bytes` is a complete frame
  std::string key;         ///< conflation key, for the `conflate` policy (empty: never conflated)
  std::size_t size() const noexcept { return bytes.size(); }
  std::string_view conflation_key() const noexcept { return key; }
};

struct session_options {
  /// Receive limits (default: 16 MiB messages and frames), 1009 above them.
  parser_options limits;
  /// The send queue: at most this many messages and bytes, and what happens when it is full. The default waits:
  /// `async_send` completes when there is room, fire-and-forget sends to a full queue are dropped and counted
  /// (`dropped()`), and from half full on the session reads nothing more from the peer until the writer makes room.
  queue_limits send_queue{.max_messages = 4096, .max_bytes = 16 * 1024 * 1024, .policy = overflow_policy::wait};
  /// A ping is sent after this long without receiving anything; 0 disables keep-alive pings.
  std::chrono::milliseconds ping_interval{30'000};
  /// After a keep-alive ping, the connection is closed if nothing arrives within this long.
  std::chrono::milliseconds pong_timeout{30'000};
  /// How long a closing handshake may take before the socket is closed anyway.
  std::chrono::milliseconds close_timeout{5'000};
  /// The longest wait for the peer to take more bytes; then the connection is closed.
  std::chrono::milliseconds write_timeout{30'000};
  /// The longest a message (or a control frame) may take to arrive, from its first byte to its last; then the
  /// connection is closed. Without it a peer could send most of a large message and trickle the rest, holding up
  /// to the message limit (`limits`) for as long as it trickles: any byte answers a keep-alive ping. 0: none.
  std::chrono::milliseconds message_timeout{60'000};
};

/// Why a session ended.
struct close_info {
  close_code code = close_code::abnormal;  ///< the peer's code, ours, or 1006 if the connection just dropped
  std::string reason;
  bool by_peer = false;                    ///< the peer started the closing handshake
};

class session : public std::enable_shared_from_this<session> {
 public:
  using message_handler = std::function<void(message&&)>;
  using close_handler = std::function<void(const close_info&)>;

  virtual ~session() = default;

  /// Called with each message, on the session's executor. Set it in the `on_open` callback (before the first
  /// read), or later from the session's executor.
  void on_message(message_handler h) { on_message_ = std::move(h); }
  /// Called once when the session ends, on its executor.
  void on_close(close_handler h) { on_close_ = std::move(h); }
  /// Sets `h` to run before the `on_close` handler, whenever that one is set (a session group removes the
  /// session with it, so that the session has left its group when the application hears that it closed).
  void before_on_close(close_handler h) { before_close_ = std::move(h); }

  /// Queues a text message (must be UTF-8: checked, `std::invalid_argument` otherwise). Safe from any thread.
  /// Returns at once; see `async_send` to know when it was queued or to wait for room.
  void send_text(std::string text) { send(make_outgoing(opcode::text, std::move(text))); }
  /// Queues a binary message. Safe from any thread.
  void send_binary(std::string data) { send(make_outgoing(opcode::binary, std::move(data))); }
  /// Queues a frame encoded once for many sessions (`prepared_frame`). Server sessions only: a client masks each
  /// frame with its own key (`std::logic_error` otherwise).
  void send(const prepared_frame& frame, std::string conflation_key = {}) {
    send_frame(shared_bytes(std::string(frame.bytes())), std::move(conflation_key));
  }
  /// Queues shared bytes that already hold a complete server frame (the push hub encodes each event once; the
  /// bytes are not copied). Server sessions only.
  void send_frame(shared_bytes frame, std::string conflation_key = {}) {
    if (role_ != role::server) throw std::logic_error("switchboard::ws: only server sessions send prepared frames");
    send(outgoing{std::move(frame), opcode::binary, true, std::move(conflation_key)});
  }
  /// Queues `o` (fire-and-forget; see `async_send`). Safe from any thread.
  void send(outgoing o) {
    // On the session's own thread (a broadcast to the sessions of one thread), at once, without the post.
    if (on_own_thread()) return push_now(std::move(o));
    asio::post(get_executor(), [self = shared_from_this(), o = std::move(o)]() mutable { self->push_now(std::move(o)); });
  }

  /// Queues a message and completes when it is queued (or, under the `wait` policy, once there is room).
  /// Completion signature `void(std::error_code, push_outcome)`: `switchboard::error::closed` once the session is
  /// closing or closed, `error::overflow_disconnect` if the `disconnect` policy cut it (the session then ends, as
  /// for a fire-and-forget send: `on_close` hears 1008 "send queue overflow"). Safe from any thread.
  template <class Token>
  auto async_send(outgoing o, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, push_outcome)>(
        [](auto handler, std::shared_ptr<session> self, outgoing o) {
          // The handler's executor and cancellation slot go with it into the queue (a waiting push may be cancelled).
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto ex = asio::get_associated_executor(handler, self->get_executor());
          auto& queue = self->queue_;
          queue.async_push(std::move(o), asio::bind_cancellation_slot(
                                             slot, asio::bind_executor(ex, [self = std::move(self), h = std::move(handler)](
                                                                               std::error_code ec, push_outcome outcome) mutable {
                                               if (ec == switchboard::error::overflow_disconnect) self->cut_for_overflow();
                                               std::move(h)(ec, outcome);
                                             })));
        },
        token, shared_from_this(), std::move(o));
  }

  /// Starts the closing handshake: queued messages go first, then the close frame (unless the peer's close arrives
  /// before ours is written: the messages still queued are then discarded and counted in `dropped()`). Messages the
  /// peer still sends before it answers (RFC 6455 §5.5.1 lets it finish) are read and discarded, not handed to
  /// `on_message`. Safe from any thread. A reason over 123 bytes or not UTF-8 is left out; a code not valid on the wire
  /// (1005, 1006, 1015, or outside `is_valid_close_code`) sends a close frame without a code, reported as 1005 at both
  /// ends (RFC 6455 §7.1.5).
  void close(close_code code = close_code::normal, std::string reason = {}) {
    asio::dispatch(get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->begin_close(code, std::move(reason), false);
    });
  }

  /// Closes the socket now, without a handshake. Safe from any thread.
  void abort() {
    asio::dispatch(get_executor(), [self = shared_from_this()] { self->finish({close_code::abnormal, "aborted", false}); });
  }

  /// Starts reading and writing. A server session is started by the server once `on_open` returned; a client
  /// session from `async_connect` must be started by its owner, after setting the handlers. On its executor.
  virtual void start() = 0;

  const asio::any_io_executor& get_executor() const noexcept { return queue_.get_executor(); }
  /// False once closing has started or the connection is gone. A hint: a send may still race with the end.
  bool is_open() const noexcept { return state_.load() == state::open; }
  /// The subprotocol agreed in the handshake, or empty.
  const std::string& subprotocol() const noexcept { return subprotocol_; }
  /// The permessage-deflate parameters agreed in the handshake, or nullopt when messages go uncompressed. Code
  /// that queues frames it compressed itself (`send_frame`) picks the frame that matches them.
  const std::optional<deflate_params>& deflate() const noexcept { return deflate_; }
  /// The send queue's counters (on the session's executor).
  queue_stats send_stats() const noexcept { return queue_.stats(); }
  /// Messages lost: those the send queue's overflow policy discarded (drop_oldest, drop_newest, conflate; one
  /// large message may push out several), whichever send queued them, fire-and-forget sends refused (a full
  /// queue under `wait`, a closed session), and messages still queued when the peer's close arrived or the session
  /// ended (the connection lost, `abort`, a cut; discarded unsent, and counted by `send_stats()` as popped). From any
  /// thread.
  std::uint64_t dropped() const noexcept { return lost_.load(std::memory_order_relaxed) + queue_.dropped(); }

  /// Builds an outgoing message (copies nothing but moves `payload`). Text must be UTF-8.
  static outgoing make_outgoing(opcode type, std::string payload, std::string conflation_key = {}) {
    if (type == opcode::text && !is_valid_utf8(payload)) {
      throw std::invalid_argument("switchboard::ws: text messages must be UTF-8");
    }
    return outgoing{shared_bytes(std::move(payload)), type, false, std::move(conflation_key)};
  }

 protected:
  enum class state : std::uint8_t { open, closing, closed };

  session(asio::any_io_executor executor, const session_options& options, std::string subprotocol, role r,
          std::optional<deflate_params> deflate = std::nullopt)
      : timeouts_{options.ping_interval, options.pong_timeout, options.close_timeout, options.write_timeout,
                  options.message_timeout},
        queue_(std::move(executor), options.send_queue), subprotocol_(std::move(subprotocol)), role_(r),
        deflate_(std::move(deflate)) {}

  virtual void begin_close(close_code code, std::string reason, bool by_peer) = 0;
  virtual void finish(close_info info) = 0;
  /// On the session's executor: the send queue's `try_push`, or better when the writer is idle (see session_impl).
  virtual push_outcome offer(outgoing& o) = 0;

  // A fire-and-forget push, on the session's executor. Nothing waits for it, so a queue that is full under `wait`
  // refuses it (counted); a full queue under `disconnect`, or a closed one, goes through `async_push`, which cuts the
  // session or reports the closed queue (`o` is still whole then).
  void push_now(outgoing o) {
    const push_outcome outcome = offer(o);
    if (outcome == push_outcome::must_wait) {
      lost_.fetch_add(1, std::memory_order_relaxed);
    } else if (outcome == push_outcome::must_disconnect) {
      queue_.async_push(std::move(o), [self = shared_from_this()](std::error_code ec, push_outcome) {
        self->after_refused_push(ec);
      });
    }
  }

  // The end of a fire-and-forget push that `offer` refused: counted if refused again (what the overflow policy
  // discards, the queue counts: see dropped()), and the session cut if its queue overflowed under `disconnect`.
  void after_refused_push(std::error_code ec) {
    if (ec == switchboard::error::overflow_disconnect) cut_for_overflow();
    if (ec) lost_.fetch_add(1, std::memory_order_relaxed);
  }

  // The `disconnect` policy: the consumer fell too far behind, so it is cut (a close frame would wait behind what
  // it does not take). From any thread.
  void cut_for_overflow() {
    asio::dispatch(get_executor(), [self = shared_from_this()] {
      self->finish({close_code::policy_violation, "send queue overflow", false});
    });
  }

  // True on the thread that runs this session's io_context (one thread per context, as the runtime runs them).
  // False for any other executor type (a strand): those take the asynchronous path.
  bool on_own_thread() const noexcept {
    const auto* context_executor = get_executor().target<asio::io_context::executor_type>();
    return context_executor != nullptr && context_executor->running_in_this_thread();
  }

  void report_close(const close_info& info) {
    if (auto h = std::move(before_close_)) h(info);
    if (auto h = std::move(on_close_)) h(info);
    on_message_ = nullptr;
    admission_.reset();
  }

  // The options a session reads after it started (the limits and the queue's went to the parser and the queue).
  struct timeouts {
    std::chrono::milliseconds ping_interval, pong_timeout, close_timeout, write_timeout, message_timeout;
  };

  timeouts timeouts_;
  async_queue<outgoing> queue_;  // also holds the session's executor
  std::string subprotocol_;
  role role_;
  std::optional<deflate_params> deflate_;
  message_handler on_message_;
  close_handler before_close_;  // kept apart from on_close_, which the application may set (again) at any time
  close_handler on_close_;
  // The HTTP server's count of this connection's address (http::upgraded_connection::admission), given back as
  // the session closes.
  std::shared_ptr<void> admission_;
  std::atomic<state> state_{state::open};
  // Messages lost outside the queue's overflow policy: fire-and-forget sends refused, and messages a peer's close
  // discarded (see dropped()).
  std::atomic<std::uint64_t> lost_{0};
};

namespace detail {

template <class Stream>
asio::ip::tcp::socket& lowest_socket(Stream& s) noexcept {
  if constexpr (std::is_same_v<Stream, asio::ip::tcp::socket>) {
    return s;
  } else {
    return s.next_layer();
  }
}

/// The session over one transport (TCP or TLS) for one role: the read loop, the write loop, the timers.
template <class Stream>
class session_impl final : public session,
                           private switchboard::detail::tick_clock::member,
                           private switchboard::detail::deferred_reads::reader {
  using deferred_reads = switchboard::detail::deferred_reads;

 public:
  session_impl(Stream stream, std::string leftover, const session_options& options, std::string subprotocol,
               std::optional<deflate_params> deflate, role r = role::server, std::shared_ptr<void> admission = {})
      : session(stream.get_executor(), options, std::move(subprotocol), r, deflate),
        stream_(std::move(stream)),
        parser_(r, with_deflate(options.limits, deflate)),
        writer_(r) {
    if (deflate) compressor_ = std::make_unique<deflate_compressor>(r, *deflate);
    admission_ = std::move(admission);
    if (!leftover.empty()) {
      in_.resize(leftover.size() + min_read_space);
      std::copy(leftover.begin(), leftover.end(), in_.begin());
      in_size_ = leftover.size();
    }
    if constexpr (plain_tcp) {
      std::error_code ignored;
      stream_.non_blocking(true, ignored);  // on_readable reads what is there and never blocks
    }
  }

  ~session_impl() override { tick_clock::leave(*this); }

  void start() override {
    if (state_ == state::closed) return;  // ended before it started (`abort` in `on_open`)
    quiet_since_ = switchboard::detail::coarse_now();
    if (timeouts_.ping_interval.count() > 0) {
      tick_clock::of(get_executor())
          .join(*this, get_executor(), quiet_since_ + timeouts_.ping_interval, shortest_timeout());
    }
    pump_writes();
    if (in_size_ > 0) {
      on_bytes(std::span<char>(in_.data(), in_size_), true);
    } else {
      read();
    }
  }

 private:
  static parser_options with_deflate(parser_options o, const std::optional<deflate_params>& d) {
    o.deflate = d;
    return o;
  }

  std::shared_ptr<session_impl> self() { return std::static_pointer_cast<session_impl>(shared_from_this()); }

  // ------------------------------------------------------------------ reading

  // Reading. A session with no partial frame buffered holds no buffer: over plain TCP it waits for the socket to
  // become readable, then reads into its thread's scratch buffer and parses there, keeping only an incomplete frame's
  // bytes (so that ten thousand idle sessions do not hold ten thousand read buffers). After handling a message it
  // first tries a read at the end of the event loop's turn (read_after_turn). Over TLS, where readiness of the
  // socket says nothing about decrypted bytes, it reads into its own buffer.
  static constexpr bool plain_tcp = std::is_same_v<Stream, asio::ip::tcp::socket>;
  static constexpr std::size_t min_read_space = 4096;

  void read() {
    if (state_ == state::closed) return;
    if constexpr (plain_tcp) {
      if (in_size_ == 0) return wait_readable();
    }
    if (in_.size() - in_size_ < min_read_space) in_.resize(std::max(in_.size() * 2, in_size_ + min_read_space));
    stream_.async_read_some(asio::buffer(in_.data() + in_size_, in_.size() - in_size_),
                            [self = self()](std::error_code ec, std::size_t n) {
                              if (ec) return self->finish({close_code::abnormal, ec.message(), false});
                              self->in_size_ += n;
                              self->heard_from_peer();
                              self->on_bytes(std::span<char>(self->in_.data(), self->in_size_), true);
                            });
  }

  void wait_readable() {
    std::vector<char>().swap(in_);
    stream_.async_wait(asio::socket_base::wait_read,
                       switchboard::detail::long_wait([self = self()](std::error_code ec) {
                         if (ec) return self->finish({close_code::abnormal, ec.message(), false});
                         self->on_readable();
                       }));
  }

  void on_readable() {
    if (state_ != state::closed && !read_available()) read();
  }

  // Reads what the socket holds into the thread's scratch buffer and handles it; false when it held nothing.
  bool read_available() {
    const std::span<char> scratch = switchboard::detail::thread_scratch();
    std::error_code ec;
    const std::size_t n = stream_.read_some(asio::buffer(scratch.data(), scratch.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return false;
    if (ec) {
      finish({close_code::abnormal, ec.message(), false});
      return true;
    }
    heard_from_peer();
    on_bytes(scratch.first(n), false);
    return true;
  }

  // A message was handled, and perhaps answered: the peer's next one may follow the answer. Over plain TCP, with
  // nothing partial kept, read at the end of this turn (core/detail/deferred_reads.hpp), else now.
  void read_after_turn() {
    if constexpr (plain_tcp) {
      if (in_size_ == 0 && state_ != state::closed &&
          deferred_reads::defer(get_executor(), std::shared_ptr<deferred_reads::reader>(
                                                    self(), static_cast<deferred_reads::reader*>(this)))) {
        return;
      }
    }
    read();
  }

  void read_deferred() override {
    if (state_ == state::closed || read_available()) return;
    deferred_read_missed();
    read();
  }

  void heard_from_peer() {
    quiet_since_ = switchboard::detail::coarse_now();
    awaiting_pong_ = false;
  }

  // Handles what a read brought; the answers its handlers sent meanwhile go out together after it (see `offer`).
  void on_bytes(std::span<char> bytes, bool owned) {
    {
      struct handling_scope {
        bool& flag;
        explicit handling_scope(bool& f) : flag(f) { flag = true; }
        ~handling_scope() { flag = false; }
      } scope(handling_);
      handle_bytes(bytes, owned);
    }
    if (std::exchange(pump_after_handling_, false)) pump_writes();
  }

  // Parses `bytes`: the session's own buffer (`owned`) or the thread's scratch buffer, whose unparsed tail is
  // copied into the session's buffer before anything else may use the scratch buffer.
  void handle_bytes(std::span<char> bytes, bool owned) {
    std::size_t pos = 0;
    bool arrived = false;  // a message (or a control frame outside one) arrived whole in these bytes
    while (state_ != state::closed) {
      const parse_result r = parser_.parse(bytes.subspan(pos));
      pos += r.consumed;
      const bool control = r.event == parse_event::ping || r.event == parse_event::pong;
      arrived = arrived || (r.event == parse_event::data && r.message_end) || (control && current_.empty());
      switch (r.event) {
        case parse_event::need_more:
          keep_unparsed(bytes, pos, owned);
          time_partial_message(arrived);
          return arrived ? read_after_turn() : read();
        case parse_event::data:
          if (state_ == state::open) {
            current_.append(r.payload);
            if (r.message_end) {
              message m{r.message_type, std::move(current_)};
              current_ = std::string();
              if (on_message_) deliver(std::move(m));
              if (send_queue_full()) {
                keep_unparsed(bytes, pos, owned);
                reading_paused_ = true;  // until the writer makes room (resume_reading)
                return;
              }
            }
          }
          break;
        case parse_event::ping:
          queue_control(opcode::pong, r.payload);
          break;
        case parse_event::pong:
          break;
        case parse_event::close:
          keep_unparsed(bytes, pos, owned);
          return on_peer_close(r.code, std::string(r.reason));
        case parse_event::error:
          keep_unparsed(bytes, pos, owned);
          failed_ = true;
          // Our close frame already went out: nothing is left to say, and nothing more is read (§7.1.7).
          if (close_sent_ && !writing_) return finish({close_code_for(r.error), r.error.message(), false});
          return begin_close(close_code_for(r.error), r.error.message(), false);
      }
    }
  }

  // Backpressure under the `wait` policy: the handler's answers (an echo, replies to requests) fill the queue, so the
  // peer is not reading them. From half the queue's limits on, stop handling its messages, and reading, until the
  // writer has taken from the queue; what was read and not handled yet waits in `in_`. The other half leaves room
  // for the answers to the message just handled, so that none is dropped (a fire-and-forget send to a full queue
  // would be). A peer that never reads is cut by the write timeout.
  bool send_queue_full() const noexcept {
    const queue_limits& limits = queue_.limits();
    const queue_stats queued = queue_.stats();
    return limits.policy == overflow_policy::wait &&
           (queued.depth * 2 >= limits.max_messages || queued.bytes * 2 >= limits.max_bytes);
  }

  // Hands `m` to the message handler. The handler may end the session (`abort`, or a `close` whose write fails),
  // which lets go of the handler (report_close): it is held here until it returns, and put back unless the session
  // ended or the handler set another.
  void deliver(message&& m) {
    message_handler handler = std::move(on_message_);
    handler(std::move(m));
    if (!on_message_ && state_ != state::closed) on_message_ = std::move(handler);
  }

  // After the writer took from the queue: handle what waits in `in_`, then read again.
  void resume_reading() {
    if (!reading_paused_ || state_ == state::closed || send_queue_full()) return;
    reading_paused_ = false;
    on_bytes(std::span<char>(in_.data(), in_size_), true);
  }

  void keep_unparsed(std::span<char> bytes, std::size_t pos, bool owned) {
    const std::size_t rest = bytes.size() - pos;
    if (!owned && rest > 0 && in_.size() < rest + min_read_space) in_.resize(rest + min_read_space);
    if (rest > 0) std::memmove(in_.data(), bytes.data() + pos, rest);
    in_size_ = rest;
  }

  // The peer's close frame. Nothing more is read.
  void on_peer_close(close_code code, std::string reason) {
    peer_closed_ = true;
    // We started closing and this is the answer: done.
    if (close_sent_) return finish(closing_->outcome());
    if (state_ == state::open) {
      // Echo the peer's close (§5.5.1) with its code, or "normal" when it sent none.
      const close_code echo = (code == close_code::no_status) ? close_code::normal : code;
      enter_closing(close_info{echo, {}, true});
      closing_->peer = close_info{code, std::move(reason), true};
    }
    // Our close frame is due "as soon as practical" (§5.5.1), and a peer that sent its close may process nothing
    // more ("there is no guarantee that the endpoint that has already sent a Close frame will continue to process
    // data", §5.5.1): the messages still queued go unsent, counted in dropped(), also when our own close() waited
    // behind them. A peer that gives up while megabytes are queued for it (a slow consumer) gets its answer after
    // the current message, not after the queue or at the write timeout. What the writer took already still goes
    // (an endpoint "MAY delay sending a Close frame until its current message is sent"): a write under way (a frame
    // is never cut), and the message its pop was given (`popped_`; pump_writes holds the close frame behind a pop
    // that was woken). The queue was closed by enter_closing (or close()): nothing joins it, and the sends waiting
    // for room (`async_send` under `wait`) completed with `error::closed` then. Control frames waiting (a pong, a
    // keep-alive ping: two at most, 131 bytes each at most) still go, before the close frame: §5.5.1 forbids only
    // frames after it, they delay it by a few bytes, and none can join them (nothing more is read, and keep-alive
    // stops once the session is closing); leaving them is the simplest and loses no pong the peer may wait for.
    discard_queued();
    pump_writes();
  }

  // Empties the send queue unsent, counting each message in dropped().
  void discard_queued() {
    while (queue_.try_pop()) lost_.fetch_add(1, std::memory_order_relaxed);
  }

  // ------------------------------------------------------------------ writing

  // The frames of one write, and the shared bytes that keep them alive until it is done.
  struct write_batch {
    std::vector<asio::const_buffer> buffers;
    std::vector<shared_bytes> held;

    void add(shared_bytes bytes) {
      buffers.emplace_back(bytes.data(), bytes.size());
      held.push_back(std::move(bytes));
    }
    bool empty() const noexcept { return buffers.empty(); }
    void clear() noexcept {
      buffers.clear();
      held.clear();
    }
    // Drops the first `n` bytes (a partial write); true when nothing is left.
    bool consume(std::size_t n) {
      auto it = buffers.begin();
      for (; it != buffers.end() && n >= it->size(); ++it) n -= it->size();
      if (it != buffers.end()) *it += n;
      buffers.erase(buffers.begin(), it);
      return buffers.empty();
    }
  };

  // A control frame: a 2-byte header, a client's 4-byte mask key, at most 125 bytes of payload (§5.5).
  static constexpr std::size_t max_control_frame = 2 + 4 + max_control_payload;

  // Control frames (pong, ping) jump the queue of messages. A pong still waiting for the writer is replaced by the
  // next one: an endpoint may answer only the most recent ping (RFC 6455 §5.5.3). Otherwise a peer that sends pings
  // and reads nothing would make the pongs pile up while the writes wait (248 MB of pings in 8 s made one session
  // hold 4 GB).
  void queue_control(opcode op, std::string_view payload) {
    if (close_sent_) return;
    char frame[max_control_frame];
    shared_bytes bytes = shared_bytes::copy(std::string_view(frame, writer_.write_frame(frame, op, payload)));
    const auto waiting_pong = op == opcode::pong ? std::ranges::find_if(control_, is_pong) : control_.end();
    if (waiting_pong != control_.end()) *waiting_pong = std::move(bytes);
    else control_.push_back(std::move(bytes));
    pump_writes();
  }

  // Whether a frame this session wrote is a pong (its first byte holds FIN and the opcode, §5.2).
  static bool is_pong(const shared_bytes& frame) noexcept {
    return (static_cast<std::uint8_t>(frame.data()[0]) & 0x0F) == static_cast<std::uint8_t>(opcode::pong);
  }

  // Gathers control frames and every queued message into one write. The batch is gathered in the thread's own
  // `write_batch`: over plain TCP most writes are taken by the socket at once, so a session holds a batch of its
  // own (`in_flight_`) only while a write waits for the socket, and an idle session holds none.
  void pump_writes() {
    if (writing_ || state_ == state::closed) return;
    static thread_local write_batch gathered;
    write_batch& batch = gathered;
    batch.clear();
    if (!control_.empty()) {
      for (shared_bytes& frame : control_) batch.add(std::move(frame));
      std::vector<shared_bytes>().swap(control_);  // rare: hold no storage for them in between
    }
    if (!popped_.empty()) batch.add(std::move(popped_));
    // Once a waiting pop has been woken, the message it took is on its way to its completion: taking later ones
    // from the queue (or writing the close frame) now would put them ahead of it. While it still waits, whatever
    // is queued was queued without waking it (`offer`), and is taken here.
    if (!close_sent_ && (!waiting_for_queue_ || queue_.consumer_waiting())) {
      std::size_t bytes = 0;
      while (bytes < max_batch_bytes) {
        std::optional<outgoing> o = queue_.try_pop();
        if (!o) break;
        shared_bytes frame = encode(std::move(*o));
        bytes += frame.size();
        batch.add(std::move(frame));
      }
    }
    if (state_ == state::closing && !close_sent_ && !waiting_for_queue_ && queue_.stats().depth == 0 && batch.empty()) {
      // Everything queued before close() has gone: now the close frame.
      char frame[max_control_frame];
      // A close without a status code (see enter_closing) has no body: the peer reports 1005 (§7.1.5).
      const std::size_t n = closing_->ours.code == close_code::no_status
                                ? writer_.write_close(frame)
                                : writer_.write_close(frame, closing_->ours.code, closing_->ours.reason);
      batch.add(shared_bytes::copy(std::string_view(frame, n)));
      close_sent_ = true;
    }
    if (reading_paused_ && !send_queue_full()) {
      // Not from here: handling messages may queue, close or pump again.
      asio::post(get_executor(), [self = self()] { self->resume_reading(); });
    }
    if (batch.empty()) {
      if (!close_sent_ && !queue_finished_) {
        queue_.release_storage();  // idle until the next message: hold no ring meanwhile
        if (!waiting_for_queue_) wait_for_queue();
      }
      return;
    }
    writing_ = true;
    if constexpr (plain_tcp) {
      // Most batches fit in the socket buffer: write at once (the socket is non-blocking), and only wait, with the
      // write timeout watched, when the peer is slow. No operation, and no timer left armed, for the usual write.
      std::error_code ec;
      const std::size_t n = stream_.write_some(batch.buffers, ec);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        batch.clear();
        return on_batch_written(ec);
      }
      if (batch.consume(ec ? 0 : n)) {
        batch.clear();
        return on_batch_written({});
      }
    }
    in_flight_ = std::make_unique<write_batch>();
    std::swap(*in_flight_, batch);
    write_started_ = std::chrono::steady_clock::now();
    watch_write();
    asio::async_write(stream_, in_flight_->buffers,
                      [self = self()](std::error_code ec, std::size_t) { self->on_batch_written(ec); });
  }

  void on_batch_written(std::error_code ec) {
    writing_ = false;
    in_flight_.reset();
    if (ec) return finish({close_code::abnormal, ec.message(), false});
    // Failing the connection (§7.1.7) closes it once the close frame is out: the rest of the peer's input is not
    // read, so its close would never be seen, and waiting for it would hold the socket until `close_timeout`.
    if (close_sent_ && (peer_closed_ || failed_)) return finish(closing_->outcome());
    if (close_sent_) return shutdown_send();
    pump_writes();
  }

  // The frame of a queued message: as queued when it was encoded once for many sessions, else framed (and
  // compressed) here, in the order the messages go out (the compressor's context follows that order).
  shared_bytes encode(outgoing o) {
    if (o.encoded) return std::move(o.bytes);
    std::string_view payload = o.bytes.view();
    std::string compressed;
    const bool compress = compressor_ != nullptr;
    if (compress) {
      compressor_->compress(payload, true, compressed);
      payload = compressed;
    }
    return shared_bytes::build(writer_.frame_size(payload.size()), [&](std::span<char> frame) {
      return writer_.write_frame(frame, o.type, payload, true, compress);
    });
  }

  // A message sent on the session's executor. While the writer is busy it is queued. While the writer is idle (its
  // pop waiting, nothing queued or being written) it does not go through the queue's waiting pop, which would cost
  // a ring allocated for it, a completion posted to the pop and a new pop to wait with afterwards:
  //  - outside the handling of this session's messages (a broadcast's delivery, a timer's send) it is framed and
  //    written at once;
  //  - while a read's messages are handled, the answers their handlers send are kept (the first as `popped_`, the
  //    others queued without waking the pop) and go out together in one write when the read has been handled.
  // Either way the pop goes on waiting; a message that skips the queue counts in it as pushed and popped.
  push_outcome offer(outgoing& o) override {
    const bool writer_idle = state_ == state::open && !writing_ && waiting_for_queue_ && queue_.consumer_waiting();
    if (!writer_idle) return queue_.try_push(std::move(o));
    if (popped_.empty() && queue_.hand_over(o)) {
      popped_ = encode(std::move(o));
      if (handling_) pump_after_handling_ = true;
      else pump_writes();
      return push_outcome::queued;
    }
    if (!handling_) return queue_.try_push(std::move(o));
    const push_outcome outcome = queue_.try_push_for_consumer(std::move(o));
    if (accepted(outcome)) pump_after_handling_ = true;
    return outcome;
  }

  // Nothing to write: wait until a message is queued. The popped message is framed at once and written by the
  // next pump, after any control frames waiting.
  void wait_for_queue() {
    waiting_for_queue_ = true;
    queue_.async_pop([self = self()](std::error_code ec, outgoing o) {
      self->waiting_for_queue_ = false;
      if (self->state_ == state::closed) return;
      if (ec) {
        self->queue_finished_ = true;  // closed and empty: nothing more will come (the close frame may be due)
      } else {
        self->popped_ = self->encode(std::move(o));
      }
      self->pump_writes();
    });
  }

  // The write timeout, checked lazily: the timer is armed when a write has to wait for the socket (over plain TCP,
  // only when a write at once did not take everything) and none is armed; when it fires it cuts a write that has
  // taken the whole timeout, or waits out the rest of the current write's time. A busy session arms it about once
  // per timeout instead of arming and cancelling it around every write (two timer-heap operations and a
  // completion each, per message of a broadcast).
  void watch_write() {
    if (timeouts_.write_timeout.count() == 0 || write_timer_armed_) return;
    write_timer_armed_ = true;
    if (!write_timer_) write_timer_ = std::make_unique<asio::steady_timer>(get_executor());
    write_timer_->expires_at(write_started_ + timeouts_.write_timeout);
    write_timer_->async_wait(switchboard::detail::long_wait([self = self()](std::error_code ec) {
      self->write_timer_armed_ = false;
      if (ec || self->state_ == state::closed || !self->writing_) return;
      if (std::chrono::steady_clock::now() - self->write_started_ >= self->timeouts_.write_timeout) {
        return self->finish({close_code::abnormal, "write timeout", false});
      }
      self->watch_write();  // a later write is under way
    }));
  }

  // ------------------------------------------------------------------ closing and keep-alive

  void begin_close(close_code code, std::string reason, bool by_peer) override {
    if (state_ != state::open) return;
    enter_closing(close_info{code, std::move(reason), by_peer});
    pump_writes();
  }

  // Moves to `closing` with `ours` as the close frame to send once the queue has drained, and starts the
  // closing handshake's deadline.
  void enter_closing(close_info ours) {
    state_ = state::closing;
    if (ours.reason.size() > 123 || !is_valid_utf8(ours.reason)) ours.reason.clear();  // §5.5.1: 125 with the code
    // 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control frame" (§7.4.1), nor may codes
    // outside §7.4.2's ranges. `close()` takes any `close_code` (an application relaying another connection's
    // `close_info` passes 1005 or 1006): such a close goes out without a body, which the peer reports as 1005
    // (§7.1.5), and so does `on_close`; a reason needs a code before it (§5.5.1). Writing the code would throw on
    // the session's thread, out of its event loop.
    if (!is_valid_close_code(static_cast<std::uint16_t>(ours.code))) {
      ours.code = close_code::no_status;
      ours.reason.clear();
    }
    closing_ = std::make_unique<closing_state>(get_executor(), std::move(ours));
    queue_.close();  // no more messages; those queued still go out first, unless the peer closed (on_peer_close)
    closing_->timer.expires_after(timeouts_.close_timeout);
    closing_->timer.async_wait(switchboard::detail::long_wait([self = self()](std::error_code ec) {
      if (!ec) self->finish(self->closing_->outcome());
    }));
  }

  void shutdown_send() {
    // The close frame is out; wait (reading) for the peer's close, or the close timer.
    if (!peer_closed_) return;
    finish(closing_->outcome());
  }

  // Keep-alive and `message_timeout`: called by the clock of the session's context (core/detail/tick_clock.hpp)
  // when it is due.
  using tick_clock = switchboard::detail::tick_clock;
  tick_clock::time_point tick(tick_clock::time_point now) override {
    if (on_own_thread()) return check_deadlines(now);
    asio::dispatch(get_executor(), [self = self()] { self->check_deadlines(std::chrono::steady_clock::now()); });
    return now;  // the next tick looks again
  }

  // What the clock's period follows: the shortest of the timeouts it keeps for this session.
  std::chrono::milliseconds shortest_timeout() const noexcept {
    std::chrono::milliseconds shortest = std::chrono::milliseconds::max();
    if (timeouts_.ping_interval.count() > 0) shortest = std::min(timeouts_.ping_interval, timeouts_.pong_timeout);
    if (timeouts_.message_timeout.count() > 0) shortest = std::min(shortest, timeouts_.message_timeout);
    return shortest;
  }

  // After a read that left part of a message (or of a frame) unreceived: from then on it must be whole within
  // `message_timeout`. `arrived`: a message ended in that read, so what is partial now is the next one, timed
  // afresh (a peer streaming large messages back to back, every read ending inside one, is never cut). The session
  // is on its context's clock while a message is partial (it stays there anyway when it pings). Messages that
  // arrive in one read cost a comparison here.
  void time_partial_message(bool arrived) {
    if (timeouts_.message_timeout.count() <= 0) return;
    const bool partial = in_size_ > 0 || !current_.empty();
    if (!partial) {
      if (std::exchange(receiving_partial_, false) && timeouts_.ping_interval.count() <= 0) {
        tick_clock::leave(*this);  // nothing else to time
      }
      return;
    }
    if (receiving_partial_ && !arrived) return;  // the same message, still arriving
    receiving_partial_ = true;
    partial_since_ = switchboard::detail::coarse_now();
    const tick_clock::time_point deadline = partial_since_ + timeouts_.message_timeout;
    // Already on the clock: due at the latest by the earlier deadline, when `check_deadlines` answers with this one.
    if (timeouts_.ping_interval.count() > 0) tick_clock::advance(*this, deadline);
    else tick_clock::of(get_executor()).join(*this, get_executor(), deadline, shortest_timeout());
  }

  // The deadlines the clock keeps: a message arriving too slowly, then keep-alive. Returns when to look again.
  tick_clock::time_point check_deadlines(tick_clock::time_point now) {
    if (state_ != state::open) return tick_clock::time_point::max();
    if (receiving_partial_ && now - partial_since_ >= timeouts_.message_timeout) {
      finish({close_code::abnormal, "message timeout", false});
      return tick_clock::time_point::max();
    }
    const tick_clock::time_point keepalive =
        timeouts_.ping_interval.count() > 0 ? check_keepalive(now) : tick_clock::time_point::max();
    if (!receiving_partial_ || state_ != state::open) return keepalive;
    return std::min(keepalive, partial_since_ + timeouts_.message_timeout);
  }

  std::shared_ptr<tick_clock::member> tick_ref() noexcept override {
    std::shared_ptr<session> owner = weak_from_this().lock();
    if (!owner) return nullptr;
    return std::shared_ptr<tick_clock::member>(std::move(owner), static_cast<tick_clock::member*>(this));
  }

  // A ping after `ping_interval` of silence; the end if it is not answered within `pong_timeout` (anything heard
  // from the peer counts as the answer). Returns when to look again: the earliest either can be due.
  tick_clock::time_point check_keepalive(tick_clock::time_point now) {
    if (state_ != state::open) return tick_clock::time_point::max();
    if (awaiting_pong_) {
      if (now - quiet_since_ < timeouts_.pong_timeout) {
        return switchboard::detail::saturating_add(quiet_since_, timeouts_.pong_timeout);
      }
      finish({close_code::abnormal, "no pong", false});
      return tick_clock::time_point::max();
    }
    if (now - quiet_since_ < timeouts_.ping_interval) {
      return switchboard::detail::saturating_add(quiet_since_, timeouts_.ping_interval);
    }
    awaiting_pong_ = true;
    quiet_since_ = now;
    queue_control(opcode::ping, {});
    return switchboard::detail::saturating_add(now, timeouts_.pong_timeout);
  }

  void finish(close_info info) override {
    if (state_ == state::closed) return;
    state_ = state::closed;
    queue_.close();
    // Nothing more is written: what is still queued goes (counted in dropped()), so that the writer's waiting pop
    // completes (it waits on while a closed queue holds items, which a handler can leave there: see `offer`) and
    // lets go of the session.
    discard_queued();
    tick_clock::leave(*this);
    if (closing_) closing_->timer.cancel();
    if (write_timer_) write_timer_->cancel();
    if constexpr (!plain_tcp) {
      if (close_sent_ && peer_closed_ && !writing_) end_tls_session();
      else close_socket();
    } else {
      close_socket();
    }
    report_close(info);
  }

  // After a closing handshake, the TLS session is closed cleanly as well (RFC 6455 §7.1.1): our closure alert
  // (close_notify, RFC 8446 §6.1), then Asio waits for the peer's; a peer that closes instead ends it too, and one that
  // does neither is cut after `close_timeout`. Nothing is in flight: the peer's close frame ended the reading, and
  // the write of ours is done.
  void end_tls_session() {
    closing_->timer.expires_after(timeouts_.close_timeout);
    closing_->timer.async_wait([self = self()](std::error_code ec) {
      if (!ec) self->close_socket();
    });
    stream_.async_shutdown([self = self()](std::error_code) {
      self->closing_->timer.cancel();
      self->close_socket();
    });
  }

  void close_socket() {
    std::error_code ignored;
    lowest_socket(stream_).close(ignored);
  }

  static constexpr std::size_t max_batch_bytes = 256 * 1024;

  // What a closing session needs, made when closing starts: most of a session's life is spent open.
  struct closing_state {
    closing_state(const asio::any_io_executor& executor, close_info our_close)
        : timer(executor), ours(std::move(our_close)) {}
    const close_info& outcome() const noexcept { return peer ? *peer : ours; }

    asio::steady_timer timer;        // the closing handshake's deadline
    close_info ours;                 // the close frame we send (an echo of the peer's when it started)
    std::optional<close_info> peer;  // the peer's close, when the peer started: what on_close hears
  };

  Stream stream_;
  frame_parser parser_;
  frame_writer writer_;  // a client's frames are masked with keys from OpenSSL; a server's are not
  std::unique_ptr<deflate_compressor> compressor_;  // only when permessage-deflate was negotiated
  std::vector<char> in_;
  std::size_t in_size_ = 0;
  std::string current_;                  // the message being assembled
  std::vector<shared_bytes> control_;  // pong and ping frames waiting for the writer (one of each at most)
  shared_bytes popped_;                // the frame of the message a waiting pop took (empty: none)
  std::unique_ptr<write_batch> in_flight_;  // the batch of a write that waits for the socket
  // Timers are made when first needed: most sessions never wait for a write, and close once.
  std::unique_ptr<asio::steady_timer> write_timer_;
  std::unique_ptr<closing_state> closing_;
  std::chrono::steady_clock::time_point write_started_{};  // of the write under way
  // The start of the silence that keep-alive times: when the peer was last heard from (coarse_clock.hpp), or, while
  // awaiting a pong, when the ping went out.
  std::chrono::steady_clock::time_point quiet_since_;
  std::chrono::steady_clock::time_point partial_since_;  // when the message that is partial began to arrive
  bool queue_finished_ = false;  // the send queue is closed and empty
  bool write_timer_armed_ = false;
  bool writing_ = false;
  bool waiting_for_queue_ = false;
  bool handling_ = false;             // in on_bytes: the peer's messages are being handled
  bool pump_after_handling_ = false;  // answers kept while handling wait for pump_writes
  bool close_sent_ = false;
  bool peer_closed_ = false;
  bool failed_ = false;  // the peer's input broke the protocol: nothing more is read (on_batch_written)
  bool awaiting_pong_ = false;
  bool receiving_partial_ = false;  // part of a message (or of a frame) has arrived, not all of it
  bool reading_paused_ = false;     // the send queue is full under `wait` (send_queue_full): nothing is read
};

}  // namespace detail
}  // namespace switchboard::ws
