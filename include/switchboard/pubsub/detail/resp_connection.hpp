// switchboard/pubsub/detail/resp_connection.hpp
//
// One client of a `resp_server`: reads commands (RESP multibulk or inline, resp/command_parser.hpp), runs them
// against the broker and writes Redis 7's replies, byte for byte. Lives on its shard's executor; every member runs
// there.
//
// Subscriptions. A client's SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE joins its thread's broker subscription to the name
// (resp_shard.hpp), which hands each message at once, encoded, to the output queues of the thread's clients of
// that name; the output limits apply there: so a client that does not read ends up above its limit and is
// disconnected, and nothing else waits for it (Redis's client-output-buffer-limit pubsub).
//
// Output. Replies and messages are appended to `out_`; one write at a time sends everything queued (`sending_`
// holds the bytes in flight, so appending never moves them). Messages are flushed by the shard after the batch
// of deliveries that queued them, replies after the batch of commands read together.
//
// Order of checks before a command runs, as in Redis's processCommand: unknown command / subcommand and arity,
// then authentication (NOAUTH), then the RESP2 subscribed-mode restriction.
#pragma once

#include <switchboard/core/detail/thread_scratch.hpp>
#include <switchboard/core/log.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/http/detail/output_queue.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/resp_commands.hpp>
#include <switchboard/pubsub/detail/resp_shard.hpp>
#include <switchboard/resp/command_parser.hpp>
#include <switchboard/resp/encoder.hpp>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

namespace switchboard::pubsub::detail {

class resp_connection final : public resp_session, public std::enable_shared_from_this<resp_connection> {
 public:
  /// A client on `socket`. `counted_address`: the address it counts against in `max_clients_per_address` (when
  /// that limit is on), given back as it closes.
  resp_connection(std::shared_ptr<resp_shard> shard, asio::ip::tcp::socket socket,
                  std::optional<asio::ip::address> counted_address)
      : shard_(std::move(shard)),
        shared_(&shard_->shared()),
        socket_(std::move(socket)),
        counted_address_(std::move(counted_address)),
        parser_(shared_->options.parser),
        id_(shared_->next_client_id.fetch_add(1)),
        authenticated_(shared_->options.requirepass.empty()),
        last_active_(std::chrono::steady_clock::now()) {}

  resp_connection(const resp_connection&) = delete;
  resp_connection& operator=(const resp_connection&) = delete;

  void start() {
    shard_->add(this);
    shared_->clients.fetch_add(1, std::memory_order_relaxed);
    read();
  }

  void flush() override {
    if (writing_ || closed_) return;
    if (out_bytes_ > 0) write_now();
    if (out_bytes_ == 0) {
      if (close_after_write_) close(false);
      return;
    }
    // The socket is full: wait for room. The write owns the rest of what write_now took; what comes meanwhile is
    // queued for the next write (output_queue::start_write).
    sending_bytes_ = std::exchange(out_bytes_, 0);
    writing_ = true;
    asio::async_write(socket_, out_.sending_buffers(), [self = shared_from_this()](std::error_code ec, std::size_t) {
      self->writing_ = false;
      self->out_.finish_write();
      self->sending_bytes_ = 0;
      if (ec || self->closed_) return self->close(false);
      self->update_soft_limit();
      self->flush();
      self->resume_reading();
    });
  }

  void tick(std::chrono::steady_clock::time_point now) override {
    if (closed_) return;
    const auto& limits = shared_->options.output_limits;
    if (over_soft_ && now - over_soft_since_ > limits.soft_seconds) return output_limit_reached();
    const auto idle = shared_->options.idle_timeout;
    if (idle.count() > 0 && !subscribed() && !waiting_ && now - last_active_ > idle) close(false);
  }

  void leave() override {
    if (closed_) return;
    unsubscribe_all();
    close_after_write_ = true;
    flush();
  }

  void cut() override { close(true); }

 private:
  /// Room for a read after an unfinished command, in the client's own buffer: 16 KiB, as Redis reads; for a client
  /// whose reads fill their room (a publisher streaming commands), 64 KiB, as a read into the thread's scratch
  /// buffer gets, so that one turn runs a larger burst and its subscribers get it in fewer, larger writes.
  /// Measured with reads of 16 KiB and of 64 KiB (fan-out to 10 RESP subscribers, benchmarks/load/pubsub.sh,
  /// 2026-11-30): 0.098 -> 0.078 us of broker CPU per delivery; to 1 subscriber, 0.47 -> 0.41.
  static constexpr std::size_t read_chunk = 16 * 1024;
  static constexpr std::size_t busy_read_chunk = switchboard::detail::thread_scratch_size;
  /// Above this many bytes of unsent output, commands are not read (a client that pipelines without reading
  /// replies is slowed down instead of growing our buffers).
  static constexpr std::size_t read_pause_bytes = 256 * 1024;

  using subscriptions = std::unordered_set<std::string>;

  // --- Reading and dispatching ---

  // Reading. A client with no unfinished command buffered holds no read buffer: it waits for its socket to become
  // readable, then reads into its thread's scratch buffer and runs the commands there, keeping only an unfinished
  // command's bytes (keep_unparsed). So an idle client costs no 16 KiB, and no wait costs a read that finds
  // nothing (for a client waiting for its reply, async_read_some would first try one: one system call per command
  // more than Redis makes).
  void read() {
    if (reading_ || closed_ || close_after_write_) return;
    // What is left is one unfinished command (reading stops while replies wait, so no finished one is left unrun).
    if (in_end_ - in_start_ > shared_->options.max_query_buffer) {
      shared_->query_buffer_disconnects.fetch_add(1, std::memory_order_relaxed);
      log(log_level::warn, "pubsub", "resp client ", id_, " closed for a command past max_query_buffer (",
          in_end_ - in_start_, " bytes and not finished)");
      return close(false);
    }
    reading_ = true;
    if (maybe_more_) {
      // The last read filled its room: more may be waiting, which no readiness event would announce again
      // (edge-triggered epoll). Read again once the other work ready on this thread has run.
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->reading_ = false;
        self->read_now();
      });
      return;
    }
    socket_.async_wait(asio::socket_base::wait_read, [self = shared_from_this()](std::error_code ec) {
      self->reading_ = false;
      if (ec) return self->close(false);
      self->read_now();
    });
  }

  // Reads what the socket holds, without waiting: into the thread's scratch buffer, or after the unfinished command
  // in the client's own buffer.
  void read_now() {
    if (closed_ || close_after_write_) return;  // draining or quitting: input is ignored
    std::span<char> room;
    const bool scratch = in_start_ == in_end_;
    if (scratch) {
      room = switchboard::detail::thread_scratch();
    } else {
      make_room();
      room = std::span<char>(in_.data() + in_end_, in_.size() - in_end_);
    }
    std::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(room.data(), room.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      maybe_more_ = false;
      return read();
    }
    if (ec) return close(false);
    maybe_more_ = n == room.size();
    last_active_ = std::chrono::steady_clock::now();
    if (scratch) {
      scratch_input_ = room.data();
      in_start_ = 0;
      in_end_ = n;
    } else {
      in_end_ += n;
    }
    process();
  }

  // Room after the unfinished command in the client's buffer (which read() found within max_query_buffer; none
  // grows past it by more than a read).
  void make_room() {
    if (in_start_ > 0) {  // keep only the unparsed tail
      std::copy(in_.begin() + static_cast<std::ptrdiff_t>(in_start_), in_.begin() + static_cast<std::ptrdiff_t>(in_end_),
                in_.begin());
      in_end_ -= in_start_;
      in_start_ = 0;
    }
    const std::size_t chunk = maybe_more_ ? busy_read_chunk : read_chunk;
    if (in_.size() - in_end_ < chunk / 2) {
      in_.resize(std::min(std::max(in_.size() * 2, in_end_ + chunk), shared_->options.max_query_buffer + chunk));
    }
  }

  // After a batch of commands: the bytes left unparsed (an unfinished command, or commands held back while replies
  // wait) move from the thread's scratch buffer into the client's own, which is given back once empty.
  void keep_unparsed() {
    const std::size_t rest = in_end_ - in_start_;
    if (scratch_input_ != nullptr) {
      in_.assign(scratch_input_ + in_start_, scratch_input_ + in_end_);
      scratch_input_ = nullptr;
      in_start_ = 0;
      in_end_ = rest;
    }
    if (rest == 0) {
      std::vector<char>().swap(in_);
      in_start_ = in_end_ = 0;
    }
  }

  void resume_reading() {
    if (!waiting_ && out_bytes_ + sending_bytes_ <= read_pause_bytes) {
      process();
    }
  }

  // Runs the commands read so far and writes the replies, then reads more. Past `read_pause_bytes` of replies not yet
  // sent, the remaining commands wait: for the write's completion (resume_reading) when the replies could not all be
  // sent at once, else they run now (the client may be waiting for their replies, and send nothing more).
  void process() {
    for (;;) {
      const bool held_back = run_commands();
      keep_unparsed();
      flush();
      if (waiting_ || out_bytes_ + sending_bytes_ > read_pause_bytes) return;
      if (!held_back) break;
    }
    read();
  }

  // Runs the complete commands buffered. True when it stopped with commands left because replies wait.
  bool run_commands() {
    std::uint64_t commands = 0;  // counted once per batch: the counter is shared by every thread
    bool held_back = false;
    while (!closed_ && !waiting_ && !close_after_write_) {
      if (out_bytes_ + sending_bytes_ > read_pause_bytes) {
        held_back = true;
        break;
      }
      std::error_code ec;
      const char* input = scratch_input_ != nullptr ? scratch_input_ : in_.data();
      const std::string_view data(input + in_start_, in_end_ - in_start_);
      const std::size_t used = parser_.parse(data, ec);
      if (ec) {
        shared_->protocol_errors.fetch_add(1, std::memory_order_relaxed);
        append_raw(parser_.error_reply());
        close_after_write_ = true;
        break;
      }
      if (!parser_.has_command()) {
        in_start_ += used;
        break;
      }
      ++commands;
      execute(parser_.args());
      in_start_ += used;  // the arguments pointed into these bytes
    }
    shared_->commands.fetch_add(commands, std::memory_order_relaxed);
    return held_back;
  }

  void execute(std::span<const std::string_view> args) {
    const resp_lookup found = lookup_command(args);
    if (!found.spec) return reply_error(found.error);
    const resp_command_spec& spec = *found.spec;
    if (!authenticated_ && !has_word(spec.flags, "no_auth")) return reply_error("NOAUTH Authentication required.");
    if (subscribed() && version_ == resp::protocol::resp2 && !spec.in_subscribed_mode) {
      return reply_error("ERR Can't execute '" + std::string(spec.name) +
                         "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    }
    switch (spec.id) {
      case resp_command_id::publish: return publish(*shared_->channels, args);
      case resp_command_id::spublish: return publish(*shared_->shard_channels, args);
      case resp_command_id::subscribe: return subscribe(resp_channel_kind::channel, args);
      case resp_command_id::psubscribe: return subscribe(resp_channel_kind::pattern, args);
      case resp_command_id::ssubscribe: return subscribe(resp_channel_kind::shard, args);
      case resp_command_id::unsubscribe: return unsubscribe(resp_channel_kind::channel, args);
      case resp_command_id::punsubscribe: return unsubscribe(resp_channel_kind::pattern, args);
      case resp_command_id::sunsubscribe: return unsubscribe(resp_channel_kind::shard, args);
      case resp_command_id::ping: return ping(args);
      case resp_command_id::echo: return reply([&](resp::encoder& e) { e.bulk(args[1]); });
      case resp_command_id::hello: return hello(args);
      case resp_command_id::auth: return auth(args);
      case resp_command_id::quit:
        reply([](resp::encoder& e) { e.simple_string("OK"); });
        close_after_write_ = true;
        return;
      case resp_command_id::reset: return reset();
      case resp_command_id::info: return info(args);
      case resp_command_id::client_id: return reply([&](resp::encoder& e) { e.integer(static_cast<std::int64_t>(id_)); });
      case resp_command_id::client_getname:
        return reply([&](resp::encoder& e) { name_.empty() ? e.null() : e.bulk(name_); });
      case resp_command_id::client_setname:
        if (!set_name(args[2])) return;
        return reply([](resp::encoder& e) { e.simple_string("OK"); });
      case resp_command_id::command: return command_info(top_level_commands());
      case resp_command_id::command_count:
        return reply([](resp::encoder& e) { e.integer(static_cast<std::int64_t>(top_level_commands().size())); });
      case resp_command_id::command_info: return command_info(args.subspan(2));
      case resp_command_id::command_list: return command_list(args);
      case resp_command_id::command_docs:
        // Documentation is not served: an empty map, as Redis answers for names it does not know.
        return reply([](resp::encoder& e) { e.map_header(0); });
      case resp_command_id::pubsub_channels: return pubsub_list(resp_channel_kind::channel, args);
      case resp_command_id::pubsub_shardchannels: return pubsub_list(resp_channel_kind::shard, args);
      case resp_command_id::pubsub_numsub: return pubsub_numsub(resp_channel_kind::channel, args);
      case resp_command_id::pubsub_shardnumsub: return pubsub_numsub(resp_channel_kind::shard, args);
      case resp_command_id::pubsub_numpat:
        return reply([&](resp::encoder& e) {
          e.integer(static_cast<std::int64_t>(shared_->registry.size(resp_channel_kind::pattern)));
        });
      case resp_command_id::client:
      case resp_command_id::pubsub:
        break;  // the lookup turns these into a subcommand or an arity error
    }
  }

  // --- Commands ---

  void publish(broker& b, std::span<const std::string_view> args) {
    const auto result = b.publish(args[1], {.payload = shared_bytes::copy(args[2])});
    // The broker counts one receiver per thread subscribed; Redis counts clients.
    const auto kind = &b == shared_->shard_channels ? resp_channel_kind::shard : resp_channel_kind::channel;
    if (result.sequence == 1) shard_->forget_later(kind, args[1]);  // this publish made the topic
    if (result) {
      // No broker receiver means no client of this server either (each thread's clients of a name share one
      // subscription): the registry is only asked when there is someone to count.
      const std::size_t extra = result.subscribers == 0 ? 0 : shared_->registry.extra_receivers(kind, args[1]);
      return reply([&](resp::encoder& e) { e.integer(static_cast<std::int64_t>(result.subscribers + extra)); });
    }
    if (result.error != make_error_code(error::would_block)) return reply_error("ERR " + result.error.message());
    // An in-process subscriber with the `wait` policy is full: this client waits (its later commands too), as a
    // publisher of the broker would; the reply then counts the topic's subscribers.
    waiting_ = true;
    b.async_publish(args[1], {.payload = shared_bytes::copy(args[2])},
                    [self = shared_from_this(), &b, topic = std::string(args[1])](std::error_code ec, std::uint64_t) {
                      self->waiting_ = false;
                      if (self->closed_) return;
                      if (ec) {
                        self->reply_error("ERR " + ec.message());
                      } else {
                        const auto stats = b.stats(topic);
                        self->reply([&](resp::encoder& e) {
                          e.integer(static_cast<std::int64_t>(stats ? stats->subscribers : 0));
                        });
                      }
                      self->process();
                    });
  }

  // Drops the client's subscription to `name`; false if it had none.
  bool drop(resp_channel_kind kind, std::string_view name) {
    auto& set = subscribed_to(kind);
    const auto it = set.find(std::string(name));
    if (it == set.end()) return false;
    shard_->leave(kind, name, this);
    set.erase(it);
    return true;
  }

  subscriptions& subscribed_to(resp_channel_kind kind) noexcept {
    return kind == resp_channel_kind::channel ? channels_ : kind == resp_channel_kind::pattern ? patterns_ : shards_;
  }

  // The count in (un)subscribe replies: channels and patterns together, shard channels apart (Redis 7.0).
  std::size_t subscription_count(resp_channel_kind kind) const noexcept {
    return kind == resp_channel_kind::shard ? shards_.size() : channels_.size() + patterns_.size();
  }

  bool subscribed() const noexcept { return subscription_total() != 0; }

  std::size_t subscription_total() const noexcept { return channels_.size() + patterns_.size() + shards_.size(); }

  static std::string_view confirmation(resp_channel_kind kind, bool subscribing) noexcept {
    switch (kind) {
      case resp_channel_kind::channel: return subscribing ? "subscribe" : "unsubscribe";
      case resp_channel_kind::pattern: return subscribing ? "psubscribe" : "punsubscribe";
      case resp_channel_kind::shard: break;
    }
    return subscribing ? "ssubscribe" : "sunsubscribe";
  }

  void subscribe(resp_channel_kind kind, std::span<const std::string_view> args) {
    auto& set = subscribed_to(kind);
    for (const std::string_view name : args.subspan(1)) {
      if (!set.contains(std::string(name))) {
        if (subscription_total() >= shared_->options.max_subscriptions_per_client) {
          shared_->subscriptions_refused.fetch_add(1, std::memory_order_relaxed);
          reply_error("ERR max number of subscriptions per client reached");
          continue;
        }
        std::error_code ec;
        shard_->join(kind, name, this, ec);
        if (ec) {
          reply_error("ERR " + ec.message());
          continue;
        }
        set.emplace(name);
      }
      confirm(kind, true, name);
    }
  }

  void unsubscribe(resp_channel_kind kind, std::span<const std::string_view> args) {
    if (args.size() > 1) {
      for (const std::string_view name : args.subspan(1)) {
        drop(kind, name);
        confirm(kind, false, name);
      }
      return;
    }
    auto& set = subscribed_to(kind);
    if (set.empty()) return confirm(kind, false, std::nullopt);
    while (!set.empty()) {
      const std::string name = *set.begin();
      drop(kind, name);
      confirm(kind, false, name);
    }
  }

  // [subscribe|unsubscribe|..., name or null, count] as a push (RESP3) or an array (RESP2).
  void confirm(resp_channel_kind kind, bool subscribing, std::optional<std::string_view> name) {
    reply([&](resp::encoder& e) {
      e.push_header(3).bulk(confirmation(kind, subscribing));
      name ? e.bulk(*name) : e.null();
      e.integer(static_cast<std::int64_t>(subscription_count(kind)));
    });
  }

  void ping(std::span<const std::string_view> args) {
    if (args.size() > 2) return reply_error(arity_error("ping"));
    if (subscribed() && version_ == resp::protocol::resp2) {
      return reply([&](resp::encoder& e) { e.array_header(2).bulk("pong").bulk(args.size() == 2 ? args[1] : ""); });
    }
    if (args.size() == 2) return reply([&](resp::encoder& e) { e.bulk(args[1]); });
    reply([](resp::encoder& e) { e.simple_string("PONG"); });
  }

  void hello(std::span<const std::string_view> args) {
    resp::protocol version = version_;
    if (args.size() >= 2) {
      long long v = 0;
      const auto [end, ec] = std::from_chars(args[1].data(), args[1].data() + args[1].size(), v);
      if (ec != std::errc() || end != args[1].data() + args[1].size()) {
        return reply_error("ERR Protocol version is not an integer or out of range");
      }
      if (v < 2 || v > 3) return reply_error("NOPROTO unsupported protocol version");
      version = v == 3 ? resp::protocol::resp3 : resp::protocol::resp2;
    }
    const std::string_view* user = nullptr;
    const std::string_view* password = nullptr;
    const std::string_view* name = nullptr;
    for (std::size_t j = 2; j < args.size(); ++j) {
      const std::size_t more = args.size() - 1 - j;
      if (equals_ignoring_case(args[j], "AUTH") && more >= 2) {
        user = &args[j + 1];
        password = &args[j + 2];
        j += 2;
      } else if (equals_ignoring_case(args[j], "SETNAME") && more >= 1) {
        name = &args[j + 1];
        j += 1;
      } else {
        return reply_error("ERR Syntax error in HELLO option '" + std::string(c_string(args[j])) + "'");
      }
    }
    if (user && !check_password(*user, *password)) return;
    if (!authenticated_) {
      return reply_error(
          "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> "
          "<pass> option can be used to authenticate the client and select the RESP protocol version at the same "
          "time");
    }
    if (name && !set_name(*name)) return;
    version_ = version;
    const auto& o = shared_->options;
    reply([&](resp::encoder& e) {
      e.map_header(7);
      e.bulk("server").bulk(o.hello_server);
      e.bulk("version").bulk(o.hello_version);
      e.bulk("proto").integer(version_ == resp::protocol::resp3 ? 3 : 2);
      e.bulk("id").integer(static_cast<std::int64_t>(id_));
      e.bulk("mode").bulk("standalone");
      e.bulk("role").bulk("master");
      e.bulk("modules").array_header(0);
    });
  }

  void auth(std::span<const std::string_view> args) {
    if (args.size() > 3) return reply_error("ERR syntax error");
    if (args.size() == 2) {
      if (shared_->options.requirepass.empty()) {
        return reply_error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your "
            "configuration is correct?");
      }
      if (!check_password("default", args[1])) return;
    } else if (!check_password(args[1], args[2])) {
      return;
    }
    reply([](resp::encoder& e) { e.simple_string("OK"); });
  }

  // The default user is the only user: with no requirepass it takes any password (Redis's "nopass").
  bool check_password(std::string_view user, std::string_view password) {
    const std::string& required = shared_->options.requirepass;
    if (user == "default" && (required.empty() || constant_time_equal(password, required))) {
      authenticated_ = true;
      return true;
    }
    reply_error("WRONGPASS invalid username-password pair or user is disabled.");
    return false;
  }

  // Compares without stopping at the first difference, so that timing does not reveal a prefix of the password.
  static bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    unsigned diff = a.size() == b.size() ? 0 : 1;
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
  }

  // CLIENT SETNAME's rule: characters from '!' to '~' only; empty clears the name.
  bool set_name(std::string_view name) {
    for (const char c : name) {
      if (c < '!' || c > '~') {
        reply_error("ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
      }
    }
    name_ = name;
    return true;
  }

  void reset() {
    unsubscribe_all();
    version_ = resp::protocol::resp2;
    name_.clear();
    authenticated_ = shared_->options.requirepass.empty();
    reply([](resp::encoder& e) { e.simple_string("RESET"); });
  }

  // INFO [section ...]: the fields clients probe (ioredis waits for `loading:0` before it reports ready), in
  // Redis's format: "# Section" headers, "field:value" lines, a blank line between sections.
  void info(std::span<const std::string_view> args) {
    const auto wanted = [&](std::string_view section) {
      if (args.size() == 1) return true;
      for (const std::string_view a : args.subspan(1)) {
        if (equals_ignoring_case(a, section) || equals_ignoring_case(a, "all") || equals_ignoring_case(a, "default") ||
            equals_ignoring_case(a, "everything")) {
          return true;
        }
      }
      return false;
    };
    const auto stats = shared_->snapshot();
    const auto& registry = shared_->registry;
    std::string text;
    const auto section = [&](std::string_view name, std::initializer_list<std::pair<std::string_view, std::string>> fields) {
      if (!wanted(name)) return;
      if (!text.empty()) text += "\r\n";
      text += "# ";
      text += name;
      text += "\r\n";
      for (const auto& [field, value] : fields) text += std::string(field) + ":" + value + "\r\n";
    };
    section("Server", {{"redis_version", shared_->options.hello_version}, {"redis_mode", "standalone"},
                       {"server_name", "switchboard"}});
    section("Clients", {{"connected_clients", std::to_string(stats.clients)}});
    section("Persistence", {{"loading", "0"}});
    section("Stats", {{"total_connections_received", std::to_string(stats.accepted)},
                      {"total_commands_processed", std::to_string(stats.commands)},
                      {"rejected_connections", std::to_string(stats.rejected)},
                      {"client_output_buffer_limit_disconnections", std::to_string(stats.output_limit_disconnects)},
                      {"pubsub_channels", std::to_string(registry.size(resp_channel_kind::channel))},
                      {"pubsub_patterns", std::to_string(registry.size(resp_channel_kind::pattern))},
                      {"pubsub_shardchannels", std::to_string(registry.size(resp_channel_kind::shard))}});
    section("Replication", {{"role", "master"}, {"connected_slaves", "0"}});
    reply([&](resp::encoder& e) { e.verbatim("txt", text); });
  }

  void command_info(std::span<const resp_command_spec> specs) {
    reply([&](resp::encoder& e) {
      e.array_header(specs.size());
      for (const auto& s : specs) encode_command_info(e, s);
    });
  }

  void command_info(std::span<const std::string_view> names) {
    if (names.empty()) return command_info(top_level_commands());
    reply([&](resp::encoder& e) {
      e.array_header(names.size());
      for (const std::string_view n : names) {
        const resp_command_spec* s = find_spec(n);
        if (s) encode_command_info(e, *s);
        else e.null();  // Redis 7.0 answers a null bulk here, not a null array
      }
    });
  }

  void command_list(std::span<const std::string_view> args) {
    if (args.size() > 2) return reply_error("ERR syntax error");  // FILTERBY is not supported
    reply([](resp::encoder& e) {
      e.array_header(top_level_commands().size() + resp_subcommands.size());
      for (const auto& s : top_level_commands()) e.bulk(s.name);
      for (const auto& s : resp_subcommands) e.bulk(s.name);
    });
  }

  void pubsub_list(resp_channel_kind kind, std::span<const std::string_view> args) {
    if (args.size() > 3) return reply_error(subcommand_syntax_error(args));
    const auto names = shared_->registry.list(kind, args.size() == 3 ? &args[2] : nullptr);
    reply([&](resp::encoder& e) {
      e.array_header(names.size());
      for (const auto& n : names) e.bulk(n);
    });
  }

  void pubsub_numsub(resp_channel_kind kind, std::span<const std::string_view> args) {
    reply([&](resp::encoder& e) {
      e.array_header(2 * (args.size() - 2));
      for (const std::string_view n : args.subspan(2)) {
        e.bulk(n).integer(static_cast<std::int64_t>(shared_->registry.count(kind, n)));
      }
    });
  }

  // --- Deliveries (called by the shard's fan-out) ---

  resp::protocol version() const noexcept override { return version_; }

  void deliver(const shared_bytes& frame) override {
    if (closed_) return;
    out_.append_shared(frame);
    if (queued(frame.size()) && !flush_queued_) shard_->flush_later(shared_from_this());
  }

  void overflowed() override { output_limit_reached(); }

  // Without confirmations (RESET, closing, draining), as Redis's pubsubUnsubscribeAllChannels(c, 0).
  void unsubscribe_all() {
    for (const auto kind : {resp_channel_kind::channel, resp_channel_kind::pattern, resp_channel_kind::shard}) {
      auto& set = subscribed_to(kind);
      while (!set.empty()) drop(kind, std::string(*set.begin()));
    }
  }

  // --- Output ---

  // Writes what the socket takes now, without waiting (the listener made it non-blocking): most replies and
  // message batches fit, and then no asynchronous operation is needed, as in Redis's writeToClient.
  void write_now() {
    std::error_code ec;
    const std::size_t n = socket_.write_some(out_.start_write(), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return close(false);
    out_.consume_sent(n);
    out_bytes_ -= n;
    // Re-checked after every write, as after an asynchronous one: what went out at once may have taken the output
    // below `soft`, and a flag left set would have `tick` close a client that read everything (Redis re-checks the
    // limits on every append and resets the soft timer whenever the output is below `soft`).
    if (n > 0) update_soft_limit();
  }

  template <class Encode>
  void reply(Encode&& encode) {
    std::string& text = out_.text();
    const std::size_t before = text.size();
    resp::encoder e(text, version_);
    encode(e);
    queued(text.size() - before);
  }

  void reply_error(std::string_view message) {
    reply([&](resp::encoder& e) { e.error(message); });
  }

  void append_raw(std::string_view bytes) {
    out_.append(bytes);
    queued(bytes.size());
  }

  // Counts `n` more bytes of output and applies the output limits. False when the client was disconnected.
  bool queued(std::size_t n) {
    out_bytes_ += n;
    const std::size_t pending = out_bytes_ + sending_bytes_;
    if (pending > shared_->options.output_limits.hard) {
      output_limit_reached();
      return false;
    }
    update_soft_limit();
    return !closed_;
  }

  void update_soft_limit() {
    const auto& limits = shared_->options.output_limits;
    const bool over = out_bytes_ + sending_bytes_ > limits.soft;
    if (over && !over_soft_) over_soft_since_ = std::chrono::steady_clock::now();
    over_soft_ = over;
    if (over && std::chrono::steady_clock::now() - over_soft_since_ > limits.soft_seconds) output_limit_reached();
  }

  void output_limit_reached() {
    if (closed_) return;
    shared_->output_limit_disconnects.fetch_add(1, std::memory_order_relaxed);
    log(log_level::warn, "pubsub", "resp client ", id_, " closed for overflowing its output buffer limits (",
        out_bytes_ + sending_bytes_, " bytes pending)");
    close(false);
  }

  void close(bool was_cut) {
    if (closed_) return;
    closed_ = true;
    unsubscribe_all();
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    out_.release();
    out_bytes_ = 0;
    shared_->clients.fetch_sub(1, std::memory_order_relaxed);
    if (counted_address_) shared_->clients_per_address.remove(*counted_address_);
    shard_->remove(this, was_cut);
  }

  std::shared_ptr<resp_shard> shard_;
  resp_server_shared* shared_;
  asio::ip::tcp::socket socket_;
  std::optional<asio::ip::address> counted_address_;
  resp::command_parser parser_;
  std::vector<char> in_;                // an unfinished command's bytes (empty between commands)
  const char* scratch_input_ = nullptr;  // while a batch runs from the thread's scratch buffer: its bytes
  std::size_t in_start_ = 0;             // first byte not yet parsed
  std::size_t in_end_ = 0;               // end of the bytes read
  http::detail::output_queue out_;
  std::size_t out_bytes_ = 0;
  std::size_t sending_bytes_ = 0;
  subscriptions channels_, patterns_, shards_;
  std::uint64_t id_;
  std::string name_;
  resp::protocol version_ = resp::protocol::resp2;
  bool authenticated_;
  bool reading_ = false;
  bool maybe_more_ = false;  // the last read filled its room
  bool writing_ = false;
  bool waiting_ = false;            // a PUBLISH waits for room in a `wait` subscriber
  bool close_after_write_ = false;  // QUIT, a protocol error or a drain: close once the output is sent
  bool closed_ = false;
  bool over_soft_ = false;
  std::chrono::steady_clock::time_point over_soft_since_;
  std::chrono::steady_clock::time_point last_active_;
};

}  // namespace switchboard::pubsub::detail
