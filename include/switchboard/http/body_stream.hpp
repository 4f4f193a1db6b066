// switchboard/http/body_stream.hpp
//
// A streamed response body driven by callbacks: the lighter sibling of a body producer coroutine (`body_writer`,
// `response::stream` with a `body_producer`). Meant for bodies that live long and mostly wait, one per client of
// a push service (an event stream per subscriber), where a coroutine's frames and a timer per client would cost
// more than the rest of the connection. The server calls the handler; the handler writes through the
// `body_stream` it is given, and asks to be woken after a while (a heartbeat) instead of running a timer.
//
//     struct ticks final : http::body_stream_handler {
//       http::body_stream* out = nullptr;
//       void on_start(http::body_stream& s) override { out = &s; on_wake(); }
//       void on_written() override { out->wake_at(std::chrono::steady_clock::now() + 1s); }
//       void on_wake() override { out->write(shared_bytes(std::string("tick\n"))); }
//       void on_end() override { out = nullptr; }  // the client has gone, or the server drains
//     };
//     routes.get("/ticks", [](http::request&) {
//       return http::response::stream("text/plain", std::make_shared<ticks>());
//     });
//
// Every call, both ways, happens on the connection's executor (`body_stream::get_executor`); code elsewhere
// posts there first.
#pragma once

#include <switchboard/core/shared_bytes.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <span>

namespace switchboard::http {

/// The connection's side of a callback-driven body: what the handler writes to. Valid from the handler's
/// `on_start` until it calls `finish` or its `on_end` is called.
class body_stream {
 public:
  /// Writes `pieces` in order as the next part of the body (one chunk to an HTTP/1.1 client), sharing their bytes
  /// rather than copying them; the handler's `on_written` follows once they have been handed to the socket. One
  /// write at a time: the next only after `on_written`. A write also cancels the `wake_at` request, if any.
  /// Empty pieces are skipped; a write of nothing completes at once.
  virtual void write(std::span<shared_bytes> pieces) = 0;

  /// Asks for one `on_wake` at `when`, or a little after: the server's clock checks it, every second at most (a
  /// quarter of the shortest server timeout). Replaces an earlier request; `time_point::max()` withdraws it. Only
  /// while no write is in progress: a write withdraws it.
  virtual void wake_at(std::chrono::steady_clock::time_point when) = 0;

  /// Ends the body with its last chunk, after the write in progress (if any); the connection then goes on with
  /// the next request, or closes. The handler is not called again (no `on_end`).
  virtual void finish() = 0;

  /// The connection's executor, where every call happens.
  virtual asio::any_io_executor get_executor() const = 0;

 protected:
  ~body_stream() = default;
};

/// The handler of a callback-driven body (see the file comment). The server holds it, through the `shared_ptr`
/// given to `response::stream`, until the stream ends. A callback that throws is logged and cuts the connection
/// (the head is out: there is no other way to say that the body failed); the handler is not called again.
class body_stream_handler {
 public:
  virtual ~body_stream_handler() = default;

  /// The response's head has been sent: from now on `out` takes writes. Not called when the response has no body
  /// (a HEAD request, a 204 or 304 status), nor when the connection ended before the head was out.
  virtual void on_start(body_stream& out) = 0;

  /// The last write has been handed to the socket: the next may follow.
  virtual void on_written() = 0;

  /// The time asked for with `wake_at` has come, and no write is in progress.
  virtual void on_wake() = 0;

  /// The stream is over without `finish`: the client went away, a write failed or timed out, or the server is
  /// draining (the body then ends cleanly with its last chunk) or closing. `out` must not be used again. It may
  /// come without `on_start`, when that happens while the head is still being sent.
  virtual void on_end() = 0;
};

}  // namespace switchboard::http
