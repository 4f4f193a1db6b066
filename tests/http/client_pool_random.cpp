// The HTTP client's connection pool and request lifecycle against a model, under a random schedule: many concurrent
// requests (GET, HEAD, DELETE, PUT and POST with small and large bodies) to one or two origins of a scripted server,
// with small pool limits, total timeouts, cancellations and retries, some made by the completion handlers of others.
// The server does something chosen at random with each request that reaches it (answers at once or when the schedule
// says, keeps the connection or closes it, closes without answering, cuts the response short, answers before it has
// read the body, sends 1xx responses first or stray bytes after, writes in slow pieces) and records it. Checked:
// each request completes once, with the outcome the server's record calls for; a request that is not idempotent is
// never sent whole twice, and idempotent ones are retried up to max_retries; the pool's bounds hold at every step;
// with one connection per origin, requests are served first come, first served; the io_context falls idle after
// every step (nothing spins). Two bugs it found are pinned down on their own at the end.
#include <switchboard/http/client.hpp>

#include "client_support.hpp"
#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::run_until;

namespace {

using steady = std::chrono::steady_clock;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

std::size_t pick(std::mt19937& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}
bool chance(std::mt19937& rng, unsigned percent) { return pick(rng, 0, 99) < percent; }

// ---- What the server does with one arrival of a request ----

enum class reply {
  full,            // a whole response
  early,           // a whole response right after the request's header, before its body is read (RFC 9112 §9.5)
  close_silently,  // reads the request, then closes without answering
  cut_in_header,   // the response's header, cut short by the end of the connection
  cut_in_body,     // the whole header and part of the body, then the end of the connection
  close_mid_body,  // reads part of a large request body, then closes
};
enum class after_early {
  drain,  // reads the rest of the body and keeps the connection
  close,  // closes at once, the body unread (which resets the connection)
  park,   // keeps the connection open but reads no more of it ("Connection: close" told the client)
};
enum class framing { length, chunked, until_close };

struct plan {
  bool held = false;  // waits until the schedule releases it
  reply kind = reply::full;
  after_early early = after_early::drain;
  framing frame = framing::length;  // how the end of the body is marked (a HEAD request gets no body either way)
  unsigned status = 200;
  bool close = false;     // "Connection: close", and the server closes after the response
  bool interim = false;   // one or two 1xx interim responses first
  bool trailing = false;  // bytes after the response, which answer nothing: the connection must not be used again
  bool slow = false;      // written in pieces, the io_context running between them
  std::size_t body_size = 0;
  unsigned piece_seed = 0;  // for the sizes of the pieces and chunks

  std::string describe() const {
    static constexpr const char* kinds[] = {"full", "early", "close-silently", "cut-in-header", "cut-in-body",
                                            "close-mid-body"};
    static constexpr const char* afters[] = {"drain", "close", "park"};
    static constexpr const char* frames[] = {"length", "chunked", "until-close"};
    std::ostringstream s;
    s << (held ? "held " : "") << kinds[static_cast<int>(kind)];
    if (kind == reply::early) s << "/" << afters[static_cast<int>(early)];
    s << " " << status << " " << frames[static_cast<int>(frame)] << " body " << body_size << (close ? " close" : "")
      << (interim ? " 1xx" : "") << (trailing ? " trailing" : "") << (slow ? " slow" : "");
    return s.str();
  }
};

// The plan for arrival `number` (from 1) of request `id`: a function of the seed, not of the order things happen in,
// so that a seed replays the same server.
plan plan_for(unsigned seed, int id, std::size_t number, bool head, std::size_t request_body) {
  std::mt19937 rng(seed * 1'000'003u + static_cast<unsigned>(id) * 7919u + static_cast<unsigned>(number));
  plan p;
  p.piece_seed = static_cast<unsigned>(rng());
  p.held = chance(rng, 35);
  const std::size_t r = pick(rng, 0, 99);
  if (request_body > 0 && r < 14) p.kind = reply::early;
  else if (r < 24) p.kind = reply::close_silently;
  else if (r < 30) p.kind = reply::cut_in_header;
  else if (r < 37) p.kind = head ? reply::cut_in_header : reply::cut_in_body;
  else if (request_body >= 256 * 1024 && r < 47) p.kind = reply::close_mid_body;
  const std::size_t f = pick(rng, 0, 9);
  p.frame = f < 5 ? framing::length : f < 8 ? framing::chunked : framing::until_close;
  p.body_size = chance(rng, 8) ? pick(rng, 100'000, 300'000) : pick(rng, 0, 2000);
  const std::size_t s = pick(rng, 0, 9);
  p.status = s == 0 ? 204 : s == 1 ? 304 : s == 2 ? 404 : s == 3 ? 500 : 200;
  p.close = p.frame == framing::until_close || chance(rng, 15);
  p.interim = chance(rng, 15);
  p.slow = chance(rng, 25);
  switch (p.kind) {
    case reply::early:
      p.status = s < 4 ? 413 : s < 6 ? 401 : 200;
      if (p.frame == framing::until_close) p.frame = framing::length;
      p.early = s % 3 == 0 ? after_early::drain : s % 3 == 1 ? after_early::close : after_early::park;
      p.close = p.early != after_early::drain;
      // A server that closes with the request body unread resets the connection, and what it had written and the
      // client's socket had no room for yet is lost (why servers close lingering, RFC 9112 §9.6): keep that
      // answer small enough to arrive whole.
      if (p.early == after_early::close) p.body_size = std::min<std::size_t>(p.body_size, 2000);
      break;
    case reply::cut_in_body:
      p.status = 200;
      if (p.frame == framing::until_close) p.frame = framing::chunked;
      p.close = false;
      p.body_size = std::max<std::size_t>(p.body_size, 16);
      break;
    case reply::full:
      p.trailing = !p.close && chance(rng, 8);
      if (p.trailing) {
        // In the same write as the end of the response, so that they are with the client before it can use the
        // connection again. Stray bytes that come after it has sent its next request cannot be told from the
        // response to that (HTTP/1.1 has nothing to tell them apart by).
        p.slow = false;
        p.body_size = std::min<std::size_t>(p.body_size, 4000);
      }
      break;
    default:
      break;
  }
  return p;
}

// Bodies that name their request (and arrival): one delivered to the wrong request does not match.
std::string request_body(int id, std::size_t size) {
  std::string b(size, '\0');
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<char>('A' + (static_cast<std::size_t>(id) + i) % 26);
  return b;
}
std::string reply_body(int id, std::size_t number, std::size_t size) {
  std::string b = std::to_string(id) + "." + std::to_string(number) + ":";
  for (std::size_t i = 0; i < size; ++i) b += static_cast<char>('a' + (static_cast<std::size_t>(id) + number + i) % 26);
  return b;
}
bool bodiless(unsigned status) { return status == 204 || status == 304; }

// A response as the server writes it, with the offsets the cut replies cut at.
struct reply_bytes {
  std::string bytes;
  std::size_t head_begin = 0;  // the final response's header
  std::size_t body_begin = 0;  // its body
  std::size_t body_end = 0;    // the end of its body (stray bytes may follow)
};

reply_bytes build_reply(const plan& p, int id, std::size_t number, bool head_request) {
  std::mt19937 rng(p.piece_seed);
  reply_bytes r;
  if (p.interim) {
    const auto kinds = rng() % 3;
    if (kinds != 1) r.bytes += "HTTP/1.1 100 Continue\r\n\r\n";
    if (kinds != 0) r.bytes += "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n";
  }
  r.head_begin = r.bytes.size();
  r.bytes += "HTTP/1.1 " + std::to_string(p.status) + " Whatever\r\nX-Request: " + std::to_string(id) + "." +
             std::to_string(number) + "\r\n";
  const std::string body = bodiless(p.status) ? std::string() : reply_body(id, number, p.body_size);
  if (p.status == 304 && p.frame == framing::length) {
    // The length of the body a 200 would have had (RFC 9110 §8.6): a 304 has none all the same.
    r.bytes += "Content-Length: " + std::to_string(p.body_size) + "\r\n";
  }
  if (!bodiless(p.status)) {
    if (p.frame == framing::length) r.bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (p.frame == framing::chunked) r.bytes += "Transfer-Encoding: chunked\r\n";
  }
  if (p.close) r.bytes += "Connection: close\r\n";
  r.bytes += "\r\n";
  r.body_begin = r.bytes.size();
  if (!bodiless(p.status) && !head_request) {
    r.bytes += p.frame == framing::chunked ? test::chunked_body(body, rng, ";x=1") : body;
  }
  r.body_end = r.bytes.size();
  if (p.trailing) r.bytes += "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale";
  return r;
}

// One time a request reached the server (its header was read), what the server planned for it and what it did.
struct arrival {
  explicit arrival(const asio::any_io_executor& ex) : release(ex, steady::time_point::max()) {}
  int request = 0;
  std::size_t number = 0;  // 1 for the first time this request arrived, 2 for its first retry, ...
  std::size_t seq = 0;     // order of arrival at the server, over all requests
  steady::time_point at;   // when
  plan p;
  bool whole = false;     // the server read the whole request, body included
  bool holding = false;   // waiting for the schedule to release it
  bool answered = false;  // the last byte of a whole response went out
  asio::steady_timer release;  // cancelled to release a held arrival
};

struct server_connection {
  explicit server_connection(asio::ip::tcp::socket s) : socket(std::move(s)) {}
  asio::ip::tcp::socket socket;
  std::string buffer;     // received, not yet consumed
  bool idle = false;      // between requests, with nothing of the next one received
  bool parked = false;    // answered early and reads no more
  const arrival* tainted = nullptr;  // the arrival whose response stray bytes followed: no request may come after it
  bool ended = false;     // the server is done with it
};

struct request_record {
  int id = 0;
  std::size_t origin = 0;
  method m = method::get;
  std::size_t body_size = 0;
  bool probe = false;        // sent after the random schedule, to check the pool
  bool follow_up = false;    // its completion handler sends a request to the same origin
  std::size_t step = 0;      // the step of the schedule it was made in
  bool from_handler = false;  // made by a completion handler, which runs the request's first steps at once
  bool cancellable = false;  // bound to `signal`
  bool cancel_emitted = false;
  steady::time_point initiated;
  std::unique_ptr<asio::cancellation_signal> signal;
  test::client_result result;
  steady::time_point completed;
  std::size_t arrivals_at_completion = 0;
  std::vector<arrival*> arrivals;

  bool idempotent() const { return is_idempotent(m); }
};

struct seed_config {
  std::size_t origins = 1;
  client_options options;
};

// One seed's run: the servers, the client and the records, all on one io_context.
class pool_model {
 public:
  pool_model(asio::io_context& ctx, unsigned seed, seed_config config)
      : ctx_(ctx), seed_(seed), rng_(seed), config_(std::move(config)) {
    for (std::size_t o = 0; o < config_.origins; ++o) {
      acceptors_.emplace_back(ctx_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      connections_.emplace_back();
      origin_names_.push_back("http://127.0.0.1:" + std::to_string(acceptors_.back().local_endpoint().port()));
    }
    for (std::size_t o = 0; o < config_.origins; ++o) spawn(accept_loop(o));
    client_ = std::make_unique<client>(ctx_.get_executor(), config_.options);
  }

  const client_options& options() const { return config_.options; }
  std::size_t started() const { return requests_.size(); }
  const std::vector<std::string>& failures() const { return failures_; }
  void next_step() { ++step_; }

  // ---- The schedule's steps ----

  // How many requests the run makes, those that completion handlers make included (as a client does that sends its
  // next request when one completes: such a request runs its first steps at once, before whatever is queued).
  void set_target(std::size_t requests) { target_ = requests; }

  void start_request(std::optional<std::size_t> origin = {}, bool probe = false) {
    requests_.emplace_back();
    request_record& r = requests_.back();
    r.id = static_cast<int>(requests_.size() - 1);
    r.probe = probe;
    r.origin = origin ? *origin : pick(rng_, 0, config_.origins - 1);
    const std::size_t m = pick(rng_, 0, 99);
    r.m = probe || m < 30 ? method::get : m < 40 ? method::head : m < 48 ? method::delete_ : m < 63 ? method::put : method::post;
    if (r.m == method::put || r.m == method::post) {
      const std::size_t size = pick(rng_, 0, 9);
      r.body_size = size == 0 ? 0 : size < 8 ? pick(rng_, 1, 2000) : pick(rng_, 256 * 1024, 1536 * 1024);
    }
    r.cancellable = !probe && chance(rng_, 30);
    r.initiated = steady::now();
    r.step = step_;
    r.from_handler = in_handler_;
    r.signal = std::make_unique<asio::cancellation_signal>();
    const int id = r.id;
    auto done = [this, id, fill = test::capture(r.result)](std::error_code ec, client_response resp) mutable {
      fill(ec, std::move(resp));
      completed(requests_[static_cast<std::size_t>(id)]);
    };
    client_request req{.method = r.m, .body = request_body(id, r.body_size)};
    const std::string url = origin_names_[r.origin] + "/r/" + std::to_string(id);
    if (r.cancellable) client_->async_request(url, std::move(req), asio::bind_cancellation_slot(r.signal->slot(), std::move(done)));
    else client_->async_request(url, std::move(req), std::move(done));
  }

  // Releases a random held arrival; false when none is held.
  bool release_one() {
    std::vector<arrival*> held;
    for (auto& a : arrivals_) {
      if (a.holding) held.push_back(&a);
    }
    if (held.empty()) return false;
    release(*held[pick(rng_, 0, held.size() - 1)]);
    return true;
  }
  void release_all() {
    for (auto& a : arrivals_) {
      if (a.holding) release(a);
    }
  }
  static void release(arrival& a) {
    a.holding = false;
    a.release.cancel();
  }
  bool holding_any() const {
    return std::any_of(arrivals_.begin(), arrivals_.end(), [](const arrival& a) { return a.holding; });
  }

  // Cancels a random request that can be (it may have completed already: then nothing happens).
  void cancel_one() {
    std::vector<request_record*> candidates;
    for (auto& r : requests_) {
      if (r.cancellable && !r.cancel_emitted) candidates.push_back(&r);
    }
    if (candidates.empty()) return;
    request_record& r = *candidates[pick(rng_, 0, candidates.size() - 1)];
    if (!r.result.done) r.cancel_emitted = true;
    r.signal->emit(asio::cancellation_type::terminal);
  }

  // The server closes a random connection that is between requests, as an idle timeout does. The client, which
  // may hold it in its pool, must notice before it sends on it.
  void close_idle_one() {
    std::vector<server_connection*> idle;
    for (auto& per_origin : connections_) {
      for (auto& c : per_origin) {
        std::error_code ec;
        if (c->idle && !c->ended && c->buffer.empty() && c->socket.available(ec) == 0 && !ec) idle.push_back(c.get());
      }
    }
    if (idle.empty()) return;
    close(*idle[pick(rng_, 0, idle.size() - 1)]);
  }

  // Lets time pass until something happens (a completion, an arrival) or a while: deadlines expire meanwhile.
  void wait_for_something() {
    const std::size_t before = completions_ + arrivals_.size();
    run_until(ctx_, [&] {
      check_limits();
      return completions_ + arrivals_.size() != before;
    }, 60ms);
  }

  // The io_context's thread is busy while a request's deadline passes: the server answers a held request and the
  // client runs only after the request's deadline, so that the answer and the deadline are there at once. The
  // request's completion handler sends another request, as a client may do.
  void answer_past_deadline() {
    if (options().total_timeout.count() == 0 || options().total_timeout > 100ms) return;  // waits that long
    std::vector<arrival*> candidates;
    for (auto& a : arrivals_) {
      const request_record& r = requests_[static_cast<std::size_t>(a.request)];
      if (a.holding && a.p.kind == reply::full && !a.p.slow && a.p.body_size < 4000 && !r.result.done) candidates.push_back(&a);
    }
    if (candidates.empty()) return;
    arrival& a = *candidates[pick(rng_, 0, candidates.size() - 1)];
    request_record& r = requests_[static_cast<std::size_t>(a.request)];
    r.follow_up = true;
    release(a);
    // The server's coroutine resumes and writes its answer in one handler, and the client has not run since.
    REQUIRE(run_until(ctx_, [&] { return a.answered; }));
    // The request began before it first reached the server: its deadline is before then plus the total timeout. Time
    // passes on another io_context, as if this one's thread were busy.
    asio::io_context elsewhere;
    asio::steady_timer busy(elsewhere, r.arrivals.front()->at + options().total_timeout + 1ms);
    bool passed = false;
    busy.async_wait([&](std::error_code) { passed = true; });
    REQUIRE(run_until(elsewhere, [&] { return passed; }));
  }

  // Runs the io_context until nothing is ready to run: whatever is waiting then waits on the server, a timer or the
  // pool's line, without spinning (which would keep handlers ready until the deadline). As
  // run_until(ctx, [&] { return poll(ctx) == 0; }), without its pause between two polls.
  bool settle() {
    const auto deadline = steady::now() + 10s;
    for (;;) {
      check_limits();
      if (switchboard::test::poll(ctx_) == 0) return true;
      if (steady::now() >= deadline) return false;
    }
  }

  bool all_done() const {
    return std::all_of(requests_.begin(), requests_.end(), [](const request_record& r) { return r.result.done; });
  }

  // The pool's bounds hold at every step: no more connections than the limit, and with no request in flight, only
  // the idle ones the pool may keep.
  void check_limits() {
    if (!client_) return;
    const bool quiet = all_done();
    for (std::size_t o = 0; o < config_.origins; ++o) {
      const std::size_t open = client_->open_connections(origin_names_[o]);
      if (open > options().max_connections_per_origin) {
        fail("origin " + std::to_string(o) + ": " + std::to_string(open) + " connections open, more than the limit");
      }
      if (quiet && open > options().max_idle_per_origin) {
        fail("origin " + std::to_string(o) + ": " + std::to_string(open) + " connections open with no request in flight");
      }
    }
  }

  // ---- The end of the run ----

  // Everything held is released until every request has completed. (The server may still come upon a request that
  // was cut short after it was sent, and hold that.)
  void finish_requests() {
    target_ = 0;  // no more requests from completion handlers
    for (int round = 0;; ++round) {
      REQUIRE(settle());
      if (all_done() && !holding_any()) return;
      REQUIRE(round < 10'000);
      release_all();
      const bool progress = run_until(ctx_, [&] {
        check_limits();
        return holding_any() || all_done();
      }, 20s);
      INFO(pending());
      REQUIRE(progress);
    }
  }

  // With nothing in flight, the connections left are idle ones, no more than max_idle_per_origin, and each is a
  // socket the server still has open. A few requests first make the client look at each pooled connection, so that
  // those the server closed while they were idle are dropped.
  void check_idle_pool() {
    for (std::size_t o = 0; o < config_.origins; ++o) {
      for (std::size_t i = 0; i < options().max_idle_per_origin + 1; ++i) {
        start_request(o, true);
        finish_requests();
      }
    }
    for (std::size_t o = 0; o < config_.origins; ++o) {
      INFO("origin " << o);
      CHECK(client_->open_connections(origin_names_[o]) <= options().max_idle_per_origin);
      // The server sees the client's closes as they come (EOF).
      CHECK(run_until(ctx_, [&] { return live_connections(o) == client_->open_connections(origin_names_[o]); }));
      CHECK(live_connections(o) == client_->open_connections(origin_names_[o]));
    }
  }

  // Checks that need the whole history.
  void check_history() {
    for (const request_record& r : requests_) {
      if (r.result.calls != 1) {
        fail(describe(r) + ": completion handler called " + std::to_string(r.result.calls) + " times");
      }
      // After a request has completed, nothing more of it reaches the server, but for one attempt that was in flight
      // when a timeout or a cancellation cut it short.
      const bool cut_short = r.result.ec == switchboard::error::timeout || r.result.ec == asio::error::operation_aborted;
      if (r.arrivals.size() > r.arrivals_at_completion + (cut_short ? 1 : 0)) {
        fail(describe(r) + ": reached the server after it had completed");
      }
      if (r.idempotent()) {
        if (r.arrivals.size() > 1 + options().max_retries) fail(describe(r) + ": retried more than max_retries");
      } else {
        // Sent whole once, never again (RFC 9110 §9.2.2).
        for (std::size_t i = 0; i < r.arrivals.size(); ++i) {
          if (r.arrivals[i]->whole && i + 1 < r.arrivals.size()) fail(describe(r) + ": sent again after the server had it whole");
        }
      }
    }
    // First come, first served: with one connection per origin, requests reach the server in the order they asked
    // the pool for a connection, but for those that left the line (cancelled, timed out) and never came. Retries go
    // to the back of the line, so only first arrivals are compared. Requests ask in the order they were made, with
    // one exception: one the test made runs its first steps when the io_context runs next, and one that a completion
    // handler made in the same step may run before it (a handler made ready by another thread, the resolver's,
    // may come first).
    if (options().max_connections_per_origin == 1) {
      for (const request_record& a : requests_) {
        for (const request_record& b : requests_) {
          if (a.id >= b.id || a.origin != b.origin || a.probe || b.probe || a.arrivals.empty() || b.arrivals.empty()) continue;
          if (a.step == b.step && !a.from_handler && b.from_handler) continue;
          if (a.arrivals.front()->seq > b.arrivals.front()->seq) {
            fail("first come, first served: " + describe(b) + " reached the server before " + describe(a) +
                 ", which asked for a connection before it");
          }
        }
      }
    }
  }

  // Closes everything the server has and waits for its coroutines to end.
  void stop() {
    stopping_ = true;
    for (auto& a : acceptors_) a.close();
    for (auto& per_origin : connections_) {
      for (auto& c : per_origin) close(*c);
    }
    release_all();
    REQUIRE(run_until(ctx_, [&] { return coroutines_ == 0; }));
    client_.reset();
    REQUIRE(settle());
  }

 private:
  std::string describe(const request_record& r) const {
    std::ostringstream s;
    s << "request " << r.id << " (" << to_string(r.m) << " to origin " << r.origin << ", body " << r.body_size
      << ", made in step " << r.step << (r.from_handler ? " by a completion handler" : "")
      << (r.cancel_emitted ? ", cancelled" : "") << "; completed with "
      << (r.result.done ? (r.result.ec ? r.result.ec.message() : std::to_string(static_cast<unsigned>(r.result.response.status))) : "nothing")
      << " after " << std::chrono::duration_cast<std::chrono::milliseconds>(r.completed - r.initiated).count() << " ms; arrivals:";
    for (const arrival* a : r.arrivals) {
      s << " [#" << a->number << " seq " << a->seq << ": " << a->p.describe() << (a->whole ? ", read whole" : "")
        << (a->answered ? ", answered" : "") << "]";
    }
    s << ")";
    return s.str();
  }

  // The requests not completed and the arrivals held, for a run that is stuck.
  std::string pending() const {
    std::string out;
    for (const request_record& r : requests_) {
      if (!r.result.done || std::any_of(r.arrivals.begin(), r.arrivals.end(), [](const arrival* a) { return a->holding; })) {
        out += describe(r) + "\n";
      }
    }
    return out;
  }

  void fail(std::string what) {
    if (failures_.size() < 20) failures_.push_back(std::move(what));
  }

  // Run by a request's completion handler: checks the outcome, and sometimes makes another request.
  void completed(request_record& r) {
    ++completions_;
    r.completed = steady::now();
    r.arrivals_at_completion = r.arrivals.size();
    check_outcome(r);
    if (r.follow_up || (!r.probe && requests_.size() < target_ && chance(rng_, 30))) {
      in_handler_ = true;
      start_request(r.origin);
      in_handler_ = false;
    }
  }

  // A request's outcome against what the server did with it.
  void check_outcome(const request_record& r) {
    const std::error_code ec = r.result.ec;
    const arrival* last = r.arrivals.empty() ? nullptr : r.arrivals.back();
    const auto total = options().total_timeout;
    const bool deadline_passed = total.count() > 0 && r.completed - r.initiated >= total;
    // The client makes no retry that could only start after the deadline: the wait before the next one
    // (retry_backoff doubled per retry already made, and up to half again of jitter) may have reached it.
    const auto longest_wait =
        options().retry_backoff * (1u << std::min<std::size_t>(r.arrivals.size() - 1, 16)) * 3 / 2;
    const bool no_time_to_retry = total.count() > 0 && r.completed - r.initiated + longest_wait >= total;
    if (!ec) {
      if (!last) return fail(describe(r) + ": succeeded without reaching the server");
      const std::string expected_id = std::to_string(r.id) + "." + std::to_string(last->number);
      if (r.result.response.headers.get("x-request") != expected_id) {
        return fail(describe(r) + ": the response is not the last arrival's: " + std::string(r.result.response.headers.get("x-request")));
      }
      if (last->p.kind != reply::full && last->p.kind != reply::early) return fail(describe(r) + ": succeeded without an answer");
      if (static_cast<unsigned>(r.result.response.status) != last->p.status) return fail(describe(r) + ": wrong status");
      const bool empty = r.m == method::head || bodiless(last->p.status);
      if (r.result.response.body != (empty ? std::string() : reply_body(r.id, last->number, last->p.body_size))) {
        return fail(describe(r) + ": wrong body");
      }
    } else if (ec == asio::error::operation_aborted) {
      if (!r.cancel_emitted) fail(describe(r) + ": aborted, not cancelled");
    } else if (ec == switchboard::error::timeout) {
      if (!deadline_passed) fail(describe(r) + ": timed out before its deadline");
    } else if (ec == http::error::partial_message) {
      if (!last || last->p.kind != reply::cut_in_body) fail(describe(r) + ": partial message, but no response was cut in its body");
    } else if (ec.category() != http_category()) {
      // A connection failure: the server closed it without (a whole header of) an answer.
      if (!last || (last->p.kind != reply::close_silently && last->p.kind != reply::cut_in_header &&
                    last->p.kind != reply::close_mid_body)) {
        return fail(describe(r) + ": a connection failure the server did not cause");
      }
      // An idempotent request is retried until max_retries (or its deadline, or a cancellation, stops it).
      if (r.idempotent() && !r.cancel_emitted && !no_time_to_retry && r.arrivals.size() < 1 + options().max_retries) {
        fail(describe(r) + ": not retried max_retries times");
      }
    } else {
      fail(describe(r) + ": unexpected error");
    }
  }

  std::size_t live_connections(std::size_t origin) const {
    return static_cast<std::size_t>(std::count_if(connections_[origin].begin(), connections_[origin].end(),
                                                  [](const auto& c) { return !c->ended && !c->parked; }));
  }

  template <class Awaitable>
  void spawn(Awaitable a) {
    ++coroutines_;
    asio::co_spawn(ctx_, std::move(a), [this](std::exception_ptr e) {
      --coroutines_;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          fail(std::string("server: ") + x.what());
        }
      }
    });
  }

  asio::awaitable<void> accept_loop(std::size_t origin) {
    for (;;) {
      auto [ec, socket] = co_await acceptors_[origin].async_accept(as_tuple);
      if (ec || stopping_) co_return;
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
      auto c = std::make_shared<server_connection>(std::move(socket));
      connections_[origin].push_back(c);
      spawn(serve(c));
    }
  }

  asio::awaitable<void> hold(arrival& a) {
    if (!a.p.held || stopping_) co_return;
    a.holding = true;
    co_await a.release.async_wait(as_tuple);
  }

  // Writes `bytes`, in pieces if the plan says so; `a.answered` is set before its last piece goes out.
  asio::awaitable<bool> send(server_connection& c, std::string_view bytes, const plan& p, arrival* answered) {
    std::mt19937 rng(p.piece_seed + 1);
    std::size_t at = 0;
    while (at < bytes.size()) {
      const std::size_t n = p.slow ? std::min(bytes.size() - at, pick(rng, 1, std::max<std::size_t>(bytes.size() / 3, 1)))
                                   : bytes.size() - at;
      if (answered && at + n == bytes.size()) answered->answered = true;
      auto [ec, written] = co_await asio::async_write(c.socket, asio::buffer(bytes.substr(at, n)), as_tuple);
      if (ec) co_return false;
      at += n;
      if (p.slow && at < bytes.size()) co_await asio::post(ctx_.get_executor(), asio::use_awaitable);
    }
    co_return true;
  }

  static void close(server_connection& c) {
    std::error_code ignored;
    c.socket.close(ignored);
  }

  asio::awaitable<bool> read_body_until(server_connection& c, std::size_t size) {
    if (c.buffer.size() >= size) co_return true;
    auto [ec, n] = co_await asio::async_read(c.socket, asio::dynamic_buffer(c.buffer), asio::transfer_exactly(size - c.buffer.size()), as_tuple);
    co_return !ec;
  }

  asio::awaitable<void> serve(std::shared_ptr<server_connection> c) {
    struct on_exit {
      server_connection& c;
      ~on_exit() {
        c.ended = true;
        c.idle = false;
      }
    } mark_ended{*c};
    for (;;) {
      c->idle = c->buffer.empty();
      auto [ec, n] = co_await asio::async_read_until(c->socket, asio::dynamic_buffer(c->buffer), "\r\n\r\n", as_tuple);
      c->idle = false;
      if (ec || stopping_) co_return;
      const std::string head = c->buffer.substr(0, n);
      c->buffer.erase(0, n);
      const std::string method_name = head.substr(0, head.find(' '));
      const std::size_t at = head.find("/r/");
      if (at == std::string::npos) co_return fail("server: a request for no known target: " + head);
      const int id = std::stoi(head.substr(at + 3));
      std::size_t length = 0;
      if (const std::size_t cl = head.find("Content-Length: "); cl != std::string::npos) length = std::stoul(head.substr(cl + 16));
      request_record& r = requests_.at(static_cast<std::size_t>(id));
      if (c->tainted) {
        fail(describe(r) + ": sent on a connection that had stray bytes after the response to " +
             describe(requests_[static_cast<std::size_t>(c->tainted->request)]));
      }
      if (length != r.body_size) fail(describe(r) + ": Content-Length " + std::to_string(length));
      arrivals_.emplace_back(ctx_.get_executor());
      arrival& a = arrivals_.back();
      a.request = id;
      a.number = r.arrivals.size() + 1;
      a.seq = arrivals_.size();
      a.at = steady::now();
      const bool head_request = method_name == "HEAD";
      a.p = r.probe ? plan{.frame = framing::length, .body_size = 10} : plan_for(seed_, id, a.number, head_request, length);
      r.arrivals.push_back(&a);
      const reply_bytes out = build_reply(a.p, id, a.number, head_request);

      if (a.p.kind == reply::early) {
        co_await hold(a);
        if (!co_await send(*c, out.bytes, a.p, &a)) co_return;
        if (a.p.early == after_early::close) co_return close(*c);
        if (a.p.early == after_early::park) {
          c->parked = true;  // the socket stays open, unread, until the server stops
          co_return;
        }
        if (!co_await read_body_until(*c, length)) co_return;
        c->buffer.erase(0, length);
        continue;
      }
      if (a.p.kind == reply::close_mid_body) {
        co_await read_body_until(*c, length / 2);
        co_return close(*c);
      }
      if (!co_await read_body_until(*c, length)) co_return;
      if (c->buffer.compare(0, length, request_body(id, length)) != 0) fail(describe(r) + ": the server got another body");
      c->buffer.erase(0, length);
      a.whole = true;
      co_await hold(a);
      if (stopping_) co_return;
      switch (a.p.kind) {
        case reply::close_silently:
          co_return close(*c);
        case reply::cut_in_header: {
          std::mt19937 rng(a.p.piece_seed);
          const std::size_t cut = out.head_begin + pick(rng, 1, out.body_begin - out.head_begin - 1);
          co_await send(*c, std::string_view(out.bytes).substr(0, cut), a.p, nullptr);
          co_return close(*c);
        }
        case reply::cut_in_body: {
          std::mt19937 rng(a.p.piece_seed);
          const std::size_t cut = out.body_begin + pick(rng, 0, out.body_end - out.body_begin - 1);
          co_await send(*c, std::string_view(out.bytes).substr(0, cut), a.p, nullptr);
          co_return close(*c);
        }
        default:
          break;
      }
      if (!co_await send(*c, out.bytes, a.p, &a)) co_return;
      if (a.p.close) co_return close(*c);
      if (a.p.trailing) c->tainted = &a;
    }
  }

  asio::io_context& ctx_;
  const unsigned seed_;
  std::mt19937 rng_;
  seed_config config_;
  std::deque<asio::ip::tcp::acceptor> acceptors_;
  std::vector<std::string> origin_names_;
  std::vector<std::vector<std::shared_ptr<server_connection>>> connections_;
  std::deque<arrival> arrivals_;
  std::deque<request_record> requests_;
  std::unique_ptr<client> client_;
  std::vector<std::string> failures_;
  std::size_t completions_ = 0;
  std::size_t coroutines_ = 0;
  bool stopping_ = false;
  std::size_t target_ = 0;
  std::size_t step_ = 0;
  bool in_handler_ = false;
};

}  // namespace

TEST_CASE("client: the connection pool and request lifecycle under a random schedule, against a model",
          "[http][client]") {
  // Seeds 1 to 16; to replay one, start here at the seed that failed (which the failure prints).
  constexpr unsigned first_seed = 1, seeds = 16;
  for (unsigned seed = first_seed; seed < first_seed + seeds; ++seed) {
    std::mt19937 rng(seed);
    seed_config config;
    config.origins = pick(rng, 1, 2);
    config.options.max_connections_per_origin = seed % 2 == 1 ? 1 : pick(rng, 2, 3);
    config.options.max_idle_per_origin = pick(rng, 0, 2);
    const std::size_t t = (seed / 2) % 4;
    config.options.total_timeout = t == 0 ? 0ms : t == 1 ? 30ms : t == 2 ? 100ms : 400ms;
    config.options.idle_timeout = chance(rng, 25) ? 50ms : 30'000ms;
    config.options.max_retries = static_cast<unsigned>(pick(rng, 0, 3));
    config.options.retry_backoff = std::chrono::milliseconds(pick(rng, 1, 3));
    const std::size_t requests = pick(rng, 60, 100);
    INFO("seed " << seed << ": " << config.origins << " origin(s), max_connections_per_origin "
                 << config.options.max_connections_per_origin << ", max_idle_per_origin " << config.options.max_idle_per_origin
                 << ", total_timeout " << config.options.total_timeout.count() << " ms, idle_timeout "
                 << config.options.idle_timeout.count() << " ms, max_retries " << config.options.max_retries << ", "
                 << requests << " requests");

    asio::io_context ctx;
    pool_model model(ctx, seed, config);
    model.set_target(requests);
    while (model.started() < requests) {
      model.next_step();
      const std::size_t step = pick(rng, 0, 99);
      if (step < 35) {
        for (std::size_t n = pick(rng, 1, 3); n > 0 && model.started() < requests; --n) model.start_request();
      } else if (step < 70) {
        model.release_one();
      } else if (step < 80) {
        model.cancel_one();
      } else if (step < 90) {
        model.close_idle_one();
      } else if (step < 94) {
        model.answer_past_deadline();
      } else {
        model.wait_for_something();
      }
      // Whatever is waiting now waits on the server, a timer or the pool's line: the io_context falls idle.
      REQUIRE(model.settle());
    }
    model.finish_requests();
    model.check_idle_pool();
    model.check_history();
    model.stop();
    for (const std::string& f : model.failures()) FAIL_CHECK(f);
    CHECK(model.failures().empty());
  }
}

// The two bugs the model above found, each on its own.

// A release wakes the first request in line, and the wake-up runs later; a request made meanwhile, as one made by a
// completion handler is (it runs at once), must not take the room that was made for the one in line.
TEST_CASE("client: a request made by a completion handler waits behind the requests already in line",
          "[http][client]") {
  asio::io_context ctx;
  test::holding_server srv(ctx);
  client c(ctx.get_executor(), {.max_connections_per_origin = 1, .total_timeout = 60s, .max_retries = 0});
  test::client_result first, second, third;
  c.async_get(srv.url("/1"), [&, fill = test::capture(first)](std::error_code ec, client_response r) mutable {
    fill(ec, std::move(r));
    c.async_get(srv.url("/3"), test::capture(third));
  });
  c.async_get(srv.url("/2"), test::capture(second));
  REQUIRE(run_until(ctx, [&] { return srv.held() == 1; }));  // the first has the connection
  REQUIRE(run_until(ctx, [&] { return test::poll(ctx) == 0; }));  // the second waits in line
  srv.answer_first();  // the first completes, and its handler makes the third
  REQUIRE(run_until(ctx, [&] { return first.done && srv.held() == 1; }));
  srv.answer_first();
  REQUIRE(run_until(ctx, [&] { return second.done || third.done; }));
  CHECK(second.done);  // the second came before the third
  CHECK_FALSE(third.done);
  REQUIRE(run_until(ctx, [&] { return srv.held() == 1; }));
  srv.answer_first();
  REQUIRE(run_until(ctx, [&] { return second.done && third.done; }));
  CHECK(first.response.body == "ok");
  CHECK(second.response.body == "ok");
  CHECK(third.response.body == "ok");
}

// A response and the request's deadline that are ready at once (the event loop's thread was busy while the deadline
// passed) complete the request with the response; the deadline's handler, which runs after the request has ended,
// must touch nothing of it. It used to set the timeout flag and close the connection of whatever took the memory of
// the request's finished attempt: the next request, which failed at once with a timeout (and AddressSanitizer saw a
// heap-use-after-free).
TEST_CASE("client: a deadline that passes as the response arrives leaves the next request alone", "[http][client]") {
  asio::io_context ctx;
  test::holding_server srv(ctx);
  constexpr auto total_timeout = 500ms;  // room enough for the next request to reach the server before its own
  client c(ctx.get_executor(), {.total_timeout = total_timeout, .max_retries = 0});
  test::client_result first, next;
  c.async_get(srv.url("/1"), [&, fill = test::capture(first)](std::error_code ec, client_response r) mutable {
    fill(ec, std::move(r));
    c.async_get(srv.url("/2"), test::capture(next));
  });
  REQUIRE(run_until(ctx, [&] { return srv.held() == 1; }));
  // The request began before it reached the server: its deadline is before now plus the total timeout. The server
  // answers now, and the client runs again only once that deadline has passed (time passes on another io_context).
  const auto deadline_passed = std::chrono::steady_clock::now() + total_timeout + 1ms;
  srv.answer_first();
  asio::io_context elsewhere;
  asio::steady_timer busy(elsewhere, deadline_passed);
  bool passed = false;
  busy.async_wait([&](std::error_code) { passed = true; });
  REQUIRE(run_until(elsewhere, [&] { return passed; }));
  REQUIRE(run_until(ctx, [&] { return first.done; }));
  // The response and the deadline came together: either outcome is right, the response is read first.
  CHECK((!first.ec || first.ec == switchboard::error::timeout));
  // The next request has a deadline of its own, and nothing else closes its connection.
  REQUIRE(run_until(ctx, [&] { return srv.held() == 1 || next.done; }));
  INFO("next request: " << next.ec.message());
  CHECK_FALSE(next.done);
  if (srv.held() > 0) srv.answer_first();
  REQUIRE(run_until(ctx, [&] { return next.done; }));
  CHECK_FALSE(next.ec);
  CHECK(next.response.body == "ok");
}
