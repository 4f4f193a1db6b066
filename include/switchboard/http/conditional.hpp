// switchboard/http/conditional.hpp
//
// Polling done right: conditional GET for dynamic resources (RFC 9110 §13, RFC 9111 §5.2). A resource that has a
// version (a counter that grows with every change, such as a broker topic's sequence number) gets an entity tag
// made from that version rather than from a hash of its body, so that answering "has it changed?" costs a
// comparison of two numbers, not building and hashing the representation. A client that polls with
// `If-None-Match` then costs the server a 304 with no body until something changes.
//
//     http::conditional_options polling{.cache_control = "no-cache"};
//     routes.get("/state", [&](http::request& req) {
//       const auto tag = http::version_etag(store.version());
//       const http::resource_validators v{.etag = &tag, .last_modified = store.modified()};
//       if (auto early = http::check_conditions(req, v, polling)) return std::move(*early);   // 304 or 412
//       http::response r = http::response::json(store.snapshot());
//       http::set_validators(r, v, polling);
//       return r;
//     });
//
// What it does on top of `preconditions.hpp`: reads the four conditional fields from a request (joining repeated
// lines, §5.3), builds the 304 (with the fields §15.4.5 requires a 304 to repeat, ETag and Cache-Control, and
// Last-Modified, which it allows as metadata for cache updates) and the 412 (an RFC 9457 problem), and sets the
// validators and caching fields on a full response. `Retry-After` (§10.2.3) tells a polling client, or one refused
// with 429 or 503, when to come back.
#pragma once

#include <switchboard/http/date.hpp>
#include <switchboard/http/etag.hpp>
#include <switchboard/http/preconditions.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::http {

/// The caching fields sent with the responses of a conditional resource that carry its state: the full one and
/// the 304. (A 412 carries none: a cache does not store it without explicit freshness, RFC 9111 §3.) Usable with
/// designated initializers.
struct conditional_options {
  /// The `Cache-Control` value (RFC 9111 §5.2.2). Default "no-cache": caches may store the response but must
  /// revalidate it every time (a conditional request, answered 304 while nothing changed), which is what a polled
  /// resource wants. Empty: no field.
  std::string cache_control = "no-cache";
  /// When set, `Retry-After` in seconds (RFC 9110 §10.2.3) on full and 304 responses: a hint of how long a polling
  /// client should wait before asking again. Unset: no field.
  std::optional<std::chrono::seconds> retry_after = std::nullopt;
};

/// An entity tag made from a version number: the opaque string is `prefix` followed by the version in decimal.
/// Strong by default: use a strong tag when the representation's bytes are a function of the version alone; a weak
/// one (`weak = true`) when several encodings of the same version may be served (§8.8.1). `prefix` tells apart
/// versions that could repeat (a process restart or an erased topic numbers from 1 again): put an epoch there,
/// such as a random id drawn at start-up. Throws `std::invalid_argument` if `prefix` has a character an entity tag
/// cannot hold (see `entity_tag::strong`).
inline entity_tag version_etag(std::uint64_t version, std::string_view prefix = {}, bool weak = false) {
  std::string opaque(prefix);
  char digits[20];
  const auto result = std::to_chars(digits, digits + sizeof digits, version);
  opaque.append(digits, result.ptr);
  return weak ? entity_tag::weak(opaque) : entity_tag::strong(opaque);
}

/// The conditional fields of a request, as `evaluate_preconditions` takes them. A field sent on several lines is
/// joined with ", " (§5.3) into storage this object owns, so it must outlive the views it hands out.
class request_conditions {
 public:
  /// Reads `If-Match`, `If-None-Match`, `If-Modified-Since` and `If-Unmodified-Since` from `req`.
  explicit request_conditions(const request& req)
      : if_match_(read(req, "if-match")),
        if_none_match_(read(req, "if-none-match")),
        if_modified_since_(read(req, "if-modified-since")),
        if_unmodified_since_(read(req, "if-unmodified-since")) {}

  /// The fields as views into this object.
  conditional_headers headers() const noexcept {
    return {.if_match = view(if_match_),
            .if_none_match = view(if_none_match_),
            .if_modified_since = view(if_modified_since_),
            .if_unmodified_since = view(if_unmodified_since_)};
  }

 private:
  static std::optional<std::string> read(const request& req, std::string_view name) {
    std::optional<std::string> joined;
    for (const auto& f : req.headers()) {
      if (!detail::iequals(f.name, name)) continue;
      if (joined) joined->append(", ");
      else joined.emplace();
      joined->append(f.value);
    }
    return joined;
  }

  static std::optional<std::string_view> view(const std::optional<std::string>& s) noexcept {
    return s ? std::optional<std::string_view>(*s) : std::nullopt;
  }

  std::optional<std::string> if_match_;
  std::optional<std::string> if_none_match_;
  std::optional<std::string> if_modified_since_;
  std::optional<std::string> if_unmodified_since_;
};

/// Sets `Retry-After: <seconds>` (§10.2.3), negative values counted as 0.
inline void set_retry_after(response& r, std::chrono::seconds delay) {
  r.set("Retry-After", std::to_string(delay.count() < 0 ? 0 : delay.count()));
}

/// Sets `Retry-After: <HTTP-date>` (§10.2.3).
inline void set_retry_after(response& r, std::chrono::sys_seconds when) {
  http_date_buffer buffer;
  r.set("Retry-After", format_http_date(when, buffer));
}

/// Sets the validators (`ETag`, `Last-Modified`) the resource has and the fields of `options` (`Cache-Control`,
/// `Retry-After`) on `r`: call it on the full (2xx) response of a conditional resource.
inline void set_validators(response& r, const resource_validators& validators, const conditional_options& options = {}) {
  if (validators.etag) r.set("ETag", validators.etag->str());
  if (validators.last_modified) {
    http_date_buffer buffer;
    r.set("Last-Modified", format_http_date(*validators.last_modified, buffer));
  }
  if (!options.cache_control.empty()) r.set("Cache-Control", options.cache_control);
  if (options.retry_after) set_retry_after(r, *options.retry_after);
}

/// 304 Not Modified for `validators` (§15.4.5: no body; the validators and caching fields the 200 would carry).
inline response not_modified(const resource_validators& validators, const conditional_options& options = {}) {
  response r(status::not_modified);
  set_validators(r, validators, options);
  return r;
}

/// 412 Precondition Failed (§15.5.13) as an RFC 9457 problem, with the current `ETag` so that the client can
/// fetch the current state and try again. Not told which field failed, the detail names each that can: besides
/// `If-Match` and `If-Unmodified-Since` (the resource changed), `If-None-Match` refuses methods other than GET and
/// HEAD when it matches (§13.1.2), such as a `PUT` with `If-None-Match: *` to a resource that exists, where
/// nothing changed; a detail that blamed only the first two would send that client looking for the wrong fault.
inline response precondition_failed(const resource_validators& validators) {
  response r = response::problem(status::precondition_failed,
                                 "A precondition of the request does not hold for the resource's current state: "
                                 "If-Match or If-Unmodified-Since (it has changed since), or If-None-Match (a "
                                 "version it names, or with * any version, exists).");
  if (validators.exists && validators.etag) r.set("ETag", validators.etag->str());  // no representation, no tag
  return r;
}

/// Evaluates the request's conditions against `validators` (§13.2.2, see `evaluate_preconditions`) and returns
/// the response that ends the request early: 304 (GET or HEAD, nothing changed) or 412 (a condition failed).
/// Returns nullopt when the method should proceed; then send the full response with `set_validators`. Call it
/// only when the response without conditions would be 2xx (§13.2.1).
inline std::optional<response> check_conditions(const request& req, const resource_validators& validators,
                                                const conditional_options& options = {}) {
  const request_conditions conditions(req);
  switch (evaluate_preconditions(req.method_string(), validators, conditions.headers())) {
    case precondition_result::proceed: return std::nullopt;
    case precondition_result::not_modified: return not_modified(validators, options);
    case precondition_result::precondition_failed: return precondition_failed(validators);
  }
  return std::nullopt;
}

}  // namespace switchboard::http
