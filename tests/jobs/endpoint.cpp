// The job endpoint over HTTP: 202 + Location + Retry-After, status and result, ?wait, cancellation,
// Idempotency-Key, a full pool, retention, and the completion published on the broker.
#include <switchboard/jobs/endpoint.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using test::raw_client;

namespace {

// Jobs for the tests: {"kind": "echo", "value": x} returns x; {"kind": "steps", "value": n} reports progress n
// times; "block" runs until released or cancelled; "fail" throws; "bad result" returns, and "bad error" throws, text
// that is not UTF-8. Anything else is refused with 400.
struct job_server {
  explicit job_server(jobs::endpoint_options options = {}, jobs::worker_pool_options pool_options = {.threads = 1},
                      std::size_t server_threads = 1,
                      pubsub::broker_options broker_options = {.retention = {.max_messages = 10}})
      : server(server_threads), broker(server.rt().executor(), std::move(broker_options)), pool(pool_options), work(pool, broker, factory(), std::move(options)) {
    jobs::add_routes(server.routes(), work);
    // Which server thread serves the connection (each stays on the thread that accepted it): a test that holds one
    // thread while another answers picks its connections by it.
    server.routes().get("/thread", [](http::request&) {
      return http::response::text(std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())));
    });
    server.start();
  }
  ~job_server() {
    {
      std::lock_guard lock(blocked_mutex);
      release = true;
    }
    blocked_changed.notify_all();
    server.stop();
  }

  jobs::job_factory factory() {
    return [this](const nlohmann::json& body) -> jobs::job_work {
      const std::string kind = body.value("kind", "");
      if (kind == "echo") return [value = body.value("value", nlohmann::json())](jobs::job_context&) { return value; };
      if (kind == "steps") {
        return [n = body.value("value", 1)](jobs::job_context& ctx) -> nlohmann::json {
          for (int i = 1; i <= n; ++i) ctx.progress(double(i) / n);
          return n;
        };
      }
      if (kind == "fail") return [](jobs::job_context&) -> nlohmann::json { throw std::runtime_error("boom"); };
      if (kind == "bad result") return [](jobs::job_context&) -> nlohmann::json { return std::string("a\xff"); };
      if (kind == "bad error") return [](jobs::job_context&) -> nlohmann::json { throw std::runtime_error("bad \xff"); };
      if (kind == "block") {
        return [this](jobs::job_context& ctx) -> nlohmann::json {
          ctx.progress(0.5);
          {
            std::lock_guard lock(blocked_mutex);
            ++blocked;
          }
          blocked_changed.notify_all();
          // Until released (the server's end) or cancelled. Cancellation only sets the job's flag, so a test
          // that cancels wakes this wait itself (`wake_blocked`).
          std::unique_lock lock(blocked_mutex);
          blocked_changed.wait(lock, [&] { return release || ctx.cancelled(); });
          lock.unlock();
          ctx.throw_if_cancelled();
          return "released";
        };
      }
      throw http::problem_error(http::status::bad_request, "unknown kind");
    };
  }

  // One request on a new connection, from the loopback address `from` when given (another client address).
  test::raw_response request(std::string_view method, std::string_view target, std::string_view body = {},
                             std::string_view extra = {}, const char* from = nullptr) {
    raw_client c(server.port(), 10s, from);
    auto r = exchange(c, method, target, body, extra);
    REQUIRE(r);
    return *r;
  }

  // One request on the open connection `c`; nullopt when no whole response came. Asserts nothing, so that a thread
  // other than the test's may use it.
  static std::optional<test::raw_response> exchange(raw_client& c, std::string_view method, std::string_view target,
                                                    std::string_view body = {}, std::string_view extra = {}) {
    c.send(std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
           std::string(extra) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
    return c.read_response();
  }

  // Wakes blocking jobs to look at their cancellation flag (after a DELETE).
  void wake_blocked() {
    { const std::lock_guard lock(blocked_mutex); }
    blocked_changed.notify_all();
  }

  // Waits (with a deadline) until the blocking job runs.
  bool wait_blocked() {
    std::unique_lock lock(blocked_mutex);
    return blocked_changed.wait_for(lock, 10s, [this] { return blocked > 0; });
  }

  // Waits (with a deadline) until the job at `location` reaches `status`, told by the status messages the endpoint
  // publishes on the job's broker topic (retained, so none published before the subscription is missed), then
  // returns the status document.
  nlohmann::json await_status(const std::string& location, std::string_view status) {
    return await_status_where(location, [wanted = std::string(status)](const std::string& s) { return s == wanted; });
  }

  // The same, until a status for which `reached` holds.
  nlohmann::json await_status_where(const std::string& location, std::function<bool(const std::string&)> reached_status) {
    struct waiter {
      std::promise<void> reached;
      std::atomic<bool> done{false};
    };
    // Shared with the callback, which may still run on the server's thread while the subscription goes away.
    auto w = std::make_shared<waiter>();
    auto reached = w->reached.get_future();
    const std::string id = location.substr(location.rfind('/') + 1);
    auto sub = broker.subscribe(
        work.topic(id), {.from = 0, .on_event = [w, reached_status](std::error_code ec, const pubsub::event& ev) {
          if (ec || !ev.is_message() || w->done) return;
          if (reached_status(nlohmann::json::parse(ev.message().data()).value("status", "")) && !w->done.exchange(true)) {
            w->reached.set_value();
          }
        }});
    reached.wait_for(10s);
    return nlohmann::json::parse(request("GET", location).body);
  }

  test::test_server server;
  std::mutex blocked_mutex;
  bool release = false;  // under blocked_mutex
  std::condition_variable blocked_changed;
  int blocked = 0;  // blocking jobs started (under blocked_mutex)
  pubsub::broker broker;
  jobs::worker_pool pool;  // after the broker: its workers stop before the broker goes
  jobs::endpoint work;
};

}  // namespace

TEST_CASE("a submitted job is accepted, runs, and its result is there", "[jobs][endpoint]") {
  job_server s;
  const auto r = s.request("POST", "/jobs", R"({"kind": "echo", "value": {"n": 7}})");
  CHECK(r.status == 202);
  const std::string location = r.header("Location");
  CHECK(location.starts_with("/jobs/"));
  CHECK(r.header("Retry-After") == "1");
  const auto status = s.await_status(location, "succeeded");
  CHECK(status["status"] == "succeeded");
  CHECK(status["progress"] == 1.0);
  CHECK(status["result"] == nlohmann::json{{"n", 7}});
  CHECK(s.request("GET", location + "/result").body == R"({"n":7})");

  SECTION("its changes were published on its topic, the last one final") {
    const std::string id = location.substr(6);
    const auto page = s.broker.read(s.work.topic(id), 0, 100);
    REQUIRE_FALSE(page.messages.empty());
    CHECK(nlohmann::json::parse(page.messages.back().data())["status"] == "succeeded");
    CHECK(s.work.contains(id));
  }
  SECTION("unknown jobs are 404") {
    CHECK(s.request("GET", "/jobs/nope").status == 404);
    CHECK_FALSE(s.work.contains("nope"));
  }
}

TEST_CASE("?wait answers with the result when the job finishes in time", "[jobs][endpoint]") {
  job_server s;
  SECTION("in time: 200 with the result") {
    const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 5})");
    CHECK(r.status == 200);
    CHECK(nlohmann::json::parse(r.body)["result"] == 5);
    CHECK(s.work.stats().succeeded == 1);
    // A wait past what milliseconds can count is capped at max_wait (it was converted first: undefined behaviour).
    CHECK(s.request("POST", "/jobs?wait=1e308", R"({"kind": "echo", "value": 6})").status == 200);
    // Not a number: refused as one past the range of a double is.
    CHECK(s.request("POST", "/jobs?wait=inf", R"({"kind": "echo", "value": 6})").status == 400);
  }
  SECTION("not in time: 202") {
    const auto r = s.request("POST", "/jobs?wait=0.05", R"({"kind": "block"})");
    CHECK(r.status == 202);
    CHECK(nlohmann::json::parse(r.body)["status"] != "succeeded");
    CHECK(s.request("GET", r.header("Location") + "/result").status == 303);
    CHECK(s.work.stats().unfinished == 1);
  }
  SECTION("a failing job: 200 with the error") {
    const auto j = nlohmann::json::parse(s.request("POST", "/jobs?wait=10", R"({"kind": "fail"})").body);
    CHECK(j["status"] == "failed");
    CHECK(j["error"] == "boom");
    CHECK(s.work.stats().failed == 1);
  }
  SECTION("bad submissions") {
    CHECK(s.request("POST", "/jobs", R"({"kind": "nope"})").status == 400);
    CHECK(s.request("POST", "/jobs", "not json").status == 400);
    CHECK(s.request("POST", "/jobs?wait=x", R"({"kind": "echo"})").status == 400);
    CHECK(s.request("POST", "/jobs?wait=-1", R"({"kind": "echo"})").status == 400);
  }
}

TEST_CASE("DELETE cancels a job cooperatively", "[jobs][endpoint]") {
  job_server s;
  const std::string running = s.request("POST", "/jobs", R"({"kind": "block"})").header("Location");
  REQUIRE(s.wait_blocked());
  CHECK(nlohmann::json::parse(s.request("GET", running).body)["progress"] == 0.5);
  // The only worker is busy: a second job stays queued.
  const std::string queued = s.request("POST", "/jobs", R"({"kind": "echo"})").header("Location");
  CHECK(nlohmann::json::parse(s.request("GET", queued).body)["status"] == "queued");

  const auto q = s.request("DELETE", queued);
  CHECK(q.status == 200);
  CHECK(nlohmann::json::parse(q.body)["status"] == "cancelled");
  const auto r = s.request("DELETE", running);
  CHECK(r.status == 202);
  s.wake_blocked();
  CHECK(s.await_status(running, "cancelled")["status"] == "cancelled");
  CHECK(s.request("DELETE", running).status == 200);  // already final
}

TEST_CASE("cancel_running stops the running jobs, for a shutdown", "[jobs][endpoint]") {
  job_server s;
  const std::string running = s.request("POST", "/jobs", R"({"kind": "block"})").header("Location");
  REQUIRE(s.wait_blocked());
  s.work.cancel_running();
  s.wake_blocked();
  CHECK(s.await_status(running, "cancelled")["status"] == "cancelled");
  CHECK(s.work.stats().cancelled == 1);
}

TEST_CASE("an Idempotency-Key returns the same job", "[jobs][endpoint]") {
  job_server s;
  const std::string body = R"({"kind": "echo", "value": 1})";
  const auto a = s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n");
  const auto b = s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n");
  CHECK(a.header("Location") == b.header("Location"));
  CHECK(s.request("POST", "/jobs", body, "Idempotency-Key: k2\r\n").header("Location") != a.header("Location"));
  CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 2})", "Idempotency-Key: k1\r\n").status == 422);
  // Keys are stored as long as their job: their length is bounded.
  CHECK(s.request("POST", "/jobs", body, "Idempotency-Key: " + std::string(255, 'k') + "\r\n").status == 202);
  CHECK(s.request("POST", "/jobs", body, "Idempotency-Key: " + std::string(256, 'k') + "\r\n").status == 400);
}

// Idempotency-Keys are scoped per client (its `client_key`, as for the per-client limit). In one space for all
// clients, a client that sent another's key was answered with that client's job, its id and so its result (or 422
// for another body).
TEST_CASE("an Idempotency-Key is one client's: another client's equal key makes another job", "[jobs][endpoint]") {
  const std::string body = R"({"kind": "echo", "value": 1})";
  const auto id = [](const test::raw_response& r) { return nlohmann::json::parse(r.body).value("id", ""); };
  SECTION("by client_key") {
    job_server s({.client_key = [](const http::request& req) { return std::string(req.header("X-User")); }});
    const auto ann = s.request("POST", "/jobs?wait=10", body, "X-User: ann\r\nIdempotency-Key: k1\r\n");
    const auto bob = s.request("POST", "/jobs?wait=10", body, "X-User: bob\r\nIdempotency-Key: k1\r\n");
    REQUIRE(ann.status == 200);
    REQUIRE(bob.status == 200);
    CHECK(id(ann) != id(bob));
    // Each client's retry finds its own job; another body is 422 for that client only.
    CHECK(id(s.request("POST", "/jobs", body, "X-User: bob\r\nIdempotency-Key: k1\r\n")) == id(bob));
    CHECK(id(s.request("POST", "/jobs", body, "X-User: ann\r\nIdempotency-Key: k1\r\n")) == id(ann));
    const std::string other = R"({"kind": "echo", "value": 2})";
    CHECK(s.request("POST", "/jobs", other, "X-User: ann\r\nIdempotency-Key: k1\r\n").status == 422);
    CHECK(s.request("POST", "/jobs", other, "X-User: cy\r\nIdempotency-Key: k1\r\n").status == 202);
    // A client and key that would make the same string as another pair, were they only joined, are another pair.
    const auto joined = s.request("POST", "/jobs", body, "X-User: bobk\r\nIdempotency-Key: 1\r\n");
    CHECK(joined.status == 202);
    CHECK(id(joined) != id(bob));
    CHECK(s.work.stats().submitted == 4);
  }
  SECTION("by address") {
    job_server s;
    const auto first = s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n");
    const auto second = s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n", "127.0.0.2");
    REQUIRE(first.status == 202);
    REQUIRE(second.status == 202);
    CHECK(first.header("Location") != second.header("Location"));
    CHECK(s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n", "127.0.0.2").header("Location") ==
          second.header("Location"));
    CHECK(s.request("POST", "/jobs", body, "Idempotency-Key: k1\r\n").header("Location") == first.header("Location"));
    CHECK(s.work.stats().submitted == 2);
  }
}

TEST_CASE("a full pool or store answers 503 with Retry-After", "[jobs][endpoint]") {
  SECTION("pool") {
    job_server s({}, {.threads = 1, .max_queued = 1});
    s.request("POST", "/jobs", R"({"kind": "block"})");
    REQUIRE(s.wait_blocked());
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo"})").status == 202);  // queued
    const auto r = s.request("POST", "/jobs", R"({"kind": "echo"})");
    CHECK(r.status == 503);
    CHECK(r.header("Retry-After") == "1");
    const jobs::endpoint_stats stats = s.work.stats();
    CHECK(stats.submitted == 2);
    CHECK(stats.refused_full == 1);
    CHECK(stats.stored == 2);
    CHECK(stats.unfinished == 2);
  }
  SECTION("store, when every stored job is unfinished") {
    job_server s({.max_jobs = 1});
    CHECK(s.request("POST", "/jobs", R"({"kind": "block"})").status == 202);
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo"})").status == 503);
    CHECK(s.work.stats().refused_full == 1);
  }
}

// Holds the first message published after `arm`, on the publishing thread (an observer runs inside `publish`,
// once the message is numbered, under its topic's lock), until `release` or 10 s: it stops a submission between
// storing its job and handing it to the pool, the moment a retry under its key could be answered. Another publish on
// that topic waits meanwhile: the gate then gives up after 10 s.
struct publish_gate final : pubsub::broker_observer {
  void on_interest(std::string_view, bool, bool) override {}
  void on_publish(const pubsub::message&) override {
    std::unique_lock lock(mutex);
    if (!armed || held) return;
    held = true;
    changed.notify_all();
    gave_up = !changed.wait_for(lock, 10s, [this] { return released; });
  }
  void arm() {
    const std::lock_guard lock(mutex);
    armed = true;
  }
  void release() {
    {
      const std::lock_guard lock(mutex);
      released = true;
    }
    changed.notify_all();
  }
  // Marks what the other thread was waiting for as done.
  void done() {
    {
      const std::lock_guard lock(mutex);
      finished = true;
    }
    changed.notify_all();
  }
  // Waits (with a deadline) until a publish is held or `done` is called; true when a publish is held.
  bool wait_held_or_done() {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, 10s, [this] { return held || finished; });
    return held;
  }

  std::mutex mutex;
  std::condition_variable changed;
  bool armed = false, held = false, released = false, finished = false, gave_up = false;
};

// A connection to each of a two-thread server's I/O threads (opened until both have answered `/thread`): a request
// held on one thread while the other answers.
class two_threads_connections {
 public:
  explicit two_threads_connections(job_server& s) {
    while (by_thread_.size() < 2 && all_.size() < 64) {
      all_.push_back(std::make_unique<raw_client>(s.server.port(), 10s));
      const auto r = job_server::exchange(*all_.back(), "GET", "/thread");
      REQUIRE(r);
      by_thread_.emplace(r->body, all_.back().get());
    }
    REQUIRE(by_thread_.size() == 2);
  }
  raw_client& first() { return *by_thread_.begin()->second; }
  raw_client& second() { return *std::next(by_thread_.begin())->second; }

 private:
  std::vector<std::unique_ptr<raw_client>> all_;
  std::map<std::string, raw_client*> by_thread_;
};

// A keyed submission sent on `submitting` from another thread, its first publish held by a gate on the broker (the
// job stored, its task not yet posted), so that the test can act on the other connection meanwhile. `finish`
// releases the gate and waits for the submission's answer.
class held_submission {
 public:
  held_submission(job_server& s, raw_client& submitting, std::string body, std::string key)
      : server_(s), body_(std::move(body)), key_(std::move(key)) {
    s.broker.set_observer(gate_);
    gate_->arm();
    submitter_ = std::thread([this, &submitting] {
      answer_ = job_server::exchange(submitting, "POST", "/jobs", body_, key_);
      gate_->done();
    });
  }
  ~held_submission() { finish(); }
  held_submission(const held_submission&) = delete;
  held_submission& operator=(const held_submission&) = delete;

  // Waits (with a deadline) until the submission's publish is held, or the submission is answered without one.
  bool wait_held() { return gate_->wait_held_or_done(); }
  // Lets the submission go on, and returns its answer.
  const std::optional<test::raw_response>& finish() {
    if (submitter_.joinable()) {
      gate_->release();
      submitter_.join();
      server_.broker.set_observer(nullptr);
    }
    return answer_;
  }
  // After `finish`: whether the publish was held until `finish` released it (not given up on after 10 s).
  bool held_until_released() {
    const std::lock_guard lock(gate_->mutex);
    return gate_->held && !gate_->gave_up;
  }

 private:
  job_server& server_;
  std::string body_, key_;
  std::shared_ptr<publish_gate> gate_ = std::make_shared<publish_gate>();
  std::thread submitter_;
  std::optional<test::raw_response> answer_;
};

TEST_CASE("a submission the pool refuses was never visible: a retry under its key is not told 202 for a job that "
          "then vanishes", "[jobs][endpoint]") {
  // Two server threads, and a connection to each: the submission may be held on one while its retry is answered on
  // the other.
  job_server s({}, {.threads = 1, .max_queued = 1}, 2);
  two_threads_connections connections(s);
  raw_client& submitting = connections.first();
  raw_client& retrying = connections.second();

  REQUIRE(s.request("POST", "/jobs", R"({"kind": "block"})").status == 202);
  REQUIRE(s.wait_blocked());
  REQUIRE(s.request("POST", "/jobs", R"({"kind": "echo", "value": 1})").status == 202);  // queued: the pool is full
  const std::string body = R"({"kind": "echo", "value": 2})";
  const std::string key = "Idempotency-Key: k1\r\n";
  held_submission submission(s, submitting, body, key);
  // The refused submission publishes nothing (it made no topic). If it did, its retry is answered while it is held.
  const bool held = submission.wait_held();
  std::optional<test::raw_response> retry;
  if (held) retry = job_server::exchange(retrying, "POST", "/jobs", body, key);
  const auto& first = submission.finish();
  REQUIRE(first);
  CHECK(first->status == 503);
  CHECK_FALSE(held);
  if (retry && retry->status == 202) {
    // Told 202 with a Location: the job must be there.
    CHECK(s.request("GET", retry->header("Location")).status == 200);
  }
  // A retry now is refused too, and nothing was counted for either.
  CHECK(s.request("POST", "/jobs", body, key).status == 503);
  const jobs::endpoint_stats stats = s.work.stats();
  CHECK(stats.submitted == 2);
  CHECK(stats.unfinished == 2);
  CHECK(stats.stored == 2);
  CHECK(stats.refused_full == 2);
  CHECK(s.pool.stats().queued == 1);
}

TEST_CASE("a client's unfinished jobs are limited: 429, and other clients still submit", "[jobs][endpoint]") {
  SECTION("per address") {
    job_server s({.max_unfinished_per_client = 2, .retry_after = 7s}, {.threads = 1, .max_queued = 10});
    const auto running = s.request("POST", "/jobs", R"({"kind": "block"})");
    REQUIRE(running.status == 202);
    REQUIRE(s.wait_blocked());
    const auto queued = s.request("POST", "/jobs", R"({"kind": "echo", "value": 1})");
    REQUIRE(queued.status == 202);
    const auto refused = s.request("POST", "/jobs", R"({"kind": "echo", "value": 2})");
    CHECK(refused.status == 429);
    CHECK(refused.header("Retry-After") == "7");
    CHECK(nlohmann::json::parse(refused.body)["detail"] == "too many unfinished jobs for this client");
    // Another address is another client.
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 3})", {}, "127.0.0.2").status == 202);

    // A job that finishes, by cancellation here, makes room for the next.
    CHECK(s.request("DELETE", queued.header("Location")).status == 200);  // queued: cancelled at once
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 4})").status == 202);
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 5})").status == 429);
    CHECK(s.request("DELETE", running.header("Location")).status == 202);  // running: stops when it looks
    s.wake_blocked();
    CHECK(s.await_status(running.header("Location"), "cancelled")["status"] == "cancelled");
    CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 6})").status == 202);
    const jobs::endpoint_stats stats = s.work.stats();
    CHECK(stats.refused_client == 2);
    CHECK(stats.submitted == 5);
    CHECK(stats.cancelled == 2);
    metrics_registry registry;
    const auto handles = s.work.export_metrics(registry, "work");
    std::string text_format;
    registry.expose(text_format);
    CHECK(text_format.find("switchboard_jobs_refused_client_total{endpoint=\"work\"} 2\n") != std::string::npos);
    CHECK(text_format.find("switchboard_jobs_submitted_total{endpoint=\"work\"} 5\n") != std::string::npos);
    CHECK(text_format.find("switchboard_jobs_cancelled_total{endpoint=\"work\"} 2\n") != std::string::npos);
  }
  SECTION("an Idempotency-Key retry of an unfinished job is answered, not refused") {
    job_server s({.max_unfinished_per_client = 1});
    const std::string key = "Idempotency-Key: k1\r\n";
    const auto first = s.request("POST", "/jobs", R"({"kind": "block"})", key);
    REQUIRE(first.status == 202);
    const auto retry = s.request("POST", "/jobs", R"({"kind": "block"})", key);
    CHECK(retry.status == 202);
    CHECK(retry.header("Location") == first.header("Location"));
    CHECK(s.request("POST", "/jobs", R"({"kind": "block"})").status == 429);
  }
  SECTION("by client_key") {
    job_server s({.max_unfinished_per_client = 1,
                  .client_key = [](const http::request& req) { return std::string(req.header("X-User")); }});
    CHECK(s.request("POST", "/jobs", R"({"kind": "block"})", "X-User: ann\r\n").status == 202);
    CHECK(s.request("POST", "/jobs", R"({"kind": "block"})", "X-User: ann\r\n").status == 429);
    CHECK(s.request("POST", "/jobs", R"({"kind": "block"})", "X-User: bob\r\n").status == 202);
  }
  SECTION("a limit of 0 is refused") {
    asio::io_context ctx;
    pubsub::broker broker(ctx);
    jobs::worker_pool pool({.threads = 1});
    CHECK_THROWS_AS(jobs::endpoint(pool, broker, [](const nlohmann::json&) -> jobs::job_work { return {}; },
                                   {.max_unfinished_per_client = 0}),
                    std::invalid_argument);
  }
}

TEST_CASE("a full store forgets the job that finished first to take a new one", "[jobs][endpoint]") {
  job_server s({.max_jobs = 2});
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 1})");
    REQUIRE(r.status == 200);
    ids.push_back(nlohmann::json::parse(r.body)["id"]);
  }
  const auto third = s.request("POST", "/jobs", R"({"kind": "block"})");
  CHECK(third.status == 202);
  CHECK(s.request("GET", "/jobs/" + ids[0]).status == 404);
  CHECK_FALSE(s.broker.stats(s.work.topic(ids[0])));  // its topic went with it
  CHECK(s.request("GET", "/jobs/" + ids[1]).status == 200);
  // The store now holds one finished job and one running: the finished one makes room again, then nothing can.
  CHECK(s.request("POST", "/jobs", R"({"kind": "block"})").status == 202);
  CHECK(s.request("GET", "/jobs/" + ids[1]).status == 404);
  CHECK(s.request("POST", "/jobs", R"({"kind": "echo"})").status == 503);
}

TEST_CASE("progress reports are published at most every progress_interval", "[jobs][endpoint]") {
  using namespace std::chrono_literals;
  for (const std::chrono::milliseconds interval : {0ms, std::chrono::milliseconds(24h)}) {
    job_server s({.progress_interval = interval});
    const auto r = s.request("POST", "/jobs", R"({"kind": "steps", "value": 1000})");
    REQUIRE(r.status == 202);
    const std::string location = r.header("Location");
    const auto status = s.await_status(location, "succeeded");
    CHECK(status["progress"] == 1.0);
    // Published: when queued, when running, the progress reports let through, and the final status.
    const std::uint64_t published = s.broker.last_sequence(s.work.topic(location.substr(6)));
    CHECK(published == (interval == 0ms ? 3 + 1000 : 3 + 1));  // 24 h: only the first report
  }
}

TEST_CASE("finished jobs are forgotten after the retention", "[jobs][endpoint]") {
  job_server s({.retention = 0s});
  const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 1})");
  CHECK(r.status == 200);
  const std::string id = nlohmann::json::parse(r.body)["id"];
  // The answer came once the final status was on the topic: queued, running, succeeded.
  CHECK(s.broker.last_sequence(s.work.topic(id)) == 3);
  CHECK(s.request("GET", "/jobs/" + id).status == 404);
  CHECK_FALSE(s.work.contains(id));
  CHECK_FALSE(s.broker.stats(s.work.topic(id)));

  // A client still listening to a job's topic when the job is forgotten keeps the topic only until it leaves.
  const auto next = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 2})");
  const std::string next_id = nlohmann::json::parse(next.body)["id"];
  auto listener = s.broker.subscribe(s.work.topic(next_id));
  CHECK(s.request("GET", "/jobs/" + next_id).status == 404);
  CHECK(s.broker.stats(s.work.topic(next_id)));
  listener.unsubscribe();
  CHECK_FALSE(s.broker.stats(s.work.topic(next_id)));
}

// A job's error is its exception's message, which need not be UTF-8 (a message quoting bad input): it is shown with
// U+FFFD for the bytes that are not. Serialising it threw, on the worker, inside the handler of the job's own
// exception, and ended the program.
TEST_CASE("a job whose error message is not UTF-8 fails, and its status is served", "[jobs][endpoint]") {
  job_server s;
  const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "bad error"})");
  REQUIRE(r.status == 200);
  const auto j = nlohmann::json::parse(r.body);
  CHECK(j["status"] == "failed");
  CHECK(j["error"] == "bad \xEF\xBF\xBD");  // U+FFFD
  const std::string id = j["id"];
  const auto status = s.request("GET", "/jobs/" + id);
  CHECK(status.status == 200);
  CHECK(nlohmann::json::parse(status.body)["error"] == "bad \xEF\xBF\xBD");
  const auto page = s.broker.read(s.work.topic(id), 0, 100);
  REQUIRE_FALSE(page.messages.empty());
  CHECK(nlohmann::json::parse(page.messages.back().data())["status"] == "failed");
  const jobs::endpoint_stats stats = s.work.stats();
  CHECK(stats.failed == 1);
  CHECK(stats.unfinished == 0);
}

// A job's result need not be UTF-8 either (a byte string): it succeeds, once, with U+FFFD for the bytes that are not.
// Its final status failed to serialise after the job had been counted finished, and the job was then finished a
// second time, as failed: its client's count was released twice, `unfinished` wrapped round, and its id, listed twice
// for retention, made every later request to the endpoint fail (500) once the job expired.
TEST_CASE("a job whose result is not UTF-8 succeeds once", "[jobs][endpoint]") {
  SECTION("counted once, and forgotten once") {
    job_server s({.retention = 0s});
    const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "bad result"})");
    REQUIRE(r.status == 200);
    const auto j = nlohmann::json::parse(r.body);
    CHECK(j["status"] == "succeeded");
    CHECK(j["result"] == "a\xEF\xBF\xBD");
    const jobs::endpoint_stats stats = s.work.stats();
    CHECK(stats.unfinished == 0);
    CHECK(stats.succeeded == 1);
    CHECK(stats.failed == 0);
    // Its retention (0) is over: it is forgotten, and the endpoint goes on answering.
    CHECK(s.request("GET", "/jobs/" + j["id"].get<std::string>()).status == 404);
    const auto next = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 1})");
    CHECK(next.status == 200);
    CHECK(s.request("GET", "/jobs/" + nlohmann::json::parse(next.body)["id"].get<std::string>()).status == 404);
    CHECK(s.work.stats().stored == 0);
  }
  SECTION("its result is served") {
    job_server s;
    const auto r = s.request("POST", "/jobs?wait=10", R"({"kind": "bad result"})");
    REQUIRE(r.status == 200);
    const std::string location = "/jobs/" + nlohmann::json::parse(r.body)["id"].get<std::string>();
    const auto result = s.request("GET", location + "/result");
    CHECK(result.status == 200);
    CHECK(result.body == "\"a\xEF\xBF\xBD\"");
    CHECK(s.request("GET", location).status == 200);
  }
}

// A queued job cancelled gives its place in the pool's queue back at once, as it does its client's count: its task
// is taken out of the queue. Left there until a worker got to it, it held a place that no count showed, so a client
// that submitted and cancelled in a loop, never past its own limit, filled the queue, and every other client got
// 503: what `max_unfinished_per_client` is there to prevent.
TEST_CASE("a queued job cancelled gives its place in the pool back at once", "[jobs][endpoint]") {
  job_server s({.max_unfinished_per_client = 2}, {.threads = 1, .max_queued = 8});
  REQUIRE(s.request("POST", "/jobs", R"({"kind": "block"})").status == 202);
  REQUIRE(s.wait_blocked());  // the only worker is busy: what comes next is queued
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    const auto r = s.request("POST", "/jobs", R"({"kind": "echo", "value": 1})");
    if (r.status != 202) break;
    ++accepted;
    CHECK(s.request("DELETE", r.header("Location")).status == 200);
  }
  CHECK(accepted == 20);
  CHECK(s.pool.stats().queued == 0);
  // Another client is not refused for the first one's cancelled jobs.
  CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 2})", {}, "127.0.0.2").status == 202);
  const jobs::endpoint_stats stats = s.work.stats();
  CHECK(stats.cancelled == 20);
  CHECK(stats.refused_full == 0);
}

// The same when the DELETE comes before the submission has posted the job's task: a retry under its key, answered on
// another I/O thread while the submission is held between storing the job and posting it, tells its id. The task is
// never posted, and the place held for it is given back.
TEST_CASE("a job cancelled before its task was posted is never posted and gives its place back", "[jobs][endpoint]") {
  job_server s({}, {.threads = 1, .max_queued = 2}, 2);
  two_threads_connections connections(s);
  raw_client& submitting = connections.first();
  raw_client& retrying = connections.second();

  REQUIRE(s.request("POST", "/jobs", R"({"kind": "block"})").status == 202);
  REQUIRE(s.wait_blocked());  // the only worker is busy: what comes next is queued
  const std::string body = R"({"kind": "echo", "value": 1})";
  const std::string key = "Idempotency-Key: k1\r\n";
  held_submission submission(s, submitting, body, key);
  // Held publishing its queued status: stored, not yet posted.
  const bool held = submission.wait_held();
  std::optional<test::raw_response> retry, cancelled;
  if (held) retry = job_server::exchange(retrying, "POST", "/jobs", body, key);
  if (retry) cancelled = job_server::exchange(retrying, "DELETE", retry->header("Location"));
  const auto& first = submission.finish();
  REQUIRE(held);
  REQUIRE(first);
  REQUIRE(retry);
  REQUIRE(cancelled);
  CHECK(first->status == 202);
  CHECK(cancelled->status == 200);
  CHECK(nlohmann::json::parse(cancelled->body)["status"] == "cancelled");
  CHECK(s.pool.stats().queued == 0);  // never posted
  CHECK(s.request("POST", "/jobs", body, {}, "127.0.0.2").status == 202);
  CHECK(s.request("POST", "/jobs", R"({"kind": "echo", "value": 2})", {}, "127.0.0.2").status == 202);
  CHECK(s.work.stats().cancelled == 1);
}

// A DELETE that comes while the submission publishes the job's queued status (a retry under its key told the id)
// leaves its final status to the submission, which publishes it after "queued"; nothing follows it. Published by the
// DELETE at once, "cancelled" could reach the topic before "queued": a listener saw the job cancelled, then queued
// again, and the topic did not end with its final status. (The broker numbers a message before its observer hears
// of it, so the gate holds the submission just after "queued" is numbered, under the topic's lock: a DELETE that
// publishes meanwhile waits there until the gate gives up; a moment earlier, it overtook "queued".)
TEST_CASE("a job cancelled while its queued status is published has queued then cancelled on its topic",
          "[jobs][endpoint]") {
  job_server s({}, {.threads = 1, .max_queued = 2}, 2);
  two_threads_connections connections(s);
  raw_client& retrying = connections.second();
  const std::string blocking = s.request("POST", "/jobs", R"({"kind": "block"})").header("Location");
  REQUIRE(s.wait_blocked());  // the only worker is busy: what comes next is queued
  const std::string body = R"({"kind": "echo", "value": 1})";
  const std::string key = "Idempotency-Key: k1\r\n";
  held_submission submission(s, connections.first(), body, key);
  const bool held = submission.wait_held();
  std::optional<test::raw_response> retry, cancelled;
  if (held) retry = job_server::exchange(retrying, "POST", "/jobs", body, key);
  if (retry) cancelled = job_server::exchange(retrying, "DELETE", retry->header("Location"));
  REQUIRE(submission.finish());
  REQUIRE(retry);
  REQUIRE(cancelled);
  CHECK(submission.held_until_released());  // the DELETE published nothing while "queued" was on its way
  CHECK(cancelled->status == 200);
  const std::string location = retry->header("Location");
  // A retry waiting for the end is answered at once: the final status is on the topic.
  const auto waited = s.request("POST", "/jobs?wait=10", body, key);
  CHECK(waited.status == 200);
  CHECK(nlohmann::json::parse(waited.body)["status"] == "cancelled");
  // The worker freed, the cancelled job does not run: nothing follows its final status.
  CHECK(s.request("DELETE", blocking).status == 202);
  s.wake_blocked();
  CHECK(s.await_status(blocking, "cancelled")["status"] == "cancelled");
  std::vector<std::string> statuses;
  for (const auto& m : s.broker.read(s.work.topic(location.substr(6)), 0, 100).messages) {
    statuses.push_back(nlohmann::json::parse(m.data())["status"]);
  }
  CHECK(statuses == std::vector<std::string>{"queued", "cancelled"});
  const jobs::endpoint_stats stats = s.work.stats();
  CHECK(stats.cancelled == 2);
  CHECK(stats.unfinished == 0);
}

// A status change the broker refuses (here it may have one topic only; or a full `wait` subscriber) is counted, not
// lost silently: the job runs and is answered all the same, and `publish_failed` tells that listeners missed some.
TEST_CASE("status changes the broker refuses are counted", "[jobs][endpoint]") {
  job_server s({}, {.threads = 1}, 1, {.max_topics = 1, .retention = {.max_messages = 10}});
  REQUIRE(s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 1})").status == 200);
  CHECK(s.work.stats().publish_failed == 0);
  // The first job's topic is the only one there may be: the second job's queued, running and final statuses are
  // refused.
  const auto second = s.request("POST", "/jobs?wait=10", R"({"kind": "echo", "value": 2})");
  REQUIRE(second.status == 200);
  CHECK(nlohmann::json::parse(second.body)["result"] == 2);
  CHECK(s.work.stats().publish_failed == 3);
  metrics_registry registry;
  const auto handles = s.work.export_metrics(registry, "work");
  std::string text_format;
  registry.expose(text_format);
  CHECK(text_format.find("switchboard_jobs_publish_failed_total{endpoint=\"work\"} 3\n") != std::string::npos);
}

namespace {

// One request on a new connection, from any thread (no assertion inside: Catch's are for the test's thread).
std::optional<test::raw_response> try_request(job_server& s, std::string_view method, std::string_view target,
                                              std::string_view body = {}, std::string_view extra = {}) {
  raw_client c(s.server.port(), 10s);
  if (!c.try_send(std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n" + std::string(extra) +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body))) {
    return std::nullopt;
  }
  return c.read_response();
}

int status_rank(const std::string& status) {
  if (status == "queued") return 0;
  if (status == "running") return 1;
  return 2;  // final: succeeded, failed or cancelled
}

}  // namespace

// A model of the job resource under concurrent clients: submissions (some with a shared Idempotency-Key, some with
// ?wait), status reads and cancellations race each other and the workers. Every observation must fit one story per
// job: its status only moves forward (queued, running, final) and its final status never changes; one key is one job;
// and once all are final, each job's topic ends with that final status and the counters add up.
TEST_CASE("jobs: concurrent submissions, waits, reads and cancellations keep every job's story consistent",
          "[jobs][endpoint]") {
  job_server s({}, {.threads = 2});
  struct observation {
    std::string id;
    std::string status;
  };
  std::mutex m;
  std::vector<std::vector<observation>> seen(4);  // per client thread, in its order
  std::map<std::string, std::set<std::string>> ids_by_key;
  std::set<std::string> ids;
  std::vector<std::string> problems;
  auto note_problem = [&](std::string what) {
    const std::lock_guard lock(m);
    problems.push_back(std::move(what));
  };
  std::vector<std::thread> clients;
  for (unsigned t = 0; t < seen.size(); ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
      std::vector<std::string> mine;
      for (int op = 0; op < 40; ++op) {
        const int roll = pick(0, 9);
        if (roll < 5 || mine.empty()) {
          // A key names one body, shared by every thread: a retry with it must return the same job.
          const int key = pick(0, 7);
          const bool keyed = pick(0, 2) == 0;
          const int steps = keyed ? 20'000 * (key + 1) : pick(1, 300'000);
          const std::string body = pick(0, 9) == 0 && !keyed ? R"({"kind": "fail"})"
                                                             : R"({"kind": "steps", "value": )" + std::to_string(steps) + "}";
          const bool wait = pick(0, 2) == 0;
          const auto r = try_request(s, "POST", wait ? "/jobs?wait=0.05" : "/jobs", body,
                                     keyed ? "Idempotency-Key: key-" + std::to_string(key) + "\r\n" : "");
          if (!r) return note_problem("a submission got no answer");
          if (r->status == 429 || r->status == 503) continue;  // refusals are allowed under load
          if (r->status != 200 && r->status != 202) return note_problem("submission answered " + std::to_string(r->status));
          const auto j = nlohmann::json::parse(r->body);
          const std::string id = j["id"];
          if (r->status == 200 && status_rank(j["status"]) != 2) note_problem("a 200 to ?wait that is not final");
          const std::lock_guard lock(m);
          ids.insert(id);
          if (keyed) ids_by_key["key-" + std::to_string(key)].insert(id);
          seen[t].push_back({id, j["status"]});
          mine.push_back(id);
        } else {
          const std::string& id = mine[static_cast<std::size_t>(pick(0, static_cast<int>(mine.size()) - 1))];
          const bool cancel = roll >= 8;
          const auto r = try_request(s, cancel ? "DELETE" : "GET", "/jobs/" + id);
          if (!r) return note_problem("a " + std::string(cancel ? "DELETE" : "GET") + " got no answer");
          if (r->status != 200 && r->status != 202) return note_problem("status answered " + std::to_string(r->status));
          const std::lock_guard lock(m);
          seen[t].push_back({id, nlohmann::json::parse(r->body)["status"]});
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  for (const auto& p : problems) UNSCOPED_INFO(p);
  CHECK(problems.empty());

  for (const auto& [key, same] : ids_by_key) {
    INFO(key);
    CHECK(same.size() == 1);
  }
  // Every job ends (none blocks). Then its status, its topic's last message and every observation agree.
  std::map<std::string, std::string> final_status;
  for (const std::string& id : ids) {
    INFO(id);
    const auto now = s.await_status_where("/jobs/" + id, [](const std::string& st) { return status_rank(st) == 2; });
    REQUIRE(status_rank(now["status"]) == 2);
    final_status[id] = now["status"];
    const auto last = s.broker.read(s.work.topic(id), s.broker.last_sequence(s.work.topic(id)) - 1, 1);
    REQUIRE(last.messages.size() == 1);
    CHECK(nlohmann::json::parse(last.messages[0].data())["status"] == now["status"]);
  }
  for (const auto& thread_seen : seen) {
    std::map<std::string, int> rank;  // per job, the furthest status this thread has seen
    for (const observation& o : thread_seen) {
      INFO(o.id << " seen " << o.status);
      CHECK(status_rank(o.status) >= rank[o.id]);
      rank[o.id] = status_rank(o.status);
      if (status_rank(o.status) == 2) CHECK(o.status == final_status[o.id]);
    }
  }
  const jobs::endpoint_stats stats = s.work.stats();
  CHECK(stats.submitted == ids.size());
  CHECK(stats.unfinished == 0);
  CHECK(stats.succeeded + stats.failed + stats.cancelled == ids.size());
}
