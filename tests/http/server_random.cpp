// The HTTP server under a random mix of pipelined requests, over plain TCP and over TLS: the connection's state
// machine driven through every kind of handler, request bodies, HEAD and errors, with the bytes written in pieces of
// random sizes.
#include <switchboard/http/server.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"
#include "support/test_support.hpp"
#include "support/tls_client.hpp"

#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::http;
using switchboard::test::get_request;
using switchboard::test::raw_client;
using switchboard::test::raw_response;
using switchboard::test::test_server;
using switchboard::test::tls_client;

namespace {

// A body of `size` bytes that depends on `n`: a response delivered for the wrong request does not match.
std::string body_for(int n, std::size_t size) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (static_cast<std::size_t>(n) + i) % 26);
  return body;
}

// Answers the responders handed to it, from a thread of its own and in a random order among those waiting, so that
// deferred responses complete out of the order of their requests.
class shuffling_answerer {
 public:
  explicit shuffling_answerer(unsigned seed) : rng_(seed), thread_([this] { run(); }) {}
  ~shuffling_answerer() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  void put(responder r, response answer) {
    {
      const std::lock_guard lock(mutex_);
      waiting_.emplace_back(std::move(r), std::move(answer));
    }
    changed_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (waiting_.empty()) return;
      const std::size_t pick = std::uniform_int_distribution<std::size_t>(0, waiting_.size() - 1)(rng_);
      auto [res, answer] = std::move(waiting_[pick]);
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(pick));
      lock.unlock();
      res.send(std::move(answer));
      lock.lock();
    }
  }

  std::mt19937 rng_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<responder, response>> waiting_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

// One request of the random mix, and what its response must be.
struct scripted_exchange {
  std::string request;
  unsigned status = 200;
  std::string body;   // for HEAD: empty, with `body_size` in Content-Length
  std::size_t body_size = 0;
  bool head = false;
  bool check_body = true;
};

// A random request, `n`-th of the mix: each way a handler can answer (at once, from a coroutine, later from another
// thread or from the server's own thread, streamed), request bodies with a length or chunked, HEAD, and a 404.
scripted_exchange random_exchange(std::mt19937& rng, int n) {
  auto pick = [&rng](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  // Mostly small bodies, sometimes one larger than the socket buffers (written in several parts).
  const std::size_t size = pick(0, 9) == 0 ? pick(100'000, 300'000) : pick(0, 3000);
  const std::string id = std::to_string(n);
  const std::string query = "?size=" + std::to_string(size);
  scripted_exchange e;
  e.body = body_for(n, size);
  e.body_size = size;
  switch (pick(0, 8)) {
    case 0: e.request = get_request("/now/" + id + query); break;
    case 1: e.request = get_request("/co/" + id + query); break;
    case 2: e.request = get_request("/thread/" + id + query); break;
    case 3: e.request = get_request("/loop/" + id + query); break;
    case 4: e.request = get_request("/stream/" + id + query); break;
    case 5:
      e.request = "HEAD /now/" + id + query + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
      e.head = true;
      e.body.clear();
      break;
    case 6:
      e.request = "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + e.body;
      break;
    case 7: {
      // Chunks of random sizes, one with an extension, and a trailer field (RFC 9112 §7.1).
      e.request = "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  switchboard::test::chunked_body(e.body, rng, ";ext=1", "X-Trailer: t\r\n");
      break;
    }
    default:
      e.request = get_request("/missing/" + id);
      e.status = 404;
      e.check_body = false;
      break;
  }
  return e;
}

void add_random_mix_routes(router& routes, shuffling_answerer& answerer) {
  auto size_of = [](request& req) { return req.query_number<std::size_t>("size").value_or(0); };
  auto answer_for = [size_of](request& req) { return response::text(body_for(req.param_as<int>("n"), size_of(req))); };
  routes.get("/now/{n:int}", answer_for);
  routes.get("/co/{n:int}", [answer_for](request& req) -> asio::awaitable<response> {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);  // resumes in a later turn
    co_return answer_for(req);
  });
  routes.get("/thread/{n:int}", [answer_for, &answerer](request& req, responder res) {
    answerer.put(std::move(res), answer_for(req));
  });
  routes.get("/loop/{n:int}", [answer_for](request& req, responder res) {
    auto ex = res.get_executor();
    asio::post(ex, [res = std::move(res), answer = answer_for(req)]() mutable { res.send(std::move(answer)); });
  });
  routes.get("/stream/{n:int}", [size_of](request& req) {
    auto body = std::make_shared<std::string>(body_for(req.param_as<int>("n"), size_of(req)));
    return response::stream("text/plain", [body](body_writer& w) -> asio::awaitable<void> {
      for (std::size_t at = 0; at < body->size(); at += 1000) {
        co_await w.async_write(body->substr(at, 1000), asio::use_awaitable);
      }
    });
  });
  routes.post("/echo", [](request& req) { return response::text(std::string(req.body())); });
}

// The random mix of `seed` on one connection to a server started with `options`, through a `Client` (raw_client or
// tls_client) made from the server's port, whose try_send, read_response and closed_by_peer are usable from two
// threads at once. The client writes the requests in pieces of random sizes while a second thread reads the
// responses; each response must come back in its request's place, whole.
template <class Client>
void check_random_mix(unsigned seed, const server_options& options) {
  constexpr int requests_per_connection = 150;
  INFO("seed " << seed);
  shuffling_answerer answerer(seed);
  test_server s;
  add_random_mix_routes(s.routes(), answerer);
  s.start(options);

  std::mt19937 rng(seed);
  std::vector<scripted_exchange> script;
  for (int n = 0; n < requests_per_connection; ++n) script.push_back(random_exchange(rng, n));
  // The last request asks the server to close once it has answered.
  script.push_back({.request = "GET /now/1000000?size=5 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                    .body = body_for(1'000'000, 5), .body_size = 5});

  Client c(s.port());
  std::vector<std::optional<raw_response>> received(script.size());
  std::mutex m;
  std::condition_variable arrived;
  std::size_t responses = 0;  // read so far (or all of them, once the reader stopped)
  bool closed_after = false;
  std::thread reader([&] {
    for (std::size_t i = 0; i < script.size(); ++i) {
      received[i] = c.read_response(script[i].head);
      const std::lock_guard lock(m);
      responses = received[i] ? i + 1 : script.size();
      arrived.notify_all();
      if (!received[i]) return;
    }
    closed_after = c.closed_by_peer();
  });
  std::string batch;
  for (std::size_t i = 0; i < script.size(); ++i) {
    batch += script[i].request;
    // Now and then the client waits for every response so far before it sends more, as clients do between
    // batches: a server that left requests it holds unanswered until more bytes come would stall here.
    if (i + 1 < script.size() && rng() % 8 != 0) continue;
    for (std::size_t at = 0; at < batch.size();) {
      const std::size_t piece = std::min(batch.size() - at, std::uniform_int_distribution<std::size_t>(1, 8192)(rng));
      if (!c.try_send(std::string_view(batch).substr(at, piece))) break;  // the reader reports what went wrong
      at += piece;
    }
    batch.clear();
    std::unique_lock lock(m);
    if (!arrived.wait_for(lock, 10s, [&] { return responses > i; })) break;
  }
  reader.join();

  for (std::size_t i = 0; i < script.size(); ++i) {
    INFO("request " << i << ": " << script[i].request.substr(0, script[i].request.find('\r')));
    REQUIRE(received[i]);
    CHECK(received[i]->status == script[i].status);
    if (script[i].check_body) CHECK(received[i]->body == script[i].body);
    if (script[i].head) CHECK(received[i]->header("content-length") == std::to_string(script[i].body_size));
  }
  CHECK(closed_after);
}

}  // namespace

TEST_CASE("server: a random mix of pipelined requests, written in random pieces, is answered in order",
          "[http][server]") {
  // Each seed a run of its own (GENERATE): one that fails does not hide what the others find.
  check_random_mix<raw_client>(GENERATE(range(1u, 7u)), {});
}

// Over TLS the connection reads and writes through the TLS stream, every write asynchronous (over TCP it tries one at
// once first), and a connection waiting for a handler neither watches for a disconnect nor parks (server_connection's
// `traits::tls` branches): the same mix through those paths.
TEST_CASE("server: the same random mix over TLS, written in random pieces, is answered in order",
          "[http][server][tls]") {
  server_options options;
  options.tls = switchboard::test::localhost_server_tls();
  check_random_mix<tls_client>(GENERATE(range(1u, 7u)), options);
}
