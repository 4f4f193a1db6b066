// A random mix for resp::client against a server (redis-server, or the broker's RESP front end): commands pipelined
// from several threads at once, values of every size made of any bytes (CR, LF and RESP's type markers among them),
// checked against a model of each calling thread's keys; and pub/sub messages arriving as RESP3 pushes between the
// replies on the same connection.
#pragma once

#include <switchboard/resp/client.hpp>

#include "support/catch.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace switchboard::test::resp_mix {

using namespace std::chrono_literals;
using resp::command;
using resp::value;
using resp::value_kind;

/// The commands a mix draws from: all of them for Redis; ECHO and PING for a server that keeps no keys (the
/// broker's front end).
enum class command_set { redis, echo_and_ping };

/// The order a subscriber receives one publisher's messages in: per channel (the broker's promise), or as published
/// across channels as well (Redis, single-threaded; the broker for the channels of one pattern subscription).
enum class message_order { per_channel, as_published };

/// How the subscriber subscribes to the three channels of a mix: SUBSCRIBE to each, or one PSUBSCRIBE that covers
/// them.
enum class subscribe_by { channels, pattern };


inline value simple(std::string text) { return {.kind = value_kind::simple_string, .text = std::move(text)}; }
inline value bulk(std::string text) { return {.kind = value_kind::bulk_string, .text = std::move(text)}; }
inline value integer(std::int64_t n) { return {.kind = value_kind::integer, .integer = n}; }
inline value null() { return {}; }

// A value of a random size (mostly small, now and then up to a megabyte) made of bytes that RESP gives meaning to
// (CR, LF, type markers, NUL) and any others; sometimes a word that a pub/sub message starts with.
inline std::string random_value(std::mt19937& rng, std::size_t max_size) {
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  if (pick(0, 19) == 0) return pick(0, 1) == 0 ? "message" : "subscribe";
  const std::size_t roll = pick(0, 99);
  const std::size_t size = std::min(max_size, roll < 70   ? pick(0, 64)
                                              : roll < 90 ? pick(65, 4096)
                                              : roll < 98 ? pick(4097, 100'000)
                                                          : pick(300'000, 1'200'000));
  static constexpr char special[] = {'\r', '\n', '$', '*', '>', '%', '_', ':', '+', '-', '\0'};
  std::string out(size, '\0');
  for (char& c : out) c = pick(0, 3) == 0 ? special[pick(0, std::size(special) - 1)] : static_cast<char>(pick(0, 255));
  return out;
}

struct step {
  std::vector<std::string> args;
  value expected;
};

// The keys of one calling thread ("<prefix>s0".."s3" strings, "<prefix>l" a list, "<prefix>n" a counter) and what
// Redis holds in them: each command drawn is applied here too, giving the reply Redis must send.
class key_model {
 public:
  key_model(std::string prefix, command_set commands) : prefix_(std::move(prefix)), commands_(commands) {}

  step next(std::mt19937& rng) {
    auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
    if (commands_ == command_set::echo_and_ping) {
      if (pick(0, 4) == 0) return {command("PING"), simple("PONG")};
      std::string v = random_value(rng, 1'200'000);
      return {command("ECHO", v), bulk(v)};
    }
    const std::string key = prefix_ + "s" + std::to_string(pick(0, 3));
    const std::string list = prefix_ + "l";
    auto found = strings_.find(key);
    switch (pick(0, 10)) {
      case 0: {
        std::string v = random_value(rng, 2'000'000);
        strings_[key] = v;
        return {command("SET", key, std::move(v)), simple("OK")};
      }
      case 1:
        return {command("GET", key), found == strings_.end() ? null() : bulk(found->second)};
      case 2: {
        std::string& s = strings_[key];
        // Bounded: a string that keeps growing would make every GET of it slow.
        std::string v = random_value(rng, s.size() > 2'000'000 ? 0 : 100'000);
        s += v;
        return {command("APPEND", key, std::move(v)), integer(static_cast<std::int64_t>(s.size()))};
      }
      case 3:
        return {command("STRLEN", key),
                integer(found == strings_.end() ? 0 : static_cast<std::int64_t>(found->second.size()))};
      case 4: {
        const bool existed = found != strings_.end();
        if (existed) strings_.erase(found);
        return {command("DEL", key), integer(existed ? 1 : 0)};
      }
      case 5: {
        if (list_.size() >= 40) break;
        std::string v = random_value(rng, 4096);
        list_.push_back(v);
        return {command("RPUSH", list, std::move(v)), integer(static_cast<std::int64_t>(list_.size()))};
      }
      case 6: {
        value all{.kind = value_kind::array};
        for (const std::string& v : list_) all.elements.push_back(bulk(v));
        return {command("LRANGE", list, "0", "-1"), std::move(all)};
      }
      case 7: {
        if (list_.empty()) return {command("LPOP", list), null()};
        value first = bulk(std::move(list_.front()));
        list_.pop_front();
        return {command("LPOP", list), std::move(first)};
      }
      case 8: {
        const auto by = static_cast<std::int64_t>(pick(0, 2000)) - 1000;
        counter_ += by;
        return {command("INCRBY", prefix_ + "n", std::to_string(by)), integer(counter_)};
      }
      case 9: {
        std::string v = random_value(rng, 100'000);
        return {command("ECHO", v), bulk(v)};
      }
      default:
        break;
    }
    return {command("PING"), simple("PONG")};
  }

 private:
  std::string prefix_;
  command_set commands_;
  std::map<std::string, std::string> strings_;
  std::deque<std::string> list_;
  std::int64_t counter_ = 0;
};

// What one calling thread sent and received. Replies are recorded on the client's executor.
struct caller_record {
  std::vector<step> steps;
  std::vector<std::optional<std::pair<std::error_code, value>>> replies;
  std::size_t received = 0;
};

// Runs `callers` threads against `c`, each sending `commands` random commands of `set` in batches of random sizes
// (waiting for a batch's replies now and then, so that the pipeline's depth varies), then checks every reply on this
// thread.
inline void run_callers(resp::client& c, unsigned seed, int callers, std::size_t commands, command_set set) {
  std::vector<caller_record> records(static_cast<std::size_t>(callers));
  std::mutex m;
  std::condition_variable replied;
  std::vector<std::thread> threads;
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      caller_record& record = records[static_cast<std::size_t>(t)];
      std::mt19937 rng(seed * 1000 + static_cast<unsigned>(t));
      key_model model("r" + std::to_string(seed) + ":t" + std::to_string(t) + ":", set);
      {
        const std::lock_guard lock(m);
        record.replies.resize(commands);
      }
      for (std::size_t i = 0; i < commands;) {
        const std::size_t batch = std::min(commands - i, std::uniform_int_distribution<std::size_t>(1, 64)(rng));
        for (std::size_t k = 0; k < batch; ++k, ++i) {
          step s = model.next(rng);
          std::vector<std::string> args = s.args;
          {
            const std::lock_guard lock(m);
            record.steps.push_back(std::move(s));
          }
          c.async_exec(std::move(args), [&, &record = record, i](std::error_code ec, value v) {
            const std::lock_guard lock(m);
            record.replies[i] = std::pair(ec, std::move(v));
            ++record.received;
            replied.notify_all();
          });
        }
        if (rng() % 3 == 0) continue;  // the next batch joins this one in the pipeline
        std::unique_lock lock(m);
        if (!replied.wait_for(lock, 20s, [&] { return record.received == i; })) return;
      }
      std::unique_lock lock(m);
      replied.wait_for(lock, 20s, [&] { return record.received == commands; });
    });
  }
  for (std::thread& t : threads) t.join();

  const std::lock_guard lock(m);
  for (std::size_t t = 0; t < records.size(); ++t) {
    const caller_record& record = records[t];
    INFO("caller " << t);
    REQUIRE(record.steps.size() == commands);
    for (std::size_t i = 0; i < commands; ++i) {
      INFO("command " << i << ": " << record.steps[i].args[0]);
      REQUIRE(record.replies[i]);
      REQUIRE_FALSE(record.replies[i]->first);
      // Compared as a boolean: a mismatch of megabyte values would print them whole.
      const bool same = record.replies[i]->second == record.steps[i].expected;
      CHECK(same);
    }
  }
}

// An io_context run by a thread of its own, for clients used from several threads.
struct io_thread {
  io_thread() : thread([this] { ctx.run(); }) {}
  ~io_thread() {
    work.reset();
    thread.join();
  }
  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ctx);
  std::thread thread;
};

// Connects `c` from the test thread while `io` runs its context.
inline std::error_code connect_on(resp::client& c) {
  std::promise<std::error_code> done;
  c.async_connect([&done](std::error_code ec) { done.set_value(ec); });
  auto f = done.get_future();
  if (f.wait_for(10s) != std::future_status::ready) return switchboard::error::timeout;
  return f.get();
}

// A RESP3 connection that is subscribed to three channels while it runs the random mix: the messages a publisher on
// another connection sends meanwhile arrive as pushes between the replies. Every reply must still match its command,
// and every message arrive once, in the order published: on each channel, and across them when `order` says so.
inline void check_mix_with_pushes(unsigned seed, const resp::client_options& options, command_set set,
                                  subscribe_by by, message_order order) {
  INFO("seed " << seed);
  io_thread io;
  resp::client c(io.ctx.get_executor(), options);
  resp::client publisher(io.ctx.get_executor(), options);
  REQUIRE_FALSE(connect_on(c));
  REQUIRE_FALSE(connect_on(publisher));
  REQUIRE(c.protocol() == 3);

  std::mutex m;
  std::condition_variable pushed;
  std::vector<value> pushes;
  c.set_push_handler([&](value v) {
    const std::lock_guard lock(m);
    pushes.push_back(std::move(v));
    pushed.notify_all();
  });
  const std::vector<std::string> channels{"ch0:" + std::to_string(seed), "ch1:" + std::to_string(seed),
                                          "ch2:" + std::to_string(seed)};
  const std::string pattern = "ch?:" + std::to_string(seed);
  const std::size_t confirmations = by == subscribe_by::channels ? channels.size() : 1;
  c.async_exec(by == subscribe_by::channels ? command("SUBSCRIBE", channels[0], channels[1], channels[2])
                                            : command("PSUBSCRIBE", pattern),
               [](std::error_code, value) {});
  {
    std::unique_lock lock(m);
    REQUIRE(pushed.wait_for(lock, 10s, [&] { return pushes.size() == confirmations; }));
  }

  // The publisher: 300 messages, pipelined from a thread of its own while the mix runs.
  std::mt19937 rng(seed);
  std::vector<std::pair<std::string, std::string>> published;
  for (int i = 0; i < 300; ++i) {
    published.emplace_back(channels[rng() % channels.size()], std::to_string(i) + ":" + random_value(rng, 10'000));
  }
  std::vector<std::int64_t> receivers(published.size(), -1);
  std::size_t publish_replies = 0;
  std::thread publishing([&] {
    for (std::size_t i = 0; i < published.size(); ++i) {
      publisher.async_exec(command("PUBLISH", published[i].first, published[i].second), [&, i](std::error_code ec, value v) {
        const std::lock_guard lock(m);
        receivers[i] = ec ? -2 : v.integer;
        ++publish_replies;
        pushed.notify_all();
      });
    }
  });
  run_callers(c, seed, 3, 300, set);
  publishing.join();

  std::unique_lock lock(m);
  REQUIRE(pushed.wait_for(lock, 20s, [&] {
    return publish_replies == published.size() && pushes.size() == confirmations + published.size();
  }));
  CHECK(std::count(receivers.begin(), receivers.end(), 1) == static_cast<std::ptrdiff_t>(published.size()));
  // Each channel's messages in the order published, each once. (Across channels Redis keeps the publishing order
  // too; the broker promises it per channel only: docs/pubsub.md.)
  std::map<std::string, std::vector<std::string>> sent_on, received_on;
  for (const auto& [channel, payload] : published) sent_on[channel].push_back(payload);
  std::vector<std::string> channel_order;
  for (std::size_t i = confirmations; i < pushes.size(); ++i) {
    // ["message", channel, payload] or ["pmessage", pattern, channel, payload]
    const std::vector<value>& e = pushes[i].elements;
    REQUIRE(pushes[i].kind == value_kind::push);
    REQUIRE(e.size() == (by == subscribe_by::channels ? 3u : 4u));
    CHECK(e[0].text == (by == subscribe_by::channels ? "message" : "pmessage"));
    if (by == subscribe_by::pattern) CHECK(e[1].text == pattern);
    channel_order.push_back(e[e.size() - 2].text);
    received_on[channel_order.back()].push_back(e.back().text);
  }
  const bool same = received_on == sent_on;  // as a boolean: the payloads are long
  CHECK(same);
  if (order == message_order::per_channel) return;
  for (std::size_t i = 0; i < published.size(); ++i) {
    INFO("message " << i);
    CHECK(channel_order[i] == published[i].first);
  }
}

}  // namespace switchboard::test::resp_mix
