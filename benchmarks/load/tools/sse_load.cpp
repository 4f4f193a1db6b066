// sse_load: the Server-Sent Events load client of benchmarks/load/sse.sh.
//
// N subscribers hold `GET --subscribe-path` event streams (text/event-stream, WHATWG HTML §9.2) and one
// publisher connection sends `POST --publish-path` requests whose body is the message; the server is
// expected to deliver each published body to every subscriber as the data of one event. One publish at a
// time, as ws_load's broadcast: the next POST goes out when every subscriber got the current message (or
// after --publish-timeout, and the missing deliveries count as lost). It counts deliveries inside the
// measured window and the latency of each, from the POST's send to the event's receipt.
//
// One thread, one Asio io_context. Each subscriber reads whatever its socket holds, removes the HTTP framing
// (chunked or until close, RFC 9112 §6.3, with http_load's own response parser, tools/response_parser.hpp)
// and feeds the body to switchboard's SSE parser (sse/parser.hpp, strict UTF-8), so a server that frames or
// encodes events wrongly fails the run. Comments (heartbeats) and events with another payload are ignored.
//
// The options, the publisher, the schedule and the modes (--check: one subscriber, one publish, the message must
// arrive unchanged; --hold: the memory figures of sse.sh) are tools/fanout_client.hpp's, shared with
// longpoll_load; this file opens and reads the event streams.
//
// Usage: sse_load --port PORT [options]; --help lists them (fanout_cli::common_usage).
// Exit status: 0 when the run completed with deliveries and no error (or the check passed, or every held
// stream stayed open), 1 otherwise (the reason on stderr), 2 for a usage error.
#include "fanout_client.hpp"
#include "response_parser.hpp"

#include <switchboard/http/parser.hpp>
#include <switchboard/sse/parser.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using asio::ip::tcp;
using load_tools::clock_type;

constexpr const char* default_path = "/topics/bench/events";

/// Sends the GET of an event stream on the connected `socket` and reads the response head; checks it is a 200
/// with Content-Type text/event-stream. Returns every byte read, the head included (the caller's framing
/// parser starts from the status line). Throws std::runtime_error otherwise.
std::string open_stream(tcp::socket& socket, const std::string& host_field, const std::string& path) {
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_field +
                              "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  switchboard::http::response_parser head;
  std::string buffer;
  std::array<char, 4096> chunk{};
  for (;;) {
    std::error_code ec;
    head.put(buffer, ec);
    if (ec) throw std::runtime_error("cannot parse the response head: " + ec.message());
    if (head.header_done()) break;
    if (buffer.size() > 64 * 1024) throw std::runtime_error("response head over 64 KiB");
    buffer.append(chunk.data(), socket.read_some(asio::buffer(chunk)));
  }
  if (head.status_code() != 200) {
    throw std::runtime_error("GET " + path + " answered " + std::to_string(head.status_code()) + ", not 200");
  }
  const std::string_view type = head.fields().get("content-type");
  if (type.substr(0, 17) != "text/event-stream") {
    throw std::runtime_error("GET " + path + " answered Content-Type '" + std::string(type) +
                             "', not text/event-stream");
  }
  return buffer;
}

/// One subscriber: reads its event stream and hands each event's data to the run.
class subscriber final : public load_tools::socket_subscriber {
 public:
  /// `received`: what open_stream read, the response head included.
  subscriber(tcp::socket socket, std::string_view received, load_tools::fanout_client& owner)
      : socket_subscriber(std::move(socket), "sse_load", "subscriber", 64 * 1024), owner_(owner) {
    body_bytes(received);
  }

 private:
  void received(std::string_view bytes) override { body_bytes(bytes); }

  // Removes the HTTP framing from newly received bytes and parses the events in them.
  void body_bytes(std::string_view bytes) {
    unframed_.append(bytes);
    const auto step = framing_.parse(unframed_, &body_);
    unframed_.erase(0, step.consumed);
    if (step.error != http_load::parse_error::none) return fail(std::string("bad framing: ") + std::string(to_string(step.error)));
    if (step.complete) return fail("the server ended the stream");
    const auto now = clock_type::now();
    bool foreign = false;
    const std::error_code ec = events_.feed(body_, [&](const switchboard::sse::message& m) {
      if (!owner_.on_message(m.data, now)) foreign = true;
    });
    body_.clear();
    if (ec) return fail("bad event stream: " + ec.message());
    if (foreign) return fail("an event this client did not publish");
  }

  load_tools::fanout_client& owner_;
  std::string unframed_;  // received bytes the framing parser has not consumed yet (at most a line)
  std::string body_;      // event-stream bytes not fed to the SSE parser yet
  http_load::response_parser framing_;
  switchboard::sse::parser events_{{.utf8 = switchboard::sse::utf8_policy::reject}};
};

}  // namespace

int main(int argc, char** argv) {
  const load_tools::fanout_cli cli("sse_load", "usage: sse_load --port PORT [options]\n" +
                                                   load_tools::fanout_cli::common_usage(default_path, "subscriber"),
                                   default_path);
  const load_tools::fanout_options o = cli.parse(argc, argv);
  const std::size_t subscribers = o.run_mode == load_tools::fanout_mode::check ? 1 : o.connections;
  if (!load_tools::raise_file_limit(subscribers + 1)) {
    std::fprintf(stderr, "sse_load: %zu connections need more open files than the hard limit allows\n", subscribers);
    return 1;
  }
  load_tools::fanout_client run(o, "sse_load");
  const std::string host_field = run.host_field();
  const auto open = [&](asio::io_context& context, const tcp::endpoint& server, std::size_t) {
    tcp::socket socket(context);
    socket.connect(server);
    socket.set_option(tcp::no_delay(true));
    std::string received = open_stream(socket, host_field, o.subscribe_path);
    return std::make_unique<subscriber>(std::move(socket), received, run);
  };
  if (!run.connect_all(subscribers, open)) return 1;
  return run.run();
}
