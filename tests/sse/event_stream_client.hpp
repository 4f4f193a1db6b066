// A blocking client of one event stream response over a raw socket, for the tests of sse/stream.hpp and the push
// hub: it sends a GET, reads the head, removes the chunked coding and parses the events with `sse::parser` (the
// reading of a browser's EventSource). Reads time out (see raw_http.hpp) so that a silent server fails the test.
#pragma once

#include <switchboard/http/chunked_decoder.hpp>
#include <switchboard/sse/parser.hpp>

#include "support/raw_http.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace switchboard::test {

class event_stream_client {
 public:
  /// Connects to 127.0.0.1:`port` and sends `GET target` with the `extra` header lines ("Name: value\r\n"...).
  event_stream_client(std::uint16_t port, const std::string& target, const std::string& extra = {})
      : client_(port, std::chrono::seconds(10)) {
    client_.send(get_request(target, extra));
  }

  /// Reads until `done()` holds or the stream ends; returns whether `done()` held.
  bool read_until(const std::function<bool()>& done) {
    while (!done()) {
      const std::string more = client_.read_bytes(1);
      if (more.empty()) return false;
      take(more);
    }
    return true;
  }

  /// Reads until `count` events have been dispatched in all.
  bool read_events(std::size_t count) {
    return read_until([&] { return events.size() >= count; });
  }

  /// The response head as received (status line and fields).
  std::string head;
  /// The body as received, after removing the chunked coding.
  std::string body;
  /// The events dispatched so far, as a browser would.
  std::vector<sse::message> events;
  /// True once the response body has ended (last chunk).
  bool ended = false;
  /// The parser, for its last event id and retry time.
  sse::parser parser{sse::parser_options{.utf8 = sse::utf8_policy::reject}};

  raw_client& raw() { return client_; }

 private:
  void take(const std::string& bytes) {
    pending_ += bytes;
    if (!in_body_) {
      const auto end = pending_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head = pending_.substr(0, end + 4);
      pending_.erase(0, end + 4);
      in_body_ = true;
    }
    std::size_t at = 0;
    while (at < pending_.size() && !ended) {
      std::string_view piece;
      std::error_code ec;
      const std::size_t used = chunks_.decode(std::string_view(pending_).substr(at), piece, ec);
      if (ec) throw std::runtime_error("bad chunked body: " + ec.message());
      at += used;
      body.append(piece);
      if (const auto parse_error = parser.feed(piece, [&](const sse::message& m) { events.push_back(m); })) {
        throw std::runtime_error("bad event stream: " + parse_error.message());
      }
      if (chunks_.done()) ended = true;
      if (used == 0) break;
    }
    pending_.erase(0, at);
  }

  raw_client client_;
  std::string pending_;
  bool in_body_ = false;
  http::chunked_decoder chunks_;
};

}  // namespace switchboard::test
