// A model test of the job endpoint and the worker pool under it: one test thread, over loopback, submits jobs for
// several clients (with and without an Idempotency-Key, the same key with the same or another body, bad bodies,
// ?wait), reads statuses and results, and cancels jobs queued, running, final and unknown, while the jobs run on a
// small pool. The jobs finish at once (echo, progress steps, failure) or run until the test tells them what to do
// (report progress, including NaN and past 1; succeed; fail; notice a cancellation or ignore it), so the test knows
// at each step where every job is. A reference model of docs/jobs.md predicts every answer (status code, headers,
// the status document), the pool's counters, the endpoint's counters, which jobs are stored (`max_jobs` making room
// by forgetting the job that finished first, a retention of 0 forgetting every finished job at the next look), the
// per-client limit, the pool's queue limit, and the exact list of statuses published on each job's topic (queued,
// running, progress per `progress_interval`, one final status, in that order; a forgotten job's topic retired).
// Each step waits, on a deadline, for the pool to reach the state the model predicts; nothing sleeps. A second test
// sends two first submissions under one new key at once, on two I/O threads: one job.
#include <switchboard/jobs/endpoint.hpp>

#include "support/catch.hpp"
#include "support/raw_http.hpp"
#include "support/test_server.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;
using test::raw_client;
using test::raw_response;

namespace {

using steady = std::chrono::steady_clock;
using jobs::job_status;

// A job that runs until the test tells it what to do, one command at a time.
struct gate {
  enum class op { progress, succeed, fail };
  struct command {
    op what;
    double value = 0;
  };
  std::mutex m;
  std::condition_variable cv;
  bool entered = false;              // the function runs (its job's running status is published)
  int runs = 0;                      // times the function was called: a job runs at most once
  std::deque<command> commands;
  int done = 0;                      // progress commands carried out
  bool abandon = false;              // the test's end: return at once
};

struct params {
  std::size_t threads = 2;
  std::size_t max_queued = 3;
  std::size_t max_jobs = 6;
  std::size_t per_client = 2;
  std::size_t clients = 3;
  std::chrono::seconds retention{600};
  std::chrono::milliseconds progress_interval{0};
  int steps = 300;
  std::size_t io_threads = 1;
};

// The server: the endpoint's routes on a one-thread runtime, clients named by the X-Client header.
struct fixture {
  explicit fixture(const params& p)
      : server(p.io_threads),
        broker(server.rt().executor(), {.retention = {.max_messages = 256}}),
        pool({.threads = p.threads, .max_queued = p.max_queued}),
        work(pool, broker, factory(),
             {.retention = p.retention,
              .max_jobs = p.max_jobs,
              .max_unfinished_per_client = p.per_client,
              .client_key = [](const http::request& req) { return std::string(req.header("X-Client")); },
              .retry_after = 3s,
              .progress_interval = p.progress_interval}) {
    jobs::add_routes(server.routes(), work);
    // One acceptor that hands connections to the I/O threads in turn (not one per thread, which the kernel picks by
    // hash): a test with two threads knows which connection each serves.
    server.start({.reuse_port = false});
  }

  ~fixture() {
    {
      const std::lock_guard lock(gates_mutex);
      for (auto& [n, g] : gates) {
        const std::lock_guard glock(g->m);
        g->abandon = true;
        g->cv.notify_all();
      }
    }
    server.stop();
  }

  // {"kind": "echo", "value": v} returns v; {"kind": "fail", "n": n} throws "boom n"; {"kind": "steps", "n": n}
  // reports i/n for i = 1..n and returns n; {"kind": "gate", "g": g, "honour": b} runs gate g (b: it notices a
  // cancellation; else it goes on until told to end). Anything else: 400.
  jobs::job_factory factory() {
    return [this](const nlohmann::json& body) -> jobs::job_work {
      const std::string kind = body.value("kind", "");
      if (kind == "echo") return [v = body.value("value", nlohmann::json())](jobs::job_context&) { return v; };
      if (kind == "fail") {
        return [n = body.value("n", 0)](jobs::job_context&) -> nlohmann::json {
          throw std::runtime_error("boom " + std::to_string(n));
        };
      }
      if (kind == "steps") {
        return [n = body.value("n", 1)](jobs::job_context& ctx) -> nlohmann::json {
          for (int i = 1; i <= n; ++i) ctx.progress(double(i) / n);
          return n;
        };
      }
      if (kind == "gate") {
        auto g = std::make_shared<gate>();
        {
          const std::lock_guard lock(gates_mutex);
          gates[body.value("g", -1)] = g;  // a retry of a forgotten job's key makes a new job of the same gate
        }
        return [g, honour = body.value("honour", true)](jobs::job_context& ctx) -> nlohmann::json {
          std::unique_lock lock(g->m);
          ++g->runs;
          g->entered = true;
          g->cv.notify_all();
          for (;;) {
            g->cv.wait(lock, [&] { return g->abandon || !g->commands.empty() || (honour && ctx.cancelled()); });
            if (g->abandon) return "abandoned";
            if (honour && ctx.cancelled()) throw jobs::cancelled_error();
            const gate::command c = g->commands.front();
            g->commands.pop_front();
            if (c.what == gate::op::succeed) return {{"value", c.value}};
            if (c.what == gate::op::fail) throw std::runtime_error("failed " + std::to_string(int(c.value)));
            lock.unlock();
            ctx.progress(c.value);
            lock.lock();
            ++g->done;
            g->cv.notify_all();
          }
        };
      }
      if (kind == "rendezvous") {
        // Held in the factory until `rendezvous_at` submissions are there together (or 10 s).
        std::unique_lock lock(rendezvous_mutex);
        ++rendezvous;
        rendezvous_changed.notify_all();
        rendezvous_changed.wait_for(lock, 10s, [this] { return rendezvous >= rendezvous_at; });
        return [](jobs::job_context&) -> nlohmann::json { return "met"; };
      }
      throw http::problem_error(http::status::bad_request, "unknown kind");
    };
  }

  std::shared_ptr<gate> gate_of(int n) {
    const std::lock_guard lock(gates_mutex);
    const auto it = gates.find(n);
    return it == gates.end() ? nullptr : it->second;
  }

  static std::string request_bytes(std::string_view method, std::string_view target, std::string_view body,
                                    std::string_view extra) {
    return std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
           std::string(extra) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  }

  std::optional<raw_response> request(std::string_view method, std::string_view target, std::string_view body = {},
                                      std::string_view extra = {}) {
    raw_client c(server.port(), 10s);
    if (!c.try_send(request_bytes(method, target, body, extra))) return std::nullopt;
    return c.read_response();
  }

  test::test_server server;
  std::mutex rendezvous_mutex;
  std::condition_variable rendezvous_changed;
  int rendezvous = 0;     // submissions of kind "rendezvous" in the factory so far
  int rendezvous_at = 2;  // how many the factory holds until they are all there
  std::mutex gates_mutex;
  std::map<int, std::shared_ptr<gate>> gates;
  pubsub::broker broker;
  jobs::worker_pool pool;  // after the broker: its workers stop before the broker goes
  jobs::endpoint work;
};

std::size_t count_header(const raw_response& r, std::string_view name) {
  return static_cast<std::size_t>(std::count_if(r.fields.begin(), r.fields.end(), [&](const auto& f) {
    return http::detail::iequals(f.first, name);
  }));
}

// Until `done` holds, or 10 s.
template <class F>
bool eventually(F done) {
  const auto deadline = steady::now() + 10s;
  while (!done()) {
    if (steady::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

enum class kind { echo, fail, steps, gate };

// What a submission asks for: its body and what the model reads from it. A job keeps it; a retry sends it again.
struct requested_work {
  std::string body;
  kind k = kind::echo;
  nlohmann::json value;  // echo's result
  int n = 0;             // fail's number, steps' count
  int gate_no = -1;
  bool honour = true;
};

struct model_job : requested_work {
  std::string id;
  std::size_t client = 0;
  std::string key;
  double reported = 0;   // a gated job's last progress report (reports only grow)
  job_status status = job_status::queued;
  double progress = 0;
  nlohmann::json result;
  std::string error;
  bool cancel_requested = false;
  bool stored = true;
  bool progress_published = false;
  std::vector<nlohmann::json> published;  // what its topic must hold, in order
};

// A submission as sent.
struct submission : requested_work {
  std::size_t client = 0;
  std::string key;
  bool valid = true;  // the factory accepts it
};

// The reference model of docs/jobs.md, and the checks of each answer against it.
class model {
 public:
  model(fixture& f, const params& p, unsigned seed) : f_(f), p_(p), rng_(seed) {}

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  void run() {
    for (int step = 0; step < p_.steps; ++step) {
      INFO("step " << step);
      const int roll = pick(0, 99);
      if (roll < 30) submit_new();
      else if (roll < 38) retry_key();
      else if (roll < 50) get_status();
      else if (roll < 56) get_result();
      else if (roll < 68) cancel();
      else if (roll < 88) drive_gate();
      else if (roll < 93) wait_in_flight();
      else if (roll < 96) bad_request();
      else check_stats();
      if (step % 25 == 24) check_topics();
    }
    // The end: every gated job still running is told to succeed, the queue drains, nothing is left.
    while (!running_.empty()) {
      const std::string id = *running_.begin();
      finish_gate(id, gate::op::succeed);
    }
    REQUIRE(queue_.empty());
    check_stats();
    check_topics();
    for (const auto& [id, j] : jobs_) {
      INFO(id);
      CHECK(jobs::is_final(j.status));
    }
    {
      const std::lock_guard lock(f_.gates_mutex);
      for (const auto& [n, g] : f_.gates) {
        INFO("gate " << n);
        const std::lock_guard glock(g->m);
        CHECK(g->runs <= 1);  // no job ran twice
      }
    }
    const jobs::endpoint_stats s = f_.work.stats();
    CHECK(s.unfinished == 0);
    CHECK(s.succeeded + s.failed + s.cancelled == s.submitted);
    const jobs::worker_pool_stats ps = f_.pool.stats();
    CHECK(ps.busy == 0);
    CHECK(ps.queued == 0);
    // Every client may submit again (its unfinished count went back to 0).
    for (std::size_t c = 0; c < p_.clients; ++c) {
      for (std::size_t i = 0; i < p_.per_client; ++i) {
        const auto r = f_.request("POST", "/jobs?wait=30", R"({"kind": "echo", "value": 0})", client_header(c));
        REQUIRE(r);
        CHECK(r->status == 200);
      }
    }
    UNSCOPED_INFO("coverage: " << coverage_summary());
  }

  std::string coverage_summary() const {
    std::string out;
    for (const auto& [what, n] : coverage_) out += what + "=" + std::to_string(n) + " ";
    return out;
  }
  const std::map<std::string, int>& coverage() const { return coverage_; }

 private:
  static constexpr std::string_view status_name(job_status s) { return jobs::to_string(s); }

  nlohmann::json doc(const model_job& j) const {
    nlohmann::json d = {{"id", j.id}, {"status", status_name(j.status)}, {"progress", j.progress}};
    if (j.status == job_status::succeeded) d["result"] = j.result;
    if (j.status == job_status::failed) d["error"] = j.error;
    return d;
  }

  void publish(model_job& j) { j.published.push_back(doc(j)); }

  // A retention of 0: every finished job is forgotten at the endpoint's next look (`expire_locked`).
  void expire() {
    if (p_.retention.count() != 0) return;
    while (!finished_.empty()) forget_first_finished();
  }

  void forget_first_finished() {
    model_job& j = jobs_.at(finished_.front());
    finished_.pop_front();
    j.stored = false;
    --stored_;
    if (!j.key.empty()) keys_.erase({j.client, j.key});
  }

  void finish(model_job& j, job_status status, nlohmann::json result, std::string error) {
    j.status = status;
    if (status == job_status::succeeded) {
      j.result = std::move(result);
      j.progress = 1;
    }
    j.error = std::move(error);
    --unfinished_[j.client];
    ++(status == job_status::succeeded ? succeeded_ : status == job_status::failed ? failed_ : cancelled_);
    finished_.push_back(j.id);
    publish(j);
  }

  void report(model_job& j, double fraction) {
    if (std::isnan(fraction)) return;  // not a number: ignored
    j.progress = std::clamp(fraction, 0.0, 1.0);
    if (p_.progress_interval.count() == 0 || !j.progress_published) publish(j);
    j.progress_published = true;
  }

  // The pool's workers take queued tasks while some are free (a cancelled job's task is no longer there): an
  // immediate job runs to its end, a gated one holds its worker.
  void settle_model() {
    while (running_.size() < p_.threads && !queue_.empty()) {
      model_job& j = jobs_.at(queue_.front());
      queue_.pop_front();
      j.status = job_status::running;
      publish(j);
      switch (j.k) {
        case kind::gate: running_.insert(j.id); continue;
        case kind::echo: finish(j, job_status::succeeded, j.value, {}); break;
        case kind::fail: finish(j, job_status::failed, {}, "boom " + std::to_string(j.n)); break;
        case kind::steps:
          for (int i = 1; i <= j.n; ++i) report(j, double(i) / j.n);
          finish(j, job_status::succeeded, j.n, {});
          break;
      }
      ++completed_;
    }
  }

  // Waits until the pool is where the model says (its tasks run or waiting, every running gated job inside its
  // function): then every status change the model made has happened and been published.
  void settle() {
    settle_model();
    const bool ok = eventually([&] {
      const jobs::worker_pool_stats s = f_.pool.stats();
      if (s.busy != running_.size() || s.queued != queue_.size() || s.completed != completed_) return false;
      for (const std::string& id : running_) {
        const auto g = f_.gate_of(jobs_.at(id).gate_no);
        if (!g) return false;
        const std::lock_guard lock(g->m);
        if (!g->entered) return false;
      }
      return true;
    });
    const jobs::worker_pool_stats s = f_.pool.stats();
    INFO("pool busy " << s.busy << " queued " << s.queued << " completed " << s.completed << "; model "
                      << running_.size()
                      << " " << queue_.size() << " " << completed_);
    REQUIRE(ok);
  }

  std::string client_header(std::size_t client) const { return "X-Client: c" + std::to_string(client) + "\r\n"; }

  submission random_submission() {
    submission s;
    s.client = static_cast<std::size_t>(pick(0, static_cast<int>(p_.clients) - 1));
    const int r = pick(0, 99);
    if (r < 15) {
      s.k = kind::echo;
      s.value = pick(0, 2) == 0 ? nlohmann::json{{"v", pick(0, 99)}} : nlohmann::json(pick(-5, 500));
      s.body = nlohmann::json{{"kind", "echo"}, {"value", s.value}}.dump();
    } else if (r < 22) {
      s.k = kind::fail;
      s.n = pick(0, 999);
      s.body = nlohmann::json{{"kind", "fail"}, {"n", s.n}}.dump();
    } else if (r < 32) {
      s.k = kind::steps;
      s.n = pick(1, 4);
      s.body = nlohmann::json{{"kind", "steps"}, {"n", s.n}}.dump();
    } else if (r < 95) {
      s.k = kind::gate;
      s.gate_no = next_gate_++;
      s.honour = pick(0, 2) != 0;
      s.body = nlohmann::json{{"kind", "gate"}, {"g", s.gate_no}, {"honour", s.honour}}.dump();
    } else {
      s.valid = false;
      s.body = nlohmann::json{{"kind", "nope"}, {"n", pick(0, 9)}}.dump();
    }
    if (pick(0, 2) == 0) s.key = "key-" + std::to_string(pick(0, 7));
    return s;
  }

  std::size_t unfinished_for(std::size_t client) const {
    const auto it = unfinished_.find(client);
    return it == unfinished_.end() ? 0 : it->second;
  }

  // What a new submission (its key unknown) gets: nullopt when accepted, else the refusal's status.
  std::optional<unsigned> refusal(std::size_t client) const {
    if (stored_ >= p_.max_jobs && finished_.empty()) return 503;  // every stored job is unfinished
    if (unfinished_for(client) >= p_.per_client) return 429;
    if (queue_.size() >= p_.max_queued) return 503;  // the pool's queue
    return std::nullopt;
  }

  // Applies an accepted submission to the model; returns whether its job starts at once.
  bool accept(const submission& s, const std::string& id) {
    if (stored_ >= p_.max_jobs) forget_first_finished();  // room made only for a submission accepted
    const bool starts_now = queue_.empty() && running_.size() < p_.threads;
    model_job j;
    j.id = id;
    j.client = s.client;
    j.key = s.key;
    static_cast<requested_work&>(j) = s;
    publish(j);
    jobs_.emplace(id, std::move(j));
    ++stored_;
    ++submitted_;
    ++unfinished_[s.client];
    if (!s.key.empty()) keys_[{s.client, s.key}] = id;
    queue_.push_back(id);
    return starts_now;
  }

  // The headers and document of a status answer (`GET`, `DELETE`, 200 to ?wait, 202 to a submission).
  void check_status_answer(const raw_response& r, const model_job& j, unsigned code, bool submitted) {
    INFO("job " << j.id << " answer " << r.status << " " << r.body);
    CHECK(r.status == code);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.header("Cache-Control") == "no-store");
    CHECK(count_header(r, "Retry-After") <= 1);
    const bool final = jobs::is_final(j.status);
    if (submitted && code == 202) {
      CHECK(r.header("Location") == "/jobs/" + j.id);
      CHECK(r.header("Retry-After") == "3");
    } else {
      CHECK_FALSE(r.has_header("Location"));
      if (final) CHECK_FALSE(r.has_header("Retry-After"));
      else CHECK(r.header("Retry-After") == "3");
    }
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    CHECK(body == doc(j));
  }

  // A 202 to a submission whose job may have started (and, immediate, finished) before the answer was made: a
  // status between queued and the one the model reached.
  void check_racy_submitted(const raw_response& r, const model_job& j) {
    INFO("job " << j.id << " answer " << r.status << " " << r.body);
    CHECK(r.status == 202);
    CHECK(r.header("Location") == "/jobs/" + j.id);
    CHECK(r.header("Retry-After") == "3");
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body.value("id", "") == j.id);
    const std::string st = body.value("status", "");
    if (st == "queued") {
      CHECK(body["progress"] == 0.0);
    } else if (st == "running") {
      CHECK(j.status != job_status::queued);
      CHECK(body["progress"].is_number());
    } else {
      CHECK(body == doc(j));
    }
  }

  void check_refusal(const raw_response& r, unsigned code) {
    INFO("answer " << r.status << " " << r.body);
    CHECK(r.status == code);
    if (code == 429 || code == 503) CHECK(r.header("Retry-After") == "3");
    CHECK_FALSE(r.has_header("Location"));
  }

  // The outcome of submission `s` (sent with ?wait when `wait` is not empty) by the model, and its check. Returns
  // the job's id when one answered.
  std::optional<std::string> submit(const submission& s, bool wait) {
    ++coverage_["submit"];
    // A key the endpoint knows answers with its job (422 on another body), before the factory.
    std::string extra = client_header(s.client);
    if (!s.key.empty()) extra += "Idempotency-Key: " + s.key + "\r\n";
    if (!s.key.empty()) expire();
    const auto known = s.key.empty() ? keys_.end() : keys_.find({s.client, s.key});
    if (known != keys_.end()) {
      model_job& j = jobs_.at(known->second);
      if (j.body != s.body) {
        const auto r = f_.request("POST", wait ? "/jobs?wait=30" : "/jobs", s.body, extra);
        REQUIRE(r);
        ++coverage_["422"];
        check_refusal(*r, 422);
        return std::nullopt;
      }
      // A job that will not end by itself is waited for briefly (the answer is then the 202).
      const bool final = jobs::is_final(j.status);
      const auto r = f_.request("POST", !wait ? "/jobs" : final ? "/jobs?wait=30" : "/jobs?wait=0.01", s.body, extra);
      REQUIRE(r);
      ++coverage_["same key"];
      check_status_answer(*r, j, wait && final ? 200 : 202, true);
      return j.id;
    }
    if (!s.valid) {
      const auto r = f_.request("POST", wait ? "/jobs?wait=30" : "/jobs", s.body, extra);
      REQUIRE(r);
      check_refusal(*r, 400);
      return std::nullopt;
    }
    expire();  // start()
    const auto refused = refusal(s.client);
    const bool starts_now = queue_.empty() && running_.size() < p_.threads;
    const bool ends_by_itself = starts_now && s.k != kind::gate;
    const char* target = !wait ? "/jobs" : ends_by_itself ? "/jobs?wait=30" : "/jobs?wait=0.01";
    const auto r = f_.request("POST", target, s.body, extra);
    REQUIRE(r);
    if (refused) {
      ++coverage_[std::to_string(*refused)];
      check_refusal(*r, *refused);
      (*refused == 429 ? refused_client_ : refused_full_)++;
      return std::nullopt;
    }
    INFO("answer " << r->status << " " << r->body);
    REQUIRE((r->status == 200 || r->status == 202));
    const auto body = nlohmann::json::parse(r->body, nullptr, false);
    REQUIRE(body.is_object());
    const std::string id = body.value("id", "");
    REQUIRE(id.size() == 32);
    REQUIRE_FALSE(jobs_.contains(id));
    accept(s, id);
    settle();
    const model_job& j = jobs_.at(id);
    if (wait && ends_by_itself) {
      ++coverage_["waited 200"];
      check_status_answer(*r, j, 200, true);
    } else if (starts_now) {
      check_racy_submitted(*r, j);
    } else {
      check_status_answer(*r, jobs_.at(id), 202, true);  // stays queued (a gated job here: started, not ended)
    }
    return id;
  }

  void submit_new() { submit(random_submission(), pick(0, 3) == 0); }

  // The same key again: by its client, with its body (the same job) or another (422); or, now and then, by any client
  // with a new body (keys are per client: another client's is its own job; its body is new, so that no two jobs
  // share a gate).
  void retry_key() {
    if (keys_.empty()) return submit_new();
    auto it = keys_.begin();
    std::advance(it, pick(0, static_cast<int>(keys_.size()) - 1));
    const model_job& j = jobs_.at(it->second);
    submission s = random_submission();
    s.key = it->first.second;
    if (pick(0, 3) != 0) {
      s.client = j.client;
      if (pick(0, 3) != 0) {
        static_cast<requested_work&>(s) = j;
        s.valid = true;
      }
    }
    submit(s, pick(0, 2) == 0);
  }

  // A job of the model (stored or forgotten), or now and then an id that was never one.
  std::string random_id(bool prefer_unfinished) {
    if (jobs_.empty() || pick(0, 9) == 0) return std::string(32, 'a' + static_cast<char>(pick(0, 5)));
    std::vector<const std::string*> ids;
    for (const auto& [id, j] : jobs_) {
      if (!prefer_unfinished || !jobs::is_final(j.status)) ids.push_back(&id);
    }
    if (ids.empty()) for (const auto& [id, j] : jobs_) ids.push_back(&id);
    return *ids[static_cast<std::size_t>(pick(0, static_cast<int>(ids.size()) - 1))];
  }

  model_job* stored_job(const std::string& id) {
    const auto it = jobs_.find(id);
    return it == jobs_.end() || !it->second.stored ? nullptr : &it->second;
  }

  void check_not_found(const raw_response& r) {
    INFO("answer " << r.status << " " << r.body);
    CHECK(r.status == 404);
    ++coverage_["404"];
  }

  void get_status() {
    const std::string id = random_id(false);
    const auto r = f_.request("GET", "/jobs/" + id);
    REQUIRE(r);
    expire();
    if (const model_job* j = stored_job(id)) check_status_answer(*r, *j, 200, false);
    else check_not_found(*r);
  }

  void get_result() {
    const std::string id = random_id(false);
    const auto r = f_.request("GET", "/jobs/" + id + "/result");
    REQUIRE(r);
    expire();
    const model_job* j = stored_job(id);
    if (!j) return check_not_found(*r);
    INFO("job " << id << " answer " << r->status << " " << r->body);
    if (j->status == job_status::succeeded) {
      CHECK(r->status == 200);
      CHECK(nlohmann::json::parse(r->body, nullptr, false) == j->result);
      ++coverage_["result"];
    } else {
      CHECK(r->status == 303);
      CHECK(r->header("Location") == "/jobs/" + id);
      ++coverage_["303"];
    }
  }

  // The cancellation of a job (or of an unknown id) by the model; the answer is checked.
  void apply_cancel(const std::string& id, const raw_response& r) {
    expire();
    model_job* j = stored_job(id);
    if (!j) return check_not_found(r);
    if (jobs::is_final(j->status)) {
      ++coverage_["delete final"];
      return check_status_answer(r, *j, 200, false);
    }
    j->cancel_requested = true;
    if (j->status == job_status::queued) {
      ++coverage_["delete queued"];
      std::erase(queue_, id);  // its task is taken out of the pool's queue, never run
      finish(*j, job_status::cancelled, {}, {});
      check_status_answer(r, *j, 200, false);
      return settle();
    }
    ++coverage_[j->honour ? "delete running" : "delete running, ignored"];
    check_status_answer(r, *j, 202, false);
    if (j->honour) {
      // Cancellation only sets the job's flag: its function is woken to look at it.
      const auto g = f_.gate_of(j->gate_no);
      REQUIRE(g);
      {
        const std::lock_guard lock(g->m);
        g->cv.notify_all();
      }
      finish(*j, job_status::cancelled, {}, {});
      running_.erase(id);
      ++completed_;
      settle();
    }
  }

  void cancel() {
    const std::string id = random_id(pick(0, 3) != 0);
    const auto r = f_.request("DELETE", "/jobs/" + id);
    REQUIRE(r);
    apply_cancel(id, *r);
  }

  void finish_gate(const std::string& id, gate::op what) {
    model_job& j = jobs_.at(id);
    const auto g = f_.gate_of(j.gate_no);
    REQUIRE(g);
    const double value = pick(0, 999);
    {
      const std::lock_guard lock(g->m);
      g->commands.push_back({what, value});
      g->cv.notify_all();
    }
    running_.erase(id);
    ++completed_;
    if (what == gate::op::fail) {
      ++coverage_["gate failed"];
      finish(j, job_status::failed, {}, "failed " + std::to_string(int(value)));
    } else if (j.cancel_requested) {
      ++coverage_["cancel ignored, then returned"];
      finish(j, job_status::cancelled, {}, {});  // its result is not taken: it was cancelled
    } else {
      ++coverage_["gate succeeded"];
      finish(j, job_status::succeeded, {{"value", value}}, {});
    }
    settle();
  }

  void progress_gate(const std::string& id) {
    model_job& j = jobs_.at(id);
    const auto g = f_.gate_of(j.gate_no);
    REQUIRE(g);
    double fraction;
    const int r = pick(0, 9);
    if (r == 0) {
      fraction = std::numeric_limits<double>::quiet_NaN();  // 0/0 from a job with nothing to do
      ++coverage_["progress NaN"];
    } else if (r == 1) {
      fraction = j.reported + 1.5;  // past 1: shown as 1
      ++coverage_["progress past 1"];
    } else {
      fraction = j.reported + pick(1, 30) / 100.0;
      ++coverage_["progress"];
    }
    if (!std::isnan(fraction)) j.reported = fraction;
    int done = 0;
    {
      const std::lock_guard lock(g->m);
      done = g->done;
      g->commands.push_back({gate::op::progress, fraction});
      g->cv.notify_all();
    }
    report(j, fraction);
    const bool ok = eventually([&] {
      const std::lock_guard lock(g->m);
      return g->done > done;
    });
    REQUIRE(ok);
  }

  void drive_gate() {
    if (running_.empty()) return get_status();
    auto it = running_.begin();
    std::advance(it, pick(0, static_cast<int>(running_.size()) - 1));
    const std::string id = *it;
    const int r = pick(0, 9);
    if (r < 4) progress_gate(id);
    else if (r < 8) finish_gate(id, gate::op::succeed);
    else finish_gate(id, gate::op::fail);
  }

  // A gated job submitted with ?wait=30 and a fresh key, held while the test ends it (succeeds, fails or cancels it)
  // from the outside: the waiting request must then be answered 200 with the final status.
  void wait_in_flight() {
    submission s;
    s.client = static_cast<std::size_t>(pick(0, static_cast<int>(p_.clients) - 1));
    s.k = kind::gate;
    s.gate_no = next_gate_++;
    s.honour = pick(0, 2) != 0;
    s.body = nlohmann::json{{"kind", "gate"}, {"g", s.gate_no}, {"honour", s.honour}}.dump();
    s.key = "wait-" + std::to_string(s.gate_no);
    expire();  // find_by_key
    expire();  // start
    if (refusal(s.client)) {
      submit(s, false);
      return;
    }
    ++coverage_["wait in flight"];
    raw_client waiting(f_.server.port(), 10s);
    REQUIRE(waiting.try_send(fixture::request_bytes("POST", "/jobs?wait=30", s.body,
                                                    client_header(s.client) + "Idempotency-Key: " + s.key + "\r\n")));
    const std::uint64_t before = submitted_;
    REQUIRE(eventually([&] { return f_.work.stats().submitted > before; }));
    // The retry under the key tells the job's id.
    const auto r = f_.request("POST", "/jobs", s.body, client_header(s.client) + "Idempotency-Key: " + s.key + "\r\n");
    REQUIRE(r);
    REQUIRE(r->status == 202);
    const std::string id = nlohmann::json::parse(r->body).value("id", "");
    REQUIRE_FALSE(jobs_.contains(id));
    const bool starts_now = accept(s, id);
    settle();
    model_job& j = jobs_.at(id);
    if (starts_now) check_racy_submitted(*r, j);
    else check_status_answer(*r, j, 202, true);
    if (j.status == job_status::queued) {
      const auto d = f_.request("DELETE", "/jobs/" + id);
      REQUIRE(d);
      apply_cancel(id, *d);
    } else {
      const int how = pick(0, 2);
      if (how == 2) {
        const auto d = f_.request("DELETE", "/jobs/" + id);
        REQUIRE(d);
        apply_cancel(id, *d);
      }
      if (!jobs::is_final(j.status)) finish_gate(id, how == 1 ? gate::op::fail : gate::op::succeed);
    }
    const auto answer = waiting.read_response();
    REQUIRE(answer);
    check_status_answer(*answer, j, 200, true);  // made from the job it holds, even one forgotten since
  }

  // Refused before anything is looked up: a bad ?wait, a body that is not JSON, a key past 255 bytes.
  void bad_request() {
    ++coverage_["bad request"];
    const std::size_t client = static_cast<std::size_t>(pick(0, static_cast<int>(p_.clients) - 1));
    std::optional<raw_response> r;
    switch (pick(0, 2)) {
      case 0: r = f_.request("POST", "/jobs?wait=x", R"({"kind": "echo"})", client_header(client)); break;
      case 1: r = f_.request("POST", "/jobs", "{not json", client_header(client) + "Idempotency-Key: key-1\r\n"); break;
      default:
        r = f_.request("POST", "/jobs", R"({"kind": "echo"})",
                       client_header(client) + "Idempotency-Key: " + std::string(256, 'k') + "\r\n");
    }
    REQUIRE(r);
    check_refusal(*r, 400);
  }

  void check_stats() {
    CHECK_FALSE(f_.work.contains("0"));  // looks: forgets what the retention says
    expire();
    const jobs::endpoint_stats s = f_.work.stats();
    std::size_t unfinished = 0;
    for (const auto& [c, n] : unfinished_) unfinished += n;
    CHECK(s.stored == stored_);
    CHECK(s.unfinished == unfinished);
    CHECK(s.submitted == submitted_);
    CHECK(s.succeeded == succeeded_);
    CHECK(s.failed == failed_);
    CHECK(s.cancelled == cancelled_);
    CHECK(s.refused_client == refused_client_);
    CHECK(s.refused_full == refused_full_);
    CHECK(s.publish_failed == 0);  // every status the model lists was published
    CHECK(s.stored <= p_.max_jobs);
    for (const auto& [id, j] : jobs_) {
      INFO(id);
      CHECK(f_.work.contains(id) == j.stored);
    }
  }

  // Each stored job's topic holds exactly what the model published, in order; a forgotten job's topic is gone, and
  // no other topic exists.
  void check_topics() {
    CHECK_FALSE(f_.work.contains("0"));  // looks: forgets what the retention says
    expire();
    std::size_t topics = 0;
    for (const auto& [id, j] : jobs_) {
      INFO("job " << id);
      const std::string topic = f_.work.topic(id);
      const auto page = f_.broker.read(topic, 0, 1000);
      std::vector<nlohmann::json> got;
      for (const auto& m : page.messages) got.push_back(nlohmann::json::parse(m.data(), nullptr, false));
      INFO("published " << nlohmann::json(got).dump() << "\nexpected " << nlohmann::json(j.published).dump());
      if (!j.stored) {
        CHECK_FALSE(f_.broker.stats(topic));  // retired with the job
        continue;
      }
      ++topics;
      CHECK(got == j.published);
    }
    CHECK(f_.broker.stats().topics == topics);
  }

  fixture& f_;
  params p_;
  std::mt19937 rng_;
  std::map<std::string, model_job> jobs_;  // every job accepted, by id
  std::map<std::pair<std::size_t, std::string>, std::string> keys_;  // (client, Idempotency-Key) -> id, while stored
  std::deque<std::string> finished_;         // stored finished jobs, in the order they finished
  std::deque<std::string> queue_;            // the pool's queue (a cancelled job's task leaves it at once)
  std::set<std::string> running_;            // gated jobs holding a worker
  std::map<std::size_t, std::size_t> unfinished_;
  std::size_t stored_ = 0;
  std::uint64_t completed_ = 0;  // pool tasks run
  std::uint64_t submitted_ = 0, succeeded_ = 0, failed_ = 0, cancelled_ = 0, refused_client_ = 0, refused_full_ = 0;
  int next_gate_ = 0;
  std::map<std::string, int> coverage_;
};

}  // namespace

TEST_CASE("jobs: a random session of submissions, reads, cancellations and job ends matches the model",
          "[jobs][endpoint][random]") {
  // Seeds vary the limits, the retention (0: finished jobs forgotten at the next look) and the progress interval
  // (0: every report published; a day: only the first).
  std::map<std::string, int> total;
  for (unsigned seed = 1; seed <= 8; ++seed) {
    params p;
    std::mt19937 rng(seed);
    auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    p.threads = static_cast<std::size_t>(pick(1, 3));
    p.max_queued = static_cast<std::size_t>(pick(1, 4));
    p.max_jobs = static_cast<std::size_t>(pick(3, 10));
    p.per_client = static_cast<std::size_t>(pick(1, 3));
    p.clients = static_cast<std::size_t>(pick(1, 3));
    p.retention = seed % 4 == 3 ? 0s : 600s;
    p.progress_interval = seed % 2 == 0 ? std::chrono::milliseconds(24h) : 0ms;
    INFO("seed " << seed << ": threads " << p.threads << ", max_queued " << p.max_queued << ", max_jobs "
                 << p.max_jobs << ", per client " << p.per_client << ", clients " << p.clients << ", retention "
                 << p.retention.count() << " s, progress interval " << p.progress_interval.count() << " ms");
    fixture f(p);
    model m(f, p, seed);
    m.run();
    for (const auto& [what, n] : m.coverage()) total[what] += n;
  }
  // The mix reached each case.
  for (const char* what : {"422", "429", "503", "404", "same key", "waited 200", "wait in flight", "delete queued",
                           "delete running", "delete running, ignored", "cancel ignored, then returned",
                           "delete final", "gate failed", "gate succeeded", "progress NaN", "result", "303"}) {
    INFO(what);
    CHECK(total[what] > 0);
  }
}

// Two first submissions under one new Idempotency-Key, at once on two I/O threads, both past the key lookup while
// the factory runs: they are one submission retried, so one job (the second is answered with the first's).
TEST_CASE("jobs: concurrent first submissions under one Idempotency-Key make one job", "[jobs][endpoint]") {
  params p;
  p.io_threads = 2;
  fixture f(p);
  const std::string body = R"({"kind": "rendezvous"})";
  const std::string bytes =
      fixture::request_bytes("POST", "/jobs?wait=10", body, "X-Client: a\r\nIdempotency-Key: same\r\n");
  // Connections go to the threads in turn, from the acceptor on the first: the first connection (to the first
  // thread) only reads, the second (to the second thread) holds its thread in the factory, and the third is
  // served by the first thread.
  raw_client reader(f.server.port(), 10s);
  REQUIRE(reader.try_send(fixture::request_bytes("GET", "/jobs/none", {}, {})));
  const auto none = reader.read_response();
  REQUIRE(none);
  CHECK(none->status == 404);
  raw_client first(f.server.port(), 10s);
  REQUIRE(first.try_send(bytes));
  REQUIRE(eventually([&] {
    const std::lock_guard lock(f.rendezvous_mutex);
    return f.rendezvous == 1;
  }));
  raw_client second(f.server.port(), 10s);
  REQUIRE(second.try_send(bytes));
  const auto a = first.read_response();
  const auto b = second.read_response();
  REQUIRE(a);
  REQUIRE(b);
  {
    const std::lock_guard lock(f.rendezvous_mutex);
    REQUIRE(f.rendezvous == 2);  // both were in the factory together
  }
  CHECK(a->status == 200);
  CHECK(b->status == 200);
  const auto ja = nlohmann::json::parse(a->body, nullptr, false);
  const auto jb = nlohmann::json::parse(b->body, nullptr, false);
  CHECK(ja.value("id", "a") == jb.value("id", "b"));
  CHECK(ja.value("result", "") == "met");
  CHECK(f.work.stats().submitted == 1);
  CHECK(f.work.stats().stored == 1);
}
