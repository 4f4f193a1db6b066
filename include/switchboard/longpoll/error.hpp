// switchboard/longpoll/error.hpp
//
// Errors of long polling: why the endpoint refused to park a request, and what the long-poll client could not
// make sense of. Failures shared with other modules use the core codes (`switchboard::error::timeout`,
// `shutting_down`) and the HTTP client's codes.
#pragma once

#include <string>
#include <system_error>

namespace switchboard::longpoll {

/// Errors reported by the long-poll endpoint and client.
enum class error {
  /// The client address already has `endpoint_options::max_parked_per_client` requests parked: answered 429.
  too_many_for_client = 1,
  /// The endpoint already has `endpoint_options::max_parked` requests parked: answered 503.
  too_many_parked,
  /// The server answered with a status the client does not retry (400, 404, ...).
  unexpected_status,
  /// The server's answer is not the long-poll JSON shape (`{"messages": [...], "cursor": N}`), or does not continue
  /// from the cursor the client sent (see `client.hpp`: such an answer numbers the topic differently).
  bad_response,
  /// The client gave up after `client_options::max_attempts` failed attempts in a row.
  too_many_failures,
};

namespace detail {
class longpoll_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard.longpoll"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::too_many_for_client: return "too many parked requests from this client";
      case error::too_many_parked: return "too many parked requests";
      case error::unexpected_status: return "unexpected HTTP status from the long-poll endpoint";
      case error::bad_response: return "malformed or out-of-sequence long-poll response";
      case error::too_many_failures: return "too many failed long-poll attempts in a row";
    }
    return "unknown switchboard.longpoll error";
  }
};
}  // namespace detail

/// The category of `switchboard::longpoll::error`.
inline const std::error_category& longpoll_category() noexcept {
  static const detail::longpoll_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), longpoll_category()}; }

}  // namespace switchboard::longpoll

template <>
struct std::is_error_code_enum<switchboard::longpoll::error> : std::true_type {};
