// switchboard/jobs/endpoint.hpp
//
// The asynchronous request-reply pattern over HTTP, with its synchronous form from the same handler:
//
//   POST   /jobs            202 Accepted, Location: /jobs/{id}, Retry-After; the job runs on a worker pool
//   POST   /jobs?wait=S     holds up to S seconds: 200 with the result if the job finished, else the 202 above
//   GET    /jobs/{id}       {"id", "status", "progress", "result" | "error"}; Retry-After while not final
//   GET    /jobs/{id}/result  200 with the result once succeeded, else 303 See Other to the status
//   DELETE /jobs/{id}       cancels (a queued job at once, a running one when its function notices)
//
// `Idempotency-Key` makes a client's retried submission return the same job (a different body under the same key is
// 422); keys are scoped per client (`client_key`), so another client's equal key is another job.
// Limits, each answered with `Retry-After`: a client's unfinished jobs (`max_unfinished_per_client`, 429), the
// jobs stored (`max_jobs`, 503) and the pool's queue (`worker_pool_options::max_queued`, 503).
// Finished jobs are kept for `retention`, then forgotten (404). Every change of a job (running, progress, final)
// is published on the broker topic `<topic_prefix><id>` as the status JSON, so SSE, WebSocket and long-poll
// clients are told without polling the status. A job's result and error need not be valid UTF-8: bytes that are not
// are shown as U+FFFD.
//
//   jobs::worker_pool pool({.threads = 2});
//   jobs::endpoint work(pool, broker, [](const nlohmann::json& body) -> jobs::job_work { ... });
//   jobs::add_routes(routes, work);
//
// Thread safety: handlers run on the connection threads, job functions on the pool's workers; the state is shared
// under one lock. The pool and broker must outlive the endpoint and its routes.
#pragma once

#include <switchboard/core/detail/per_key_count.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/http/client_key.hpp>
#include <switchboard/http/handler.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/jobs/error.hpp>
#include <switchboard/jobs/job.hpp>
#include <switchboard/jobs/offload.hpp>
#include <switchboard/jobs/worker_pool.hpp>
#include <switchboard/pubsub/broker.hpp>

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::jobs {

struct endpoint_options {
  /// How long a finished job (and its idempotency key) is kept for `GET`; then it is forgotten. Less when the store
  /// is full (see `max_jobs`).
  std::chrono::seconds retention{600};
  /// Jobs stored at most, unfinished and finished together. A submission to a full store makes room by forgetting
  /// the job that finished first, before its `retention` is over (once it is accepted: a refused one forgets
  /// nothing); only when every stored job is unfinished does it get 503 with `Retry-After`. (Refusing instead would
  /// let one client that submits `max_jobs` small jobs stop everyone's submissions for a whole `retention`.)
  std::size_t max_jobs = 10'000;
  /// The most unfinished (queued or running) jobs one client (`client_key`) may have; past it its submissions get 429
  /// with `Retry-After` until one of its jobs finishes. Without it one client could fill the worker pool's queue,
  /// and every other client would get 503 until the queue drained. A queued job cancelled (`DELETE`) leaves the
  /// pool's queue at once (`worker_pool::take_back`) as it stops counting here, so a client that submits and cancels
  /// in a loop cannot fill the queue either. Users behind one NAT or proxy share an address: keep it roomy, or set
  /// `client_key`.
  std::size_t max_unfinished_per_client = 64;
  /// What identifies a client for `max_unfinished_per_client` and scopes its `Idempotency-Key`s; empty: the peer's IP
  /// address (`http::client_key`). Behind a trusted reverse proxy, return the address it forwards, or a user id.
  http::client_key_function client_key{};
  /// The `Retry-After` of 202 answers and of unfinished statuses (when a poller should look again), and of the 429 and
  /// 503 refusals.
  std::chrono::seconds retry_after{1};
  /// The longest `?wait=S` honoured.
  std::chrono::seconds max_wait{30};
  /// The longest `Idempotency-Key` accepted (400 past it), in bytes: keys are stored (with their client's key, which
  /// the job keeps anyway) as long as their job, so that `max_jobs` keys of the header's size limit (16 KiB) cannot
  /// take hundreds of MiB. Stripe's limit; a UUID is 36.
  std::size_t max_key_length = 255;
  /// Job `id` publishes its changes on topic `<topic_prefix><id>`.
  std::string topic_prefix = "jobs.";
  /// A job's progress reports are published at most this often, however often its function reports (`GET` always
  /// shows the latest; the running and final statuses are always published). 0: every report.
  std::chrono::milliseconds progress_interval{100};
  /// Where the routes live (`Location` headers are built from it).
  std::string base_path = "/jobs";
};

/// The job endpoint's counters (`endpoint::stats`).
struct endpoint_stats {
  std::size_t stored = 0;           ///< Jobs in the store now, unfinished and finished.
  std::size_t unfinished = 0;       ///< Of those, queued or running.
  std::uint64_t submitted = 0;      ///< Jobs accepted (202 or 200); retries answered by `Idempotency-Key` excluded.
  std::uint64_t succeeded = 0;      ///< Jobs finished with a result.
  std::uint64_t failed = 0;         ///< Jobs whose function threw.
  std::uint64_t cancelled = 0;      ///< Jobs cancelled (`DELETE`), queued or running.
  std::uint64_t refused_client = 0; ///< Submissions refused with 429 (`max_unfinished_per_client`).
  std::uint64_t refused_full = 0;   ///< Submissions refused with 503 (`max_jobs`, or the pool's queue full).
  /// Status changes (queued, running, progress, final) the broker did not publish on the job's topic
  /// (`publish_result::error`: `would_block` for a full `wait` subscriber, `too_many_topics`, ...): its listeners
  /// missed them, though `GET` and `?wait` still show the job.
  std::uint64_t publish_failed = 0;
};

namespace detail {

struct job_record {
  std::string id;
  job_status status = job_status::queued;
  double progress = 0;
  nlohmann::json result;
  std::string error;
  std::atomic<bool> cancel{false};
  std::string key;               // its key in `by_key_` (`scoped_key`), if submitted with an Idempotency-Key
  std::string client;            // who submitted it (`endpoint_options::client_key`)
  std::size_t body_hash = 0;     // of the submission under that key
  std::chrono::steady_clock::time_point finished_at;
  std::optional<worker_pool::task_id> task;  // its task in the pool, to take back when cancelled while queued
  // When a progress report was last published; none yet: the first is always published (a default time point, the
  // clock's epoch, would hold back reports for `progress_interval` after the machine booted).
  std::optional<std::chrono::steady_clock::time_point> progress_published;
  std::vector<std::shared_ptr<asio::steady_timer>> waiters;  // ?wait requests, woken when final
  bool queued_published = false;  // the queued status is on the job's topic (its final status may follow)
  bool final_published = false;   // the final status is on the job's topic
  bool forgotten = false;         // no longer in the store (retention over, or room made)
};

class job_state : public std::enable_shared_from_this<job_state> {
 public:
  job_state(worker_pool& pool, pubsub::broker& broker, job_factory factory, endpoint_options options)
      : pool_(pool), broker_(broker), factory_(std::move(factory)), options_(std::move(options)) {
    if (!factory_) throw std::invalid_argument("switchboard::jobs::endpoint: no job factory");
    if (options_.max_jobs == 0 || options_.max_unfinished_per_client == 0) {
      throw std::invalid_argument("switchboard::jobs::endpoint: max_jobs and max_unfinished_per_client must be at least 1");
    }
  }

  const endpoint_options& options() const noexcept { return options_; }

  endpoint_stats stats() {
    const std::lock_guard lock(mutex_);
    endpoint_stats s = stats_;
    s.stored = jobs_.size();
    return s;
  }

  bool contains(std::string_view id) { return find(id) != nullptr; }

  asio::awaitable<http::response> submit(http::request& req) {
    const std::chrono::milliseconds wait = wait_param(req);
    const nlohmann::json& body = req.json();  // 400 when not JSON
    const std::string_view idempotency_key = req.header("Idempotency-Key");
    if (idempotency_key.size() > options_.max_key_length) {
      throw http::problem_error(http::status::bad_request, "The Idempotency-Key is longer than " +
                                                               std::to_string(options_.max_key_length) + " bytes.");
    }
    std::string client = http::client_key(options_.client_key, req);
    const std::string key = idempotency_key.empty() ? std::string() : scoped_key(client, idempotency_key);
    const std::size_t hash = std::hash<std::string_view>{}(req.body());
    std::shared_ptr<job_record> job;
    if (!key.empty()) job = find_by_key(key, hash);  // 422 on a different body
    if (!job) {
      job_work work = factory_(body);  // validates; throws problem_error
      std::error_code refused;
      job = start(key, hash, std::move(client), std::move(work), refused);
      if (refused == error::too_many_for_client) co_return too_many_for_client();
      if (refused) co_return overloaded_response(options_.retry_after);
    }
    if (wait.count() > 0) co_await wait_final(*job, wait);
    co_return submitted(*job, wait.count() > 0);
  }

  http::response status(http::request& req) {
    const auto job = find(req.param("id"));
    if (!job) return http::response::problem(http::status::not_found, "No such job (or it has expired).");
    const std::lock_guard lock(mutex_);
    return status_locked(*job, http::status::ok);
  }

  http::response result(http::request& req) {
    const auto job = find(req.param("id"));
    if (!job) return http::response::problem(http::status::not_found, "No such job (or it has expired).");
    const std::lock_guard lock(mutex_);
    if (job->status != job_status::succeeded) return http::response::redirect(location(*job), http::status::see_other);
    return json_response(job->result, http::status::ok);
  }

  http::response cancel(http::request& req) {
    const auto job = find(req.param("id"));
    if (!job) return http::response::problem(http::status::not_found, "No such job (or it has expired).");
    std::unique_lock lock(mutex_);
    if (is_final(job->status)) return status_locked(*job, http::status::ok);
    job->cancel = true;
    if (job->status == job_status::queued) {
      // Not started: final now, and its task taken out of the pool's queue, so that the place it held is free as
      // soon as its client's count is. Left there until a worker skipped it, it held a place that no count showed:
      // a client that submitted and cancelled in a loop, never past `max_unfinished_per_client`, filled the queue
      // and every other client got 503. A task a worker has taken already finds the job cancelled and skips it. A
      // job whose queued status is still being published (a retry under its key told its id first) has no task yet:
      // `start` then posts none, and publishes its final status after the queued one.
      std::function<void()> task;
      if (job->task) task = pool_.take_back(*job->task);
      finish_locked(lock, job, job_status::cancelled, {}, {});
      task = nullptr;  // without the lock: it holds the application's work function
      lock.lock();
      return status_locked(*job, http::status::ok);
    }
    return status_locked(*job, http::status::accepted);  // running: stops when its function checks
  }

  void cancel_running() {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, job] : jobs_) {
      if (job->status == job_status::running) job->cancel = true;
    }
  }

 private:
  std::chrono::milliseconds wait_param(const http::request& req) const {
    return req.query_seconds("wait", options_.max_wait).value_or(std::chrono::milliseconds(0));
  }

  std::string location(const job_record& job) const { return options_.base_path + "/" + job.id; }

  std::shared_ptr<job_record> find(std::string_view id) {
    const std::lock_guard lock(mutex_);
    expire_locked();
    const auto it = jobs_.find(std::string(id));
    return it == jobs_.end() ? nullptr : it->second;
  }

  std::shared_ptr<job_record> find_by_key(const std::string& key, std::size_t hash) {
    const std::lock_guard lock(mutex_);
    expire_locked();
    const auto it = by_key_.find(key);
    if (it == by_key_.end()) return nullptr;
    const auto& job = jobs_.at(it->second);
    if (job->body_hash != hash) throw different_body();
    return job;
  }

  // The stored form of `client`'s Idempotency-Key `key`. Keys are scoped per client, as the resource may define
  // their uniqueness (draft-ietf-httpapi-idempotency-key-header §2.2; Stripe scopes them per account): in one space
  // for all clients, another client's equal key was answered with this client's job (its id, so its status and
  // result) or with 422. The client key's length comes first, so that no two (client, key) pairs make one string
  // (a client key is bytes, and an address may end in any).
  static std::string scoped_key(const std::string& client, std::string_view key) {
    std::string scoped = std::to_string(client.size());
    scoped += ':';
    scoped += client;
    scoped += key;
    return scoped;
  }

  static http::problem_error different_body() {
    return http::problem_error(http::status::unprocessable_content,
                               "This Idempotency-Key was used with a different request body.");
  }

  // Stores a new job of `client` and queues it on the pool (or returns the job a concurrent submission under `key`
  // stored first; 422 if its body differs). nullptr, with the reason in `refused`, when the store is full
  // (too_many_jobs), the client has `max_unfinished_per_client` unfinished jobs (too_many_for_client) or the pool
  // is full (pool_full). Every check is made, and a place in the pool's queue held, before the job is stored: once
  // stored, a retry under its key or a DELETE may see it, so it can no longer be refused (a job refused after a
  // retry had been answered 202 for it vanished, and a cancelled one was counted twice). For the same reason room in
  // a full store is made (the job that finished first forgotten) only once nothing can refuse the submission: a
  // refused one must not cost another job its result.
  std::shared_ptr<job_record> start(const std::string& key, std::size_t hash, std::string client, job_work work,
                                    std::error_code& refused) {
    auto job = std::make_shared<job_record>();
    std::optional<worker_pool::reservation> place;
    std::string queued;  // the job's queued status
    {
      const std::lock_guard lock(mutex_);
      expire_locked();
      if (!key.empty()) {
        // A submission under the same key got here first, on another I/O thread, while this one's factory ran: this
        // is its retry, answered with its job (else one key would have two jobs, and the key's later retries would
        // find only one of them).
        if (const auto it = by_key_.find(key); it != by_key_.end()) {
          const auto& first = jobs_.at(it->second);
          if (first->body_hash != hash) throw different_body();
          return first;
        }
      }
      const bool full = jobs_.size() >= options_.max_jobs;
      if (full && finished_.empty()) {  // every stored job is unfinished
        refused = error::too_many_jobs;
        ++stats_.refused_full;
        return nullptr;
      }
      if (!unfinished_per_client_.try_add(client, options_.max_unfinished_per_client)) {
        refused = error::too_many_for_client;
        ++stats_.refused_client;
        return nullptr;
      }
      place = pool_.try_reserve();
      if (!place) {
        unfinished_per_client_.remove(client);
        refused = error::pool_full;
        ++stats_.refused_full;
        return nullptr;
      }
      if (full) expire_locked(true);
      ++stats_.submitted;
      ++stats_.unfinished;
      do {
        job->id = new_id();
      } while (jobs_.contains(job->id));
      job->key = key;
      job->body_hash = hash;
      job->client = std::move(client);
      jobs_.emplace(job->id, job);
      if (!key.empty()) by_key_.emplace(key, job->id);
      queued = dump(json_locked(*job));
    }
    // The queued status is published before the job can run: published after, it raced the worker, whose running
    // (even final) status could reach the topic first; the topic then ended with a second final status or with
    // "queued", and a listener saw the job go back and never finish. It is made with the job, and a final status
    // waits for it (`finish_locked`): meanwhile a retry under the job's key may tell its id, and a DELETE cancel it.
    // (That DELETE published "cancelled" at once, which could reach the topic before "queued": the job came back to
    // life after its final status. Made here, "queued" could itself read "cancelled": a second final status.)
    publish(*job, std::move(queued));
    std::unique_lock lock(mutex_);
    job->queued_published = true;
    if (is_final(job->status)) {  // cancelled meanwhile: its final status follows, and it is never posted
      publish_final_locked(lock, job);
      return job;  // `place`, unused, is given back
    }
    // Posted under the lock, so that a DELETE finds either its task to take back or (above) a job never posted. (The
    // pool destroys a task it does not queue, here under the lock, only while it is destroyed: never before the
    // endpoint.)
    job->task = pool_.post(std::move(*place), [self = shared_from_this(), job, work = std::move(work)] { self->run(job, work); });
    return job;
  }

  // On a worker thread.
  void run(const std::shared_ptr<job_record>& job, const job_work& work) {
    {
      std::lock_guard lock(mutex_);
      if (job->status != job_status::queued) return;  // cancelled while queued
      job->status = job_status::running;
    }
    publish(*job);
    job_context context(job->cancel, [this, job](double fraction) {
      {
        const std::lock_guard lock(mutex_);
        job->progress = fraction;
        const auto now = std::chrono::steady_clock::now();
        if (job->progress_published && now - *job->progress_published < options_.progress_interval) {
          return;  // a later publish will tell
        }
        job->progress_published = now;
      }
      publish(*job);
    });
    // Only the job's function is tried: the job is then finished once, outside the handlers. (Finishing inside the
    // try made a failure to publish the final status finish the job a second time, as failed.)
    job_status status = job_status::succeeded;
    nlohmann::json result;
    std::string error;
    try {
      result = work(context);
    } catch (const cancelled_error&) {
      status = job_status::cancelled;
    } catch (const std::exception& e) {
      status = job_status::failed;
      error = e.what();
    } catch (...) {
      status = job_status::failed;
      error = "the job failed";
    }
    std::unique_lock lock(mutex_);
    if (status == job_status::succeeded && job->cancel) status = job_status::cancelled;  // its result is not taken
    finish_locked(lock, job, status, std::move(result), std::move(error));
  }

  // Makes the job final and publishes it (`publish_final_locked`), unless its queued status is not yet on its topic
  // (cancelled while its submission publishes it): `start` publishes the final status after it. Called with the lock
  // held; returns with it released. A job already final is left as it is: a second finish would release its
  // client's count and `unfinished` twice, count it twice, and list it twice for retention (where the second entry,
  // its job forgotten, made every later request fail).
  void finish_locked(std::unique_lock<std::mutex>& lock, const std::shared_ptr<job_record>& job, job_status status,
                     nlohmann::json result, std::string error) {
    if (is_final(job->status)) {
      lock.unlock();
      return;
    }
    job->status = status;
    if (status == job_status::succeeded) {
      job->result = std::move(result);
      job->progress = 1;
    }
    job->error = std::move(error);
    job->finished_at = std::chrono::steady_clock::now();
    unfinished_per_client_.remove(job->client);
    --stats_.unfinished;
    ++(status == job_status::succeeded ? stats_.succeeded
       : status == job_status::failed  ? stats_.failed
                                        : stats_.cancelled);
    finished_.push_back(job->id);
    if (!job->queued_published) {
      lock.unlock();
      return;
    }
    publish_final_locked(lock, job);
  }

  // Publishes the final job's status, last on its topic, and then wakes its ?wait requests: a client answered with
  // the final status finds it on the job's topic too. Called with the lock held; returns with it released
  // (publishing runs without it). The job may be forgotten before it is published (retention 0, a full store): its
  // topic is then retired here, after the final status, rather than made again by it.
  void publish_final_locked(std::unique_lock<std::mutex>& lock, const std::shared_ptr<job_record>& job) {
    lock.unlock();
    publish(*job);
    lock.lock();
    job->final_published = true;
    if (job->forgotten) broker_.retire_topic(options_.topic_prefix + job->id);
    auto waiters = std::move(job->waiters);
    lock.unlock();
    // Each waiting request's timer is moved to the past on its own executor (timers are not thread-safe): a wait
    // in progress ends at once.
    for (auto& t : waiters) asio::post(t->get_executor(), [t] { t->expires_at(std::chrono::steady_clock::time_point::min()); });
  }

  asio::awaitable<void> wait_final(job_record& job, std::chrono::milliseconds wait) {
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, wait);
    {
      const std::lock_guard lock(mutex_);
      if (job.final_published) co_return;
      job.waiters.push_back(timer);
    }
    co_await timer->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    const std::lock_guard lock(mutex_);
    std::erase(job.waiters, timer);
  }

  // 429: the client has `max_unfinished_per_client` unfinished jobs (RFC 6585 §4).
  http::response too_many_for_client() const {
    http::response r = http::response::problem(http::status::too_many_requests,
                                               make_error_code(error::too_many_for_client).message());
    r.set("Retry-After", std::to_string(options_.retry_after.count()));
    return r;
  }

  http::response submitted(job_record& job, bool waited) {
    const std::lock_guard lock(mutex_);
    if (waited && is_final(job.status)) return status_locked(job, http::status::ok);
    http::response r = status_locked(job, http::status::accepted);
    r.set("Location", location(job));  // RFC 9110 §15.3.3: where to monitor the request
    r.set("Retry-After", std::to_string(options_.retry_after.count()));
    return r;
  }

  nlohmann::json json_locked(const job_record& job) const {
    nlohmann::json j = {{"id", job.id}, {"status", to_string(job.status)}, {"progress", job.progress}};
    if (job.status == job_status::succeeded) j["result"] = job.result;
    if (job.status == job_status::failed) j["error"] = job.error;
    return j;
  }

  // A job's result and error are the application's, and need not be valid UTF-8 (a byte string, a message quoting
  // bad input), which nlohmann's `dump` refuses with an exception: the job's documents are serialised with bytes
  // that are not UTF-8 replaced by U+FFFD. (Thrown on a worker inside the handler of the job's own exception, it
  // ended the program; from the result, it finished the job twice; in a handler, it answered 500 for good.)
  static std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  static http::response json_response(const nlohmann::json& j, http::status s) {
    return http::response(s, dump(j), "application/json");
  }

  http::response status_locked(const job_record& job, http::status s) const {
    http::response r = json_response(json_locked(job), s);
    if (!is_final(job.status)) r.set("Retry-After", std::to_string(options_.retry_after.count()));
    r.set("Cache-Control", "no-store");
    return r;
  }

  // Publishes the job's status on its topic: `text` when given (its status made earlier), else its status now. A
  // change the broker refuses is counted (`publish_failed`), not thrown: the job's state has changed already, and a
  // throw would end the program on a worker.
  void publish(const job_record& job, std::optional<std::string> text = std::nullopt) {
    bool published = false;
    try {
      if (!text) {
        const std::lock_guard lock(mutex_);
        text = dump(json_locked(job));
      }
      published = !broker_.publish(options_.topic_prefix + job.id, {.payload = shared_bytes::copy(*text),
                                                                     .headers = {{"content-type", "application/json"}}})
                       .error;
    } catch (const std::exception&) {  // out of memory
    }
    if (!published) {
      const std::lock_guard lock(mutex_);
      ++stats_.publish_failed;
    }
  }

  // Forgets the finished jobs whose retention is over and, with `make_room` (a full store taking one more job), the
  // one that finished first (see `endpoint_options::max_jobs`). A forgotten job's topic is retired (erased now, or
  // when its last listener leaves) once its final status is published there.
  void expire_locked(bool make_room = false) {
    const auto now = std::chrono::steady_clock::now();
    while (!finished_.empty()) {
      const std::string& id = finished_.front();
      // A job finishes once, and stays stored until forgotten here; an id no longer stored is passed over rather
      // than thrown on (which would stop every later expiry, and so every request, for good).
      const auto it = jobs_.find(id);
      if (it == jobs_.end()) {
        finished_.pop_front();
        continue;
      }
      job_record& job = *it->second;
      const bool over = now - job.finished_at >= options_.retention;
      if (!over && !(make_room && jobs_.size() >= options_.max_jobs)) return;
      if (!job.key.empty()) by_key_.erase(job.key);
      job.forgotten = true;
      if (job.final_published) broker_.retire_topic(options_.topic_prefix + id);
      jobs_.erase(id);
      finished_.pop_front();
    }
  }

  // 128 random bits in hex: job ids are not guessable, so knowing one's own job reveals no other.
  static std::string new_id() {
    thread_local std::mt19937_64 rng(std::random_device{}());
    static constexpr char digits[] = "0123456789abcdef";
    std::string id;
    for (int half = 0; half < 2; ++half) {
      std::uint64_t bits = rng();
      for (int i = 0; i < 16; ++i, bits >>= 4) id.push_back(digits[bits & 15]);
    }
    return id;
  }

  worker_pool& pool_;
  pubsub::broker& broker_;
  job_factory factory_;
  endpoint_options options_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<job_record>> jobs_;
  std::unordered_map<std::string, std::string> by_key_;
  std::deque<std::string> finished_;  // ids in the order they finished, for retention
  switchboard::detail::per_key_count<std::string> unfinished_per_client_;  // queued and running jobs per client
  endpoint_stats stats_;  // the counters (`stored` is filled in by `stats()`)
};

}  // namespace detail

/// The job endpoint. Not copyable; its routes keep its state alive.
class endpoint {
 public:
  /// Jobs made by `factory`, run on `pool`, their changes published on `broker`. Throws `std::invalid_argument`
  /// on bad options.
  endpoint(worker_pool& pool, pubsub::broker& broker, job_factory factory, endpoint_options options = {})
      : state_(std::make_shared<detail::job_state>(pool, broker, std::move(factory), std::move(options))) {}

  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  /// The topic on which job `id` publishes its changes.
  std::string topic(std::string_view id) const { return state_->options().topic_prefix + std::string(id); }

  /// Whether job `id` is known: queued, running, or finished and not yet forgotten (`retention`). For the routes
  /// that serve a job's topic beside the endpoint's own (a long poll, an event stream), so that they answer 404 for
  /// an id that is not a job instead of waiting for news that never comes.
  bool contains(std::string_view id) const { return state_->contains(id); }

  /// The counters (a consistent snapshot). Any thread.
  endpoint_stats stats() const { return state_->stats(); }

  /// Asks every running job to stop, as a DELETE does (each stops when its function checks `cancelled()`, and ends
  /// `cancelled`). For a shutdown: `worker_pool`'s destructor waits for the tasks that are running, so call this
  /// first, or a long job holds the process until it is done. Queued jobs are left to the pool's destructor, which
  /// destroys them without running them. Any thread.
  void cancel_running() { state_->cancel_running(); }

  /// Exposes `stats()` in `registry`, labelled `endpoint="<name>"`, for as long as the returned handles live: the
  /// gauges `switchboard_jobs_stored` and `switchboard_jobs_unfinished`, and the counters
  /// `switchboard_jobs_submitted_total`, `..._succeeded_total`, `..._failed_total`, `..._cancelled_total`,
  /// `..._refused_client_total` (429), `..._refused_full_total` (503) and `..._publish_failed_total`.
  std::vector<metric_callback> export_metrics(metrics_registry& registry, std::string_view name = "jobs") const {
    std::vector<metric_callback> out;
    const std::vector<metric_label> labels{{"endpoint", name}};
    const auto state = state_;
    const auto gauge = [&](const char* metric, const char* help, std::size_t endpoint_stats::*field) {
      out.push_back(registry.gauge_callback(metric, help, labels, [state, field] { return double(state->stats().*field); }));
    };
    const auto counter = [&](const char* metric, const char* help, std::uint64_t endpoint_stats::*field) {
      out.push_back(registry.counter_callback(metric, help, labels, [state, field] { return state->stats().*field; }));
    };
    gauge("switchboard_jobs_stored", "Jobs stored, unfinished and finished.", &endpoint_stats::stored);
    gauge("switchboard_jobs_unfinished", "Jobs queued or running.", &endpoint_stats::unfinished);
    counter("switchboard_jobs_submitted_total", "Jobs accepted.", &endpoint_stats::submitted);
    counter("switchboard_jobs_succeeded_total", "Jobs finished with a result.", &endpoint_stats::succeeded);
    counter("switchboard_jobs_failed_total", "Jobs whose function failed.", &endpoint_stats::failed);
    counter("switchboard_jobs_cancelled_total", "Jobs cancelled.", &endpoint_stats::cancelled);
    counter("switchboard_jobs_refused_client_total", "Submissions refused at max_unfinished_per_client (429).",
            &endpoint_stats::refused_client);
    counter("switchboard_jobs_refused_full_total", "Submissions refused by a full store or pool (503).",
            &endpoint_stats::refused_full);
    counter("switchboard_jobs_publish_failed_total", "Job status changes the broker did not publish.",
            &endpoint_stats::publish_failed);
    return out;
  }

 private:
  friend void add_routes(http::router& routes, const endpoint& jobs);
  std::shared_ptr<detail::job_state> state_;
};

/// Adds `POST base`, `GET base/{id}`, `GET base/{id}/result` and `DELETE base/{id}` to `routes`.
inline void add_routes(http::router& routes, const endpoint& jobs) {
  const auto state = jobs.state_;
  const std::string& base = state->options().base_path;
  routes.post(base, [state](http::request& req) { return state->submit(req); });
  routes.get(base + "/{id}", [state](http::request& req) { return state->status(req); });
  routes.get(base + "/{id}/result", [state](http::request& req) { return state->result(req); });
  routes.del(base + "/{id}", [state](http::request& req) { return state->cancel(req); });
}

}  // namespace switchboard::jobs
