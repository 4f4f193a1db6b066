// switchboard/jobs/error.hpp
//
// Errors of the worker pool and the job endpoint. Shared failures use the core codes
// (`switchboard::error::shutting_down` when the pool has stopped).
#pragma once

#include <string>
#include <system_error>

namespace switchboard::jobs {

/// Errors reported by `worker_pool`, `offload` and the job endpoint.
enum class error {
  /// Every worker is busy and the queue holds `worker_pool_options::max_queued` tasks: nothing was queued. Map it
  /// to 503 with `Retry-After` (`is_overload` below).
  pool_full = 1,
  /// The job store holds `endpoint_options::max_jobs` jobs, none of them finished: nothing was submitted.
  too_many_jobs,
  /// The client already has `endpoint_options::max_unfinished_per_client` queued or running jobs: nothing was
  /// submitted (429 with `Retry-After`).
  too_many_for_client,
  /// The job was cancelled (`DELETE /jobs/{id}`); a job function may throw `cancelled_error` to stop early.
  cancelled,
};

namespace detail {
class jobs_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.jobs"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::pool_full: return "worker pool full";
      case error::too_many_jobs: return "too many jobs";
      case error::too_many_for_client: return "too many unfinished jobs for this client";
      case error::cancelled: return "job cancelled";
    }
    return "unknown switchboard.jobs error";
  }
};
}  // namespace detail

/// The category of `switchboard::jobs::error`.
inline const std::error_category& jobs_category() noexcept {
  static const detail::jobs_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), jobs_category()}; }

}  // namespace switchboard::jobs

template <>
struct std::is_error_code_enum<switchboard::jobs::error> : std::true_type {};
