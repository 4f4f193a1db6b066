// switchboard/jobs/job.hpp
//
// What the job endpoint runs: a job's status, the context its work function gets (progress, cooperative
// cancellation), and the shapes of the functions an application supplies.
#pragma once

#include <switchboard/jobs/error.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <functional>
#include <string_view>
#include <system_error>

namespace switchboard::jobs {

/// Where a job is in its life. Only the last three are final.
enum class job_status { queued, running, succeeded, failed, cancelled };

/// The status as it appears in the JSON (`"queued"`, `"running"`, ...).
constexpr std::string_view to_string(job_status s) noexcept {
  switch (s) {
    case job_status::queued: return "queued";
    case job_status::running: return "running";
    case job_status::succeeded: return "succeeded";
    case job_status::failed: return "failed";
    case job_status::cancelled: return "cancelled";
  }
  return "unknown";
}

/// True for succeeded, failed and cancelled.
constexpr bool is_final(job_status s) noexcept { return s >= job_status::succeeded; }

/// Thrown by a job function (`job_context::throw_if_cancelled`) to stop because the job was cancelled.
struct cancelled_error : std::system_error {
  cancelled_error() : std::system_error(error::cancelled) {}
};

/// What a running job's function is given: progress reports and the cancellation request. Used on the worker
/// thread that runs the job.
class job_context {
 public:
  /// `cancelled` is the job's flag (set by DELETE); `report` publishes a progress fraction.
  job_context(const std::atomic<bool>& cancelled, std::function<void(double)> report)
      : cancelled_(cancelled), report_(std::move(report)) {}

  /// True once `DELETE /jobs/{id}` asked the job to stop. Check it often (cancellation is cooperative).
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
  /// Throws `cancelled_error` when `cancelled()`.
  void throw_if_cancelled() const {
    if (cancelled()) throw cancelled_error();
  }
  /// Reports progress, a fraction from 0 to 1 (clamped): visible in `GET /jobs/{id}` at once, and published on the
  /// job's topic at most every `endpoint_options::progress_interval` (100 ms), so reporting often costs a lock and a
  /// clock read. NaN (`done / total` with nothing to do) is ignored: JSON has no NaN, so it was shown as
  /// `"progress": null`, which clients that read a number fail on; the last report stands.
  void progress(double fraction) {
    if (std::isnan(fraction)) return;
    report_(fraction < 0 ? 0 : fraction > 1 ? 1 : fraction);
  }

 private:
  const std::atomic<bool>& cancelled_;
  std::function<void(double)> report_;
};

/// A job's work: runs on a worker thread, returns the result (JSON), throws to fail (the exception's message
/// becomes the job's `error`) or `cancelled_error` to stop.
using job_work = std::function<nlohmann::json(job_context&)>;

/// Turns a submission (`POST /jobs` body) into its work, on the I/O thread, before anything is queued: validate
/// there and throw `http::problem_error` (400, 422) to refuse the submission.
using job_factory = std::function<job_work(const nlohmann::json& submission)>;

}  // namespace switchboard::jobs
