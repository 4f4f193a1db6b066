// Streamed request bodies (routes with `stream_body()`) under a random mix of pipelined requests: handlers that read
// their body at a random pace, answer before they have read it all, or never read it; bodies with a length or
// chunked, empty, over the route's limit, behind `Expect: 100-continue`; the bytes written in pieces of random sizes.
// And a 64 MiB body through a handler that counts it, a body that stops coming, and a client that goes mid-body.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::raw_client;
using switchboard::test::raw_response;
using switchboard::test::test_server;

namespace {

constexpr std::size_t body_limit = 100'000;  // per route, for /s and /e

// After a response that ends the connection with a body left unread, the server reads and discards for at most
// `timeouts.close` before it closes; a client still sending by then may get a reset that destroys the response
// before it is read. So a handler leaves at most `linger_safe` bytes of its body unread, which the client sends well
// within that time even under sanitizers, and the client sends no more than that after the head of a request that
// may end the connection before it has that answer. (A body over the limit refused from its Content-Length is sent whole: up to 20 KB past the limit.)
constexpr std::size_t linger_safe = 60'000;

// A request line a server that lost its place in the byte stream would parse from the middle of a body.
constexpr std::string_view smuggled = "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

// A body of `size` bytes that depends on `n`, sometimes with a whole request inside it.
std::string body_for(int n, std::size_t size, std::mt19937& rng) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (static_cast<std::size_t>(n) + i) % 26);
  if (size > smuggled.size() && rng() % 3 == 0) {
    body.replace(std::uniform_int_distribution<std::size_t>(0, size - smuggled.size())(rng), smuggled.size(), smuggled);
  }
  return body;
}

// How the handler of /s treats its body.
enum class handler_mode { read_all, early, never };

// The routes: /s streams its body to a handler that reads it as `mode` says, with `seed` for its pace; /e gets its
// body whole; /g answers a GET; /smuggled counts the requests that should never have been parsed.
struct stream_routes {
  asio::thread_pool other_thread{1};
  std::atomic<int> smuggled_hits{0};

  void add(router& routes) {
    routes
        .post("/s",
              [this](request& req) -> asio::awaitable<response> {
                const auto mode = static_cast<handler_mode>(req.query_number<unsigned>("mode").value_or(0));
                const std::size_t stop_after = req.query_number<std::size_t>("k").value_or(0);
                std::mt19937 rng(req.query_number<unsigned>("seed").value_or(0));
                std::string seen;
                while (mode != handler_mode::never && !(mode == handler_mode::early && seen.size() >= stop_after)) {
                  // A random pace: at once, a few turns of the event loop later, or after a trip through another
                  // thread (the read itself is started from the server's thread, where the handler runs).
                  switch (rng() % 4) {
                    case 0: co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable); break;
                    case 1: co_await asio::post(other_thread.get_executor(), asio::use_awaitable); break;
                    default: break;
                  }
                  auto [ec, piece] = co_await req.async_read_some(asio::experimental::as_tuple(asio::use_awaitable));
                  if (ec) {
                    response r = response::text("error:" + ec.message());
                    r.set_status(ec == http::error::body_too_large ? status::payload_too_large : status::bad_request);
                    co_return r;
                  }
                  if (piece.empty()) break;
                  seen.append(piece);
                }
                co_return response::text(std::string(mode == handler_mode::read_all ? "read:"
                                                     : mode == handler_mode::early  ? "early:"
                                                                                    : "never:") +
                                         seen);
              })
        .stream_body()
        .body_limit(body_limit);
    routes.post("/e", [](request& req) { return response::text("echo:" + std::string(req.body())); })
        .body_limit(body_limit);
    routes.get("/g/{n:int}", [](request& req) { return response::text("g" + std::string(req.param("n"))); });
    auto count = [this](request&) {
      ++smuggled_hits;
      return response::text("smuggled");
    };
    routes.get("/smuggled", count);
  }
};

// One request of the mix, and what must come back.
struct scripted_exchange {
  std::string head;  // start line and fields, with the blank line
  std::string body;  // as framed on the wire
  bool expect_continue = false;
  bool continue_wanted = false;  // the handler asks for the body: "100 Continue" comes first
  unsigned status = 200;
  std::string answer;            // the response body, or its prefix for `early`
  bool answer_is_prefix = false;  // `early`: "early:" and a prefix of the body
  std::string sent_body;          // the body's content (for `early`)
  enum class closing { never, may, must } close = closing::never;
  std::string label;
};

scripted_exchange random_exchange(std::mt19937& rng, int n) {
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  scripted_exchange e;
  const unsigned kind = static_cast<unsigned>(pick(0, 9));
  if (kind == 0) {
    e.head = "GET /g/" + std::to_string(n) + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    e.answer = "g" + std::to_string(n);
    e.label = "GET";
    return e;
  }
  bool over = pick(0, 11) == 0;
  std::size_t size = over              ? pick(body_limit + 1, body_limit + 20'000)
                     : pick(0, 5) == 0 ? 0
                     : pick(0, 9) == 0 ? pick(20'000, body_limit)
                                       : pick(1, 3000);
  const bool chunked = pick(0, 1) == 1;
  const bool stream = kind >= 3;
  const handler_mode mode = kind <= 6 ? handler_mode::read_all : kind <= 8 ? handler_mode::early : handler_mode::never;
  // What a handler leaves unread is at most `linger_safe` bytes (see there).
  if (mode == handler_mode::never && size > linger_safe) {
    size = pick(0, linger_safe);
    over = false;
  }
  const std::size_t k = mode == handler_mode::early ? pick(size > linger_safe ? size - linger_safe : 0, size) : 0;
  e.expect_continue = pick(0, 3) == 0;
  e.sent_body = body_for(n, size, rng);
  e.body = chunked ? switchboard::test::chunked_body(e.sent_body, rng, ";ext=\"x y\"", pick(0, 1) ? "X-T: 1\r\n" : "")
                   : e.sent_body;
  const std::string target = stream ? "/s?mode=" + std::to_string(static_cast<unsigned>(mode)) + "&k=" +
                                          std::to_string(k) + "&seed=" + std::to_string(rng())
                                    : "/e";
  e.head = "POST " + target + " HTTP/1.1\r\nHost: localhost\r\n" +
           (chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: " + std::to_string(size) + "\r\n") +
           (e.expect_continue ? "Expect: 100-continue\r\n" : "") + "\r\n";
  e.label = std::string(stream ? "stream " : "whole ") + (chunked ? "chunked " : "length ") + std::to_string(size) +
            (mode == handler_mode::early ? " early k=" + std::to_string(k)
             : mode == handler_mode::never ? " never"
                                           : "") +
            (e.expect_continue ? " expect" : "");
  const bool has_body = chunked || size > 0;  // a body to frame (chunked: the last chunk at least)
  const bool handler_reads = !stream || mode == handler_mode::read_all || (mode == handler_mode::early && k > 0);
  if (over && !chunked) {
    // Refused from the header, before "100 Continue" (RFC 9110 §10.1.1), and the connection ends.
    e.status = 413;
    e.close = scripted_exchange::closing::must;
    e.answer = "";
    e.answer_is_prefix = true;
    e.sent_body.clear();
    return e;
  }
  e.continue_wanted = e.expect_continue && has_body && handler_reads;
  if (over) {
    // Found over the limit while reading: the handler's read fails (or the server's, for /e); then the connection
    // ends, the rest of the body unread.
    e.status = 413;
    e.close = scripted_exchange::closing::must;
    e.answer = stream ? "error:" : "";
    e.answer_is_prefix = true;
    if (stream && mode == handler_mode::early) {
      // It may answer before it reaches the limit (200, checked as any early answer), or find it (413).
      e.status = 0;
      e.answer = "";
    }
    if (stream && mode == handler_mode::never) {
      e.status = 200;
      e.answer = "never:";
    }
    return e;
  }
  if (!stream) {
    e.answer = "echo:" + e.sent_body;
  } else if (mode == handler_mode::read_all) {
    e.answer = "read:" + e.sent_body;
  } else if (mode == handler_mode::never) {
    e.answer = "never:";
    if (has_body) e.close = scripted_exchange::closing::must;  // the body is left unread: the connection ends
  } else {
    e.answer = "early:";
    e.answer_is_prefix = true;
    // The handler may have been given the whole body in its pieces (then the connection goes on), or not.
    if (has_body) e.close = scripted_exchange::closing::may;
  }
  // Behind "Expect: 100-continue" a final answer comes before any of the body is sent, and the body is not sent:
  // the server cannot take the next bytes as a request.
  if (e.expect_continue && has_body && !handler_reads) e.close = scripted_exchange::closing::must;
  return e;
}

// What came back for one request.
struct received_exchange {
  std::optional<raw_response> final;
  bool got_continue = false;
  bool answered = false;  // final or interim arrived (the writer waits on it for Expect requests)
};

void check_stream_mix(unsigned seed) {
  constexpr int requests = 120;
  INFO("seed " << seed);
  stream_routes routes_state;
  test_server s;
  routes_state.add(s.routes());
  s.start();

  std::mt19937 rng(seed);
  std::vector<scripted_exchange> script;
  for (int n = 0; n < requests; ++n) script.push_back(random_exchange(rng, n));
  std::vector<received_exchange> received(script.size());
  std::vector<bool> closed_after(script.size(), false);  // the connection ended after this response
  std::vector<std::string> after_close(script.size());   // bytes that came after a closing response

  std::size_t next = 0;  // first request not yet answered
  int connections = 0;
  while (next < script.size()) {
    INFO("connection " << connections << " from request " << next);
    ++connections;
    REQUIRE(connections <= requests);
    raw_client c(s.port());
    std::mutex m;
    std::condition_variable changed;
    std::size_t answered_upto = next;  // final responses read so far
    bool reader_done = false;
    const std::size_t first = next;
    std::thread reader([&] {
      for (std::size_t i = first; i < script.size(); ++i) {
        auto r = c.read_response();
        if (r && r->status == 100) {
          {
            const std::lock_guard lock(m);
            received[i].got_continue = true;
            received[i].answered = true;
          }
          changed.notify_all();
          r = c.read_response();
        }
        const bool closing = r && !r->keep_alive;
        if (closing) after_close[i] = c.read_until_close();  // nothing after the last response, no late 100
        {
          const std::lock_guard lock(m);
          received[i].final = std::move(r);
          received[i].answered = true;
          answered_upto = i + 1;
          if (!received[i].final || closing) {
            closed_after[i] = closing;
            reader_done = true;
          }
        }
        changed.notify_all();
        if (reader_done) return;
      }
      const std::lock_guard lock(m);
      reader_done = true;
    });
    auto send_in_pieces = [&](std::string_view bytes) {
      for (std::size_t at = 0; at < bytes.size();) {
        const std::size_t piece = std::min(bytes.size() - at, std::uniform_int_distribution<std::size_t>(1, 8192)(rng));
        if (!c.try_send(bytes.substr(at, piece))) return false;  // the server closed: the reader says why
        at += piece;
      }
      return true;
    };
    // Waits for `done` (under the lock) or the reader's end; false when the reader is done or the deadline passed.
    auto wait_for = [&](auto done) {
      std::unique_lock lock(m);
      return changed.wait_for(lock, 10s, [&] { return done() || reader_done; }) && done();
    };
    std::string batch;
    std::optional<std::size_t> after_closing;  // bytes in `batch` after the head of a request that may close
    for (std::size_t i = first; i < script.size(); ++i) {
      const scripted_exchange& e = script[i];
      const std::size_t size = e.head.size() + e.body.size();
      if (after_closing && *after_closing + size > linger_safe) {
        // Not too much after a request that may end the connection: send what there is and wait for its answers.
        if (!send_in_pieces(batch)) break;
        batch.clear();
        after_closing.reset();
        if (!wait_for([&] { return answered_upto >= i; })) break;
      }
      if (after_closing) *after_closing += size;
      if (e.close != scripted_exchange::closing::never) after_closing = e.body.size();
      if (e.expect_continue) {
        // RFC 9110 §10.1.1: the head, then the body only once "100 Continue" has come; a final answer instead
        // means the body is not wanted.
        if (!send_in_pieces(batch + e.head)) break;
        batch.clear();
        if (!wait_for([&] { return received[i].answered; })) break;
        bool go_on = false;
        {
          const std::lock_guard lock(m);
          go_on = received[i].got_continue;
        }
        if (go_on && !send_in_pieces(e.body)) break;
      } else {
        batch += e.head + e.body;
      }
      // Now and then wait for every answer so far before sending more.
      if (i + 1 < script.size() && rng() % 6 != 0) continue;
      if (!send_in_pieces(batch)) break;
      batch.clear();
      after_closing.reset();
      if (!wait_for([&] { return answered_upto > i; })) break;
    }
    reader.join();
    REQUIRE(answered_upto > first);  // each connection answers at least its first request
    next = answered_upto;
    // A response lost to a connection that ended (or hung) without a closing answer stops the run here.
    INFO("request " << next - 1 << ": " << script[next - 1].label << (next >= 2 ? ", after " + script[next - 2].label : std::string()));
    REQUIRE(received[next - 1].final);
  }

  for (std::size_t i = 0; i < script.size(); ++i) {
    const scripted_exchange& e = script[i];
    const received_exchange& r = received[i];
    INFO("request " << i << ": " << e.label << " " << e.head.substr(0, e.head.find('\r')));
    REQUIRE(r.final);
    if (e.status != 0) CHECK(r.final->status == e.status);
    CHECK(r.got_continue == e.continue_wanted);
    if (e.answer_is_prefix) {
      CHECK(r.final->body.starts_with(e.answer));
      // What an early handler had read: the first bytes of the body, in order.
      if (r.final->body.starts_with("early:")) CHECK(e.sent_body.starts_with(r.final->body.substr(6)));
    } else {
      CHECK(r.final->body == e.answer);
    }
    if (e.close == scripted_exchange::closing::must) CHECK(closed_after[i]);
    if (e.close == scripted_exchange::closing::never) CHECK(!closed_after[i]);
    if (closed_after[i]) CHECK(after_close[i].empty());
  }
  CHECK(routes_state.smuggled_hits == 0);
}

// The process's resident memory, in bytes (Linux).
std::size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace

TEST_CASE("server: streamed request bodies under a random mix of pipelined requests", "[http][server][stream_body]") {
  check_stream_mix(GENERATE(range(1u, 7u)));
}

TEST_CASE("server: a 64 MiB streamed body goes through a bounded buffer", "[http][server][stream_body]") {
  constexpr std::size_t size = 64 * 1024 * 1024;
  const bool chunked = GENERATE(false, true);
  INFO((chunked ? "chunked" : "with a length"));
  std::atomic<std::size_t> largest_piece{0}, peak_resident{0};
  test_server s;
  s.routes()
      .post("/count",
            [&](request& req) -> asio::awaitable<response> {
              std::size_t total = 0, next_sample = 0, largest = 0, peak = 0;
              for (;;) {
                auto [ec, piece] = co_await req.async_read_some(asio::experimental::as_tuple(asio::use_awaitable));
                if (ec) co_return response::text("error:" + ec.message());
                if (piece.empty()) break;
                total += piece.size();
                largest = std::max(largest, piece.size());
                if (total >= next_sample) {
                  peak = std::max(peak, resident_bytes());
                  next_sample += 4 * 1024 * 1024;
                }
              }
              largest_piece = largest;
              peak_resident = peak;
              co_return response::text(std::to_string(total));
            })
      .stream_body()
      .body_limit(2 * size);
  s.start();
  raw_client c(s.port());
  std::string block(1 << 20, 'b');
  const std::size_t before = resident_bytes();
  c.send(std::string("POST /count HTTP/1.1\r\nHost: localhost\r\n") +
         (chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: " + std::to_string(size) + "\r\n") + "\r\n");
  for (std::size_t sent = 0; sent < size; sent += block.size()) {
    if (chunked) {
      c.send("100000\r\n");
      c.send(block);
      c.send("\r\n");
    } else {
      c.send(block);
    }
  }
  if (chunked) c.send("0\r\n\r\n");
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->body == std::to_string(size));
  INFO("largest piece " << largest_piece << ", resident before " << before << ", peak " << peak_resident);
  CHECK(largest_piece <= 1024 * 1024);  // at most one read buffer at a time
  // Not the body: 64 MiB held anywhere would show here (the client's block is allocated before `before`).
  CHECK(peak_resident < before + 16 * 1024 * 1024);
}

TEST_CASE("server: a streamed body that stops coming or whose client goes ends the handler's read with an error",
          "[http][server][stream_body]") {
  const bool disconnect = GENERATE(false, true);
  const bool chunked = GENERATE(false, true);
  INFO((disconnect ? "the client goes" : "the body stops") << ", " << (chunked ? "chunked" : "with a length"));
  auto outcome = std::make_shared<std::promise<std::error_code>>();
  auto result = outcome->get_future();
  test_server s;
  s.routes()
      .post("/wait",
            [outcome](request& req) -> asio::awaitable<response> {
              std::error_code failure;
              for (;;) {
                auto [ec, piece] = co_await req.async_read_some(asio::experimental::as_tuple(asio::use_awaitable));
                if (ec || piece.empty()) {
                  failure = ec;
                  break;
                }
              }
              outcome->set_value(failure);
              co_return response::text("done");
            })
      .stream_body();
  server_options options;
  // Short when the test waits it out; else long enough never to be the reason the read ends.
  options.timeouts.body = disconnect ? 60s : 200ms;
  s.start(options);
  raw_client c(s.port());
  c.send(std::string("POST /wait HTTP/1.1\r\nHost: localhost\r\n") +
         (chunked ? "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789" : "Content-Length: 100\r\n\r\n0123456789"));
  if (disconnect) c.socket().close();
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  const std::error_code ec = result.get();
  if (disconnect) {
    CHECK(ec == http::error::partial_message);
  } else {
    CHECK(ec == http::error::body_timeout);
    CHECK(c.closed_by_peer());
  }
}
