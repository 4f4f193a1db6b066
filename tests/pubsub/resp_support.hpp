// Helpers for the tests of the Redis-protocol front end (resp_server.cpp, resp_differential.cpp): a server on a
// runtime of its own, reading a client's next value as exact bytes, and encoding commands as RESP multibulk or as
// inline lines.
#pragma once

#include <switchboard/core/runtime.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/resp_server.hpp>
#include <switchboard/resp/encoder.hpp>

#include "support/redis_server.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pubsub::test {

/// A resp_server on a runtime of its own (background threads), on a free loopback port.
struct front_end {
  explicit front_end(resp_server_options options = {}, std::size_t threads = 1)
      : rt({.threads = threads, .handle_signals = false}), broker(rt.executor()), server(rt, broker, port0(options)) {
    server.start();
    rt.start();
  }
  ~front_end() {
    rt.stop(std::chrono::milliseconds(0));
    rt.wait();
  }
  std::uint16_t port() const { return server.local_endpoint().port(); }

  static resp_server_options port0(resp_server_options o) {
    o.port = 0;
    return o;
  }

  runtime rt;
  pubsub::broker broker;
  resp_server server;
};

/// Sends a command and returns the reply's exact bytes.
inline std::string call(switchboard::test::redis_client& c, std::initializer_list<std::string_view> args) {
  c.call(args);
  return c.last_frame();
}

/// Reads the next value (a push or a reply) and returns its exact bytes.
inline std::string next(switchboard::test::redis_client& c) {
  c.read();
  return c.last_frame();
}

/// `$<size>\r\n<s>\r\n`.
inline std::string bulk_reply(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

/// A command as a RESP array of bulk strings.
inline std::string multibulk(std::span<const std::string_view> args) {
  std::string out;
  resp::encoder(out).command(args);
  return out;
}

/// `s` with bytes other than printable ASCII as \xHH, cut to `max` bytes: for failure messages.
inline std::string printable(std::string_view s, std::size_t max = 160) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : s.substr(0, max)) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b < 0x7f && b != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  }
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

/// A command as an inline line: each argument bare when it is letters and digits, else double-quoted with escapes
/// (as redis-cli prints them); separated by runs of white space, ended by CRLF or by LF alone. `coin(p)` is true
/// with probability p: it picks the white space and the line end.
template <class Coin>
std::string inline_line(const std::vector<std::string>& args, Coin&& coin) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto alnum = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
  std::string line = coin(0.2) ? " " : "";
  for (const auto& a : args) {
    if (&a != &args.front()) line += coin(0.8) ? " " : " \t ";
    if (!a.empty() && std::all_of(a.begin(), a.end(), alnum)) {
      line += a;
      continue;
    }
    line += '"';
    for (const char ch : a) {
      const auto b = static_cast<unsigned char>(ch);
      if (alnum(ch)) {
        line += ch;
      } else if (ch == '\n') {
        line += "\\n";
      } else if (ch == '\r') {
        line += "\\r";
      } else {
        line += "\\x";
        line += hex[b >> 4];
        line += hex[b & 15];
      }
    }
    line += '"';
  }
  return line + (coin(0.8) ? "\r\n" : "\n");
}

/// The random draws of the scripted tests (resp_server.cpp, resp_differential.cpp): one seeded generator, and the
/// pieces of commands that both scripts draw.
class random_source {
 public:
  explicit random_source(unsigned seed) : rng_(seed) {}

  /// 0 to n - 1.
  std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  /// True with probability p.
  bool coin(double p) { return std::bernoulli_distribution(p)(rng_); }
  /// An index drawn with the weights of `weights`.
  int pick(std::discrete_distribution<int>& weights) { return weights(rng_); }

  /// 1 to 12 letters and digits: a bare inline argument, and a valid client name.
  std::string token() {
    static constexpr std::string_view chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string s(1 + below(12), ' ');
    for (char& ch : s) ch = chars[below(chars.size())];
    return s;
  }

  /// `size` bytes of any value, with CR, LF, NUL, RESP's markers and quotes frequent.
  std::string payload(std::size_t size) {
    static constexpr char special[] = {'\r', '\n', '\0', '$', '*', '>', ' ', '"', '\\'};
    std::string s(size, '\0');
    for (char& ch : s) ch = coin(0.2) ? special[below(std::size(special))] : static_cast<char>(below(256));
    return s;
  }

  /// `name` in random letter case: command names are case-insensitive.
  std::string cased(std::string_view name) {
    std::string s(name);
    if (coin(0.3)) {
      for (char& ch : s) ch = coin(0.5) ? static_cast<char>(std::tolower(static_cast<unsigned char>(ch))) : ch;
    }
    return s;
  }

  /// `args` as an inline line, its white space and line end drawn here.
  std::string inline_line(const std::vector<std::string>& args) {
    return test::inline_line(args, [this](double p) { return coin(p); });
  }

 private:
  std::mt19937 rng_;
};

}  // namespace switchboard::pubsub::test
