// switchboard/push/latest.hpp
//
// `push::latest_endpoint`: serves a broker topic's latest message for polling clients, as a conditional resource
// (http/conditional.hpp). The entity tag is made from the message's sequence number (and the topic's incarnation),
// so a client that polls with `If-None-Match` gets a 304 without a body, decided by comparing numbers, until
// something is published.
//
//     push::latest_endpoint latest(broker);
//     routes.get("/topics/{topic}/latest", [&](http::request& req) { return latest(req, req.param("topic")); });
//
//   200  the latest message: its payload as the body (written from the message's bytes, not a copy), `Content-Type`
//        from its `content-type` header (default application/octet-stream), `ETag: "<epoch>-<incarnation>-<seq>"`,
//        `Last-Modified` from its `last-modified` header (an HTTP-date, when the publisher set one),
//        `Cache-Control: no-cache`, and `X-Sequence: <seq>`
//   204  nothing published yet (with `ETag: "<epoch>-0"`, so that polling an empty topic also costs a 304)
//   304  `If-None-Match` matches (or `If-Modified-Since` is not older), nothing changed
//   412  `If-Match` does not match the latest version
//   404  messages were published but the topic retains none (retention off, or all older than its max_age), or a gap
//        (`broker::report_gap`) came after the last one
//
// The epoch, a random string drawn when the endpoint is made, keeps tags of an earlier process (whose topics
// numbered from 1 too) from matching: after a restart every client gets a full response once. The incarnation
// (`pubsub::topic_stats::incarnation`) does the same for a topic erased and made again in this process, which
// numbers from 1 again: a strong tag must change whenever the representation does (RFC 9110 §8.8.3).
//
// After a gap the endpoint answers 404 until the next message, not the last message before the gap: the broker
// clears the topic's retention on a gap (its log holds consecutive numbers only), and the message before a loss
// (an upstream connection lost: messages published meanwhile never arrived) may no longer be the latest state.
#pragma once

#include <switchboard/http/conditional.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/pubsub/broker.hpp>

#include <openssl/rand.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::push {

/// How `latest_endpoint` answers. Usable with designated initializers.
struct latest_options {
  /// `Cache-Control` (default "no-cache": store, but revalidate every time) and an optional `Retry-After` hint.
  http::conditional_options conditional{};
  /// The entity tags' prefix before "-<incarnation>-<seq>" (or "-0"). Empty: 16 random hex digits drawn at
  /// construction.
  std::string epoch{};
  /// The `Content-Type` of a message without a `content-type` header.
  std::string default_content_type = "application/octet-stream";
};

/// Serves the latest message of a topic (see the file comment). Thread-safe: const after construction.
class latest_endpoint {
 public:
  /// Throws `std::invalid_argument` if `options.epoch` has a character an entity tag cannot hold,
  /// `std::runtime_error` if OpenSSL cannot draw a random epoch.
  explicit latest_endpoint(const pubsub::broker& broker, latest_options options = {})
      : broker_(broker), options_(std::move(options)) {
    if (options_.epoch.empty()) options_.epoch = random_epoch();
    (void)etag(0, 0);  // checks the epoch now
  }

  /// Answers a GET or HEAD for `topic`'s latest message.
  http::response operator()(const http::request& req, std::string_view topic) const {
    // Message, incarnation and last sequence number are read together, from one topic: the last number read apart
    // after `latest` could count a message published in between, and a topic polled as its first message arrives
    // would look like one that retains nothing (a wrong 404).
    const pubsub::broker::latest_reading_type now = broker_.latest_reading(topic);
    const std::optional<pubsub::message>& m = now.message;
    if (!m && now.last_sequence > 0) {
      return http::response::problem(http::status::not_found, "The topic retains no message to serve.");
    }
    const http::entity_tag tag = etag(now.incarnation, m ? m->sequence() : 0);
    http::resource_validators validators{.etag = &tag};
    if (m) {
      if (auto modified = m->header("last-modified")) validators.last_modified = http::parse_http_date(*modified);
    }
    if (auto early = http::check_conditions(req, validators, options_.conditional)) return std::move(*early);
    http::response r(http::status::no_content);
    if (m) {
      const std::string_view type = m->content_type();
      r = http::response(http::status::ok);
      r.set_body(m->payload(), type.empty() ? options_.default_content_type : type);  // shared by every poller: no copy
    }
    http::set_validators(r, validators, options_.conditional);
    r.set("X-Sequence", std::to_string(m ? m->sequence() : 0));
    return r;
  }

  /// The entity tag of message `sequence` of a topic's incarnation `incarnation` (`"<epoch>-<incarnation>-<seq>"`),
  /// or, for `sequence` 0, of a topic with nothing published (`"<epoch>-0"`, whatever the incarnation: the same 204).
  http::entity_tag etag(std::uint64_t incarnation, std::uint64_t sequence) const {
    if (sequence == 0) return http::version_etag(0, options_.epoch + "-");
    return http::version_etag(sequence, options_.epoch + "-" + std::to_string(incarnation) + "-");
  }

  /// The epoch of this endpoint's tags.
  const std::string& epoch() const noexcept { return options_.epoch; }

 private:
  static std::string random_epoch() {
    std::array<unsigned char, 8> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
      throw std::runtime_error("switchboard::push::latest_endpoint: RAND_bytes failed");
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
      out.push_back(digits[b >> 4]);
      out.push_back(digits[b & 15]);
    }
    return out;
  }

  const pubsub::broker& broker_;
  latest_options options_;
};

}  // namespace switchboard::push
