// The broker's Redis-protocol front end against a real redis-server, differentially: several clients on each side,
// driven in lockstep by one random script per seed. Each step one client sends one command, or several pipelined,
// written at once or in random pieces: (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE with channel names and glob patterns
// made to collide (character classes, ranges, negations, escapes, `?`, `*`, and malformed ones), PUBLISH and
// SPUBLISH with binary payloads, PING, ECHO, PUBSUB's five introspection subcommands with and without patterns,
// HELLO 2 / 3 (switching protocol while subscribed), RESET, AUTH, CLIENT SETNAME / GETNAME, wrong arities,
// unknown commands and subcommands (arguments with CR, LF and NUL, and past Redis's 128 bytes), commands refused in
// RESP2 subscribed mode, as multibulk or inline. After each step every client sends `PING <token>` and reads up to
// its reply, and what each of our clients received is compared with what its Redis twin received, byte for byte.
// Odd seeds run our server on two threads, so that a channel's clients are spread over two broker subscriptions.
// A failure names its seed, step and client, and the step's commands.
//
// Normalised, and nothing else: what docs/pubsub.md ("Compatibility with Redis 7") lists as different and what
// Redis orders by hash. That is: the server's version and the client id in HELLO's reply; the order of the
// confirmations of an (P|S)UNSUBSCRIBE without arguments (names sorted, counts kept in order) and of the names
// PUBSUB CHANNELS / SHARDCHANNELS lists (sorted); and where messages fall between replies and across
// subscriptions. A client's messages are compared apart from its replies, in the order of each subscription (its
// channel, pattern or shard channel): our broker delivers through its executor, so a client's own PUBLISH reply
// comes before the message it receives itself, and subscriptions are delivered in turns; each subscription's own
// messages keep their order. Replies and messages must otherwise be the same bytes, and as many.
#include <switchboard/resp/value.hpp>

#include "pubsub/resp_support.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::pubsub::test::printable;
using switchboard::pubsub::test::random_source;
using switchboard::test::redis_client;

namespace {

/// One step of the script: a client, the bytes it sends, and how they are written.
struct script_step {
  std::size_t client = 0;
  std::string bytes;                ///< One command or several, pipelined.
  std::vector<std::size_t> pieces;  ///< Sizes of the writes; empty: one write.
  std::string what;                 ///< The commands, printable, a line each: for failure messages.
  bool unordered_confirmations = false;  ///< An (P|S)UNSUBSCRIBE without arguments: Redis confirms in hash order.
  bool unordered_lists = false;          ///< PUBSUB CHANNELS / SHARDCHANNELS: Redis lists in hash order.
  bool published = false;                ///< A PUBLISH or SPUBLISH is among the commands.
};

/// Random steps over small pools of channel names and patterns, so that names collide and patterns match.
class pubsub_script : random_source {
 public:
  pubsub_script(unsigned seed, std::size_t clients) : random_source(seed), clients_(clients) {
    for (int i = 0; i < 6; ++i) channels_.push_back(channel_name());
    for (int i = 0; i < 8; ++i) patterns_.push_back(pattern());
  }

  script_step next() {
    script_step s;
    s.client = below(clients_);
    for (std::size_t n = coin(0.75) ? 1 : 2 + below(4); n > 0; --n) {
      const std::vector<std::string> args = command(s);
      s.bytes += encode(args);
      std::string line;
      for (const auto& a : args) line += (line.empty() ? "" : " ") + printable(a, 60);
      s.what += line + "\n";
    }
    if (coin(0.3)) {
      for (std::size_t at = 0; at < s.bytes.size(); at += s.pieces.back()) s.pieces.push_back(1 + below(12));
    }
    return s;
  }

 private:
  std::vector<std::string> command(script_step& s) {
    enum kind {
      subscribe, unsubscribe, psubscribe, punsubscribe, ssubscribe, sunsubscribe, publish, spublish, ping, echo,
      pubsub, hello, reset, auth, client, wrong_arity, unknown
    };
    // Weights of the kinds above, in their order. Even clients mostly subscribe, odd ones mostly publish and ask
    // PUBSUB: a client in RESP2 subscribed mode is refused most commands.
    static const std::vector<double> subscriber{8, 4, 8, 3, 5, 3, 4, 2, 2, 2, 3, 5, 3, 1, 2, 2, 2};
    static const std::vector<double> publisher{1, 2, 1, 2, 1, 2, 24, 10, 2, 2, 8, 3, 3, 1, 2, 2, 2};
    const auto& weights = s.client % 2 == 0 ? subscriber : publisher;
    std::discrete_distribution<int> kinds(weights.begin(), weights.end());
    int k = pick(kinds);
    // After a PUBLISH in the same pipeline, nothing that leaves a subscription or changes the protocol. A client
    // subscribed to the channel gets its own message from our broker after the replies to the commands read with
    // the PUBLISH (documented), and an UNSUBSCRIBE or RESET among those has dropped it by then, a HELLO has changed
    // its encoding, where Redis sent it first (docs/pubsub.md, "Compatibility with Redis 7").
    while (s.published && (k == unsubscribe || k == punsubscribe || k == sunsubscribe || k == hello || k == reset)) {
      k = pick(kinds);
    }
    s.published = s.published || k == publish || k == spublish;
    switch (k) {
      case subscribe: return with_names(cased("SUBSCRIBE"), 1, [&] { return channel(); });
      case psubscribe: return with_names(cased("PSUBSCRIBE"), 1, [&] { return pattern_argument(); });
      case ssubscribe: return with_names(cased("SSUBSCRIBE"), 1, [&] { return channel(); });
      case unsubscribe: return leave(s, "UNSUBSCRIBE", [&] { return channel(); });
      case punsubscribe: return leave(s, "PUNSUBSCRIBE", [&] { return pattern_argument(); });
      case sunsubscribe: return leave(s, "SUNSUBSCRIBE", [&] { return channel(); });
      case publish: return {cased("PUBLISH"), channel(), payload()};
      case spublish: return {cased("SPUBLISH"), channel(), payload()};
      case ping: return coin(0.5) ? std::vector<std::string>{cased("PING")} : std::vector{cased("PING"), payload()};
      case echo: return {cased("ECHO"), payload()};
      case pubsub: return pubsub_command(s);
      case hello: return hello_command();
      case reset: return {cased("RESET")};
      case auth: {
        static const std::vector<std::string> forms[] = {{"AUTH", "x"}, {"AUTH", "default", "x"}, {"AUTH", "u", "p"}};
        return forms[below(std::size(forms))];
      }
      case client: {
        if (coin(0.5)) return {cased("CLIENT"), cased("GETNAME")};
        const std::size_t form = below(5);
        return {cased("CLIENT"), cased("SETNAME"), form == 0 ? "" : form == 1 ? token() + " x" : token()};
      }
      case wrong_arity: return wrong_arity_command();
      default: return unknown_command();
    }
  }

  template <class Name>
  std::vector<std::string> with_names(std::string command, std::size_t at_least, Name name) {
    std::vector<std::string> args{std::move(command)};
    for (std::size_t n = at_least + below(3); n > 0; --n) args.push_back(name());
    return args;
  }

  template <class Name>
  std::vector<std::string> leave(script_step& s, std::string_view command, Name name) {
    if (coin(s.client % 2 == 0 ? 0.3 : 0.6)) {
      s.unordered_confirmations = true;
      return {cased(command)};
    }
    return with_names(cased(command), 1, name);
  }

  std::vector<std::string> pubsub_command(script_step& s) {
    switch (below(7)) {
      case 0: s.unordered_lists = true; return {cased("PUBSUB"), cased("CHANNELS")};
      case 1: s.unordered_lists = true; return {cased("PUBSUB"), cased("CHANNELS"), pattern_argument()};
      case 2: s.unordered_lists = true; return {cased("PUBSUB"), cased("SHARDCHANNELS")};
      case 3: s.unordered_lists = true; return {cased("PUBSUB"), cased("SHARDCHANNELS"), pattern_argument()};
      case 4: return with_names_from(0, {cased("PUBSUB"), cased("NUMSUB")});
      case 5: return with_names_from(0, {cased("PUBSUB"), cased("SHARDNUMSUB")});
      default: return {cased("PUBSUB"), cased("NUMPAT")};
    }
  }

  std::vector<std::string> with_names_from(std::size_t at_least, std::vector<std::string> args) {
    for (std::size_t n = at_least + below(4); n > 0; --n) args.push_back(channel());
    return args;
  }

  std::vector<std::string> hello_command() {
    switch (below(10)) {
      case 0: case 1: case 2: return {cased("HELLO"), "3"};
      case 3: case 4: return {cased("HELLO"), "2"};
      case 5: return {cased("HELLO")};
      case 6: return {cased("HELLO"), coin(0.5) ? "3" : "2", cased("SETNAME"), token()};
      case 7: return {cased("HELLO"), "3", cased("AUTH"), "default", token()};
      case 8: return {cased("HELLO"), coin(0.5) ? "4" : "x"};
      default: {  // a syntax error
        std::string option = token();
        if (coin(0.5)) option += odd_bytes();
        return {cased("HELLO"), "3", option};
      }
    }
  }

  std::vector<std::string> wrong_arity_command() {
    const std::vector<std::string> forms[] = {
        {"PUBLISH", channel()}, {"SPUBLISH"}, {"ECHO"}, {"ECHO", "a", "b"}, {"PING", "a", "b"}, {"SUBSCRIBE"},
        {"PSUBSCRIBE"}, {"SSUBSCRIBE"}, {"RESET", "x"}, {"PUBSUB"}, {"PUBSUB", "NUMPAT", "x"},
        {"PUBSUB", "CHANNELS", "a", "b"}, {"PUBSUB", "SHARDCHANNELS", "a", "b"}, {"CLIENT"},
        {"CLIENT", "GETNAME", "x"}, {"CLIENT", "SETNAME"}, {"HELLO", "3", "SETNAME"},
        {"HELLO", "2", "AUTH", "default"}, {"AUTH"}, {"AUTH", "a", "b", "c"}};
    std::vector<std::string> args = forms[below(std::size(forms))];
    for (auto& a : args) a = cased(a);
    return args;
  }

  // Names no Redis command has, with arguments that Redis quotes in its error up to 128 bytes (and as C strings).
  std::vector<std::string> unknown_command() {
    std::vector<std::string> args;
    switch (below(3)) {
      case 0: args = {"NOSUCH" + token()}; break;
      case 1: args = {cased("CLIENT"), "X" + token()}; break;
      default: args = {cased("PUBSUB"), "X" + token()}; break;
    }
    if (coin(0.1)) insert_odd_bytes(args.back(), 1);
    for (std::size_t n = below(4); n > 0; --n) {
      std::string a = coin(0.2) ? std::string(100 + below(60), 'a') : token();
      if (coin(0.3)) insert_odd_bytes(a, 0);
      args.push_back(std::move(a));
    }
    return args;
  }

  // What Redis changes in the arguments it quotes in an error: CR and LF become spaces, a NUL ends the argument.
  std::string odd_bytes() {
    static const std::string odd[] = {"\r\n", "\n", std::string("x\0y", 3)};
    return odd[below(std::size(odd))];
  }

  // Inserts odd bytes into `s` at or after `from` (one statement per random draw: a replayable order).
  void insert_odd_bytes(std::string& s, std::size_t from) {
    const std::size_t at = from + below(s.size() + 1 - from);
    s.insert(at, odd_bytes());
  }

  // As multibulk or, now and then, as an inline line.
  std::string encode(const std::vector<std::string>& args) {
    std::size_t size = 0;
    for (const auto& a : args) size += a.size();
    if (size < 1000 && coin(0.2)) {
      return inline_line(args);
    }
    const std::vector<std::string_view> views(args.begin(), args.end());
    return pubsub::test::multibulk(views);
  }

  std::string channel() { return coin(0.9) ? channels_[below(channels_.size())] : channel_name(); }
  std::string pattern_argument() { return coin(0.85) ? patterns_[below(patterns_.size())] : pattern(); }

  // 1 to 5 bytes, mostly of a few plain ones (no 'm', 'p' or 's': no name reads as "message", "pong" or
  // "subscribe"), with the bytes that are special to globs, to inline lines and to RESP; now and then empty.
  std::string channel_name() {
    static constexpr std::string_view plain = "abcd.:_-";
    static constexpr char special[] = {'*', '?', '[', ']', '\\', '^', ' ', '\0', '\r', '\n', '\xff', '"'};
    if (coin(0.02)) return {};
    std::string s(1 + below(5), ' ');
    for (char& ch : s) ch = coin(0.12) ? special[below(std::size(special))] : plain[below(plain.size())];
    return s;
  }

  // A pattern made from a channel of the pool, so that it matches some channels and not others; or one of the odd
  // shapes whose matching is easy to get wrong (unclosed classes, reversed ranges, a trailing backslash).
  std::string pattern() {
    static constexpr std::string_view odd[] = {
        "*", "?", "**", "*?*", "[", "[]", "[^]", "[a-]", "[-a]", "[d-a]", "\\", "a\\", "[\\]]", "[]a]", "[!a]",
        "[a-c-e]", "[\\", "a[", "\\*", "\\?", "[[]", "[*]", "[^a-c]*", "*[", "[a", "?\\", "[^", "*\\", "[a-\\"};
    if (coin(0.25)) return std::string(odd[below(std::size(odd))]);
    const std::string base = channels_[below(channels_.size())];
    std::string p;
    for (const char ch : base) {
      switch (below(12)) {
        case 0: p += '?'; break;
        case 1: p += '*'; break;
        case 2: p += '*'; p += ch; break;
        case 3: p += '['; p += ch; p += "x]"; break;
        case 4: p += "[^"; p += ch; p += ']'; break;
        case 5: p += "[a-c]"; break;
        case 6: p += '\\'; p += ch; break;
        default: p += ch;
      }
    }
    if (coin(0.2)) p += '*';
    return p;
  }

  // Mostly short, now and then a few KiB.
  std::string payload() { return random_source::payload(coin(0.05) ? below(5000) : below(40)); }

  std::size_t clients_;
  std::vector<std::string> channels_;
  std::vector<std::string> patterns_;
};

/// A value a client received: its exact bytes and what they parse to.
struct frame {
  std::string bytes;
  resp::value value;
};

bool is_bulk(const resp::value& v, std::string_view text) {
  return v.kind == resp::value_kind::bulk_string && v.text == text;
}

/// A message, pattern message or shard message (an array in RESP2, a push in RESP3).
bool is_message(const resp::value& v) {
  if (v.kind != resp::value_kind::array && v.kind != resp::value_kind::push) return false;
  const std::size_t n = v.elements.size();
  return n >= 3 && ((n == 3 && (is_bulk(v.elements[0], "message") || is_bulk(v.elements[0], "smessage"))) ||
                    (n == 4 && is_bulk(v.elements[0], "pmessage")));
}

/// The confirmation of an UNSUBSCRIBE, PUNSUBSCRIBE or SUNSUBSCRIBE.
bool is_leave_confirmation(const resp::value& v) {
  return (v.kind == resp::value_kind::array || v.kind == resp::value_kind::push) && v.elements.size() == 3 &&
         (is_bulk(v.elements[0], "unsubscribe") || is_bulk(v.elements[0], "punsubscribe") ||
          is_bulk(v.elements[0], "sunsubscribe")) &&
         v.elements[2].kind == resp::value_kind::integer;
}

/// HELLO's reply with the server's version and the client id left out: they name the server (docs/pubsub.md).
std::string without_server_details(const frame& f) {
  const resp::value& v = f.value;
  if ((v.kind != resp::value_kind::map && v.kind != resp::value_kind::array) || v.elements.size() != 14 ||
      !is_bulk(v.elements[0], "server")) {
    return f.bytes;
  }
  std::string s = f.bytes;
  const std::string version = "$7\r\nversion\r\n";
  if (const std::size_t at = s.find(version); at != std::string::npos) {
    const std::size_t value = at + version.size();
    const std::size_t end = s.find("\r\n", s.find("\r\n", value) + 2);  // the bulk's header, then its text
    s.replace(value, end + 2 - value, "<version>");
  }
  const std::string id = "$2\r\nid\r\n:";
  if (const std::size_t at = s.find(id); at != std::string::npos) {
    const std::size_t value = at + id.size();
    s.replace(value, s.find("\r\n", value) - value, "<id>");
  }
  return s;
}

/// What one client received in one step, normalised for the comparison.
struct received {
  std::vector<std::string> replies;   ///< Everything but messages, in order.
  std::vector<std::string> messages;  ///< Messages, in the order of each subscription.
};

received normalise(const std::vector<frame>& frames, const script_step& step) {
  received r;
  std::vector<std::pair<std::string, std::string>> messages;  // subscription, bytes
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const frame& f = frames[i];
    const resp::value& v = f.value;
    if (is_message(v)) {
      messages.emplace_back(v.elements[0].text + '\0' + v.elements[1].text, f.bytes);
    } else if (step.unordered_confirmations && is_leave_confirmation(v)) {
      // A run of confirmations of one kind: the names sorted, the counts in order.
      std::vector<std::string> names;
      std::string counts;
      std::size_t j = i;
      for (; j < frames.size() && is_leave_confirmation(frames[j].value) &&
             frames[j].value.kind == v.kind && frames[j].value.elements[0].text == v.elements[0].text;
           ++j) {
        const resp::value& c = frames[j].value;
        const bool null = c.elements[1].kind == resp::value_kind::null;
        names.push_back(null ? "<null>" : pubsub::test::bulk_reply(c.elements[1].text));
        counts += ":" + std::to_string(c.elements[2].integer);
      }
      std::sort(names.begin(), names.end());
      std::string run = std::string(v.kind == resp::value_kind::push ? ">" : "*") + v.elements[0].text + " x" +
                        std::to_string(names.size()) + " counts " + counts + " names ";
      for (const auto& n : names) run += n;
      r.replies.push_back(std::move(run));
      i = j - 1;
    } else if (step.unordered_lists && v.kind == resp::value_kind::array &&
               std::all_of(v.elements.begin(), v.elements.end(),
                           [](const resp::value& e) { return e.kind == resp::value_kind::bulk_string; })) {
      std::vector<std::string> names;
      for (const auto& e : v.elements) names.push_back(pubsub::test::bulk_reply(e.text));
      std::sort(names.begin(), names.end());
      std::string list = f.bytes.substr(0, f.bytes.find("\r\n") + 2) + "(sorted) ";
      for (const auto& n : names) list += n;
      r.replies.push_back(std::move(list));
    } else {
      r.replies.push_back(without_server_details(f));
    }
  }
  std::stable_sort(messages.begin(), messages.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& m : messages) r.messages.push_back(std::move(m.second));
  return r;
}

/// The reply to `PING <token>`: a bulk string, or ["pong", token] in RESP2 subscribed mode.
bool is_pong(const resp::value& v, std::string_view token) {
  return is_bulk(v, token) || (v.kind == resp::value_kind::array && v.elements.size() == 2 &&
                               is_bulk(v.elements[0], "pong") && is_bulk(v.elements[1], token));
}

/// Sends `PING <token>` and reads up to its reply, then on until at least `messages` messages came in all.
std::vector<frame> read_through_ping(redis_client& c, std::string_view token, std::size_t messages = 0) {
  c.send({"PING", token});
  std::vector<frame> frames;
  std::size_t got = 0;
  for (bool pong = false; !pong || got < messages;) {
    resp::value v = c.read();
    pong = pong || is_pong(v, token);
    got += is_message(v) ? 1 : 0;
    frames.push_back({c.last_frame(), std::move(v)});
  }
  return frames;
}

std::size_t count_messages(const std::vector<frame>& frames) {
  return static_cast<std::size_t>(
      std::count_if(frames.begin(), frames.end(), [](const frame& f) { return is_message(f.value); }));
}

std::string show(const std::vector<std::string>& frames) {
  std::string out;
  for (const auto& f : frames) out += "\n  " + printable(f, 2000);
  return out;
}

/// Synchronises one client with its twin and compares what each received since the last step. True when the same.
bool same_as_redis(redis_client& ours, redis_client& theirs, std::size_t client, std::size_t step_index,
                   const script_step& step) {
  const std::string token = "sync:" + std::to_string(step_index) + ":" + std::to_string(client);
  // Redis has delivered a PUBLISH's messages to every client before it answers; our broker delivers them through
  // its executor, so our client reads on until it has as many as the Redis one.
  const std::vector<frame> from_redis = read_through_ping(theirs, token);
  const std::vector<frame> from_us = read_through_ping(ours, token, count_messages(from_redis));
  const received a = normalise(from_us, step);
  const received b = normalise(from_redis, step);
  if (a.replies == b.replies && a.messages == b.messages) return true;
  INFO("client " << client << " (the step's client: " << step.client << ")");
  CHECK(show(a.replies) == show(b.replies));
  CHECK(show(a.messages) == show(b.messages));
  return false;
}

}  // namespace

TEST_CASE("resp_server: random pub/sub scripts get the same bytes as from a real redis-server",
          "[pubsub][resp_server][redis]") {
  REQUIRE(test::have_program("redis-server"));  // installed by scripts/install-deps.sh
  constexpr std::size_t clients = 4;
  constexpr std::size_t steps = 300;
  for (unsigned seed = 1; seed <= 16; ++seed) {
    INFO("seed " << seed);
    test::redis_server redis;
    const std::size_t threads = 1 + seed % 2;  // with two, clients of a channel on two threads: counted apart
    INFO(threads << " server threads");
    pubsub::test::front_end fe({}, threads);
    asio::io_context ctx;
    std::vector<std::unique_ptr<redis_client>> ours, theirs;
    for (std::size_t i = 0; i < clients; ++i) {
      ours.push_back(std::make_unique<redis_client>(ctx, fe.port(), 5s));
      theirs.push_back(std::make_unique<redis_client>(ctx, redis.port(), 5s));
    }
    pubsub_script script(seed, clients);
    bool same = true;
    for (std::size_t n = 0; n < steps && same; ++n) {
      const script_step step = script.next();
      INFO("step " << n << ", client " << step.client << " sends" << (step.pieces.empty() ? "" : " in pieces")
                   << ":\n" << step.what);
      if (step.pieces.empty()) {
        ours[step.client]->write(step.bytes);
        theirs[step.client]->write(step.bytes);
      } else {
        std::size_t at = 0;
        for (const std::size_t piece : step.pieces) {
          const std::string_view bytes = std::string_view(step.bytes).substr(at, piece);
          ours[step.client]->write(bytes);
          theirs[step.client]->write(bytes);
          at += piece;
        }
      }
      // The step's client first: once it has its replies, every command it sent has run on both servers.
      same = same_as_redis(*ours[step.client], *theirs[step.client], step.client, n, step);
      for (std::size_t i = 0; i < clients && same; ++i) {
        if (i != step.client) same = same_as_redis(*ours[i], *theirs[i], i, n, step);
      }
    }
    CHECK(same);  // past a difference the two sides' states differ: the seed stops there
  }
}

// Found by the test above: the clients of a channel on one thread share one broker subscription, and a client that
// joined it while it still held messages published before the client's SUBSCRIBE received those too. Redis hands a
// message only to the clients subscribed when it is published.
TEST_CASE("resp_server: a SUBSCRIBE pipelined after a PUBLISH does not receive that message, as with Redis",
          "[pubsub][resp_server][redis]") {
  REQUIRE(test::have_program("redis-server"));
  test::redis_server redis;
  pubsub::test::front_end fe;  // one thread: both clients share its subscription to "x"
  asio::io_context ctx;
  for (const std::uint16_t port : {redis.port(), fe.port()}) {
    INFO((port == redis.port() ? "redis-server" : "resp_server"));
    redis_client first(ctx, port, 5s);
    redis_client second(ctx, port, 5s);
    CHECK(pubsub::test::call(first, {"SUBSCRIBE", "x"}) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n");
    second.write("PUBLISH x before\r\nSUBSCRIBE x\r\n");
    CHECK(pubsub::test::next(second) == ":1\r\n");
    CHECK(pubsub::test::next(second) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n");
    CHECK(pubsub::test::next(first) == "*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$6\r\nbefore\r\n");
    redis_client publisher(ctx, port, 5s);
    CHECK(pubsub::test::call(publisher, {"PUBLISH", "x", "after"}) == ":2\r\n");
    CHECK(pubsub::test::next(second) == "*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$5\r\nafter\r\n");
  }
}
