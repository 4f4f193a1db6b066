// The routes of the `jobs` example: a CPU-bound job (counting primes) behind the asynchronous request-reply
// endpoint, with its progress told by long polling (GET /jobs/{id}/poll) and by Server-Sent Events
// (GET /jobs/{id}/events). `service` owns everything, so that a server mounts it in one line:
//
//   examples::jobs::service jobs(rt, routes);
#pragma once

#include <switchboard/core/metrics.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/jobs/endpoint.hpp>
#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/sse/encoder.hpp>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace examples::jobs {

namespace sb = switchboard;

/// The largest `limit` accepted: about half a minute of work for one core of the 2-core test machine (5,000,000
/// takes about a second), long enough to watch progress and cancel.
inline constexpr std::uint64_t max_limit = 50'000'000;

/// Counts the primes below `limit` (trial division by odd numbers: deliberately CPU-bound), reporting progress
/// every percent and stopping when the job is cancelled.
inline nlohmann::json count_primes(std::uint64_t limit, sb::jobs::job_context& ctx) {
  std::uint64_t count = limit > 2 ? 1 : 0;  // 2
  const std::uint64_t step = limit / 100 + 1;
  for (std::uint64_t n = 3; n < limit; n += 2) {
    if ((n - 1) % step < 2) {
      ctx.throw_if_cancelled();
      ctx.progress(double(n) / double(limit));
    }
    bool prime = true;
    for (std::uint64_t d = 3; d * d <= n; d += 2) {
      if (n % d == 0) {
        prime = false;
        break;
      }
    }
    if (prime) ++count;
  }
  return {{"count", count}};
}

/// `{"kind": "primes", "limit": N}` (N up to `max_limit`) becomes a job; anything else is refused with 400.
inline sb::jobs::job_work make_job(const nlohmann::json& body) {
  if (!body.is_object() || body.value("kind", "") != "primes" || !body.contains("limit") ||
      !body["limit"].is_number_unsigned() || body["limit"].get<std::uint64_t>() > max_limit) {
    throw sb::http::problem_error(sb::http::status::bad_request,
                                  "expected {\"kind\": \"primes\", \"limit\": N} with N at most " +
                                      std::to_string(max_limit));
  }
  const auto limit = body["limit"].get<std::uint64_t>();
  return [limit](sb::jobs::job_context& ctx) { return count_primes(limit, ctx); };
}

/// Whether a status message published on a job's topic is its last.
inline bool is_final_status(const sb::pubsub::message& m) {
  const auto status = nlohmann::json::parse(m.data()).value("status", "");
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

/// A job's changes as Server-Sent Events (`id:` is the sequence number, so `Last-Event-ID` resumes), ending
/// after the final status. An EventSource reconnects when a stream ends: resuming after the final status it gets
/// 204, which tells it to stop. A `Last-Event-ID` past the topic's end (from an earlier run of the server) starts
/// over, as the long poll's `reset` does. The subscription is made before the answer, so that neither case is
/// found after a 200 has gone out.
inline sb::http::response job_events(sb::pubsub::broker& broker, const std::string& topic, std::uint64_t from) {
  if (from > broker.last_sequence(topic)) from = 0;
  if (const auto latest = broker.latest(topic); from > 0 && latest && latest->sequence() <= from && is_final_status(*latest)) {
    return sb::http::response(sb::http::status::no_content);
  }
  std::error_code ec;  // the topic may have been made again since it was read: then it starts over too
  auto sub = std::make_shared<sb::pubsub::subscription>(broker.subscribe(topic, {.from = from}, ec));
  if (ec == sb::pubsub::error::cursor_ahead) *sub = broker.subscribe(topic, {.from = 0});
  return sb::http::response::stream("text/event-stream", [sub](sb::http::body_writer& out) -> asio::awaitable<void> {
    for (;;) {
      const auto [ec, ev] = co_await sub->async_receive(asio::experimental::as_tuple(asio::use_awaitable));
      if (ec) co_return;  // the broker is closing
      if (!ev.is_message()) continue;  // a gap: the next status says where the job is
      const std::string id = std::to_string(ev.message().sequence());
      std::string bytes;
      sb::sse::encode({.data = ev.message().data(), .type = "status", .id = id}, bytes);
      co_await out.async_write(bytes, asio::use_awaitable);
      if (is_final_status(ev.message())) co_return;
    }
  });
}

/// How `service` sizes its pool and keeps finished jobs.
struct service_options {
  /// Worker threads; 0: one per hardware thread.
  std::size_t workers = 0;
  /// Jobs waiting for a worker at most; past it submissions get 503 with `Retry-After`.
  std::size_t max_queued = 64;
  /// Unfinished jobs one client address may have (`jobs::endpoint_options::max_unfinished_per_client`); past it its
  /// submissions get 429. A quarter of the queue: one client cannot fill it.
  std::size_t max_jobs_per_client = 16;
  /// How long a finished job stays readable (`jobs::endpoint_options::retention`).
  std::chrono::seconds retention{600};
};

/// The worker pool, the broker of job topics, the job endpoint and the long-poll endpoint, with their routes.
class service {
 public:
  service(sb::runtime& rt, sb::http::router& routes, service_options options = {})
      : broker_(rt.executor(), {.retention = {.max_messages = 200}}),
        pool_({.threads = options.workers, .max_queued = options.max_queued}),
        jobs_(pool_, broker_, make_job,
              {.retention = options.retention,
               .max_unfinished_per_client = options.max_jobs_per_client,
               .topic_prefix = std::string(topic_prefix)}),
        polls_(rt, broker_, poll_options()) {
    sb::jobs::add_routes(routes, jobs_);
    sb::longpoll::add_route(routes, polls_, "/jobs/{id}/poll");
    routes.get("/jobs/{id}/events", [this](sb::http::request& req) {
      if (!jobs_.contains(req.param("id"))) {
        return sb::http::response::problem(sb::http::status::not_found, "No such job.");
      }
      std::uint64_t from = 0;
      const std::string_view last = req.header("Last-Event-ID");
      std::from_chars(last.data(), last.data() + last.size(), from);
      return job_events(broker_, jobs_.topic(req.param("id")), from);
    });
  }

  service(const service&) = delete;
  service& operator=(const service&) = delete;
  // Running jobs stop first (they would hold the pool's destructor, and the process, until done).
  ~service() { jobs_.cancel_running(); }

  /// The job endpoint's counters in `registry` (`jobs::endpoint::export_metrics`), while the handles live.
  std::vector<sb::metric_callback> export_metrics(sb::metrics_registry& registry) const {
    return jobs_.export_metrics(registry);
  }

 private:
  static constexpr std::string_view topic_prefix = "jobs.";  // of the jobs' topics

  // Long polls of the jobs' topics; 404 for an id that is not a job, which would otherwise wait for nothing.
  sb::longpoll::endpoint_options poll_options() {
    return {.topic_param = "id",
            .topic_prefix = std::string(topic_prefix),
            .allow_topic = [this](std::string_view topic) {
              return jobs_.contains(topic.substr(topic_prefix.size()));
            }};
  }

  // The broker before the pool: the pool's destructor waits for the running jobs, which publish their last status.
  sb::pubsub::broker broker_;
  sb::jobs::worker_pool pool_;
  sb::jobs::endpoint jobs_;
  sb::longpoll::endpoint polls_;
};

}  // namespace examples::jobs
