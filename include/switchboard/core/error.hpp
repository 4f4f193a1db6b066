// switchboard/core/error.hpp
//
// Error codes shared by every module: queues, timeouts, drain. Each module that has its own failure modes
// (http, ws, resp, ...) defines its own `enum class error` and category in the same shape as this one.
#pragma once

#include <exception>
#include <string>
#include <system_error>

namespace switchboard {

/// Errors reported by the core building blocks (bounded queues, runtime, timers).
enum class error {
  /// A bounded queue was full and its overflow policy refused the new item (`drop_newest`).
  queue_full = 1,
  /// The queue (or connection, or subscription) was closed; no more items are accepted or delivered.
  closed,
  /// The consumer fell so far behind that its `disconnect` overflow policy cut it off.
  overflow_disconnect,
  /// A deadline passed before the operation could complete (a read, a write, a `wait` for queue room).
  timeout,
  /// The component is draining (`stop(grace)` was called) and accepts no new work.
  shutting_down,
  /// A configuration value is out of range; the message names the field.
  bad_configuration,
};

namespace detail {
class core_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::queue_full: return "queue full";
      case error::closed: return "closed";
      case error::overflow_disconnect: return "consumer too slow: disconnected by overflow policy";
      case error::timeout: return "timed out";
      case error::shutting_down: return "shutting down";
      case error::bad_configuration: return "bad configuration";
    }
    return "unknown switchboard error";
  }
};
}  // namespace detail

/// The category of `switchboard::error`.
inline const std::error_category& core_category() noexcept {
  static const detail::core_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), core_category()}; }

}  // namespace switchboard

template <>
struct std::is_error_code_enum<switchboard::error> : std::true_type {};

namespace switchboard::detail {

/// The error that an exception out of an operation's coroutine stands for, for its completion handler. A
/// `std::system_error` is its own code: Asio throws one holding `operation_aborted` from the next co_await of a
/// cancelled coroutine, and the caller must hear its cancellation, not an I/O error. Anything else: `io_error`.
inline std::error_code exception_to_error(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& se) {
    return se.code();
  } catch (...) {
    return make_error_code(std::errc::io_error);
  }
}

}  // namespace switchboard::detail
