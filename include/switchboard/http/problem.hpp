// switchboard/http/problem.hpp
//
// Problem details for HTTP APIs (RFC 9457): the JSON error body (`application/problem+json`) that the library's
// own errors use (malformed JSON, validation failures, 404/405 from the router) and that handlers can send or
// throw.
#pragma once

#include <switchboard/http/status.hpp>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace switchboard::http {

/// A problem details object (RFC 9457 §3).
struct problem {
  /// The problem type, a URI reference (§3.1.1); "about:blank" means "just the status".
  std::string type = "about:blank";
  /// The HTTP status (§3.1.2).
  http::status status = http::status::internal_server_error;
  /// A short, human-readable summary of the type (§3.1.3); defaults to the status's reason phrase.
  std::string title;
  /// A human-readable explanation of this occurrence (§3.1.4).
  std::string detail;
  /// A URI reference for this occurrence (§3.1.5), often the request path.
  std::string instance;
  /// Extension members (§3.2), e.g. {"errors": [...]} for field validation.
  nlohmann::json extensions = nlohmann::json::object();

  /// The JSON body. Standard members win over extension members of the same name.
  nlohmann::json to_json() const {
    nlohmann::json j = extensions.is_object() ? extensions : nlohmann::json::object();
    j["type"] = type;
    j["status"] = to_int(status);
    j["title"] = title.empty() ? std::string(reason_phrase(status)) : title;
    if (!detail.empty()) j["detail"] = detail;
    if (!instance.empty()) j["instance"] = instance;
    return j;
  }
};

/// Thrown by handlers (and by `request::json()`) to answer with a problem response instead of 500.
class problem_error : public std::runtime_error {
 public:
  explicit problem_error(problem p) : std::runtime_error(p.detail.empty() ? p.title : p.detail), problem_(std::move(p)) {}
  problem_error(http::status s, std::string detail)
      : problem_error(problem{.status = s, .detail = std::move(detail)}) {}
  const http::problem& get() const noexcept { return problem_; }

 private:
  http::problem problem_;
};

}  // namespace switchboard::http
