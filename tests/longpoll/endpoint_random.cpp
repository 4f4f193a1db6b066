// A model test of the long-poll endpoint: publishers publish at random to a few topics with a small retention
// while clients poll them over raw connections with random parameters (cursors followed from each answer or sent
// back as ETags, no cursor, stale and ahead cursors, random `max` and timeouts, pipelined and concurrent polls,
// polls abandoned while parked, malformed queries). Every answer is checked against what the publishers did, and
// each client following a topic must end with every message or an explicit gap for the missing ones.
#include <switchboard/longpoll/endpoint.hpp>

#include "longpoll_support.hpp"
#include "support/catch.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using test::get_request;
using test::poll_server;
using test::raw_client;
using test::raw_response;

namespace {

using steady = std::chrono::steady_clock;

constexpr std::size_t topic_count = 3;
constexpr std::size_t retained = 16;        // messages each topic retains: older ones become gaps
constexpr std::size_t max_batch = 5;        // the endpoint's cap on messages per answer
constexpr std::size_t per_client_limit = 3;  // parked polls per client key (429 past it)
constexpr double jitter = 0.2;
constexpr std::chrono::milliseconds default_timeout = 150ms;
constexpr std::chrono::milliseconds max_timeout = 250ms;
constexpr std::size_t publisher_count = 2;
constexpr std::size_t messages_per_publisher = 300;
constexpr std::size_t client_count = 4;

std::string topic_name(std::size_t topic) { return "t" + std::to_string(topic); }

// Polls parked so far (those parked now and those released, however).
std::uint64_t parks(const longpoll::endpoint_stats& s) {
  return s.parked + s.woken + s.timed_out + s.disconnected + s.drained;
}

// Grows with every change of the endpoint: a poll parked, released (woken, timed out, gone, drained) or refused.
std::uint64_t activity(const longpoll::endpoint_stats& s) {
  return parks(s) + s.woken + s.timed_out + s.disconnected + s.drained + s.refused_client + s.refused_total;
}

// The threads vary their interleavings by the endpoint's events rather than by sleeping: each of these waits for
// one (at most `at_most`, since the event may not come).
void until_next_change(poll_server& s, std::chrono::microseconds at_most) {
  const std::uint64_t before = activity(s.polls.stats());
  s.wait_for([&] { return activity(s.polls.stats()) != before; }, at_most);
}

void until_parked(poll_server& s, std::uint64_t parks_before, std::chrono::microseconds at_most) {
  s.wait_for([&] { return parks(s.polls.stats()) > parks_before; }, at_most);
}

// What the publishers did, per topic; shared by every thread.
class published_log {
 public:
  struct message {
    std::string data;
    bool text = false;  // made of valid UTF-8 only: must travel as a JSON string, not base64
  };

  /// Before each publish: so that, when an answer arrives, `started` bounds the topic's last sequence number then.
  void starting(std::size_t topic) { started_[topic].fetch_add(1); }

  /// After each publish, with what it returned.
  void published(std::size_t topic, std::uint64_t sequence, message m) {
    const std::lock_guard lock(mutex_);
    completed_[topic].push_back(steady::now());  // taken under the lock: the times are in order
    messages_[topic].emplace(sequence, std::move(m));
  }

  std::uint64_t started(std::size_t topic) const { return started_[topic].load(); }

  /// How many publishes to `topic` had returned before `t`: its last sequence number was at least that by then.
  std::uint64_t completed_before(std::size_t topic, steady::time_point t) const {
    const std::lock_guard lock(mutex_);
    const auto& times = completed_[topic];
    return static_cast<std::uint64_t>(std::lower_bound(times.begin(), times.end(), t) - times.begin());
  }

  std::uint64_t completed(std::size_t topic) const {
    const std::lock_guard lock(mutex_);
    return completed_[topic].size();
  }

  /// For the checks at the end, once the publishers have stopped.
  const std::map<std::uint64_t, message>& messages(std::size_t topic) const { return messages_[topic]; }

 private:
  std::array<std::atomic<std::uint64_t>, topic_count> started_{};
  mutable std::mutex mutex_;
  std::array<std::vector<steady::time_point>, topic_count> completed_;
  std::array<std::map<std::uint64_t, message>, topic_count> messages_;
};

// A random payload: text with what JSON must escape and multi-byte UTF-8, or bytes that are often not UTF-8 at all
// (surrogates, overlong forms, code points past U+10FFFF, stray continuation bytes), sometimes empty or past the
// 512 bytes from which the endpoint shares an encoded body.
published_log::message random_payload(std::mt19937& rng) {
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  published_log::message m;
  const int kind = pick(0, 9);
  if (kind == 0) {
    m.text = true;  // empty
    return m;
  }
  const int pieces = kind == 1 ? pick(150, 400) : pick(1, 30);
  if (kind < 7) {
    static constexpr std::string_view text[] = {"a",  "Z",     "0",       " ",  "\"",   "\\",   "/",  "\n",
                                                "\t", "\x01",  "\x1f",    "\x7f", "é", "€", "😀", "{\"x\":1}",
                                                "\r", "\u2028", "\xef\xbb\xbf"};
    m.text = true;
    for (int i = 0; i < pieces; ++i) m.data += text[static_cast<std::size_t>(pick(0, std::size(text) - 1))];
  } else {
    static constexpr std::string_view odd[] = {"\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "\x80",
                                               "\xe2\x82",     "\xff",     "\xc3\xa9",
                                               std::string_view("\0", 1)};
    for (int i = 0; i < pieces; ++i) {
      if (pick(0, 3) == 0) {
        m.data += odd[static_cast<std::size_t>(pick(0, std::size(odd) - 1))];
      } else {
        m.data += static_cast<char>(pick(0, 255));
      }
    }
  }
  return m;
}

// Base64 (RFC 4648 §4, padded), decoded here rather than by the library, so that its encoder is checked.
std::optional<std::string> from_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  std::uint32_t bits = 0;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    std::uint32_t v = 0;
    if (c >= 'A' && c <= 'Z') v = static_cast<std::uint32_t>(c - 'A');
    else if (c >= 'a' && c <= 'z') v = static_cast<std::uint32_t>(c - 'a' + 26);
    else if (c >= '0' && c <= '9') v = static_cast<std::uint32_t>(c - '0' + 52);
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' && i + 2 >= text.size()) ++pad;
    else return std::nullopt;
    if (pad > 0 && c != '=') return std::nullopt;
    bits = bits << 6 | v;
    if (i % 4 == 3) {
      out += static_cast<char>(bits >> 16 & 0xff);
      out += static_cast<char>(bits >> 8 & 0xff);
      out += static_cast<char>(bits & 0xff);
      bits = 0;
    }
  }
  out.resize(out.size() - pad);
  return out;
}

// One poll as sent.
struct poll_request {
  enum class by { query, tag, none };
  std::size_t topic = 0;
  by how = by::query;
  std::uint64_t cursor = 0;  // sent in the query or as the entity tag (not with by::none)
  bool decoy_tag = false;    // by::query with another number in If-None-Match too: the query wins, never a 304
  std::string tag_field;     // If-None-Match
  std::optional<std::size_t> max;
  std::string timeout;                // the query's value; empty: none
  std::chrono::milliseconds wait{0};  // the timeout the endpoint applies
  std::string key;                    // X-Client: the client for the per-client limit
  bool close = false;                 // Connection: close (the server closes after the answer)

  bool conditional() const { return how == by::tag; }
  std::size_t effective_max() const { return std::min(max.value_or(max_batch), max_batch); }

  std::string target() const {
    std::string q;
    auto add = [&q](std::string_view name, std::string_view value) {
      q += q.empty() ? '?' : '&';
      q.append(name).append("=").append(value);
    };
    if (how == by::query) add("cursor", std::to_string(cursor));
    if (max) add("max", std::to_string(*max));
    if (!timeout.empty()) add("timeout", timeout);
    return "/topics/" + topic_name(topic) + "/poll" + q;
  }

  std::string bytes() const {
    std::string extra = "X-Client: " + key + "\r\n";
    if (close) extra += "Connection: close\r\n";
    if (!tag_field.empty()) extra += "If-None-Match: " + tag_field + "\r\n";
    return get_request(target(), extra);
  }
};

// An answer, read and checked.
struct poll_answer {
  struct message {
    std::uint64_t sequence = 0;
    std::string data;
    bool base64 = false;
  };
  bool not_modified = false;
  bool reset = false;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> gap;
  std::vector<message> messages;
  std::uint64_t cursor = 0;
  std::uint64_t base = 0;  // the cursor the answer followed (the one sent, or the newest when none was)
};

struct delivery {
  std::size_t topic;
  std::uint64_t sequence;
  std::string data;
  bool base64;
};

// What the run reached, summed over the clients: the test checks that the mix exercised each case.
struct coverage {
  std::uint64_t answers = 0, messages = 0, gaps = 0, follower_gaps = 0, not_modified = 0, resets = 0, empty = 0,
                refused = 0, pipelined = 0, concurrent = 0, abandoned = 0, malformed = 0, heads = 0;
  coverage& operator+=(const coverage& o) {
    answers += o.answers, messages += o.messages, gaps += o.gaps, follower_gaps += o.follower_gaps;
    not_modified += o.not_modified, resets += o.resets, empty += o.empty, refused += o.refused;
    pipelined += o.pipelined, concurrent += o.concurrent, abandoned += o.abandoned, malformed += o.malformed;
    heads += o.heads;
    return *this;
  }
};

// How long the random run goes on: 15 s or each publisher's 300 messages, and past that while the mix has not yet
// reached the cases that depend on timing (a poll answered 304, woken, timed out, released as its client went), for
// 30 s more at most. On a slow machine (sanitizers, a loaded CI runner) 15 s was not always enough for all four.
class run_span {
 public:
  explicit run_span(poll_server& s) : server_(s) {}

  /// Whether a publisher that has published `published` messages goes on.
  bool goes_on(std::size_t published) const {
    const steady::time_point now = steady::now();
    if (published < messages_per_publisher && now < usual_end_) return true;
    return now < last_end_ && !reached();
  }
  void saw_not_modified() { ++not_modified_; }

 private:
  bool reached() const {
    const longpoll::endpoint_stats s = server_.polls.stats();
    return not_modified_.load() > 0 && s.woken > 0 && s.timed_out > 0 && s.disconnected > 0;
  }

  poll_server& server_;
  const steady::time_point usual_end_ = steady::now() + 15s;
  const steady::time_point last_end_ = usual_end_ + 30s;
  std::atomic<std::uint64_t> not_modified_{0};
};

// Problems found by any thread, reported on the test's thread.
class problem_list {
 public:
  void add(std::string what) {
    const std::lock_guard lock(mutex_);
    if (problems_.size() < 50) problems_.push_back(std::move(what));
  }
  std::vector<std::string> take() {
    const std::lock_guard lock(mutex_);
    return std::move(problems_);
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> problems_;
};

// A client following every topic by cursor, and doing random other polls on the side.
class poll_client {
 public:
  poll_client(poll_server& s, const published_log& log, problem_list& problems, run_span& span, unsigned seed,
              unsigned id)
      : server_(s), log_(log), problems_(problems), span_(span), rng_(seed * 1000 + id), id_(id),
        key_("c" + std::to_string(id)) {}

  /// Polls at random until `publishing` turns false (or a bounded number of polls), then follows every topic to its
  /// end.
  void run(const std::atomic<bool>& publishing) {
    for (int op = 0; op < 5000 && publishing.load(); ++op) {
      const int roll = pick(0, 99);
      if (roll < 50) follow(static_cast<std::size_t>(pick(0, topic_count - 1)));
      else if (roll < 60) abandon(static_cast<std::size_t>(pick(0, topic_count - 1)));
      else if (roll < 70) pipeline();
      else if (roll < 85) probe(static_cast<std::size_t>(pick(0, topic_count - 1)));
      else if (roll < 92) concurrently();
      else if (roll < 95) malformed();
      else until_next_change(server_, std::chrono::microseconds(pick(0, 3000)));
    }
    // The publishers have stopped: each follower catches up with its topic (timeout=0, so it never parks).
    const steady::time_point deadline = steady::now() + 10s;
    for (std::size_t t = 0; t < topic_count; ++t) {
      follower& f = followers_[t];
      if (!f.cursor) f.cursor = f.start = 0;
      const std::uint64_t last = log_.completed(t);
      for (int i = 0; i < 100 && *f.cursor < last && steady::now() < deadline; ++i) {
        poll_request q = follow_request(t);
        q.how = poll_request::by::query;
        q.tag_field.clear();
        q.decoy_tag = false;
        q.timeout = "0";
        q.wait = 0ms;
        exchange_on_connection(q);
      }
      if (*f.cursor != last) {
        report("follower of " + topic_name(t) + " ends at cursor " + std::to_string(*f.cursor) + ", not at " +
               std::to_string(last));
      } else if (f.received + f.missed != last - f.start) {
        report("follower of " + topic_name(t) + " from " + std::to_string(f.start) + " to " + std::to_string(last) +
               " received " + std::to_string(f.received) + " and missed " + std::to_string(f.missed));
      }
    }
  }

  const std::vector<delivery>& deliveries() const { return deliveries_; }
  const coverage& covered() const { return covered_; }
  std::vector<std::string> keys() const { return {key_, key_ + "-gone"}; }

 private:
  // Where the client is in one topic: the cursor of the last answer it took (nullopt: it has not polled yet, and
  // then starts either from 0 or with no cursor, at the newest message).
  struct follower {
    std::optional<std::uint64_t> cursor;
    std::uint64_t start = 0;
    std::uint64_t received = 0;
    std::uint64_t missed = 0;
    bool by_tag = false;  // polls with If-None-Match (the last ETag) rather than ?cursor=
  };

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  void report(std::string what) { problems_.add("client " + std::to_string(id_) + ": " + std::move(what)); }

  // Random `max` and `timeout` (with the timeout the endpoint will apply).
  void random_limits(poll_request& q) {
    const int m = pick(0, 9);
    if (m < 4) q.max.reset();
    else if (m < 9) q.max = static_cast<std::size_t>(pick(1, 8));
    else q.max = 100;
    static constexpr std::pair<std::string_view, std::chrono::milliseconds> timeouts[] = {
        {"0", 0ms},    {"0.02", 20ms}, {"0.05", 50ms},        {"0.1", 100ms}, {"", default_timeout},
        {"9", max_timeout}, {"1e-9", 0ms}, {"0.0015", 1ms}, {"0.03", 30ms},
    };
    const auto& [text, wait] = timeouts[static_cast<std::size_t>(pick(0, std::size(timeouts) - 1))];
    q.timeout = std::string(text);
    q.wait = wait;
  }

  // The next poll of the follower of `topic`.
  poll_request follow_request(std::size_t topic) {
    follower& f = followers_[topic];
    poll_request q;
    q.topic = topic;
    q.key = key_;
    random_limits(q);
    if (!f.cursor) {
      if (pick(0, 2) == 0) {
        q.how = poll_request::by::none;  // starts at the newest message
        return q;
      }
      f.cursor = f.start = 0;
      f.by_tag = pick(0, 1) == 0;
    } else if (pick(0, 9) == 0) {
      f.by_tag = !f.by_tag;
    }
    q.cursor = *f.cursor;
    const std::string tag = "\"" + std::to_string(q.cursor) + "\"";
    if (f.by_tag) {
      q.how = poll_request::by::tag;
      static constexpr std::string_view forms[] = {"", "W/", "\"x\", ", "W/\"junk\", W/"};
      q.tag_field = std::string(forms[static_cast<std::size_t>(pick(0, std::size(forms) - 1))]) + tag;
    } else {
      q.how = poll_request::by::query;
      if (pick(0, 4) == 0) {
        q.decoy_tag = true;
        q.tag_field = "\"" + std::to_string(q.cursor + static_cast<std::uint64_t>(pick(1, 50))) + "\"";
      }
    }
    return q;
  }

  // The connection the client reuses for its polls (a new one when the server closed it).
  raw_client& connection() {
    if (!connection_) connection_ = std::make_unique<raw_client>(server_.server.port());
    return *connection_;
  }

  // Sends `q` on the client's connection and applies a good answer to the follower (for a follow poll).
  void exchange_on_connection(const poll_request& q) {
    const steady::time_point sent = steady::now();
    if (!connection().try_send(q.bytes())) {
      connection_.reset();
      return report("could not send " + q.target());
    }
    receive_and_apply(*connection_, q, sent, /*may_refuse=*/false, /*apply=*/true);
  }

  void receive_and_apply(raw_client& c, const poll_request& q, steady::time_point sent, bool may_refuse, bool apply) {
    const auto r = c.read_response();
    const std::uint64_t started = log_.started(q.topic);
    if (!r) {
      if (&c == connection_.get()) connection_.reset();
      return report("no answer to " + q.target() + " (" + q.tag_field + ")");
    }
    if (q.close && r->keep_alive) report("Connection: close, but the answer keeps the connection");
    if (!r->keep_alive && &c == connection_.get()) connection_.reset();
    const auto a = check(q, *r, sent, started, may_refuse);
    if (a && apply) take(q, *a);
  }

  // Takes a checked answer into the follower of its topic, if the poll followed it.
  void take(const poll_request& q, const poll_answer& a) {
    follower& f = followers_[q.topic];
    if (a.not_modified) return;
    if (q.how == poll_request::by::none) {
      if (f.cursor) return;  // it started meanwhile (a pipelined poll): this answer is only checked
      f.cursor = f.start = a.base;
    } else if (!f.cursor || *f.cursor != q.cursor) {
      return;  // a poll from an older cursor (pipelined after the follower moved): only checked
    }
    if (a.reset) return report("a follower got a reset at cursor " + std::to_string(q.cursor));
    f.cursor = a.cursor;
    f.received += a.messages.size();
    if (a.gap) {
      f.missed += a.gap->second - a.gap->first + 1;
      ++covered_.follower_gaps;
    }
  }

  // Checks an answer to `q` against the model; returns it when it is a batch (or a 304). `sent`: when the request
  // was sent; `started`: publishes begun (to its topic) by when the answer was read.
  std::optional<poll_answer> check(const poll_request& q, const raw_response& r, steady::time_point sent,
                                   std::uint64_t started, bool may_refuse) {
    const steady::time_point received = steady::now();
    // The topic's last sequence number when the endpoint read it lies in [known, started]: `known` publishes had
    // returned before the request left.
    const std::uint64_t known = log_.completed_before(q.topic, sent);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(received - sent).count();
    std::string context = q.target() + (q.tag_field.empty() ? "" : " If-None-Match: " + q.tag_field) +
                          " (key " + q.key + ", known " + std::to_string(known) + ", started " +
                          std::to_string(started) + ", " + std::to_string(took) + " ms) -> " +
                          std::to_string(r.status) + " " + r.body.substr(0, 300);
    auto fail = [&](std::string_view what) {
      report(std::string(what) + ": " + context);
      return std::nullopt;
    };
    ++covered_.answers;
    if (r.status == 429 && may_refuse) {
      ++covered_.refused;
      if (r.header("Retry-After") != "1") return fail("429 without Retry-After: 1");
      return std::nullopt;
    }
    poll_answer a;
    if (r.status == 304) {
      ++covered_.not_modified;
      span_.saw_not_modified();
      if (!q.conditional()) return fail("304 to a poll without a cursor in If-None-Match");
      if (!r.body.empty()) return fail("304 with a body");
      if (r.header("ETag") != "\"" + std::to_string(q.cursor) + "\"") return fail("304 with another ETag");
      a.not_modified = true;
      a.base = a.cursor = q.cursor;
      if (q.cursor > started) return fail("304 for a cursor ahead of the topic (a reset)");
      if (!nothing_new(q, a.cursor, sent, context)) return std::nullopt;
      return a;
    }
    if (r.status != 200) return fail("unexpected status");
    if (r.header("Content-Type") != "application/json") return fail("wrong Content-Type");
    if (r.header("Cache-Control") != "no-cache") return fail("no Cache-Control: no-cache");
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("cursor") || !j["cursor"].is_number_unsigned() || !j.contains("messages") ||
        !j["messages"].is_array()) {
      return fail("not a batch (or not valid UTF-8 JSON)");
    }
    for (const auto& [name, value] : j.items()) {
      if (name != "cursor" && name != "messages" && name != "gap" && name != "reset") return fail("unknown member");
    }
    a.cursor = j["cursor"].get<std::uint64_t>();
    if (r.header("ETag") != "\"" + std::to_string(a.cursor) + "\"") return fail("the ETag is not the cursor");
    if (j.contains("reset")) {
      if (j["reset"] != true) return fail("reset that is not true");
      a.reset = true;
    }
    if (j.contains("gap")) {
      const auto& g = j["gap"];
      if (!g.is_object() || g.size() != 3 || !g.contains("first") || !g["first"].is_number_unsigned() ||
          !g.contains("last") || !g["last"].is_number_unsigned() || g.value("reason", "") != "retention") {
        return fail("malformed gap");
      }
      a.gap.emplace(g["first"].get<std::uint64_t>(), g["last"].get<std::uint64_t>());
      if (a.gap->first == 0 || a.gap->second < a.gap->first) return fail("an empty or reversed gap");
    }
    for (const auto& m : j["messages"]) {
      if (!m.is_object() || !m.contains("seq") || !m["seq"].is_number_unsigned() || !m.contains("data") ||
          !m["data"].is_string()) {
        return fail("malformed message");
      }
      poll_answer::message out{m["seq"].get<std::uint64_t>(), m["data"].get<std::string>(), false};
      if (m.contains("encoding")) {
        if (m["encoding"] != "base64") return fail("unknown encoding");
        auto decoded = from_base64(out.data);
        if (!decoded) return fail("bad base64");
        out.data = std::move(*decoded);
        out.base64 = true;
      }
      if (m.size() != (out.base64 ? 3u : 2u)) return fail("unknown member in a message");
      a.messages.push_back(std::move(out));
    }

    if (a.reset) {
      ++covered_.resets;
      if (q.how == poll_request::by::none) return fail("a reset without a cursor");
      if (a.gap || !a.messages.empty()) return fail("a reset with messages");
      // The cursor is the topic's last sequence number now, which the cursor sent is past.
      if (q.cursor <= known) return fail("a reset for a cursor the topic had reached");
      if (a.cursor >= q.cursor || a.cursor < known || a.cursor > started) return fail("a reset to a wrong cursor");
      a.base = q.cursor;
      return a;
    }
    // Where the answer starts: the cursor sent, or (none sent) the newest message when the endpoint read it.
    if (q.how == poll_request::by::none) {
      a.base = a.gap ? a.gap->first - 1 : !a.messages.empty() ? a.messages.front().sequence - 1 : a.cursor;
      if (a.base < known || a.base > started) return fail("no cursor, but the answer does not start at the newest");
    } else {
      a.base = q.cursor;
      if (q.cursor > started) return fail("a cursor ahead of the topic, but no reset");
    }
    std::uint64_t at = a.base;  // the last sequence number accounted for
    if (a.gap) {
      ++covered_.gaps;
      if (a.gap->first != at + 1) return fail("the gap does not start right after the cursor");
      at = a.gap->second;
      // Retention keeps the newest `retained` messages: a gap ends where they began when the endpoint read.
      if (a.gap->second + retained < known || a.gap->second + retained > started) {
        return fail("a gap over messages still retained (or not the whole of those evicted)");
      }
    }
    for (const auto& m : a.messages) {
      if (m.sequence != at + 1) return fail("messages not consecutive from the cursor");
      at = m.sequence;
      deliveries_.push_back({q.topic, m.sequence, m.data, m.base64});
    }
    covered_.messages += a.messages.size();
    if (a.cursor != at) return fail("the cursor is not the last sequence number in the answer");
    if (a.cursor > started) return fail("a sequence number not yet published");
    if (a.messages.size() > q.effective_max()) return fail("more messages than max");
    // Short of `max` only when nothing more was there: the endpoint read at least `known` messages.
    if (a.messages.size() < q.effective_max() && a.cursor < known) return fail("a short batch");
    if (!a.gap && a.messages.empty()) {
      ++covered_.empty;
      if (q.conditional()) return fail("nothing new to a poll by ETag, but not 304");
      if (!nothing_new(q, a.cursor, sent, context)) return std::nullopt;
    }
    return a;
  }

  // An answer with nothing new after `cursor`: right only if no publish had returned before the endpoint
  // answered, which was (for a poll that waited) not before its timeout, shortened by at most `jitter`.
  bool nothing_new(const poll_request& q, std::uint64_t cursor, steady::time_point sent, const std::string& context) {
    const auto earliest = std::chrono::duration_cast<std::chrono::milliseconds>(q.wait * (1 - jitter)) - 2ms;
    if (log_.completed_before(q.topic, sent + std::max(earliest, 0ms)) > cursor) {
      report("nothing new, but message " + std::to_string(cursor + 1) + " was published before the poll ended: " +
             context);
      return false;
    }
    return true;  // how late past its timeout a wait ended is the machine's: not checked (no timing assertions)
  }

  // A follow poll on the client's connection.
  void follow(std::size_t topic) {
    poll_request q = follow_request(topic);
    q.close = pick(0, 9) == 0;
    exchange_on_connection(q);
  }

  // A poll on a connection of its own, closed before the answer (likely while parked). Under a key of its own, as
  // the server may count it as parked for a while after the close. Without a cursor, so from the newest message,
  // so that it parks: from a follower's cursor, often behind, it was mostly answered at once, and a run could end
  // without a single poll released as disconnected.
  void abandon(std::size_t topic) {
    poll_request q;
    q.topic = topic;
    q.how = poll_request::by::none;
    random_limits(q);
    q.key = key_ + "-gone";
    q.timeout = "9";
    q.wait = max_timeout;
    raw_client c(server_.server.port());
    // Sometimes with a second poll pipelined behind it, which the server has not started when the client goes.
    const std::string bytes = pick(0, 3) == 0 ? q.bytes() + q.bytes() : q.bytes();
    const std::uint64_t parks_before = parks(server_.polls.stats());
    if (!c.try_send(bytes)) return report("could not send an abandoned poll");
    until_parked(server_, parks_before, std::chrono::microseconds(pick(0, 8000)));  // most likely this one
    ++covered_.abandoned;
  }

  // Two or three follow polls in one write on the client's connection: answered in order.
  void pipeline() {
    std::vector<poll_request> qs;
    const int n = pick(2, 3);
    for (int i = 0; i < n; ++i) {
      qs.push_back(follow_request(static_cast<std::size_t>(pick(0, topic_count - 1))));
      if (qs.back().wait > 50ms) qs.back().timeout = "0.05", qs.back().wait = 50ms;  // they wait one after another
    }
    // In one write, or the first alone and the rest a little later: while it is parked, its request given back.
    const bool later = pick(0, 1) == 0;
    std::string bytes;
    for (const auto& q : qs) bytes += q.bytes();
    const std::size_t first = later ? qs.front().bytes().size() : bytes.size();
    const steady::time_point sent = steady::now();
    const std::uint64_t parks_before = parks(server_.polls.stats());
    bool written = connection().try_send(std::string_view(bytes).substr(0, first));
    if (written && later) {
      until_parked(server_, parks_before, std::chrono::microseconds(pick(0, 5000)));  // the first one, likely
      written = connection_->try_send(std::string_view(bytes).substr(first));
    }
    if (!written) {
      connection_.reset();
      return report("could not send pipelined polls");
    }
    ++covered_.pipelined;
    for (const auto& q : qs) {
      if (!connection_) return;  // reported
      receive_and_apply(*connection_, q, sent, false, true);
    }
  }

  // A poll that the follower does not take: no cursor, an old one, the newest, one ahead of the topic, or one far
  // out of any range.
  void probe(std::size_t topic) {
    poll_request q;
    q.topic = topic;
    q.key = key_;
    random_limits(q);
    const std::uint64_t top = log_.started(topic);
    switch (pick(0, 5)) {
      case 0: q.how = poll_request::by::none; break;
      case 1: q.cursor = 0; break;
      case 2: q.cursor = static_cast<std::uint64_t>(pick(0, static_cast<int>(top))); break;
      case 3: q.cursor = top + static_cast<std::uint64_t>(pick(1, 40)); break;
      case 4: q.cursor = top > 0 && pick(0, 1) == 0 ? top - 1 : top; break;
      default: q.cursor = std::uint64_t{18'446'744'073'709'551'615u} - static_cast<std::uint64_t>(pick(0, 1)); break;
    }
    if (q.how != poll_request::by::none && pick(0, 2) == 0) {
      q.how = poll_request::by::tag;
      q.tag_field = "\"" + std::to_string(q.cursor) + "\"";
    }
    if (pick(0, 4) == 0) return head(q);
    const steady::time_point sent = steady::now();
    if (!connection().try_send(q.bytes())) {
      connection_.reset();
      return report("could not send a probe");
    }
    receive_and_apply(*connection_, q, sent, false, false);
  }

  // The probe as HEAD (answered as GET is, RFC 9110 §9.3.2): the header section only, even for an answer whose
  // body is shared by the polls a publish woke; the connection goes on with the next poll.
  void head(poll_request q) {
    std::string bytes = q.bytes();
    bytes.replace(0, 3, "HEAD");
    if (!connection().try_send(bytes)) {
      connection_.reset();
      return report("could not send a HEAD probe");
    }
    const auto r = connection_->read_response(/*head_request=*/true);
    ++covered_.heads;
    if (!r) {
      connection_.reset();
      return report("no answer to HEAD " + q.target());
    }
    if (!r->keep_alive) connection_.reset();
    const std::string tag = r->header("ETag");
    const bool tagged = tag.size() > 2 && tag.front() == '"' && tag.back() == '"' &&
                        tag.find_first_not_of("0123456789", 1) == tag.size() - 1;
    const bool ok = r->status == 200 ? r->header("Content-Type") == "application/json"
                                     : r->status == 304 && q.conditional() && tag == q.tag_field;
    if (!ok || !tagged || !r->body.empty()) {
      report("HEAD " + q.target() + " (" + q.tag_field + ") answered " + std::to_string(r->status) + " ETag " + tag);
    }
  }

  // Two to five polls at once on connections of their own, under the client's key: up to the per-client limit
  // none is refused; past it, at most the excess. The first poll of each topic is the follower's.
  void concurrently() {
    const int n = pick(2, 5);
    std::vector<std::unique_ptr<raw_client>> connections;
    std::vector<poll_request> qs;
    std::array<bool, topic_count> taken{};
    std::vector<bool> follows;
    const steady::time_point sent = steady::now();
    for (int i = 0; i < n; ++i) {
      const auto topic = static_cast<std::size_t>(pick(0, topic_count - 1));
      poll_request q = follow_request(topic);
      follows.push_back(!taken[topic]);
      taken[topic] = true;
      connections.push_back(std::make_unique<raw_client>(server_.server.port()));
      if (!connections.back()->try_send(q.bytes())) return report("could not send concurrent polls");
      qs.push_back(std::move(q));
    }
    ++covered_.concurrent;
    const std::uint64_t refused_before = covered_.refused;
    for (std::size_t i = 0; i < qs.size(); ++i) {
      receive_and_apply(*connections[i], qs[i], sent, n > static_cast<int>(per_client_limit), follows[i]);
    }
    if (covered_.refused - refused_before > static_cast<std::uint64_t>(n) - per_client_limit) {
      report(std::to_string(covered_.refused - refused_before) + " of " + std::to_string(n) +
             " concurrent polls refused with a limit of " + std::to_string(per_client_limit));
    }
  }

  // A malformed query: 400, as problem+json, and the connection still serves.
  void malformed() {
    static constexpr std::string_view queries[] = {"cursor=abc", "cursor=-1", "max=0", "timeout=-1", "timeout=",
                                                   "cursor=18446744073709551616", "timeout=nan", "max=x"};
    const std::string_view query = queries[static_cast<std::size_t>(pick(0, std::size(queries) - 1))];
    const std::string target =
        "/topics/" + topic_name(static_cast<std::size_t>(pick(0, topic_count - 1))) + "/poll?" + std::string(query);
    if (!connection().try_send(get_request(target, "X-Client: " + key_ + "\r\n"))) {
      connection_.reset();
      return report("could not send a malformed poll");
    }
    const auto r = connection_->read_response();
    ++covered_.malformed;
    if (!r) {
      connection_.reset();
      return report("no answer to " + target);
    }
    if (!r->keep_alive) connection_.reset();
    if (r->status != 400 || r->header("Content-Type") != "application/problem+json") {
      report(target + " answered " + std::to_string(r->status) + " " + r->body);
    }
  }

  poll_server& server_;
  const published_log& log_;
  problem_list& problems_;
  run_span& span_;
  std::mt19937 rng_;
  unsigned id_;
  std::string key_;
  std::array<follower, topic_count> followers_;
  std::unique_ptr<raw_client> connection_;
  std::vector<delivery> deliveries_;
  coverage covered_;
};

void publish_randomly(poll_server& s, published_log& log, unsigned seed, unsigned id, problem_list& problems,
                      const run_span& span) {
  std::mt19937 rng(seed * 7919 + id);
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::size_t burst = 0;
  for (std::size_t i = 0; span.goes_on(i); ++i) {
    const auto topic = static_cast<std::size_t>(pick(0, topic_count - 1));
    published_log::message m = random_payload(rng);
    log.starting(topic);
    const std::uint64_t sequence = s.publish(topic_name(topic), m.data);
    if (sequence == 0) {
      problems.add("publisher " + std::to_string(id) + ": a publish failed");
      return;
    }
    log.published(topic, sequence, std::move(m));
    // Bursts (which outrun the retention of a slow follower: gaps), quiet spells (parked polls time out), and
    // short pauses in between.
    if (burst > 0) {
      --burst;
      continue;
    }
    const int roll = pick(0, 99);
    if (roll < 8) burst = static_cast<std::size_t>(pick(5, 25));
    else if (roll < 25) {
      const std::uint64_t timed_out = s.polls.stats().timed_out;  // a quiet spell: until a parked poll times out
      s.wait_for([&] { return s.polls.stats().timed_out > timed_out; }, std::chrono::milliseconds(pick(5, 40)));
    } else {
      until_next_change(s, std::chrono::microseconds(pick(0, 2500)));
    }
  }
}

// Parks `per_client_limit` polls at once under `key`: none may be refused once every earlier poll is over, or the
// endpoint lost count of a released one.
bool limit_is_whole(poll_server& s, const std::string& key, std::string& why) {
  std::vector<std::unique_ptr<raw_client>> connections;
  for (std::size_t i = 0; i < per_client_limit; ++i) {
    connections.push_back(std::make_unique<raw_client>(s.server.port()));
    connections.back()->send(get_request("/topics/idle/poll?timeout=0.1", "X-Client: " + key + "\r\n"));
  }
  for (auto& c : connections) {
    const auto r = c->read_response();
    if (!r || r->status != 200) {
      why = key + ": " + (r ? std::to_string(r->status) + " " + r->body : std::string("no answer"));
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("long-poll endpoint: random publishers and clients, every answer fits the model",
          "[longpoll][endpoint][random]") {
  // Each seed a run of its own (GENERATE): one that fails does not hide what the others find.
  const unsigned seed = GENERATE(range(1u, 5u));
  INFO("seed " << seed);
  std::mt19937 setup(seed);
  // The server's threads and when it parks idle connections vary with the seed.
  const std::size_t threads = setup() % 2 == 0 ? 2 : 1;
  http::server_options server_options;
  if (setup() % 2 == 0) server_options.timeouts.park_idle_after = 0ms;
  INFO("threads " << threads << ", park_idle_after " << server_options.timeouts.park_idle_after.count() << " ms");
  poll_server s({.default_timeout = default_timeout,
                 .max_timeout = max_timeout,
                 .jitter = jitter,
                 .max_batch = max_batch,
                 .max_parked_per_client = per_client_limit,
                 .retry_after = 1s,
                 .client_key = [](const http::request& req) { return std::string(req.header("X-Client")); }},
                server_options, {.retention = {.max_messages = retained}}, threads);

  published_log log;
  problem_list problems;
  std::atomic<bool> publishing{true};
  run_span span(s);
  std::vector<std::unique_ptr<poll_client>> clients;
  for (unsigned i = 0; i < client_count; ++i) {
    clients.push_back(std::make_unique<poll_client>(s, log, problems, span, seed, i));
  }
  std::vector<std::thread> threads_running;
  for (auto& c : clients) threads_running.emplace_back([&, c = c.get()] { c->run(publishing); });
  std::vector<std::thread> publishers;
  for (unsigned i = 0; i < publisher_count; ++i) {
    publishers.emplace_back([&, i] { publish_randomly(s, log, seed, i, problems, span); });
  }
  for (auto& p : publishers) p.join();
  publishing = false;
  for (auto& t : threads_running) t.join();

  // Every message delivered is the one published under that sequence number, as text when it was text.
  coverage covered;
  for (const auto& c : clients) {
    covered += c->covered();
    for (const delivery& d : c->deliveries()) {
      const auto& published = log.messages(d.topic);
      const auto it = published.find(d.sequence);
      if (it == published.end()) {
        problems.add(topic_name(d.topic) + " #" + std::to_string(d.sequence) + " delivered but never published");
      } else if (it->second.data != d.data) {
        problems.add(topic_name(d.topic) + " #" + std::to_string(d.sequence) + " delivered with another payload");
      } else if (it->second.text && d.base64) {
        problems.add(topic_name(d.topic) + " #" + std::to_string(d.sequence) + ": valid UTF-8 sent as base64");
      }
    }
  }
  for (std::size_t t = 0; t < topic_count; ++t) {
    if (s.broker.last_sequence(topic_name(t)) != log.completed(t)) problems.add(topic_name(t) + ": lost a publish");
  }
  const std::vector<std::string> found = problems.take();
  for (const std::string& p : found) UNSCOPED_INFO(p);
  CHECK(found.empty());

  // Every parked poll was released (answered, timed out or its client gone), and nothing was refused for the total.
  CHECK(s.wait_for([&] { return s.polls.parked() == 0; }));
  const longpoll::endpoint_stats stats = s.polls.stats();
  CHECK(stats.refused_total == 0);
  // Each client key can park its full share again: no released poll is still counted against it.
  for (const auto& c : clients) {
    for (const std::string& key : c->keys()) {
      std::string why;
      const bool whole = limit_is_whole(s, key, why);
      INFO(why);
      CHECK(whole);
    }
  }
  CHECK(s.wait_for([&] { return s.polls.parked() == 0; }));

  // After the mix, polls parked at the newest message of each topic (by cursor and by ETag): closed by their
  // clients, they are released as disconnected; parked again, a drain answers them at once with nothing new.
  const auto park_at_newest = [&](const std::string& key) {
    std::vector<std::pair<std::unique_ptr<raw_client>, bool>> out;  // the connection, and whether by ETag
    for (std::size_t t = 0; t < topic_count; ++t) {
      const std::string last = std::to_string(log.completed(t));
      for (const bool by_tag : {false, true}) {
        const std::string target = "/topics/" + topic_name(t) + "/poll?timeout=9" + (by_tag ? "" : "&cursor=" + last);
        std::string fields = "X-Client: " + key + std::to_string(out.size()) + "\r\n";
        if (by_tag) fields += "If-None-Match: \"" + last + "\"\r\n";
        out.emplace_back(std::make_unique<raw_client>(s.server.port()), by_tag);
        out.back().first->send(get_request(target, fields));
      }
    }
    return out;
  };
  const longpoll::endpoint_stats before = s.polls.stats();
  auto parked = park_at_newest("gone");
  CHECK(s.wait_for([&] { return s.polls.parked() == parked.size(); }));
  const std::uint64_t closed = parked.size();
  parked.clear();
  // Released as disconnected; on a slow machine one may time out first (250 ms at most here), released either way.
  // (endpoint.cpp checks that a poll whose client goes is released at once, with a long timeout.)
  CHECK(s.wait_for([&] {
    const longpoll::endpoint_stats now = s.polls.stats();
    return now.disconnected - before.disconnected + now.timed_out - before.timed_out == closed;
  }, 5s));
  CHECK(s.polls.stats().disconnected > before.disconnected);
  CHECK(s.wait_for([&] { return s.polls.parked() == 0; }));
  parked = park_at_newest("drained");
  CHECK(s.wait_for([&] { return s.polls.parked() == parked.size(); }));
  const longpoll::endpoint_stats before_drain = s.polls.stats();
  CHECK(s.server.stop(5s).cut == 0);  // a grace period: with none, the connections are cut before the answers
  for (std::size_t i = 0; i < parked.size(); ++i) {
    const auto& [c, by_tag] = parked[i];
    const std::string last = std::to_string(log.completed(i / 2));
    const auto r = c->read_response();
    REQUIRE(r);
    INFO(r->status << " " << r->body);
    CHECK(r->status == (by_tag ? 304u : 200u));
    CHECK(r->header("ETag") == "\"" + last + "\"");
    if (!by_tag) CHECK(r->body == "{\"cursor\":" + last + ",\"messages\":[]}");
  }
  const longpoll::endpoint_stats drained = s.polls.stats();
  CHECK(drained.parked == 0);
  // A poll may time out just before the drain reaches it (its timeout is short); either way it is answered.
  CHECK(drained.drained - before_drain.drained + drained.timed_out - before_drain.timed_out == parked.size());
  CHECK(drained.drained > before_drain.drained);

  // The mix reached what it is meant to check.
  INFO("answers " << covered.answers << ", messages " << covered.messages << ", gaps " << covered.gaps
                  << " (followers " << covered.follower_gaps << "), 304 " << covered.not_modified << ", resets "
                  << covered.resets << ", empty " << covered.empty << ", 429 " << covered.refused << ", pipelined "
                  << covered.pipelined << ", concurrent " << covered.concurrent << ", abandoned " << covered.abandoned
                  << ", HEAD " << covered.heads
                  << "; woken " << stats.woken << ", timed out " << stats.timed_out << ", disconnected "
                  << stats.disconnected);
  CHECK(covered.gaps > 0);
  CHECK(covered.not_modified > 0);
  CHECK(covered.resets > 0);
  CHECK(covered.empty > 0);
  CHECK(stats.woken > 0);
  CHECK(stats.timed_out > 0);
  CHECK(stats.disconnected > 0);
}
