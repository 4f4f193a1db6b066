// switchboard/resp/client.hpp
//
// `resp::client`: an asynchronous client for Redis (and anything that speaks RESP) over Asio. Commands are
// pipelined: each `async_exec` appends its command to the output, one write sends everything queued, and replies
// are matched to commands in order. RESP3 is negotiated with HELLO 3 when the server has it (Redis 6+), else RESP2.
// Pub/sub messages (RESP3 pushes, or RESP2 messages in subscribed mode) go to a push handler.
//
//   resp::client redis(executor, {.port = 6379});
//   co_await redis.async_connect(asio::use_awaitable);
//   resp::value v = co_await redis.async_exec(resp::command("INCR", "counter"), asio::use_awaitable);
//   redis.set_push_handler([](resp::value push) { ... });      // ["message", channel, payload], ...
//   co_await redis.async_exec(resp::command("SUBSCRIBE", "news"), asio::use_awaitable);
//
// Threading: a client lives on one executor; its functions may be called from any thread (they dispatch there).
// Lifetime: operations keep the client's state alive; destroying the client closes the connection and fails what
// is still waiting with `error::connection_lost`. Reconnection is the caller's policy (see the pub/sub bridge).
#pragma once

#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/net/detail/server_name.hpp>
#include <switchboard/resp/encoder.hpp>
#include <switchboard/resp/error.hpp>
#include <switchboard/resp/reply_parser.hpp>
#include <switchboard/resp/value.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::resp {

struct client_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  /// AUTH credentials; an empty password sends no AUTH. An empty username means "default".
  std::string username;
  std::string password;
  /// CLIENT SETNAME value; empty sends none.
  std::string client_name;
  /// 3: ask for RESP3 (HELLO 3) and fall back to RESP2 if the server refuses; 2: RESP2 only.
  int protocol = 3;
  /// Resolving, connecting, TLS and the set-up commands.
  std::chrono::milliseconds connect_timeout{5'000};
  /// Most commands queued or waiting for a reply at once; more fail with `error::too_many_pending`.
  std::size_t max_pending = 100'000;
  /// Liveness of a connection that awaits no reply (an idle one, or one that only receives pub/sub messages): after
  /// this long without a byte from the server the client sends a PING, and when as long again passes without a
  /// byte, it takes the connection as lost: a hung server, or a network that drops packets without a reset, which
  /// TCP would not report for hours. The disconnect handler then gets `switchboard::error::timeout`. While a
  /// command awaits its reply the check waits too, so that a blocking command (BLPOP) is not cut, and while a MULTI
  /// is open (Redis would queue the PING). Zero: no check.
  std::chrono::milliseconds health_check_interval{10'000};
  /// Limits of the reply parser.
  reply_parser_options limits;
  /// TLS when set: the handshake uses this context (its trusted certificates, client certificate, ciphers).
  std::shared_ptr<asio::ssl::context> tls;
  /// With `tls`: verify the server's certificate chain against the context's trusted certificates and check that
  /// it names `host` (RFC 6125), failing the connect otherwise. Turning this off accepts any server, including a
  /// man in the middle: for tests only.
  bool tls_verify = true;
};

/// A command's arguments, for `client::async_exec`: `command("SET", key, value)`. (A braced list of string
/// literals would do as well outside coroutines; GCC 12 rejects one inside a `co_await` expression.)
template <class... Args>
std::vector<std::string> command(Args&&... args) {
  std::vector<std::string> out;
  out.reserve(sizeof...(args));
  (out.emplace_back(std::forward<Args>(args)), ...);
  return out;
}

class client {
 public:
  using push_handler = std::function<void(value)>;
  using disconnect_handler = std::function<void(std::error_code)>;

  client(asio::any_io_executor executor, client_options options)
      : state_(std::make_shared<state>(std::move(executor), std::move(options))) {}
  ~client() {
    if (state_) close();
  }
  client(client&&) noexcept = default;
  /// Closes this client's connection, as its destructor does, then takes over `other`'s.
  client& operator=(client&& other) noexcept {
    if (this != &other) {
      if (state_) close();
      state_ = std::move(other.state_);
    }
    return *this;
  }

  asio::any_io_executor get_executor() const { return state_->executor; }

  /// Connects and sets the connection up (HELLO or AUTH, CLIENT SETNAME). Completion signature
  /// `void(std::error_code)`: `switchboard::error::timeout` past `connect_timeout`, `error::handshake_failed` when
  /// the server refuses the set-up, or the resolver's or socket's error.
  template <class Token>
  auto async_connect(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [s = state_](auto handler) {
          asio::dispatch(s->executor, [s, h = connect_handler(std::move(handler), s->executor)]() mutable {
            s->connect(std::move(h));
          });
        },
        token);
  }

  /// Sends a command and waits for its reply. Completion signature `void(std::error_code, value)`. An error reply
  /// is not an error code: it completes with a value whose `is_error()` is true. SUBSCRIBE and its relatives
  /// complete once written; their confirmations, like the messages, go to the push handler, and so does an error
  /// reply that arrives while no other command waits for a reply (Redis answers a refused subscription with an
  /// error instead of confirmations: `-MOVED` for SSUBSCRIBE on the wrong cluster node). So that such an error is
  /// never taken for another command's reply, send subscription commands on a connection of their own. A command
  /// without arguments completes with `asio::error::invalid_argument` (Redis answers nothing to it, so its place
  /// in the line of replies would take the next command's). Commands that would put the client out of step with
  /// the connection complete with `error::command_refused`, and nothing is sent: HELLO and RESET (they change the
  /// protocol and end subscriptions behind the client's back), MONITOR, CLIENT REPLY, SYNC, PSYNC and REPLCONF
  /// (after them the server sends what no command waits for, or answers nothing), and the subscription commands
  /// between MULTI and its EXEC or DISCARD (Redis would queue them and answer +QUEUED where the client waits for
  /// no reply). Commands issued after `async_connect`, before it completes, are sent once the set-up has been
  /// answered (they fail with `error::connection_lost` if the connect fails).
  template <class Token>
  auto async_exec(std::vector<std::string> args, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, value)>(
        [s = state_](auto handler, std::vector<std::string> args) {
          asio::dispatch(s->executor, [s, args = std::move(args),
                                       h = reply_handler(std::move(handler), s->executor)]() mutable {
            s->exec(std::move(args), std::move(h));
          });
        },
        token, std::move(args));
  }

  /// Receives pushes (RESP3 `>` frames, or RESP2 pub/sub messages and confirmations), on the client's executor.
  /// The handler is called where it is kept, never copied; it may replace itself, or destroy the client.
  void set_push_handler(push_handler h) { set_handler(&state::on_push, std::move(h)); }
  /// Called once when an established connection is lost (not after `close`), on the client's executor. Like the
  /// push handler, it is called where it is kept, never copied; it may replace itself.
  void set_disconnect_handler(disconnect_handler h) { set_handler(&state::on_disconnect, std::move(h)); }

  /// Closes the connection; commands still waiting fail with `error::connection_lost`. Safe from any thread.
  void close() {
    asio::dispatch(state_->executor, [s = state_] { s->fail(error::connection_lost, /*notify=*/false); });
  }

  /// The protocol negotiated (2 or 3), 0 before a connection. On the executor only.
  int protocol() const noexcept { return state_->protocol; }
  bool connected() const noexcept { return state_->connected; }

 private:
  using connect_handler = switchboard::detail::pending_handler<void(std::error_code)>;
  using reply_handler = switchboard::detail::pending_handler<void(std::error_code, value)>;

  // The user's handlers are kept behind a shared pointer, and each call holds a share of the one it runs: a handler
  // may replace itself (a one-shot handler), which would otherwise destroy it while it runs. Not a copy per call,
  // which for a std::function whose captures exceed its small buffer would allocate for every push or disconnect.
  template <class Handler>
  using shared_handler = std::shared_ptr<const Handler>;

  struct state;

  // Puts `h` (empty: none) in `member` of the state, on the executor.
  template <class Handler>
  void set_handler(shared_handler<Handler> state::*member, Handler h) {
    auto shared = h ? std::make_shared<const Handler>(std::move(h)) : nullptr;
    asio::dispatch(state_->executor,
                   [s = state_, member, h = std::move(shared)]() mutable { (*s).*member = std::move(h); });
  }

  // Calls the handler kept in `kept`, if any, through a share of it (see `shared_handler`).
  template <class Handler, class... Args>
  static void call_handler(const shared_handler<Handler>& kept, Args&&... args) {
    const shared_handler<Handler> handler = kept;
    if (handler) (*handler)(std::forward<Args>(args)...);
  }

  struct state : std::enable_shared_from_this<state> {
    state(asio::any_io_executor ex, client_options opts)
        : executor(std::move(ex)),
          options(std::move(opts)),
          socket(executor),
          timer(executor),
          health_timer(executor),
          health_token("switchboard-health-check-" + std::to_string(std::random_device{}())),
          parser(options.limits) {}

    asio::any_io_executor executor;
    client_options options;
    asio::ip::tcp::socket socket;
    // Shared with the operations in flight on it: closing lets go of it, and the last of them frees it, since an SSL
    // operation still touches its stream when it completes with `operation_aborted`.
    std::shared_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
    asio::steady_timer timer;
    // Liveness (`health_check_interval`): the PINGs carry a token of this client's, by which their replies are told
    // apart from the replies to commands (they take no place in `waiting`, so that they can never be matched with
    // a subscription command's refusal, which also comes where no command waits).
    asio::steady_timer health_timer;
    const std::string health_token;
    std::size_t health_pings_out = 0;  // replies to swallow
    bool received = false;             // a byte arrived since the last check
    bool pinged = false;               // a PING went out in the current silence
    reply_parser parser;
    std::string out, writing, in;
    std::deque<reply_handler> waiting;                 // in the order their replies will come
    std::vector<reply_handler> complete_when_written;  // commands without a reply, in the current write
    // Commands issued during the set-up, sent when it has been answered: the set-up may still grow (the RESP2
    // commands after a refused HELLO), and its replies must come before theirs.
    std::string held;
    std::vector<reply_handler> held_when_written;
    std::vector<reply_handler> written_batch;
    shared_handler<push_handler> on_push;              // see `shared_handler`
    shared_handler<disconnect_handler> on_disconnect;  // see `shared_handler`
    connect_handler connecting;
    int protocol = 0;
    int setup_replies = 0;  // set-up commands whose replies are still expected during connect
    bool in_transaction = false;  // MULTI sent, and no EXEC or DISCARD after it (see `follow_transaction`)
    bool connected = false;
    bool is_writing = false;
    // RESP2 subscribed mode, followed from the confirmations, which come in the order of the commands: the names
    // the server has confirmed, by kind (channel, pattern, shard channel), and the confirmations still due for the
    // subscription commands sent. The connection is in subscribed mode while either is not empty: a command that
    // ends the last subscription (confirmed with a count of 0) may be followed by one, already sent, that starts
    // another, and its confirmations must still be taken for pushes.
    struct confirmations_due {
      std::string_view kind;  // of the confirmations: "subscribe", "unsubscribe", ... (static storage)
      std::size_t count;      // still due; for an UNSUBSCRIBE without names, counted when its turn comes
      bool counted;
    };
    std::array<std::set<std::string, std::less<>>, 3> resp2_names;
    std::deque<confirmations_due> resp2_due;
    std::vector<confirmations_due> held_due;  // of the held commands: due if the set-up ends in RESP2
    std::uint64_t generation = 0;  // incremented on each (re)connection, so stale handlers know they are stale

    void connect(connect_handler h) {
      if (connected || connecting) {
        h.complete(make_error_code(std::errc::already_connected));
        return;
      }
      connecting = std::move(h);
      reset_connection();
      const std::uint64_t gen = ++generation;
      timer.expires_after(options.connect_timeout);
      timer.async_wait([self = shared_from_this(), gen](std::error_code ec) {
        if (ec || gen != self->generation || !self->connecting) return;
        self->finish_connect(switchboard::error::timeout);
      });
      auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor);
      resolver->async_resolve(options.host, std::to_string(options.port),
                              [self = shared_from_this(), resolver, gen](std::error_code ec, auto results) {
                                if (gen != self->generation || !self->connecting) return;
                                if (ec) return self->finish_connect(ec);
                                asio::async_connect(self->socket, results, [self, gen](std::error_code cec, auto) {
                                  if (gen != self->generation || !self->connecting) return;
                                  if (cec) return self->finish_connect(cec);
                                  std::error_code ignored;
                                  self->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
                                  self->start_tls(gen);
                                });
                              });
    }

    void start_tls(std::uint64_t gen) {
      if (!options.tls) return send_setup();
      tls = std::make_shared<asio::ssl::stream<asio::ip::tcp::socket&>>(socket, *options.tls);
      net::detail::set_server_name(tls->native_handle(), options.host);
      if (options.tls_verify) {
        tls->set_verify_mode(asio::ssl::verify_peer);
        tls->set_verify_callback(asio::ssl::host_name_verification(options.host));
      } else {
        tls->set_verify_mode(asio::ssl::verify_none);
      }
      const auto handshaken = [self = shared_from_this(), gen, keep = tls](std::error_code ec) {
        if (gen != self->generation || !self->connecting) return;
        if (ec) return self->finish_connect(ec);
        self->send_setup();
      };
      tls->async_handshake(asio::ssl::stream_base::client, handshaken);
    }

    // HELLO 3 [AUTH user pass] [SETNAME name], or for RESP2: [AUTH] [CLIENT SETNAME], or PING when there is neither.
    // There is always one: a connection counts as made once the server has accepted a command, so that one that
    // demands a password we do not give fails here (NOAUTH), not with every command after. The replies are read by
    // the normal reader; set-up replies are checked in `on_setup_reply` while `setup_replies` > 0.
    void send_setup() {
      connected = true;  // the pipe is open; commands issued now queue behind the set-up
      protocol = options.protocol >= 3 ? 3 : 2;
      start_reading();
      encoder e(out);
      if (protocol == 3) {
        std::vector<std::string_view> hello{"HELLO", "3"};
        if (!options.password.empty()) {
          hello.insert(hello.end(), {"AUTH", options.username.empty() ? std::string_view("default")
                                                                      : std::string_view(options.username),
                                     options.password});
        }
        if (!options.client_name.empty()) hello.insert(hello.end(), {"SETNAME", options.client_name});
        e.command(hello);
        ++setup_replies;
      } else {
        send_resp2_setup();
      }
      flush();
    }

    void send_resp2_setup() {
      encoder e(out);
      if (!options.password.empty()) {
        if (options.username.empty()) e.command({"AUTH", options.password});
        else e.command({"AUTH", options.username, options.password});
        ++setup_replies;
      }
      if (!options.client_name.empty()) {
        e.command({"CLIENT", "SETNAME", options.client_name});
        ++setup_replies;
      }
      if (setup_replies == 0) {
        e.command({"PING"});
        ++setup_replies;
      }
    }

    // A reply to a set-up command. Returns true when it was one.
    bool on_setup_reply(const value& v) {
      if (setup_replies == 0) return false;
      --setup_replies;
      if (v.is_error()) {
        // A server without RESP3 (Redis < 6) answers HELLO with an error: fall back to RESP2.
        if (protocol == 3 && (v.text.rfind("NOPROTO", 0) == 0 || v.text.find("unknown command") != std::string::npos)) {
          protocol = 2;
          send_resp2_setup();
          flush();
          return true;
        }
        finish_connect(error::handshake_failed);
        return true;
      }
      if (setup_replies == 0) finish_connect({});
      return true;
    }

    void finish_connect(std::error_code ec) {
      timer.cancel();
      auto h = std::move(connecting);
      connecting = connect_handler();
      if (ec) {
        fail(ec, /*notify=*/false);
      } else {
        out += held;
        held.clear();
        if (protocol == 2) resp2_due.insert(resp2_due.end(), held_due.begin(), held_due.end());
        held_due.clear();
        for (auto& w : held_when_written) complete_when_written.push_back(std::move(w));
        held_when_written.clear();
        flush();
        check_health_later(generation);
      }
      if (h) h.complete(ec);
    }

    void check_health_later(std::uint64_t gen) {
      if (options.health_check_interval.count() <= 0) return;
      health_timer.expires_after(options.health_check_interval);
      health_timer.async_wait([self = shared_from_this(), gen](std::error_code ec) {
        if (!ec && gen == self->generation) self->check_health(gen);
      });
    }

    // Once per interval: a byte from the server, or a command awaiting its reply, ends the silence; a first silent
    // interval sends a PING, a second one ends the connection. Not inside MULTI, where the PING would be queued and
    // its +QUEUED taken for an answer out of step.
    void check_health(std::uint64_t gen) {
      if (received || !waiting.empty() || in_transaction) {
        received = false;
        pinged = false;
      } else if (!pinged) {
        pinged = true;
        ++health_pings_out;
        encoder(out).command({"PING", health_token});
        flush();
      } else {
        return fail(switchboard::error::timeout, /*notify=*/true);
      }
      check_health_later(gen);
    }

    // PING's reply: the token as a bulk string, or in RESP2 subscribed mode the array ["pong", token].
    bool is_health_reply(const value& v) const {
      if (v.kind == value_kind::bulk_string) return v.text == health_token;
      return v.kind == value_kind::array && v.elements.size() == 2 && v.elements[0].text == "pong" &&
             v.elements[1].text == health_token;
    }

    void exec(std::vector<std::string> args, reply_handler h) {
      if (!connected && !connecting) {
        h.complete(error::not_connected, value{});
        return;
      }
      if (args.empty()) {
        h.complete(asio::error::invalid_argument, value{});
        return;
      }
      const std::string_view kind = subscription_kind(args[0]);
      if (is_refused(args) || (in_transaction && !kind.empty())) {
        h.complete(error::command_refused, value{});
        return;
      }
      if (waiting.size() + complete_when_written.size() + held_when_written.size() >= options.max_pending) {
        h.complete(error::too_many_pending, value{});
        return;
      }
      follow_transaction(args);
      std::vector<std::string_view> views(args.begin(), args.end());
      // From `async_connect` until the set-up is answered (resolving, connecting and TLS included), commands are
      // held (see `held`).
      const bool setting_up = static_cast<bool>(connecting);
      encoder(setting_up ? held : out).command(views);
      if (!kind.empty()) {
        // Each name is confirmed once (a refused command, or one without names: one error instead); an UNSUBSCRIBE
        // without names, once per name of its kind, or once when there is none.
        const bool all = args.size() == 1 && kind.find("unsubscribe") != std::string_view::npos;
        const confirmations_due due{kind, std::max<std::size_t>(args.size() - 1, 1), !all};
        if (setting_up) held_due.push_back(due);  // the protocol is known once HELLO is answered
        else if (protocol == 2) resp2_due.push_back(due);
        (setting_up ? held_when_written : complete_when_written).push_back(std::move(h));
      } else {
        waiting.push_back(std::move(h));
      }
      flush();
    }

    // Inside MULTI, Redis queues each command and answers +QUEUED, then answers them all in EXEC's array: a
    // subscription command there would be answered where the client waits for no reply (it takes a subscription
    // command's answers for pushes), so `exec` refuses it, and the health check sends no PING. The flag is on
    // whenever the server is in a transaction (it may be on when not: a refused MULTI, an EXEC with arguments),
    // which errs on the side of refusing.
    void follow_transaction(const std::vector<std::string>& args) {
      if (iequal(args[0], "MULTI")) in_transaction = true;
      else if (args.size() == 1 && (iequal(args[0], "EXEC") || iequal(args[0], "DISCARD"))) in_transaction = false;
    }

    // Commands that would change, behind the client's back, what it relies on to match replies with commands and
    // to tell pushes from replies. `exec` refuses them before anything is sent (names compared without case, as
    // Redis does):
    // - HELLO switches the protocol, which decides how pushes are told from replies (RESP3 `>` frames, or RESP2
    //   arrays followed through `resp2_due`) and what the health check's reply looks like; it may also AUTH.
    // - RESET switches to RESP2 too, and ends every subscription without a confirmation to follow.
    // - MONITOR makes the server send every command it runs, where no command waits for a reply.
    // - CLIENT REPLY OFF and SKIP make the server answer nothing to the commands that follow, so that each later
    //   reply would go to the command after its own (ON has nothing to undo once those are refused).
    // - SYNC and PSYNC turn the connection into a replication stream (an RDB payload, then commands); REPLCONF, for
    //   replicas only, leaves ACK and GETACK unanswered.
    // Not refused: the subscription commands, which `exec` follows itself (outside MULTI: `follow_transaction`),
    // and QUIT, which is answered before the server closes the connection; the client then reports a lost
    // connection, as for any other close.
    static bool is_refused(const std::vector<std::string>& args) {
      for (std::string_view name : {"HELLO", "RESET", "MONITOR", "SYNC", "PSYNC", "REPLCONF"}) {
        if (iequal(args[0], name)) return true;
      }
      return args.size() >= 2 && iequal(args[0], "CLIENT") && iequal(args[1], "REPLY");
    }

    static bool iequal(std::string_view a, std::string_view b) {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
      }
      return true;
    }

    // The confirmations' kind of a subscription command ("subscribe" for SUBSCRIBE), or empty for other commands.
    static std::string_view subscription_kind(std::string_view name) {
      for (std::string_view k : confirmation_kinds) {
        if (iequal(name, k)) return k;
      }
      return {};
    }

    static constexpr std::array<std::string_view, 6> confirmation_kinds{
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"};

    // 0: channels, 1: patterns, 2: shard channels.
    static std::size_t family_of(std::string_view kind) {
      if (kind.starts_with('p')) return 1;                         // psubscribe, punsubscribe
      if (kind.starts_with('s') && kind != "subscribe") return 2;  // ssubscribe, sunsubscribe
      return 0;
    }

    bool resp2_subscribed() const {
      return !resp2_due.empty() || !resp2_names[0].empty() || !resp2_names[1].empty() || !resp2_names[2].empty();
    }

    void flush() {
      if (is_writing || out.empty() || !connected) return;
      is_writing = true;
      writing.swap(out);
      out.clear();
      written_batch.swap(complete_when_written);
      complete_when_written.clear();
      auto done = [self = shared_from_this(), gen = generation, keep = tls](std::error_code ec, std::size_t) {
        if (gen != self->generation) return;
        self->is_writing = false;
        self->writing.clear();
        if (ec) return self->fail(error::connection_lost, true);
        for (auto& h : self->written_batch) h.complete({}, value{});
        self->written_batch.clear();
        self->flush();
      };
      if (tls) asio::async_write(*tls, asio::buffer(writing), std::move(done));
      else asio::async_write(socket, asio::buffer(writing), std::move(done));
    }

    void start_reading() {
      in.resize(16 * 1024);
      read_more(0);
    }

    void read_more(std::size_t kept) {
      if (in.size() - kept < 4096) in.resize(in.size() * 2);
      auto done = [self = shared_from_this(), gen = generation, kept, keep = tls](std::error_code ec, std::size_t n) {
        if (gen != self->generation) return;
        if (ec) return self->fail(error::connection_lost, true);
        self->on_bytes(kept + n);
      };
      auto buffer = asio::buffer(in.data() + kept, in.size() - kept);
      if (tls) tls->async_read_some(buffer, std::move(done));
      else socket.async_read_some(buffer, std::move(done));
    }

    void on_bytes(std::size_t size) {
      received = true;
      std::size_t pos = 0;
      const std::uint64_t gen = generation;
      while (pos < size) {
        std::error_code ec;
        const std::size_t used = parser.parse(std::string_view(in.data() + pos, size - pos), ec);
        if (ec) return fail(ec, true);
        pos += used;
        if (!parser.has_value()) break;
        on_value(parser.take());
        if (gen != generation) return;  // a handler closed the connection
      }
      // Keep the unparsed tail at the front (the parser remembers offsets relative to its input).
      std::memmove(in.data(), in.data() + pos, size - pos);
      read_more(size - pos);
    }

    void on_value(value v) {
      if (v.kind == value_kind::push || is_resp2_push(v)) {
        if (protocol == 2) track_resp2_subscriptions(v);
        call_handler(on_push, std::move(v));
        return;
      }
      if (health_pings_out > 0 && is_health_reply(v)) {
        --health_pings_out;
        return;
      }
      if (on_setup_reply(v)) return;
      if (waiting.empty()) {
        // An error nobody waits for answers a subscription command (see async_exec), which then sends no
        // confirmations; anything else means the connection is out of step.
        if (!v.is_error()) return fail(error::connection_lost, true);
        if (protocol == 2 && !resp2_due.empty()) resp2_due.pop_front();
        call_handler(on_push, std::move(v));
        return;
      }
      auto h = std::move(waiting.front());
      waiting.pop_front();
      h.complete({}, std::move(v));
    }

    // In RESP2 subscribed mode, messages and (un)subscribe confirmations are arrays like any reply.
    bool is_resp2_push(const value& v) const {
      if (protocol != 2 || !resp2_subscribed() || v.kind != value_kind::array || v.elements.empty()) return false;
      const std::string& kind = v.elements[0].text;
      for (std::string_view k : {"message", "pmessage", "smessage", "subscribe", "psubscribe", "ssubscribe",
                                 "unsubscribe", "punsubscribe", "sunsubscribe"}) {
        if (kind == k) return true;
      }
      return false;
    }

    // A confirmation counts against the first command's due ones (when it is of that command's kind: Redis also
    // ends shard subscriptions unasked, when their slot moves) and adds or removes its name.
    void track_resp2_subscriptions(const value& v) {
      if (v.elements.size() != 3 || v.elements[2].kind != value_kind::integer) return;  // a message
      const std::string_view kind = v.elements[0].text;
      if (subscription_kind(kind).empty()) return;
      auto& names = resp2_names[family_of(kind)];
      if (!resp2_due.empty() && resp2_due.front().kind == kind) {
        confirmations_due& due = resp2_due.front();
        if (!due.counted) {  // an UNSUBSCRIBE without names: its turn has come, the names are those it ends
          due.count = std::max<std::size_t>(names.size(), 1);
          due.counted = true;
        }
        if (--due.count == 0) resp2_due.pop_front();
      }
      if (v.elements[1].kind == value_kind::null) return;  // UNSUBSCRIBE without names, and none to end
      if (kind.find("unsubscribe") != std::string_view::npos) {
        if (const auto it = names.find(v.elements[1].text); it != names.end()) names.erase(it);
      } else {
        names.insert(v.elements[1].text);
      }
    }

    void reset_connection() {
      std::error_code ignored;
      if (socket.is_open()) socket.close(ignored);
      tls.reset();
      parser.reset();
      out.clear();
      held.clear();
      held_due.clear();
      writing.clear();
      in.clear();
      protocol = 0;
      setup_replies = 0;
      in_transaction = false;
      for (auto& names : resp2_names) names.clear();
      resp2_due.clear();
      is_writing = false;
      health_timer.cancel();
      health_pings_out = 0;
      received = false;
      pinged = false;
    }

    // Closes the connection and fails everything that waits. `notify`: tell the disconnect handler.
    void fail(std::error_code ec, bool notify) {
      const bool was_connected = connected && !connecting;  // set up: a failed set-up fails the connect only
      connected = false;
      ++generation;
      timer.cancel();
      reset_connection();
      auto pending = std::move(waiting);
      waiting.clear();
      auto unwritten = std::move(complete_when_written);
      complete_when_written.clear();
      auto in_flight = std::move(written_batch);
      written_batch.clear();
      auto held_back = std::move(held_when_written);
      held_when_written.clear();
      for (auto& h : pending) h.complete(error::connection_lost, value{});
      for (auto& h : unwritten) h.complete(error::connection_lost, value{});
      for (auto& h : in_flight) h.complete(error::connection_lost, value{});
      for (auto& h : held_back) h.complete(error::connection_lost, value{});
      if (connecting) {
        auto h = std::move(connecting);
        connecting = connect_handler();
        h.complete(ec);
      }
      if (notify && was_connected) call_handler(on_disconnect, ec);
    }
  };

  std::shared_ptr<state> state_;
};

}  // namespace switchboard::resp
