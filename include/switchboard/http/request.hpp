// switchboard/http/request.hpp
//
// `request`: what a handler receives. Method, target, fields and body are views into the connection's buffers:
// valid until the handler's response has been given (for coroutine and deferred handlers, until they complete).
// Copy what you need to keep longer.
#pragma once

#include <switchboard/core/detail/pending_handler.hpp>
#include <switchboard/http/fields.hpp>
#include <switchboard/http/method.hpp>
#include <switchboard/http/problem.hpp>
#include <switchboard/http/url.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace switchboard::http {

namespace detail {
/// Where a streamed request body comes from: implemented by the server connection.
class body_source {
 public:
  using read_handler = switchboard::detail::pending_handler<void(std::error_code, std::string_view)>;
  virtual void start_body_read(read_handler handler) = 0;
  virtual asio::any_io_executor body_executor() const = 0;

 protected:
  ~body_source() = default;
};
}  // namespace detail

/// A route parameter: its name in the route template and its percent-decoded value.
struct route_param {
  std::string_view name;
  std::string_view value;
};

class request {
 public:
  http::method method() const noexcept { return method_; }
  /// The method token as received (useful for extension methods, `method() == method::other`).
  std::string_view method_string() const noexcept { return method_string_; }
  /// The request-target as received, not decoded.
  std::string_view target() const noexcept { return target_; }
  /// The path of the target, not decoded.
  std::string_view path() const noexcept { return target_path(target_); }
  /// The query of the target (after '?'), not decoded.
  std::string_view query() const noexcept { return target_query(target_); }
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  int version_minor() const noexcept { return version_minor_; }
  const field_views& headers() const noexcept { return fields_; }
  /// The value of the first field named `name` (case-insensitive), or empty. Never percent-decoded.
  std::string_view header(std::string_view name) const noexcept { return fields_.get(name); }
  /// True if the client wants to keep the connection open after this request.
  bool keep_alive() const noexcept { return keep_alive_; }
  const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }
  /// True when the request came over TLS (HTTPS).
  bool is_secure() const noexcept { return secure_; }

  /// Emitted (terminal) when the client disconnects, or its connection is cut, while the handler runs. Coroutine
  /// handlers are bound to it (their pending operations complete with `operation_aborted`); deferred handlers can
  /// attach to it to release what they hold (a parked long poll, say) as soon as the client has gone.
  asio::cancellation_slot cancellation_slot() const noexcept {
    return cancel_ != nullptr ? cancel_->slot() : asio::cancellation_slot();
  }

  /// The body, read completely before the handler ran (for routes that do not stream their body).
  std::string_view body() const noexcept { return body_; }

  /// The body parsed as JSON (parsed once, then cached). Throws `problem_error` with 400 and a detail message
  /// when the body is not valid JSON, which the server turns into an `application/problem+json` response
  /// (RFC 9457). A handler that wants another behaviour can catch it.
  const nlohmann::json& json() const {
    if (!json_) {
      nlohmann::json parsed = nlohmann::json::parse(body_, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        throw problem_error(problem{.type = "about:blank",
                                    .status = status::bad_request,
                                    .title = "Malformed JSON",
                                    .detail = "The request body is not valid JSON."});
      }
      json_ = std::move(parsed);
    }
    return *json_;
  }

  /// The percent-decoded value of route parameter `name` (`{name}` in the route template), or an empty view.
  std::string_view param(std::string_view name) const noexcept {
    for (const auto& p : params_) {
      if (p.name == name) return p.value;
    }
    return {};
  }

  /// Route parameter `name` converted to an integer type (typed templates such as `{id:int}` guarantee it
  /// converts). Throws `problem_error` (400) when it does not.
  template <class T>
    requires std::is_integral_v<T>
  T param_as(std::string_view name) const {
    const std::string_view v = param(name);
    T value{};
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc() || end != v.data() + v.size()) {
      throw problem_error(status::bad_request, "route parameter '" + std::string(name) + "' is not a valid number");
    }
    return value;
  }

  const std::vector<route_param>& params() const noexcept { return params_; }

  /// The decoded value of query parameter `name`, or nullopt.
  std::optional<std::string> query_param(std::string_view name) const { return http::query_param(query(), name); }

  /// Query parameter `name` as a non-negative number (an unsigned integer type, or a finite `double`), or nullopt
  /// when it is absent. Throws `problem_error` (400) when it is not one (`-1`, `nan`, `inf`, `0x10`, past the type's
  /// range: `inf` is refused as `1e400` is).
  template <class T>
    requires std::is_unsigned_v<T> || std::is_same_v<T, double>
  std::optional<T> query_number(std::string_view name) const {
    const auto text = query_param(name);
    if (!text) return std::nullopt;
    T value{};
    const char* end = text->data() + text->size();
    const auto [ptr, ec] = std::from_chars(text->data(), end, value);
    if (text->empty() || ec != std::errc() || ptr != end || !(value >= 0) || !std::isfinite(double(value))) {
      throw problem_error(status::bad_request,
                          "query parameter '" + std::string(name) + "' is not a valid non-negative number");
    }
    return value;
  }

  /// Query parameter `name` as a duration in seconds (decimals allowed: `0.5`), at most `max`, or nullopt when it is
  /// absent; 400 as `query_number`. The cap applies before the conversion to milliseconds: a `double` past the range
  /// of the integer would make it undefined behaviour (`?wait=1e308`).
  std::optional<std::chrono::milliseconds> query_seconds(std::string_view name, std::chrono::milliseconds max) const {
    const auto seconds = query_number<double>(name);
    if (!seconds) return std::nullopt;
    const double milliseconds = *seconds * 1000.0;
    if (!(milliseconds < double(max.count()))) return max;  // so that the cast below is always in range
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(milliseconds));
  }

  /// Reads the next piece of a streamed body (routes registered with `stream_body`). Completion signature:
  /// `void(std::error_code, std::string_view piece)`; an empty piece without error means the body has ended.
  /// The piece is valid until the next read. The first read answers `Expect: 100-continue` if the client asked.
  /// Errors: `error::body_too_large`, `error::body_timeout`, parse errors, or the connection's error.
  /// Call it on the connection's thread (where the handler runs): the read starts at once, on the calling thread.
  template <class Token>
  auto async_read_some(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, std::string_view)>(
        [this](auto handler) {
          source_->start_body_read(detail::body_source::read_handler(std::move(handler), source_->body_executor()));
        },
        token);
  }

  // -- Used by the server and router to fill the request; not for handlers.
  struct fill {
    http::method method;
    std::string_view method_string;
    std::string_view target;
    int version_minor;
    const field_views* fields;
    bool keep_alive;
  };
  /// Starts a new request whose views point into the connection's read buffer.
  void reset(const fill& f, detail::body_source* source, asio::cancellation_signal* cancel) {
    method_ = f.method;
    method_string_ = f.method_string;
    target_ = f.target;
    version_minor_ = f.version_minor;
    fields_.clear();
    for (const auto& field : *f.fields) fields_.push_back(field);
    keep_alive_ = f.keep_alive;
    source_ = source;
    cancel_ = cancel;
    body_ = {};
    owned_body_.clear();
    params_.clear();
    decoded_.clear();
    json_.reset();
    header_copy_.clear();
  }
  /// Copies every view that points into [buffer, buffer + size) into storage the request owns, so that the
  /// connection may reuse or move its read buffer while the handler still runs.
  void make_self_contained(const char* buffer, std::size_t size) {
    auto inside = [&](std::string_view v) { return v.data() >= buffer && v.data() + v.size() <= buffer + size; };
    // The start line and fields are contiguous in the buffer: copy that range once and move the views over.
    const char* lo = method_string_.data();
    const char* hi = target_.data() + target_.size();
    for (const auto& f : fields_) hi = std::max(hi, f.value.data() + f.value.size());
    if (inside(method_string_)) {
      header_copy_.assign(lo, static_cast<std::size_t>(hi - lo));
      auto move = [&](std::string_view v) {
        return std::string_view(header_copy_.data() + (v.data() - lo), v.size());
      };
      method_string_ = move(method_string_);
      target_ = move(target_);
      fields_.remap(move);
    }
    if (!body_.empty() && inside(body_)) {
      owned_body_.assign(body_);
      body_ = owned_body_;
    }
  }
  void set_remote_endpoint(const asio::ip::tcp::endpoint& e, bool secure) noexcept {
    remote_ = e;
    secure_ = secure;
  }
  void set_body_view(std::string_view body) noexcept { body_ = body; }
  /// Appends to the owned body (bodies that did not arrive in one contiguous piece).
  void append_body(std::string_view piece) {
    if (body_.data() != owned_body_.data()) owned_body_.assign(body_);
    owned_body_.append(piece);
    body_ = owned_body_;
  }
  std::vector<route_param>& mutable_params() noexcept { return params_; }
  /// Storage for decoded parameter values; reserve the total size first so that views stay valid.
  std::string& decoded_storage() noexcept { return decoded_; }
  /// Frees buffers kept between requests.
  void release() noexcept {
    std::string().swap(owned_body_);
    std::string().swap(decoded_);
    std::string().swap(header_copy_);
    std::vector<route_param>().swap(params_);
    fields_.release();
  }

 private:
  http::method method_ = http::method::get;
  std::string_view method_string_;
  std::string_view target_;
  int version_minor_ = 1;
  field_views fields_;
  bool keep_alive_ = true;
  bool secure_ = false;
  asio::ip::tcp::endpoint remote_;
  std::string_view body_;
  std::string owned_body_;
  std::vector<route_param> params_;
  std::string decoded_;
  std::string header_copy_;
  mutable std::optional<nlohmann::json> json_;
  detail::body_source* source_ = nullptr;
  asio::cancellation_signal* cancel_ = nullptr;
};

}  // namespace switchboard::http
