// switchboard/http/preconditions.hpp
//
// Conditional requests (RFC 9110 §13): evaluating `If-Match`, `If-None-Match`, `If-Modified-Since` and
// `If-Unmodified-Since` against the selected representation's validators, and the order of precedence between
// them (§13.2.2) that decides whether a request proceeds, gets 304 (Not Modified) or 412 (Precondition Failed).
//
// Field values that do not follow their grammar: a date that does not parse makes its field ignored, as
// §13.1.3 and §13.1.4 require. An entity-tag list that does not parse matches nothing: `If-Match` then fails
// (412, the state-changing request is not performed) and `If-None-Match` passes (a full response is sent), the
// safe outcome of each.
//
// `If-Range` (§13.1.5) belongs with range requests, which this library does not serve; it is not evaluated.
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/date.hpp>
#include <switchboard/http/etag.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace switchboard::http {

/// The validators of the selected representation, which conditions are evaluated against.
struct resource_validators {
  /// True when the origin server has a current representation for the target resource (what `*` tests). When
  /// false there is no representation, so `etag` and `last_modified` count for nothing (an entity tag matches
  /// none, a date is ignored) even if set: a handler that passes the last validators of a resource it has deleted
  /// must not let a `PUT` with `If-Match` naming the deleted version proceed (§13.1.1, §13.1.4).
  bool exists = true;
  /// The representation's entity tag (its `ETag`), or null if it has none. Only read during the call.
  const entity_tag* etag = nullptr;
  /// The representation's last modification date (its `Last-Modified`), if known.
  std::optional<std::chrono::sys_seconds> last_modified = std::nullopt;
};

/// The conditional header fields of a request, each absent when the request does not have it. A field sent on
/// several lines is passed as one value, the lines joined with ", " (RFC 9110 §5.3).
struct conditional_headers {
  std::optional<std::string_view> if_match = std::nullopt;
  std::optional<std::string_view> if_none_match = std::nullopt;
  std::optional<std::string_view> if_modified_since = std::nullopt;
  std::optional<std::string_view> if_unmodified_since = std::nullopt;
};

/// What to do with a conditional request.
enum class precondition_result {
  proceed,              ///< Perform the method as if there were no conditions.
  not_modified,         ///< Respond 304 (Not Modified) to this GET or HEAD.
  precondition_failed,  ///< Respond 412 (Precondition Failed) and do not perform the method.
};

namespace detail {


/// The quoted opaque-tag of an entity-tag in field form, without the weakness indicator.
constexpr std::string_view quoted_opaque(std::string_view field_form) noexcept {
  return field_form.starts_with("W/") ? field_form.substr(2) : field_form;
}

/// Whether any tag of the list `value` matches the current representation's, with the strong (`strong == true`)
/// or weak comparison of §8.8.3.2. A list that does not parse matches nothing; nor does any list when there is no
/// current representation, whatever tag `validators` still holds.
inline bool list_matches(std::string_view value, const resource_validators& validators, bool strong) {
  const entity_tag* current = validators.exists ? validators.etag : nullptr;
  if (current == nullptr || (strong && current->is_weak())) return false;
  bool matched = false;
  const bool parsed = for_each_entity_tag(value, [&](std::string_view listed) {
    if (strong) {
      matched = matched || listed == current->str();  // both strong: the field forms are equal exactly then
    } else {
      matched = matched || quoted_opaque(listed) == quoted_opaque(current->str());
    }
  });
  return parsed && matched;
}

}  // namespace detail

/// Evaluates `If-Match` (§13.1.1): true when the value is `*` and the resource exists, or when a listed tag
/// matches the representation's with the strong comparison. False means 412.
inline bool evaluate_if_match(std::string_view value, const resource_validators& validators) {
  value = detail::trim_ows(value);
  if (value == "*") return validators.exists;
  return detail::list_matches(value, validators, true);
}

/// Evaluates `If-None-Match` (§13.1.2): false when the value is `*` and the resource exists, or when a listed
/// tag matches the representation's with the weak comparison; true otherwise. False means 304 for GET and HEAD,
/// 412 for other methods.
inline bool evaluate_if_none_match(std::string_view value, const resource_validators& validators) {
  value = detail::trim_ows(value);
  if (value == "*") return !validators.exists;
  return !detail::list_matches(value, validators, false);
}

/// Evaluates `If-Modified-Since` (§13.1.3): true when the representation was modified after the date given,
/// false (304) when not. nullopt when the field must be ignored: its value is not one valid HTTP-date, or the
/// representation has no modification date (or does not exist). (Ignoring it for other methods than GET and HEAD,
/// or when `If-None-Match` is present, is `evaluate_preconditions`'s part.)
inline std::optional<bool> evaluate_if_modified_since(std::string_view value, const resource_validators& validators) {
  const std::optional<std::chrono::sys_seconds> date = parse_http_date(detail::trim_ows(value));
  if (!date || !validators.exists || !validators.last_modified) return std::nullopt;
  return *validators.last_modified > *date;
}

/// Evaluates `If-Unmodified-Since` (§13.1.4): true when the representation was not modified after the date
/// given, false (412) when it was. nullopt when the field must be ignored, as for `evaluate_if_modified_since`.
inline std::optional<bool> evaluate_if_unmodified_since(std::string_view value,
                                                        const resource_validators& validators) {
  const std::optional<std::chrono::sys_seconds> date = parse_http_date(detail::trim_ows(value));
  if (!date || !validators.exists || !validators.last_modified) return std::nullopt;
  return *validators.last_modified <= *date;
}

/// Decides a conditional request by the precedence of §13.2.2, as an origin server:
///  1. `If-Match` present: if false, 412.
///  2. otherwise `If-Unmodified-Since` present (and not ignored): if false, 412.
///  3. `If-None-Match` present: if false, 304 for GET and HEAD, 412 for other methods.
///  4. otherwise, for GET and HEAD, `If-Modified-Since` present (and not ignored): if false, 304.
///  5. proceed.
/// `method` is case-sensitive (§9.1). CONNECT, OPTIONS and TRACE do not select a representation, so their
/// preconditions are ignored (§13.2.1). Call it only when the response without the conditions would be 2xx:
/// otherwise the conditions must be ignored as well (§13.2.1). A server may still answer 2xx instead of 412 when
/// a state-changing request was evidently already applied (§13.1.1, §13.1.4); that judgement is the caller's.
inline precondition_result evaluate_preconditions(std::string_view method, const resource_validators& validators,
                                                  const conditional_headers& headers) {
  if (method == "CONNECT" || method == "OPTIONS" || method == "TRACE") return precondition_result::proceed;
  const bool get_or_head = method == "GET" || method == "HEAD";

  if (headers.if_match) {
    if (!evaluate_if_match(*headers.if_match, validators)) return precondition_result::precondition_failed;
  } else if (headers.if_unmodified_since) {
    if (evaluate_if_unmodified_since(*headers.if_unmodified_since, validators) == false) {
      return precondition_result::precondition_failed;
    }
  }

  if (headers.if_none_match) {
    if (!evaluate_if_none_match(*headers.if_none_match, validators)) {
      return get_or_head ? precondition_result::not_modified : precondition_result::precondition_failed;
    }
  } else if (get_or_head && headers.if_modified_since) {
    if (evaluate_if_modified_since(*headers.if_modified_since, validators) == false) {
      return precondition_result::not_modified;
    }
  }
  return precondition_result::proceed;
}

}  // namespace switchboard::http
