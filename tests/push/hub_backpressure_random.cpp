// A randomized model of the push hub's per-client queues under backpressure (DESIGN promises 2 and 3, docs/push.md
// "Backpressure and limits"). Per seed: a hub on an HTTP server over loopback, a broker that retains the topics, small
// client queues under a random overflow policy (drop_oldest, drop_newest, conflate with conflation keys, disconnect),
// and one or two clients, each over SSE, a per-topic WebSocket (?from=, and rooms joined on it) or a rooms WebSocket,
// live or resuming from a random cursor. The clients are raw sockets with a fixed receive buffer that stop reading
// while bursts are published (from the test's thread, another thread, or both), so that their queues overflow; then
// they read everything, while more may be published, up to a last message per topic.
//
// Per client and topic, what arrives is checked against the model:
//  - every message is one that was published (same data), received at most once;
//  - every number from the client's start to the last published is received once or covered by one gap, never both
//    (unless the outbox widened a run: `outbox::max_runs_per_topic`), and a gap comes where the missing messages
//    would have been: numbers and gaps together run without hole, overlap or going back;
//  - `conflate`: a message may be missing without a gap only when a later message of its topic with the same key was
//    received or reported lost (a replaced message is superseded, never reported, even when its replacement is
//    dropped later); replacements go to the back of the queue, so numbers and gaps still never go back (an SSE
//    client that resumed after a replacement written before an older message would lose that message silently);
//  - `disconnect`: no overflow gap ever; the connection ends (WebSocket: close 1008), each connection delivers
//    something, and a client that resumes from the last id it received gets the rest from retention, with no hole
//    and no duplicate;
//  - retention gaps only for a connection that resumed from a cursor; "joined" before any message of its topic;
//  - afterwards the hub has no client and no feed left, the broker no subscription, and no feed ever dropped (every
//    gap came from a client's queue).
//
// It found four defects of the outbox (see the directed tests in outbox.cpp and hub.cpp): a gap handed out before
// older messages of its topic queued behind another topic's; a dropped retention gap lost without a trace; a
// resuming client under `disconnect` cut before it received anything, for ever; conflation across the topics of a
// room.
#include <switchboard/push/hub.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include "push/hub_server.hpp"
#include "sse/event_stream_client.hpp"
#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;

namespace {

// What was published to one topic, by sequence number: its payload and conflation key.
struct publish_log {
  struct entry {
    std::string payload;
    std::string key;
  };
  std::mutex mutex;
  std::map<std::string, std::map<std::uint64_t, entry>> topics;

  void record(const std::string& topic, std::uint64_t seq, std::string payload, std::string key) {
    std::lock_guard lock(mutex);
    topics[topic][seq] = entry{std::move(payload), std::move(key)};
  }
};

// The hub's test server, with a log of what was published.
struct logged_hub : test::hub_server {
  using test::hub_server::hub_server;

  // From any thread; the sequence number, or 0 when the broker refused.
  std::uint64_t publish(const std::string& topic, std::string payload, std::string key) {
    const std::uint64_t seq = try_publish(topic, payload, key);
    if (seq != 0) log.record(topic, seq, std::move(payload), std::move(key));
    return seq;
  }

  publish_log log;
};

// One thing a client received for a topic: a message or a gap.
struct seen {
  bool gap = false;
  std::uint64_t seq = 0;              // a message's number
  std::uint64_t first = 0, last = 0;  // a gap's numbers
  std::string reason;                 // a gap's reason
  std::string data;                   // a message's data
  std::size_t connection = 0;         // the client's n-th connection (they reconnect after a `disconnect`)
  std::string describe() const {
    std::ostringstream out;
    out << "#" << connection << " ";
    if (gap) out << "gap " << first << "-" << last << " " << reason;
    else out << "msg " << seq;
    return out.str();
  }
};

// What one client knows of one topic.
struct topic_view {
  std::vector<seen> events;
  // Per connection: the cursor it resumed from (none: live, starting with the first thing it receives, or after the
  // "joined" number over WebSocket).
  std::map<std::size_t, std::optional<std::uint64_t>> cursor;
  std::map<std::size_t, std::uint64_t> joined;  // WebSocket: the number the "joined" acknowledgement carried
  // The last number received or covered by a gap (the resume point of the next connection).
  std::optional<std::uint64_t> last_id() const {
    if (events.empty()) return std::nullopt;
    const seen& e = events.back();
    return e.gap ? e.last : e.seq;
  }
  // The highest number received, covered by a gap, or acknowledged by "joined" (a live join that the server handled
  // after the last publish: the client is owed nothing).
  std::uint64_t highest() const {
    std::uint64_t h = 0;
    for (const auto& j : joined) {
      if (!cursor.at(j.first)) h = std::max(h, j.second);
    }
    for (const seen& e : events) h = std::max(h, e.gap ? e.last : e.seq);
    return h;
  }
};

// Fixes the socket's receive buffer (the kernel then stops growing it as the client reads).
void set_receive_buffer(test::raw_client& c, int bytes) {
  ::setsockopt(c.socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

const std::string ws_handshake_fields =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

// A masked client text frame.
std::string client_text_frame(std::string_view text) {
  ws::frame_writer writer(ws::role::client);
  std::string frame(writer.frame_size(text.size()), '\0');
  frame.resize(writer.write_frame(frame, ws::opcode::text, text));
  return frame;
}

enum class transport { sse, ws_topic, ws_rooms };

const char* name_of(transport t) {
  switch (t) {
    case transport::sse: return "SSE";
    case transport::ws_topic: return "WebSocket /topics/{topic}/ws";
    case transport::ws_rooms: return "WebSocket rooms";
  }
  return "?";
}

// One client: its connections, one at a time, and what it received per topic.
class model_client {
 public:
  model_client(logged_hub& h, transport t, std::vector<std::string> topics, int rcvbuf)
      : h_(h), transport_(t), topics_(std::move(topics)), rcvbuf_(rcvbuf) {}

  transport kind() const noexcept { return transport_; }
  const std::vector<std::string>& topics() const noexcept { return topics_; }
  std::map<std::string, topic_view>& views() noexcept { return views_; }
  std::size_t connections() const noexcept { return connection_; }
  std::vector<std::string>& problems() noexcept { return problems_; }

  // Opens a connection that resumes each topic from `cursors` (absent: live), and waits until the server has it.
  // Returns false (with a problem recorded) when the server refused.
  bool connect(const std::map<std::string, std::optional<std::uint64_t>>& cursors) {
    ++connection_;
    sse_.reset();
    ws_.reset();
    ws_closed_ = false;
    ws_buffer_.clear();
    ws_text_.clear();
    sse_taken_ = 0;
    for (const std::string& t : topics_) {
      const auto it = cursors.find(t);
      views_[t].cursor[connection_] = it == cursors.end() ? std::nullopt : it->second;
    }
    const std::string& first = topics_.front();
    const std::optional<std::uint64_t> from = views_[first].cursor[connection_];
    if (transport_ == transport::sse) {
      const std::string target = "/topics/" + first + "/events";
      // A resume point in the header (as an EventSource sends it) or in the query (a first connection).
      const std::uint16_t port = h_.s.port();
      if (from && (*from % 2 == 0)) {
        const std::string header = "Last-Event-ID: " + std::to_string(*from) + "\r\n";
        sse_ = std::make_unique<test::event_stream_client>(port, target, header);
      } else if (from) {
        sse_ = std::make_unique<test::event_stream_client>(port, target + "?lastEventId=" + std::to_string(*from));
      } else {
        sse_ = std::make_unique<test::event_stream_client>(h_.s.port(), target);
      }
      set_receive_buffer(sse_->raw(), rcvbuf_);
      if (!sse_->read_until([&] { return !sse_->head.empty(); })) return problem("no SSE response head");
      if (sse_->head.find(" 200 ") == std::string::npos) return problem("SSE refused: " + sse_->head);
      if (!from && connection_ == 1) {
        // Live: the stream starts with the next message published after the server attached it, which the client
        // cannot see. Probes, until one arrives, make that start known (its first event) before the bursts.
        topic_view& v = views_[first];
        for (int probe = 0; probe < 1000 && v.events.empty(); ++probe) {
          if (h_.publish(first, "probe", "") == 0) return problem("probe refused");
          sse_->raw().set_timeout(20ms);
          sse_->read_until([&] {
            take_sse();
            return !v.events.empty();
          });
        }
        sse_->raw().set_timeout(10s);
        if (v.events.empty()) return problem("no probe arrived");
      }
      return true;
    }
    ws_ = std::make_unique<test::raw_client>(h_.s.port());
    set_receive_buffer(*ws_, rcvbuf_);
    std::string target = "/ws";
    if (transport_ == transport::ws_topic) {
      target = "/topics/" + first + "/ws" + (from ? "?from=" + std::to_string(*from) : "");
    }
    ws_->send(test::get_request(target, ws_handshake_fields));
    const auto r = ws_->read_response();
    if (!r || r->status != 101) return problem("no WebSocket upgrade");
    ws_buffer_ = ws_->take_buffered();
    ws_parser_.emplace(ws::role::client);
    // Rooms: every topic joined; per-topic socket: the others joined over the rooms protocol.
    //
    // A live join starts at the number its "joined" carries, which the model needs before it can check the topic:
    // so a live join is only the first of a connection, waited for, and the later ones join from the topic's last
    // number now (the same start, known to the model).
    if (transport_ == transport::ws_topic && !views_[first].cursor[connection_] &&
        !read_until([&] { return views_[first].joined.contains(connection_); })) {
      return problem("no \"joined\" for a live join");
    }
    for (std::size_t i = transport_ == transport::ws_topic ? 1 : 0; i < topics_.size(); ++i) {
      std::optional<std::uint64_t>& from = views_[topics_[i]].cursor[connection_];
      if (i > 0 && !from) from = h_.broker.last_sequence(topics_[i]);
      nlohmann::json join{{"op", "join"}, {"topic", topics_[i]}};
      if (from) join["from"] = *from;
      ws_->send(client_text_frame(join.dump()));
      if (i == 0 && !from && !read_until([&] { return views_[topics_[0]].joined.contains(connection_); })) {
        return problem("no \"joined\" for a live join");
      }
    }
    return true;
  }

  // Reads until `done()` holds; false when the connection ended (or a read timed out) first.
  bool read_until(const std::function<bool()>& done) {
    if (sse_) {
      // A stream that ended (its last chunk) leaves the connection open for the next request: stop there.
      sse_->read_until([&] {
        take_sse();
        return done() || sse_->ended;
      });
      take_sse();
      return done();
    }
    for (;;) {
      if (!parse_ws()) return false;
      if (done()) return true;
      if (ws_closed_) return false;
      std::string more = ws_->read_bytes(1);
      if (more.empty()) return false;
      ws_buffer_ += more;
    }
  }

  // True when the current connection was ended by the server (SSE: the last chunk; WebSocket: a close frame).
  // Where a new connection resumes `topic`: after the last number received, else where the last connection started
  // (its cursor, or the number its "joined" carried); live when none is known (an SSE client that got nothing).
  std::optional<std::uint64_t> resume_point(const std::string& topic) {
    const topic_view& v = views_[topic];
    if (auto last = v.last_id()) return last;
    if (auto c = v.cursor.at(connection_)) return c;
    if (v.joined.contains(connection_)) return v.joined.at(connection_);
    return std::nullopt;
  }

  bool ended_by_server() const { return sse_ ? sse_->ended : ws_closed_; }
  std::optional<ws::close_code> close_code() const { return close_code_; }

  void disconnect() {
    sse_.reset();
    ws_.reset();
  }

 private:
  bool problem(std::string what) {
    problems_.push_back(std::move(what));
    return false;
  }

  void take_sse() {
    for (; sse_taken_ < sse_->events.size(); ++sse_taken_) {
      const sse::message& m = sse_->events[sse_taken_];
      seen e;
      e.connection = connection_;
      if (m.type == h_.hub.options().gap_event) {
        const auto j = nlohmann::json::parse(m.data, nullptr, false);
        if (!j.is_object() || j.value("topic", "") != topics_.front()) {
          problems_.push_back("bad SSE gap: " + m.data);
          continue;
        }
        e.gap = true;
        e.first = j["first"].get<std::uint64_t>();
        e.last = j["last"].get<std::uint64_t>();
        e.reason = j["reason"].get<std::string>();
        if (m.last_event_id != std::to_string(e.last)) problems_.push_back("SSE gap id is not its last: " + m.data);
      } else {
        e.seq = std::stoull(m.last_event_id);
        e.data = m.data;
      }
      views_[topics_.front()].events.push_back(std::move(e));
    }
  }

  // Parses the buffered frames; false on a protocol error.
  bool parse_ws() {
    std::size_t pos = 0;
    bool ok = true;
    while (!ws_closed_) {
      const ws::parse_result r = ws_parser_->parse(std::span<char>(ws_buffer_.data() + pos, ws_buffer_.size() - pos));
      pos += r.consumed;
      if (r.event == ws::parse_event::need_more) break;
      if (r.event == ws::parse_event::error) {
        ok = problem("WebSocket protocol error: " + r.error.message());
        break;
      }
      if (r.event == ws::parse_event::close) {
        ws_closed_ = true;
        close_code_ = r.code;
        break;
      }
      if (r.event != ws::parse_event::data) continue;  // pings (every 30 s): not in a test this short
      ws_text_.append(r.payload);
      if (!r.message_end) continue;
      take_ws(nlohmann::json::parse(ws_text_, nullptr, false));
      ws_text_.clear();
    }
    ws_buffer_.erase(0, pos);
    return ok;
  }

  void take_ws(const nlohmann::json& j) {
    if (!j.is_object()) return void(problems_.push_back("WebSocket message that is not JSON"));
    const std::string topic = j.value("topic", "");
    if (std::find(topics_.begin(), topics_.end(), topic) == topics_.end()) {
      return void(problems_.push_back("WebSocket message of a topic not joined: " + j.dump()));
    }
    topic_view& v = views_[topic];
    if (j.contains("op")) {
      if (j["op"] != "joined") return void(problems_.push_back("unexpected control message: " + j.dump()));
      if (v.joined.contains(connection_)) return void(problems_.push_back("joined twice: " + j.dump()));
      // Nothing of the topic comes before it on this connection, gaps included (push/outbox.hpp holds a gap back
      // while its topic's "joined" is queued).
      const auto here = [&](const seen& e) { return e.connection == connection_; };
      if (std::any_of(v.events.begin(), v.events.end(), here)) {
        problems_.push_back("\"joined\" after messages of its topic: " + j.dump());
      }
      v.joined[connection_] = j["seq"].get<std::uint64_t>();
      return;
    }
    seen e;
    e.connection = connection_;
    if (j.contains("gap")) {
      e.gap = true;
      e.first = j["gap"]["first"].get<std::uint64_t>();
      e.last = j["gap"]["last"].get<std::uint64_t>();
      e.reason = j["gap"]["reason"].get<std::string>();
    } else {
      e.seq = j["seq"].get<std::uint64_t>();
      e.data = j["data"].get<std::string>();
    }
    v.events.push_back(std::move(e));
  }

  logged_hub& h_;
  transport transport_;
  std::vector<std::string> topics_;
  int rcvbuf_;
  std::size_t connection_ = 0;
  std::map<std::string, topic_view> views_;
  std::vector<std::string> problems_;

  std::unique_ptr<test::event_stream_client> sse_;
  std::size_t sse_taken_ = 0;
  std::unique_ptr<test::raw_client> ws_;
  std::optional<ws::frame_parser> ws_parser_;
  std::string ws_buffer_;
  std::string ws_text_;
  bool ws_closed_ = false;
  std::optional<ws::close_code> close_code_;
};

// What a check found wrong, with the events of the topic around it.
struct verdict {
  std::vector<std::string> errors;
  void fail(std::string what) { errors.push_back(std::move(what)); }
};

// Checks one topic as one client saw it (see the file comment).
verdict check_topic(const topic_view& v, const std::map<std::uint64_t, publish_log::entry>& published,
                    overflow_policy policy, std::uint64_t last_published) {
  verdict out;
  // The first number the client is owed: after its first connection's cursor, or after "joined", or (SSE, live)
  // from the first thing it received.
  std::optional<std::uint64_t> owed;
  if (const auto c = v.cursor.at(1)) owed = *c + 1;
  else if (v.joined.contains(1)) owed = v.joined.at(1) + 1;
  else if (!v.events.empty()) owed = v.events.front().gap ? v.events.front().first : v.events.front().seq;
  if (!owed || v.events.empty()) {
    // A live join handled after the last publish is owed nothing.
    if (!owed || *owed <= last_published) out.fail("nothing received");
    return out;
  }
  const std::uint64_t start = *owed;

  // Received at most once, each one published with that data.
  std::map<std::uint64_t, std::size_t> received;  // seq -> index in events
  std::size_t overflow_gaps = 0;
  for (std::size_t i = 0; i < v.events.size(); ++i) {
    const seen& e = v.events[i];
    if (e.gap) {
      if (e.first > e.last) out.fail("gap with first > last: " + e.describe());
      if (e.reason == "overflow") ++overflow_gaps;
      else if (e.reason != "retention") out.fail("gap with an unknown reason: " + e.describe());
      if (e.reason == "overflow" && policy == overflow_policy::disconnect) {
        out.fail("overflow gap under disconnect: " + e.describe());
      }
      continue;
    }
    if (!received.emplace(e.seq, i).second) out.fail("received twice: " + e.describe());
    const auto p = published.find(e.seq);
    if (p == published.end()) out.fail("never published: " + e.describe());
    else if (p->second.payload != e.data) out.fail("data differs from what was published: " + e.describe());
    if (e.seq < start) out.fail("older than the client's start " + std::to_string(start) + ": " + e.describe());
  }
  // A run widened past the cap may cover delivered messages (outbox.hpp: it errs on reporting more).
  const bool widening = overflow_gaps >= push::outbox::max_runs_per_topic;

  // Gaps: disjoint, never covering a received message (unless widened); retention gaps only where documented.
  std::map<std::uint64_t, std::uint64_t> covered;  // first -> last
  for (std::size_t i = 0; i < v.events.size(); ++i) {
    const seen& e = v.events[i];
    if (!e.gap) continue;
    auto next = covered.lower_bound(e.first);
    if ((next != covered.end() && next->first <= e.last) ||
        (next != covered.begin() && std::prev(next)->second >= e.first)) {
      out.fail("gap overlaps another: " + e.describe());
    }
    covered.emplace(e.first, e.last);
    if (!widening) {
      const auto r = received.lower_bound(e.first);
      if (r != received.end() && r->first <= e.last) {
        out.fail("gap covers a message received (" + std::to_string(r->first) + "): " + e.describe());
      }
    }
    // Retention gaps only for a connection that resumed from a cursor (at its start, or where retention evicted
    // messages while the replay was reading them: documented in docs/push.md).
    if (e.reason == "retention" && !v.cursor.at(e.connection)) {
      out.fail("retention gap on a live connection: " + e.describe());
    }
  }
  auto in_gap = [&covered](std::uint64_t seq) {
    auto it = covered.upper_bound(seq);
    return it != covered.begin() && std::prev(it)->second >= seq;
  };

  // Every number owed: received, or covered by a gap, or (conflate) superseded by a later one with its key that was
  // received.
  for (std::uint64_t seq = start; seq <= last_published; ++seq) {
    if (received.contains(seq) || in_gap(seq)) continue;
    bool superseded = false;
    if (policy == overflow_policy::conflate) {
      const auto p = published.find(seq);
      if (p != published.end() && !p->second.key.empty()) {
        for (auto later = published.upper_bound(seq); later != published.end() && !superseded; ++later) {
          // Documented (docs/push.md, pubsub/subscription.hpp): a replaced message is superseded, never reported,
          // even when its replacement is dropped later: then the replacement's gap stands for the key's state.
          superseded = later->second.key == p->second.key && (received.contains(later->first) || in_gap(later->first));
        }
      }
    }
    if (!superseded) out.fail("lost without a gap: " + std::to_string(seq));
  }
  for (const auto& g : covered) {
    if (g.first < start || g.second > last_published) {
      out.fail("gap outside what the client is owed: " + std::to_string(g.first) + "-" + std::to_string(g.second));
    }
  }

  // In place: messages and gaps run on without hole, overlap or going back; under conflate without going back (its
  // holes are the superseded numbers, checked above). A widened run may come after messages it covers.
  if (!widening) {
    const bool conflating = policy == overflow_policy::conflate;
    std::uint64_t next = start;
    for (const seen& e : v.events) {
      const std::uint64_t first = e.gap ? e.first : e.seq;
      if (conflating ? first < next : first != next) {
        out.fail("out of place: expected " + std::string(conflating ? "at least " : "") + std::to_string(next) +
                 ", got " + e.describe());
        break;
      }
      next = (e.gap ? e.last : e.seq) + 1;
    }
  }
  return out;
}

std::string history(const topic_view& v) {
  std::string out;
  std::size_t shown = 0;
  for (const seen& e : v.events) {
    if (++shown > 400) {
      out += " ...";
      break;
    }
    out += " [" + e.describe() + "]";
  }
  return out;
}

}  // namespace

TEST_CASE("push hub: random clients under backpressure get every message once or a gap in its place",
          "[push][hub][backpressure]") {
  const std::vector<overflow_policy> policies{overflow_policy::drop_oldest, overflow_policy::drop_newest,
                                              overflow_policy::conflate, overflow_policy::disconnect};
  std::map<std::string, std::size_t> exercised;  // what the seeds did, for the report at the end
  for (unsigned seed = 1; seed <= 150; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&rng](std::size_t lo, std::size_t hi) {
      return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
    };

    const overflow_policy policy = policies[pick(0, policies.size() - 1)];
    push::hub_options options;
    options.client_queue = {.max_messages = pick(1, 12), .max_bytes = pick(200, 6000), .policy = policy};
    if (policy == overflow_policy::disconnect) {
      // Room for a "joined" per topic (a client joins up to 3) and a message besides: else a client that resumes with
      // a backlog gets acknowledgements only, its connection is cut each time, and it never catches up.
      options.client_queue.max_messages = std::max<std::size_t>(options.client_queue.max_messages, 4);
      options.client_queue.max_bytes = std::max<std::size_t>(options.client_queue.max_bytes, 4 * 2000);
    }
    options.socket_queue = {.max_messages = pick(1, 4), .max_bytes = pick(512, 8192), .policy = overflow_policy::wait};
    // Retention: enough for every resume, or (not under disconnect, whose clients must resume) so little that old
    // cursors meet retention gaps.
    const bool small_retention = policy != overflow_policy::disconnect && pick(0, 3) == 0;
    const std::size_t retain = small_retention ? pick(5, 40) : 100'000;
    const std::size_t threads = pick(1, 2);
    const std::size_t topic_count = pick(1, 3);
    std::vector<std::string> topics;
    for (std::size_t i = 0; i < topic_count; ++i) topics.push_back("t" + std::to_string(i));
    const std::size_t keys = pick(1, 4);  // conflation keys, shared by the topics (as "AAPL" in two rooms)
    const std::size_t max_size = pick(0, 1) == 0 ? 64 : 1500;

    std::ostringstream about;
    about << "seed " << seed << ": policy " << to_string(policy) << ", client queue "
          << options.client_queue.max_messages << " messages / " << options.client_queue.max_bytes
          << " bytes, socket queue "
          << options.socket_queue.max_messages << ", retain " << retain << ", threads " << threads << ", topics "
          << topic_count << ", keys " << keys << ", sizes up to " << max_size;
    logged_hub h(options, retain, threads);
    std::set<std::string> seed_did;

    std::atomic<std::uint64_t> counter{0};
    auto publish_one = [&h, &topics, keys, max_size, policy, &counter](std::mt19937& r) {
      const std::string& topic = topics[r() % topics.size()];
      std::string key;
      if (policy == overflow_policy::conflate && r() % 5 != 0) key = "k" + std::to_string(r() % keys);
      std::string payload = topic + "/" + std::to_string(counter++) + "/" + key + "/";
      payload.append(1 + r() % max_size, static_cast<char>('a' + r() % 26));
      return h.publish(topic, std::move(payload), key) != 0;
    };
    auto publish_many = [&publish_one](std::size_t n, unsigned thread_seed) {
      std::mt19937 r(thread_seed);
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok = publish_one(r) && ok;
      return ok;
    };

    // Some history, for cursors to resume from.
    REQUIRE(publish_many(pick(0, 60), static_cast<unsigned>(rng())));

    // The clients: each over one transport, with its topics and a cursor per topic (or live).
    std::vector<std::unique_ptr<model_client>> clients;
    const std::size_t client_count = pick(1, 2);
    for (std::size_t i = 0; i < client_count; ++i) {
      const transport t = static_cast<transport>(pick(0, 2));
      std::vector<std::string> mine = topics;
      std::shuffle(mine.begin(), mine.end(), rng);
      mine.resize(t == transport::sse ? 1 : pick(1, topics.size()));
      // A receive buffer set (which stops the kernel growing it) a little over twice the loopback MSS (64 KiB): below
      // that, the receiver's silly-window avoidance keeps its window shut and the server's data only moves with
      // zero-window probes, seconds apart.
      auto c = std::make_unique<model_client>(h, t, mine, static_cast<int>(pick(135'000, 150'000)));
      std::map<std::string, std::optional<std::uint64_t>> cursors;
      for (const std::string& topic : mine) {
        if (pick(0, 2) != 0) cursors[topic] = pick(0, h.broker.last_sequence(topic));
      }
      about << "\n  client " << i << ": " << name_of(t) << ",";
      for (const std::string& topic : mine) {
        about << " " << topic << (cursors[topic] ? " from " + std::to_string(*cursors[topic]) : " live");
      }
      INFO(about.str());
      REQUIRE(c->connect(cursors));
      clients.push_back(std::move(c));
    }
    INFO(about.str());

    // The clients read nothing while bursts are published: from this thread, another, or both at once.
    const std::size_t burst = pick(20, 300);
    const std::size_t mode = pick(0, 2);
    bool published = true;
    {
      std::thread other;
      std::atomic<bool> other_ok{true};
      if (mode != 0) {
        const std::size_t n = mode == 1 ? burst : burst / 2;
        other = std::thread([&, n, s = static_cast<unsigned>(rng())] { other_ok = publish_many(n, s); });
      }
      if (mode != 1) published = publish_many(mode == 0 ? burst : burst - burst / 2, static_cast<unsigned>(rng()));
      if (other.joinable()) other.join();
      published = published && other_ok;
    }
    REQUIRE(published);

    // Then they read everything, while another thread may publish more, then a last message per topic (no key, so
    // that it is never superseded).
    std::mutex ends_mutex;
    std::map<std::string, std::uint64_t> ends;  // the last message of each topic, set just before it is published
    std::atomic<bool> late_ok{true};
    std::thread late([&, n = pick(0, 1) == 0 ? 0 : pick(1, 200), s = static_cast<unsigned>(rng())] {
      late_ok = publish_many(n, s);
      // The last numbers are known before the last messages are published (this thread is the only publisher now):
      // set after, a client could read its last message first, find no end to compare with, and wait for more.
      std::map<std::string, std::uint64_t> last;
      for (const std::string& t : topics) last[t] = h.broker.last_sequence(t) + 1;
      {
        std::lock_guard lock(ends_mutex);
        ends = last;
      }
      for (const std::string& t : topics) {
        if (h.publish(t, "end of " + t, "") != last[t]) late_ok = false;
      }
    });
    struct joiner {
      std::thread& t;
      ~joiner() {
        if (t.joinable()) t.join();
      }
    } join_late{late};

    for (std::size_t i = 0; i < clients.size(); ++i) {
      model_client& c = *clients[i];
      INFO("client " << i);
      auto caught_up = [&] {
        std::lock_guard lock(ends_mutex);
        if (ends.empty()) return false;
        for (const std::string& t : c.topics()) {
          if (c.views()[t].highest() < ends.at(t)) return false;
        }
        return true;
      };
      std::size_t reconnects = 0;
      auto received = [&c] {
        std::size_t n = 0;
        for (const std::string& t : c.topics()) n += c.views()[t].events.size();
        return n;
      };
      std::size_t before = received();
      while (!c.read_until(caught_up)) {
        // Only `disconnect` ends a connection; the client resumes from the last number it received.
        if (!c.ended_by_server()) {
          for (const std::string& t : c.topics()) {
            UNSCOPED_INFO(t << ": up to " << c.views()[t].highest() << ":" << history(c.views()[t]));
          }
        }
        REQUIRE(c.ended_by_server());
        REQUIRE(policy == overflow_policy::disconnect);
        if (c.kind() != transport::sse) CHECK(c.close_code() == ws::close_code::policy_violation);
        // Each connection gives the client something, else it could never catch up ("nothing is lost if the topic
        // still retains what it missed").
        INFO("connection " << c.connections() << " received " << received() - before);
        REQUIRE(received() > before);
        before = received();
        REQUIRE(++reconnects < 5000);
        std::map<std::string, std::optional<std::uint64_t>> cursors;
        for (const std::string& t : c.topics()) cursors[t] = c.resume_point(t);
        REQUIRE(c.connect(cursors));
      }
      if (reconnects > 0) seed_did.insert("disconnect and resume");
    }
    if (late.joinable()) late.join();
    REQUIRE(late_ok);

    for (std::size_t i = 0; i < clients.size(); ++i) {
      model_client& c = *clients[i];
      INFO("client " << i);
      for (const std::string& p : c.problems()) FAIL_CHECK(p);
      for (const std::string& t : c.topics()) {
        std::map<std::uint64_t, publish_log::entry> published_to;
        {
          std::lock_guard lock(h.log.mutex);
          published_to = h.log.topics[t];
        }
        const topic_view& v = c.views()[t];
        const verdict r = check_topic(v, published_to, policy, ends.at(t));
        for (const seen& e : v.events) {
          if (e.gap) seed_did.insert(e.reason == "overflow" ? "overflow gaps" : "retention gaps");
        }
        if (!r.errors.empty()) {
          INFO("topic " << t << ":" << history(v));
          for (const std::string& e : r.errors) FAIL_CHECK(e);
        }
      }
    }

    for (const std::string& what : seed_did) ++exercised[what];

    // Nothing left behind once the clients have gone.
    clients.clear();
    asio::io_context idle;  // polls the hub's counters (thread-safe), on this thread; the server runs on its own
    CHECK(test::run_until(idle, [&] { return h.hub.stats().clients == 0 && h.hub.stats().feeds == 0; }));
    CHECK(test::run_until(idle, [&] { return h.broker.stats().subscriptions == 0; }));
    for (const std::string& t : topics) {
      const auto s = h.broker.stats(t);
      REQUIRE(s);
      CHECK(s->dropped == 0);  // the feeds never fell behind: every gap came from a client queue
    }
  }
  // Not timing assertions: with queues this small, most seeds overflow whatever the scheduling.
  for (const auto& e : exercised) UNSCOPED_INFO(e.first << ": " << e.second << " seeds");
  CHECK(exercised["overflow gaps"] > 0);
  CHECK(exercised["disconnect and resume"] > 0);
}
